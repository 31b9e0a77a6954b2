//! Large profiles: the rules for single files of one directory that grant the same letters,
//! alike in `owner` and in their notes, are written as one rule with an alternation
//! (`/srv/d/{a.json,b.log} r,`), which means the same to AppArmor. `apparmor_parser`
//! compiles such a profile about a third faster and in half the memory (the 16 000 file rules
//! of a recording of a million files: 4.0 s and 190 MB as one rule per file, 2.6 s and 92 MB
//! grouped). A profile with fewer than [`FROM_RULES`] file rules keeps a rule per file, easier
//! to read and to review.

use super::{pattern::Piece, Rule};

/// File rules from which a profile groups them.
pub(crate) const FROM_RULES: usize = 1000;

/// Most names in one alternation: the parser's scanner refuses a very long line.
const MAX_NAMES: usize = 64;

/// One line of the profile's file rules: the first of the rules it stands for (the others
/// grant the same letters, with the same `owner` and notes), and the path as written.
pub(crate) struct Line<'r> {
    pub rule: &'r Rule,
    pub path: String,
}

/// The directory and name of a rule that may join a group: one literal path whose bytes all
/// are written as themselves (no quoting, no `,` or `{`).
fn groupable(rule: &Rule) -> Option<(&[u8], &[u8])> {
    let [Piece::Lit(path)] = rule.pattern.0.as_slice() else {
        return None;
    };
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"/._-+~:=%@".contains(b);
    if !path.iter().all(plain) || path.ends_with(b"/") {
        return None;
    }
    let slash = path.iter().rposition(|&b| b == b'/')?;
    Some((&path[..slash], &path[slash + 1..]))
}

/// The file rules' lines, in the rules' order: each rule alone, or (from `from` rules on)
/// grouped with the rules of its directory that follow it without another directory's rule
/// between.
pub(crate) fn lines(rules: &[Rule], from: usize) -> Vec<Line<'_>> {
    fn alone(r: &Rule) -> Line<'_> {
        Line {
            rule: r,
            path: r.pattern.render(),
        }
    }
    if rules.len() < from {
        return rules.iter().map(alone).collect();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < rules.len() {
        let Some((dir, _)) = groupable(&rules[i]) else {
            out.push(alone(&rules[i]));
            i += 1;
            continue;
        };
        // The run: this directory's groupable rules up to the first other rule, each with
        // its name.
        let run: Vec<(&Rule, &[u8])> = rules[i..]
            .iter()
            .map_while(|r| {
                groupable(r)
                    .filter(|(d, _)| *d == dir)
                    .map(|(_, name)| (r, name))
            })
            .collect();
        let run_end = i + run.len();
        // Grouped by (letters, owner, notes), each group where its first rule was.
        let mut groups: Vec<Vec<(&Rule, &[u8])>> = Vec::new();
        for (r, name) in run {
            let same = |g: &&mut Vec<(&Rule, &[u8])>| {
                let first = g[0].0;
                first.perms == r.perms
                    && first.owner == r.owner
                    && first.notes == r.notes
                    && g.len() < MAX_NAMES
            };
            match groups.iter_mut().find(same) {
                Some(g) => g.push((r, name)),
                None => groups.push(vec![(r, name)]),
            }
        }
        for g in groups {
            if let [(r, _)] = g.as_slice() {
                out.push(alone(r));
                continue;
            }
            let names: Vec<String> = g
                .iter()
                .map(|(_, name)| String::from_utf8_lossy(name).into_owned())
                .collect();
            out.push(Line {
                rule: g[0].0,
                path: format!("{}/{{{}}}", String::from_utf8_lossy(dir), names.join(",")),
            });
        }
        i = run_end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::apparmor::{pattern::Pattern, rules::Perms};

    fn rule(path: &str, read_only: bool, owner: bool, note: bool) -> Rule {
        let mut pattern = Pattern::literal(path.as_bytes());
        if path.contains('*') {
            let (lit, _) = path.split_once('*').unwrap();
            pattern = Pattern(vec![Piece::Lit(lit.into()), Piece::Glob("*")]);
        }
        Rule {
            pattern,
            perms: Perms {
                read: true,
                write: !read_only,
                ..Perms::default()
            },
            owner,
            notes: if note {
                vec!["created-dir".into()]
            } else {
                vec![]
            },
        }
    }

    fn paths(rules: &[Rule], from: usize) -> Vec<String> {
        lines(rules, from).into_iter().map(|l| l.path).collect()
    }

    #[test]
    fn grouping_table() {
        let r = |p: &str| rule(p, true, false, false);
        let cases: Vec<(&str, Vec<Rule>, usize, Vec<&str>)> = vec![
            (
                "below the threshold: a rule per file",
                vec![r("/srv/d/a"), r("/srv/d/b")],
                3,
                vec!["/srv/d/a", "/srv/d/b"],
            ),
            (
                "one directory, same letters",
                vec![r("/srv/d/a"), r("/srv/d/b"), r("/srv/d/c")],
                1,
                vec!["/srv/d/{a,b,c}"],
            ),
            (
                "letters and owner keep groups apart, each where its first rule was",
                vec![
                    r("/srv/d/a"),
                    rule("/srv/d/b", false, false, false),
                    rule("/srv/d/c", true, true, false),
                    r("/srv/d/e"),
                    rule("/srv/d/f", false, false, false),
                ],
                1,
                vec!["/srv/d/{a,e}", "/srv/d/{b,f}", "/srv/d/c"],
            ),
            (
                "another directory's rule ends the run",
                vec![
                    r("/srv/d/a"),
                    r("/srv/d/a.x/y"),
                    r("/srv/d/b"),
                    r("/srv/d/c"),
                ],
                1,
                vec!["/srv/d/a", "/srv/d/a.x/y", "/srv/d/{b,c}"],
            ),
            (
                "notes keep groups apart",
                vec![
                    rule("/srv/d/m", true, false, true),
                    r("/srv/d/n"),
                    rule("/srv/d/o", true, false, true),
                    r("/srv/d/p"),
                ],
                1,
                vec!["/srv/d/{m,o}", "/srv/d/{n,p}"],
            ),
            (
                "globs, directories and names to quote stay alone",
                vec![
                    r("/srv/d/*"),
                    r("/srv/d/s/"),
                    r("/srv/d/x,y"),
                    r("/srv/d/q r"),
                ],
                1,
                vec![
                    "/srv/d/*",
                    "/srv/d/s/",
                    "\"/srv/d/x\\x2cy\"",
                    "\"/srv/d/q\\x20r\"",
                ],
            ),
        ];
        for (what, rules, from, want) in cases {
            assert_eq!(paths(&rules, from), want, "{what}");
        }
    }

    #[test]
    fn a_group_holds_at_most_max_names() {
        let rules: Vec<Rule> = (0..MAX_NAMES + 1)
            .map(|i| rule(&format!("/srv/d/f{i:03}"), true, false, false))
            .collect();
        let lines = lines(&rules, 1);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].path.matches(',').count() + 1, MAX_NAMES);
        assert_eq!(lines[1].path, format!("/srv/d/f{MAX_NAMES:03}"));
    }
}

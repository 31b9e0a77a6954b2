//! `dir/*` for the directories the kernel side aggregated (`aggregated-dir`): the workload
//! made more distinct names in them, with one operation, than the recorder keeps one by one,
//! so only the directory and the operation are known. The rule allows that operation on
//! every name directly in the directory (not below it), as `collapse dir/*` does for
//! directories whose names were all recorded, and under the same bounds:
//!
//! * the directory is at least two levels deep (`/var/lib/app/*` yes, `/tmp/*` or `/etc/*`
//!   never);
//! * a rule that writes only where the workload's own writes may make names (not under
//!   `/etc`, `/usr`, `/bin`, … as `made` says);
//! * execute, link and lock are never aggregated by the kernel side (execs, two-name calls
//!   and fd-based operations are always recorded one by one).
//!
//! A directory outside those bounds gets no rule: its names past the first ones are listed
//! as not expressible (the workload will be denied them), never allowed by a broader rule.

use std::collections::BTreeMap;

use super::{
    collapse::depth,
    escape,
    made::{self, names_may_vary},
    pattern::{Pattern, Piece},
    rules::Perms,
    Rule,
};
use crate::model::AggregatedDir;

const MIN_DEPTH: usize = 2;

/// Why `dir` may not get a `dir/*` rule with `perms`.
fn refused(dir: &[u8], perms: &Perms) -> Option<&'static str> {
    if let Some(why) = escape::unexpressible(dir) {
        return Some(why);
    }
    if depth(dir) < MIN_DEPTH {
        return Some("fewer than two levels deep: dir/* would reach files the workload never made");
    }
    if perms.exec || perms.link || perms.lock {
        return Some("execute, link or lock on every name is never generalised");
    }
    if !perms.is_read_only() && !names_may_vary(dir) {
        return Some("a system directory: its names are not the workload's to make");
    }
    None
}

/// The `dir/*` rules, and a line for each directory refused.
pub(crate) fn rules<'a>(
    dirs: impl IntoIterator<Item = &'a AggregatedDir>,
) -> (Vec<Rule>, Vec<String>) {
    // One rule per directory, with every operation aggregated there.
    let mut by_dir: BTreeMap<&[u8], Perms> = BTreeMap::new();
    for d in dirs {
        let perms = Perms::from_ops(d.ops.iter());
        let slot = by_dir.entry(d.dir.as_bytes()).or_default();
        *slot = slot.union(perms);
    }
    let mut out = Vec::new();
    let mut refusals = Vec::new();
    for (dir, mut perms) in by_dir {
        if perms.is_empty() {
            continue;
        }
        if let Some(why) = refused(dir, &perms) {
            refusals.push(format!(
                "aggregated directory {:?} ({}): {why}",
                String::from_utf8_lossy(dir),
                perms.letters()
            ));
            continue;
        }
        let mut pattern = Pattern::literal(dir);
        pattern.0.push(Piece::Glob("/*"));
        let mut notes = vec![std::borrow::Cow::Borrowed(
            "aggregated-dir: too many names to record one by one",
        )];
        if made::reads_back(&pattern.shape(), &perms) {
            perms.read = true;
            notes.push(super::READ_BACK.into());
        }
        out.push(Rule {
            pattern,
            perms,
            owner: false,
            notes,
        });
    }
    (out, refusals)
}

/// Whether `wide` allows everything `narrow` does.
fn covers(wide: &Perms, narrow: &Perms) -> bool {
    let imp = |w: bool, n: bool| w || !n;
    imp(wide.read, narrow.read)
        && imp(wide.write, narrow.write)
        && imp(wide.append || wide.write, narrow.append)
        && imp(wide.link, narrow.link)
        && imp(wide.lock, narrow.lock)
        && imp(wide.mmap, narrow.mmap)
        && imp(wide.exec, narrow.exec)
}

/// The directory every path `pattern` matches is directly in, when it matches only names
/// there: the directory part literal, the name part without `/` and without a glob that can
/// cross one (`**`). `/d/f1` and `/d/f.[0-9]*` are in `/d`; `/d/[0-9]*/f`, `/d/**` and `/d/`
/// are not one name in `/d`.
fn directory_of_one_name(pattern: &Pattern) -> Option<Vec<u8>> {
    let mut text = Vec::new();
    // Where the last `/` is, and whether a glob came before it.
    let mut last_slash = None;
    let mut glob_seen = false;
    for piece in &pattern.0 {
        match piece {
            Piece::Lit(bytes) => {
                if let Some(i) = bytes.iter().rposition(|&b| b == b'/') {
                    if glob_seen {
                        return None;
                    }
                    last_slash = Some(text.len() + i);
                }
                text.extend_from_slice(bytes);
            }
            Piece::Glob(g) if g.contains('/') || g.contains("**") => return None,
            Piece::Glob(_) => glob_seen = true,
        }
    }
    let end = last_slash?;
    if end + 1 == text.len() {
        return None;
    }
    text.truncate(end);
    Some(text)
}

/// `rules` with the `dir/*` rules added, dropping the rules for names directly in those
/// directories (literal or generalised) that they allow anyway; sorted by rendered path like [`super::collapse`].
pub(crate) fn absorb(rules: Vec<Rule>, globs: Vec<Rule>) -> Vec<Rule> {
    if globs.is_empty() {
        return rules;
    }
    let by_dir: BTreeMap<Vec<u8>, Perms> = globs
        .iter()
        .filter_map(|g| match g.pattern.0.as_slice() {
            [Piece::Lit(dir), Piece::Glob("/*")] => Some((dir.clone(), g.perms)),
            _ => None,
        })
        .collect();
    let mut sorted: BTreeMap<String, Rule> = BTreeMap::new();
    for r in rules {
        let absorbed = directory_of_one_name(&r.pattern)
            .and_then(|dir| by_dir.get(&dir))
            .is_some_and(|wide| covers(wide, &r.perms));
        if !absorbed {
            sorted.insert(r.pattern.render(), r);
        }
    }
    for g in globs {
        match sorted.get_mut(&g.pattern.render()) {
            // `collapse` made the same glob from the names it saw.
            Some(r) => {
                r.perms = r.perms.union(g.perms);
                r.owner = false;
                r.notes.extend(g.notes);
            }
            None => {
                sorted.insert(g.pattern.render(), g);
            }
        }
    }
    sorted.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FileOp, FsPath};

    fn dir(path: &str, ops: &[FileOp]) -> AggregatedDir {
        AggregatedDir {
            dir: FsPath::from(path),
            ops: ops.iter().copied().collect(),
        }
    }

    #[test]
    fn bounds() {
        use FileOp::*;
        // (dir, ops, rule or refused)
        let cases: &[(&str, &[FileOp], Option<&str>)] = &[
            (
                "/var/lib/app/spool",
                &[Write, Create],
                Some("/var/lib/app/spool/* rw,"),
            ),
            ("/srv/data", &[Read], Some("/srv/data/* r,")),
            ("/etc/ssl/certs", &[Read], Some("/etc/ssl/certs/* r,")),
            ("/etc/app", &[Write, Create], None),
            ("/usr/lib/app", &[Unlink], None),
            ("/tmp", &[Write, Create], None),
            ("/etc", &[Read], None),
            ("relative", &[Read], None),
        ];
        for (path, ops, want) in cases {
            let (rules, refused) = rules(&[dir(path, ops)]);
            let got = rules
                .first()
                .map(|r| format!("{} {},", r.pattern.render(), r.perms.letters()));
            assert_eq!(got.as_deref(), *want, "{path}");
            assert_eq!(refused.len(), usize::from(want.is_none()), "{path}");
        }
    }

    #[test]
    fn absorbs_the_names_it_allows() {
        let lit = |p: &str, perms: Perms| Rule {
            pattern: Pattern::literal(p.as_bytes()),
            perms,
            owner: true,
            notes: Vec::new(),
        };
        let w = Perms {
            write: true,
            ..Perms::default()
        };
        let rx = Perms {
            read: true,
            exec: true,
            ..Perms::default()
        };
        let numbered = Rule {
            pattern: Pattern(vec![
                Piece::Lit(b"/var/lib/app/spool/seg.".to_vec()),
                Piece::Glob("[0-9]*"),
            ]),
            perms: w,
            owner: true,
            notes: vec!["number-in-name".into()],
        };
        let (globs, _) = rules(&[dir("/var/lib/app/spool", &[FileOp::Create])]);
        let kept = absorb(
            vec![
                lit("/var/lib/app/spool/f1", w),
                numbered,
                lit("/var/lib/app/spool/run", rx),
                lit("/var/lib/app/spool/sub/f2", w),
                lit("/var/lib/app/other", w),
            ],
            globs,
        );
        let shown: Vec<String> = kept.iter().map(|r| r.pattern.render()).collect();
        assert_eq!(
            shown,
            [
                "/var/lib/app/other",
                "/var/lib/app/spool/*",
                "/var/lib/app/spool/run",
                "/var/lib/app/spool/sub/f2",
            ]
        );
    }

    #[test]
    fn one_name_in_a_directory() {
        let lit = |b: &str| Piece::Lit(b.as_bytes().to_vec());
        let cases: Vec<(Vec<Piece>, Option<&str>)> = vec![
            (vec![lit("/d/f1")], Some("/d")),
            (vec![lit("/d/e/f."), Piece::Glob("[0-9]*")], Some("/d/e")),
            (
                vec![lit("/d/"), Piece::Glob("[0-9]*"), lit(".tmp")],
                Some("/d"),
            ),
            (vec![lit("/d/"), Piece::Glob("[0-9]*"), lit("/f")], None),
            (vec![lit("/d/"), Piece::Glob("**")], None),
            (vec![lit("/d"), Piece::Glob("/*")], None),
            (vec![lit("/d/")], None),
        ];
        for (pieces, want) in cases {
            let pattern = Pattern(pieces);
            assert_eq!(
                directory_of_one_name(&pattern).as_deref(),
                want.map(str::as_bytes),
                "{}",
                pattern.render()
            );
        }
    }
}

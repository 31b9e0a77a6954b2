//! Collapsing many read-only files of one directory into a glob, by a stated rule:
//!
//! * `dir/*`: at least `threshold` files directly in `dir`, every rule directly in `dir` a
//!   file rule with the same read-only letters (`r`, `m`) and the same `owner`.
//! * `dir/**`: at least `threshold` files anywhere below `dir`, in at least two directories,
//!   and every rule below `dir` read-only with the same letters and `owner`.
//!
//! * `dir/*` for created files: at least `threshold` files directly in `dir`, each created by
//!   the workload while recording (where its names may vary: not under `/etc`, `/usr`, … as
//!   `made` says), every rule directly in `dir` a file rule with the same letters that write
//!   but neither execute, link nor lock, and the same `owner`. A directory a server fills
//!   with a file per upload, session or segment would otherwise get one rule per file (a
//!   million-file recording makes a profile the parser refuses).
//!
//! All only when `dir` is at least two levels deep (`/etc/nginx` yes, `/etc` or `/usr`
//! never: `/etc/*` would let the workload read `/etc/shadow`), when no access below it failed
//! (the glob would allow what the workload did without), and never over a write, exec, link
//! or lock rule. `**` is tried first, from the shallowest directory down.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    pattern::{Pattern, Piece},
    rules::Perms,
    Rule,
};

const MIN_DEPTH: usize = 2;

fn parent(p: &[u8]) -> &[u8] {
    let end = p.iter().rposition(|&b| b == b'/').unwrap_or(0);
    &p[..end]
}

pub(crate) fn depth(dir: &[u8]) -> usize {
    dir.split(|&b| b == b'/').filter(|c| !c.is_empty()).count()
}

fn is_under(path: &[u8], dir: &[u8]) -> bool {
    path.len() > dir.len() + 1 && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// Whether a rule's letters may be merged into a `dir/*` of created files.
fn writes_only(p: &Perms) -> bool {
    (p.write || p.append) && !(p.exec || p.link || p.lock)
}

/// Where a rule is: its path when literal, else the literal part before its first glob.
/// Borrowed from the rule, whose pattern [`Index`] keeps with its literals joined: a copy per
/// rule of a million-file recording is a hundred megabytes.
fn at(rule: &Rule) -> &[u8] {
    match rule.pattern.0.first() {
        Some(Piece::Lit(b)) => b,
        _ => b"",
    }
}

/// Whether a rule (its pattern's literals joined) names one path.
fn is_literal(rule: &Rule) -> bool {
    matches!(rule.pattern.0.as_slice(), [] | [Piece::Lit(_)])
}

/// The rules by where they are, so the rules below a directory are one range (`dir/` up to
/// `dir0`, `0` being the byte after `/`): each directory costs what is below it, not every
/// rule (a million created files in a few hundred directories would otherwise be hours).
/// The rules given are sorted once; the few globs collapsing adds are kept apart.
struct Index {
    rules: Vec<Rule>,
    /// By rule: collapsed into a glob.
    removed: Vec<bool>,
    /// Ids of the rules given, by `at`.
    sorted: Vec<usize>,
    /// Ids of the rules added, by `at`.
    added: BTreeMap<Vec<u8>, Vec<usize>>,
}

impl Index {
    fn new(rules: impl IntoIterator<Item = Rule>) -> Self {
        let mut rules: Vec<Rule> = rules.into_iter().collect();
        rules.iter_mut().for_each(|r| r.pattern.join_literals());
        let mut sorted: Vec<usize> = (0..rules.len()).collect();
        sorted.sort_by(|&a, &b| at(&rules[a]).cmp(at(&rules[b])));
        Index {
            removed: vec![false; rules.len()],
            rules,
            sorted,
            added: BTreeMap::new(),
        }
    }

    fn add(&mut self, mut rule: Rule) {
        rule.pattern.join_literals();
        self.added
            .entry(at(&rule).to_vec())
            .or_default()
            .push(self.rules.len());
        self.rules.push(rule);
        self.removed.push(false);
    }

    fn at(&self, i: usize) -> &[u8] {
        at(&self.rules[i])
    }

    fn is_literal(&self, i: usize) -> bool {
        is_literal(&self.rules[i])
    }

    /// The rules still there below `dir` (directly in it unless `recursive`), lazily: the
    /// checks stop at the first rule that rules a glob out, and the rules directly in a
    /// directory are found without walking its subdirectories (a shard directory over a
    /// million files would otherwise walk them all, once per level).
    fn under<'s>(&'s self, dir: &'s [u8], recursive: bool) -> impl Iterator<Item = usize> + 's {
        let lo = [dir, b"/"].concat();
        let hi = [dir, b"0"].concat();
        let from = self.partition(&lo);
        let to = self.partition(&hi);
        let added = self
            .added
            .range(lo..hi)
            .filter(move |(p, _)| is_under(p, dir) && (recursive || parent(p) == dir))
            .flat_map(|(_, ids)| ids.iter().copied());
        Given {
            index: self,
            dir,
            recursive,
            next: from,
            to,
        }
        .chain(added)
        .filter(|&i| !self.removed[i])
    }

    /// Where the first given rule at or after `at` is in `sorted`.
    fn partition(&self, at: &[u8]) -> usize {
        self.sorted.partition_point(|&i| self.at(i) < at)
    }

    fn rule(&self, i: usize) -> &Rule {
        &self.rules[i]
    }

    fn remove(&mut self, ids: &[usize]) {
        for &i in ids {
            self.removed[i] = true;
        }
    }
}

/// The given rules below a directory, in order of place: [`Index::under`].
struct Given<'s> {
    index: &'s Index,
    dir: &'s [u8],
    recursive: bool,
    /// Into `index.sorted`.
    next: usize,
    to: usize,
}

impl Iterator for Given<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.next < self.to {
            let i = self.index.sorted[self.next];
            let at = self.index.at(i);
            if !is_under(at, self.dir) {
                self.next += 1;
                continue;
            }
            if self.recursive || parent(at) == self.dir {
                self.next += 1;
                return Some(i);
            }
            // In a subdirectory: skip past all of it (`sub/` up to `sub0`).
            let name = &at[self.dir.len() + 1..];
            let Some(slash) = name.iter().position(|&b| b == b'/') else {
                self.next += 1;
                continue;
            };
            let end = [&at[..self.dir.len() + 1 + slash], b"0"].concat();
            self.next = self.index.partition(&end).max(self.next + 1);
        }
        None
    }
}

/// Whether a failed path is below `dir` (directly in it unless `recursive`).
fn failed_under(failed: &BTreeSet<&[u8]>, dir: &[u8], recursive: bool) -> bool {
    let mut lo = dir.to_vec();
    lo.push(b'/');
    let mut hi = dir.to_vec();
    hi.push(b'0');
    failed
        .range::<[u8], _>((
            std::ops::Bound::Included(lo.as_slice()),
            std::ops::Bound::Excluded(hi.as_slice()),
        ))
        .any(|f| is_under(f, dir) && (recursive || parent(f) == dir))
}

pub(crate) fn collapse(
    rules: impl IntoIterator<Item = Rule>,
    failed: &[Vec<u8>],
    threshold: usize,
    created: &dyn Fn(&[u8]) -> bool,
) -> Vec<Rule> {
    if threshold == 0 {
        return rules.into_iter().collect();
    }
    let mut index = Index::new(rules);
    let failed: BTreeSet<&[u8]> = failed.iter().map(Vec::as_slice).collect();
    let mut dirs: BTreeSet<&[u8]> = BTreeSet::new();
    let mut last: &[u8] = b"";
    for r in index.rules.iter().filter(|r| is_literal(r)) {
        // Rules come mostly in order: the directory of the last one is known already.
        let mut d = parent(at(r));
        if std::mem::replace(&mut last, d) == d {
            continue;
        }
        while depth(d) >= MIN_DEPTH && dirs.insert(d) {
            d = parent(d);
        }
    }
    let mut by_depth: Vec<Vec<u8>> = dirs.into_iter().map(<[u8]>::to_vec).collect();
    by_depth.sort_by_cached_key(|d| (depth(d), d.clone()));

    for recursive in [true, false] {
        for dir in &by_depth {
            let Some(first) = index.under(dir, recursive).next() else {
                continue;
            };
            let (perms, owner) = (index.rule(first).perms, index.rule(first).owner);
            let mut read_only = perms.is_read_only();
            let mut written = !recursive && writes_only(&perms);
            for i in index.under(dir, recursive) {
                let r = index.rule(i);
                let literal = index.is_literal(i);
                let same = literal && r.perms == perms && r.owner == owner;
                let is_file = literal && !index.at(i).ends_with(b"/");
                if !same || (!recursive && !is_file) {
                    read_only = false;
                    written = false;
                } else if written && !created(index.at(i)) {
                    written = false;
                }
                if !read_only && !written {
                    break;
                }
            }
            if !read_only && !written {
                continue;
            }
            let under: Vec<usize> = index.under(dir, recursive).collect();
            let files: Vec<&[u8]> = under
                .iter()
                .filter(|&&i| index.is_literal(i) && !index.at(i).ends_with(b"/"))
                .map(|&i| index.at(i))
                .collect();
            if files.len() < threshold {
                continue;
            }
            if recursive {
                let mut parents = files.iter().map(|p| parent(p));
                let first_parent = parents.next();
                if parents.all(|p| Some(p) == first_parent) {
                    continue;
                }
            }
            if failed_under(&failed, dir, recursive) {
                continue;
            }
            let mut pattern = Pattern::literal(dir);
            pattern
                .0
                .push(Piece::Glob(if recursive { "/**" } else { "/*" }));
            let note = if written {
                format!(
                    "collapse dir/* (created): {} files the workload created",
                    files.len()
                )
            } else {
                format!(
                    "collapse {}: {} read-only files",
                    if recursive { "dir/**" } else { "dir/*" },
                    files.len()
                )
            };
            index.remove(&under);
            index.add(Rule {
                pattern,
                perms,
                owner,
                notes: vec![note.into()],
            });
        }
    }
    // Keep the output order stable: by rendered path.
    let mut sorted: BTreeMap<String, Rule> = BTreeMap::new();
    for (rule, _) in index
        .rules
        .into_iter()
        .zip(index.removed)
        .filter(|(_, removed)| !removed)
    {
        sorted.insert(rule.pattern.render(), rule);
    }
    sorted.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pieces: Vec<Piece>) -> Rule {
        Rule {
            pattern: Pattern(pieces),
            perms: Perms::default(),
            owner: false,
            notes: Vec::new(),
        }
    }

    #[test]
    fn an_entry_is_where_its_literal_part_is() {
        let lit = |s: &str| Piece::Lit(s.as_bytes().to_vec());
        let cases: Vec<(Vec<Piece>, &str, bool)> = vec![
            (vec![lit("/srv/a/f1")], "/srv/a/f1", true),
            (vec![lit("/srv/a/"), lit("f1")], "/srv/a/f1", true),
            (
                vec![lit("/srv/a/"), Piece::Glob("[0-9]*")],
                "/srv/a/",
                false,
            ),
            (vec![Piece::Glob("@{pid}"), lit("/x")], "", false),
            (vec![], "", true),
        ];
        for (pieces, at, literal) in cases {
            let index = Index::new([rule(pieces.clone())]);
            assert_eq!(index.at(0), at.as_bytes(), "{pieces:?}");
            assert_eq!(index.is_literal(0), literal, "{pieces:?}");
        }
    }

    /// `under` skips subdirectories rather than filtering them: it must find what a filter
    /// over every rule finds, whatever names sort between a directory's own rules.
    #[test]
    fn under_finds_what_a_filter_over_every_rule_finds() {
        let lit = |s: &str| Piece::Lit(s.as_bytes().to_vec());
        let paths = [
            "/srv/a",
            "/srv/a.txt",
            "/srv/a/f",
            "/srv/a/b/g",
            "/srv/a/b/c/h",
            "/srv/a/b",
            "/srv/a/b.x",
            "/srv/a/b.x/i",
            "/srv/a/c",
            "/srv/a/c/",
            "/srv/a-b/j",
            "/srv/a0",
            "/srv/a/b/",
            "/srv/ab/k",
            "/srv/a/z",
            "/srv/a/zz/l",
            "/srv/a//m",
            "/srv/b/n",
        ];
        let mut rules: Vec<Rule> = paths.iter().map(|p| rule(vec![lit(p)])).collect();
        rules.push(rule(vec![lit("/srv/a/"), Piece::Glob("[0-9]*")]));
        rules.push(rule(vec![lit("/srv/a/b/"), Piece::Glob("*")]));
        let mut index = Index::new(rules);
        index.add(rule(vec![lit("/srv/a/y")]));
        index.add(rule(vec![lit("/srv/a/y/w")]));
        index.remove(&[2]);
        let all = index.rules.len();
        for dir in [
            "/srv",
            "/srv/a",
            "/srv/a/b",
            "/srv/a/b.x",
            "/srv/a/zz",
            "/srv/c",
            "/srv/a/",
        ] {
            let dir = dir.as_bytes();
            for recursive in [true, false] {
                let mut found: Vec<usize> = index.under(dir, recursive).collect();
                found.sort();
                let wanted: Vec<usize> = (0..all)
                    .filter(|&i| !index.removed[i])
                    .filter(|&i| {
                        let p = index.at(i);
                        is_under(p, dir) && (recursive || parent(p) == dir)
                    })
                    .collect();
                let name = String::from_utf8_lossy(dir);
                assert_eq!(found, wanted, "{name} recursive={recursive}");
            }
        }
    }
}

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

fn depth(dir: &[u8]) -> usize {
    dir.split(|&b| b == b'/').filter(|c| !c.is_empty()).count()
}

fn is_under(path: &[u8], dir: &[u8]) -> bool {
    path.len() > dir.len() + 1 && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// The literal prefix of a pattern (everything before its first glob).
fn prefix(p: &Pattern) -> Vec<u8> {
    match p.0.first() {
        Some(Piece::Lit(b)) => b.clone(),
        _ => Vec::new(),
    }
}

/// Whether a rule's letters may be merged into a `dir/*` of created files.
fn writes_only(p: &Perms) -> bool {
    (p.write || p.append) && !(p.exec || p.link || p.lock)
}

pub(crate) fn collapse(
    rules: Vec<Rule>,
    failed: &[Vec<u8>],
    threshold: usize,
    created: &dyn Fn(&[u8]) -> bool,
) -> Vec<Rule> {
    if threshold == 0 {
        return rules;
    }
    let mut rules = rules;
    let mut dirs: BTreeSet<Vec<u8>> = BTreeSet::new();
    for r in &rules {
        if let Some(lit) = r.pattern.as_literal() {
            let mut d = parent(&lit);
            while depth(d) >= MIN_DEPTH {
                dirs.insert(d.to_vec());
                d = parent(d);
            }
        }
    }
    let mut by_depth: Vec<Vec<u8>> = dirs.into_iter().collect();
    by_depth.sort_by_key(|d| (depth(d), d.clone()));

    for recursive in [true, false] {
        for dir in &by_depth {
            let under: Vec<usize> = rules
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    let p = r.pattern.as_literal().unwrap_or_else(|| prefix(&r.pattern));
                    is_under(&p, dir) && (recursive || parent(&p) == dir.as_slice())
                })
                .map(|(i, _)| i)
                .collect();
            let Some(&first) = under.first() else {
                continue;
            };
            let (perms, owner) = (rules[first].perms, rules[first].owner);
            let same = |i: &usize| {
                let r = &rules[*i];
                r.pattern.as_literal().is_some() && r.perms == perms && r.owner == owner
            };
            let is_file = |i: &usize| {
                rules[*i]
                    .pattern
                    .as_literal()
                    .is_some_and(|p| !p.ends_with(b"/"))
            };
            let read_only =
                perms.is_read_only() && under.iter().all(|i| same(i) && (recursive || is_file(i)));
            let written = !recursive
                && writes_only(&perms)
                && under.iter().all(|i| {
                    same(i) && is_file(i) && created(&rules[*i].pattern.as_literal().unwrap())
                });
            if !read_only && !written {
                continue;
            }
            let files: Vec<Vec<u8>> = under
                .iter()
                .filter_map(|&i| rules[i].pattern.as_literal())
                .filter(|p| !p.ends_with(b"/"))
                .collect();
            let parents: BTreeSet<&[u8]> = files.iter().map(|p| parent(p)).collect();
            if files.len() < threshold || (recursive && parents.len() < 2) {
                continue;
            }
            let failed_here = failed
                .iter()
                .any(|f| is_under(f, dir) && (recursive || parent(f) == dir.as_slice()));
            if failed_here {
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
            let gone: BTreeSet<usize> = under.into_iter().collect();
            let mut kept: Vec<Rule> = rules
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !gone.contains(i))
                .map(|(_, r)| r)
                .collect();
            kept.push(Rule {
                pattern,
                perms,
                owner,
                notes: vec![note],
            });
            rules = kept;
        }
    }
    // Keep the output order stable: by rendered path.
    let mut sorted: BTreeMap<String, Rule> = BTreeMap::new();
    for r in rules {
        sorted.insert(r.pattern.render(), r);
    }
    sorted.into_values().collect()
}

//! What the workload made while recording, for the rules that let a next run make it again:
//! which names it wrote (and so may name differently next time), which directories it created,
//! which of its files were temporary, where its own pid was in a name, and which files it will
//! read back.
//!
//! Names are only ever generalised where the workload wrote them: never a read-only system
//! file, never under `/etc`, `/usr`, `/bin`, `/sbin`, `/lib*`, `/boot`, `/proc`, `/sys` or
//! `/dev` (but `/dev/shm`), and never in the first two levels below `/` (a rule for `/tmp/*`
//! or `/run/*` would reach files the workload never made).

use std::collections::{BTreeMap, BTreeSet};

use super::{
    pattern::{Piece, MKSTEMP_GLOB, NUM_GLOB},
    rules::Perms,
};
use crate::model::{Activity, FileOp};

/// Components before this index (0 is the empty one before the leading `/`) are never
/// generalised by these rules: `/var/lib/` yes, `/var/` no.
const FIRST_VARIABLE: usize = 3;

/// Top-level directories whose names are the system's, whatever the workload did to them.
const SYSTEM: &[&[u8]] = &[
    b"etc", b"usr", b"bin", b"sbin", b"lib", b"lib32", b"lib64", b"libx32", b"boot", b"proc",
    b"sys", b"dev",
];

/// Why a component's name may be one a next run makes differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// The workload wrote this name (created, wrote, renamed, deleted it).
    Wrote,
    /// It is at or below a directory the workload created (`created-dir`).
    CreatedDir,
    /// A POSIX shared-memory segment (`shm-segment`).
    Shm,
}

/// The facts about one path that the name rules use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PathFacts {
    /// For each component index, why its name may vary (absent: it may not).
    pub variable: BTreeMap<usize, Why>,
    /// Created, then renamed away or deleted, while recording (`temp-file`): its random
    /// part (`mkstemp`) may be generalised too.
    pub temporary: bool,
    /// Byte ranges of `path` that were the accessing task's own pid or tid.
    pub pid_runs: Vec<(usize, usize)>,
}

/// A set of operations in one word: a `BTreeSet` per path of a million-file recording is
/// an allocation per path.
#[derive(Clone, Copy, Debug, Default)]
struct OpSet(u32);

impl OpSet {
    const ALL: [FileOp; 16] = [
        FileOp::Read,
        FileOp::Write,
        FileOp::Append,
        FileOp::Create,
        FileOp::Truncate,
        FileOp::Exec,
        FileOp::MmapExec,
        FileOp::Link,
        FileOp::Symlink,
        FileOp::Rename,
        FileOp::Unlink,
        FileOp::Mkdir,
        FileOp::Rmdir,
        FileOp::Chmod,
        FileOp::Chown,
        FileOp::Lock,
    ];

    fn insert(&mut self, op: FileOp) {
        self.0 |= 1 << op as u32;
    }

    fn extend(&mut self, other: OpSet) {
        self.0 |= other.0;
    }

    fn contains(self, op: FileOp) -> bool {
        self.0 & 1 << op as u32 != 0
    }

    fn ops(self) -> Vec<FileOp> {
        Self::ALL
            .into_iter()
            .filter(|&op| self.contains(op))
            .collect()
    }
}

/// What the whole activity says, indexed for [`Made::facts`]. Borrows the activity's paths:
/// a recording of a million files is not copied again.
pub(crate) struct Made<'a> {
    /// Sorted by path, one entry per path: a recording's paths come sorted, so this is made
    /// without a search per path as a map would need, and the lookups, made in the same
    /// order, find their way in memory that is still cached (a hash of each path costs more).
    ops: Vec<(&'a [u8], OpSet)>,
    dirs: BTreeSet<&'a [u8]>,
    pid_runs: BTreeMap<&'a [u8], Vec<(usize, usize)>>,
}

fn trim_slash(p: &[u8]) -> &[u8] {
    match p.strip_suffix(b"/") {
        Some(t) if !t.is_empty() => t,
        _ => p,
    }
}

fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/').collect()
}

/// Whether the workload's own writes may make names here. `/dev/shm` is the one place under
/// `/dev` where a workload makes names.
pub(crate) fn names_may_vary(path: &[u8]) -> bool {
    let comps = components(path);
    match comps.get(1) {
        Some(&b"dev") => comps.get(2) == Some(&&b"shm"[..]),
        Some(top) => !SYSTEM.contains(top),
        None => false,
    }
}

fn is_shm_segment(path: &[u8]) -> bool {
    let comps = components(path);
    comps.len() == 4 && comps[1] == b"dev" && comps[2] == b"shm" && !comps[3].is_empty()
}

/// `read-back`: a file the workload wrote (or a directory it made) is read again by its next
/// start or a sibling (`postmaster.pid` left behind by a kill, `dump.rdb` after the rename),
/// so a rule that writes also reads. Not for devices, `/proc` or `/sys`, where a write is a
/// command rather than content (`/dev/null`, `/proc/@{pid}/oom_score_adj`).
pub(crate) fn reads_back(path: &[u8], perms: &Perms) -> bool {
    let comps = components(path);
    let special = match comps.get(1) {
        Some(&b"dev") => !is_shm_segment(trim_slash(path)),
        Some(&b"proc" | &b"sys") => true,
        _ => false,
    };
    (perms.write || perms.append) && !perms.read && !special
}

impl<'a> Made<'a> {
    pub fn new(activity: &'a Activity) -> Self {
        let mut ops: Vec<(&[u8], OpSet)> = activity
            .files
            .iter()
            .filter(|f| !f.failed)
            .map(|f| {
                let mut set = OpSet::default();
                f.ops.iter().for_each(|&op| set.insert(op));
                (trim_slash(f.path.as_bytes()), set)
            })
            .collect();
        ops.sort_by(|a, b| a.0.cmp(b.0));
        ops.dedup_by(|next, kept| {
            let same = next.0 == kept.0;
            if same {
                kept.1.extend(next.1);
            }
            same
        });
        let dirs = ops
            .iter()
            .filter(|(_, o)| o.contains(FileOp::Mkdir))
            .map(|(p, _)| *p)
            .collect();
        let mut pid_runs: BTreeMap<&[u8], Vec<(usize, usize)>> = BTreeMap::new();
        for p in &activity.pid_in_names {
            let path = p.path.as_bytes();
            let (start, end) = (p.start as usize, p.end as usize);
            // Ranges from a recording are trusted only when they are digits of that path.
            let digits = path
                .get(start..end)
                .is_some_and(|r| !r.is_empty() && r.iter().all(u8::is_ascii_digit));
            if digits {
                pid_runs
                    .entry(trim_slash(path))
                    .or_default()
                    .push((start, end));
            }
        }
        Made {
            ops,
            dirs,
            pid_runs,
        }
    }

    fn ops_of(&self, key: &[u8]) -> Option<OpSet> {
        let i = self.ops.binary_search_by(|(p, _)| (*p).cmp(key)).ok()?;
        Some(self.ops[i].1)
    }

    /// Whether the workload created the file at `path` while recording, where its own
    /// writes may make names (`collapse dir/* (created)`).
    pub fn created(&self, path: &[u8]) -> bool {
        let key = trim_slash(path);
        names_may_vary(key) && self.ops_of(key).is_some_and(|o| o.contains(FileOp::Create))
    }

    /// The facts for `path`; `None` when no part of its name may vary.
    pub fn facts(&self, path: &[u8]) -> Option<PathFacts> {
        let key = trim_slash(path);
        if !names_may_vary(key) {
            return None;
        }
        let comps = components(key);
        let last = comps.len() - 1;
        let ops = self.ops_of(key);
        let wrote = ops.is_some_and(|o| {
            let p = Perms::from_ops(o.ops().iter());
            p.write || p.append || p.link
        });
        let mut variable = BTreeMap::new();
        // The shallowest directory the workload created, at or above this path.
        // The prefix is a slice of `key`, not a copy per component.
        let mut end = 0;
        for (i, c) in comps.iter().enumerate().skip(1) {
            end += 1 + c.len();
            if i < last && self.dirs.contains(&key[..end]) {
                // The directory's own name is one the workload wrote; the names below it,
                // all of them made after it, are the workload's too.
                if i >= FIRST_VARIABLE {
                    variable.insert(i, Why::Wrote);
                }
                for j in (i + 1).max(FIRST_VARIABLE)..=last {
                    variable.insert(j, Why::CreatedDir);
                }
                break;
            }
        }
        if wrote && last >= FIRST_VARIABLE {
            variable.entry(last).or_insert(Why::Wrote);
        }
        if is_shm_segment(key) {
            variable.insert(last, Why::Shm);
        }
        if variable.is_empty() {
            return None;
        }
        let temporary = ops.is_some_and(|o| {
            (o.contains(FileOp::Create) || o.contains(FileOp::Link))
                && (o.contains(FileOp::Rename) || o.contains(FileOp::Unlink))
        });
        Some(PathFacts {
            variable,
            temporary,
            pid_runs: self.pid_runs.get(key).cloned().unwrap_or_default(),
        })
    }
}

/// What the name rules made of one component.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Name {
    pub pieces: Vec<Piece>,
    pub rules: Vec<&'static str>,
}

/// `mkstemp`'s six random characters at the end of `c` or just before its last `.`: letters
/// and digits only, with a letter, switching between lower case, upper case and digits at
/// least twice. Words do not (`config`, `greSQL` of `PostgreSQL`, `file01`); 93% of random
/// suffixes do, the others stay literal.
fn mkstemp_span(c: &[u8]) -> Option<(usize, usize)> {
    let class = |b: &u8| (b.is_ascii_digit(), b.is_ascii_uppercase());
    let looks_random = |s: &[u8]| {
        s.iter().all(u8::is_ascii_alphanumeric)
            && s.iter().any(u8::is_ascii_alphabetic)
            && s.windows(2)
                .filter(|w| class(&w[0]) != class(&w[1]))
                .count()
                >= 2
    };
    let dot = c.iter().rposition(|&b| b == b'.');
    [Some(c.len()), dot]
        .into_iter()
        .flatten()
        .filter(|&e| e >= 6)
        .map(|e| (e - 6, e))
        .find(|&(s, e)| looks_random(&c[s..e]))
}

/// The name rules for one variable component `c`, which starts at byte `at` of the path;
/// `mkstemp` applies to temporary files and shared memory. A digit run becomes `[0-9]*`
/// when it was the pid (`pid-in-name`, wherever it is), when it is below a directory the
/// workload created (all of those names are its own: `o12of16.p0.0`), or when it stands
/// apart, bounded by a character other than a letter or digit or by the name's ends
/// (`number-in-name`: `seg.91827`, `app-2024-01-15`); otherwise digits inside a word (`utf8`,
/// `sha256`, `pgsql_tmp31` without the pid fact) stay. `None` when nothing in it varies.
pub(crate) fn name(c: &[u8], at: usize, facts: &PathFacts, why: Why) -> Option<Name> {
    let random = facts.temporary || why == Why::Shm;
    let every_run = why == Why::CreatedDir;
    let pid: Vec<(usize, usize)> = facts
        .pid_runs
        .iter()
        .filter(|&&(s, e)| s >= at && e <= at + c.len())
        .map(|&(s, e)| (s - at, e - at))
        .collect();
    let stemp = if random { mkstemp_span(c) } else { None };
    let mut out = Name {
        pieces: Vec::new(),
        rules: Vec::new(),
    };
    let glob = |out: &mut Name, lit: &mut Vec<u8>, g, rule| {
        if !lit.is_empty() {
            out.pieces.push(Piece::Lit(std::mem::take(lit)));
        }
        out.pieces.push(Piece::Glob(g));
        if !out.rules.contains(&rule) {
            out.rules.push(rule);
        }
    };
    let mut lit = Vec::new();
    let mut i = 0;
    while i < c.len() {
        match stemp {
            Some((s, e)) if s == i => {
                glob(&mut out, &mut lit, MKSTEMP_GLOB, "mkstemp");
                i = e;
            }
            _ if c[i].is_ascii_digit() => {
                let start = i;
                let stop = stemp.map_or(c.len(), |(s, _)| if s > i { s } else { c.len() });
                while i < stop && c[i].is_ascii_digit() {
                    i += 1;
                }
                let apart = (start == 0 || !c[start - 1].is_ascii_alphanumeric())
                    && c.get(i).is_none_or(|b| !b.is_ascii_alphanumeric());
                if pid.contains(&(start, i)) {
                    glob(&mut out, &mut lit, NUM_GLOB, "pid-in-name");
                } else if apart || every_run {
                    glob(&mut out, &mut lit, NUM_GLOB, "number-in-name");
                } else {
                    lit.extend_from_slice(&c[start..i]);
                }
            }
            _ => {
                lit.push(c[i]);
                i += 1;
            }
        }
    }
    if !lit.is_empty() {
        out.pieces.push(Piece::Lit(lit));
    }
    (!out.rules.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FileAccess, FsPath, PidInName};

    #[test]
    fn op_sets_hold_every_op() {
        let mut set = OpSet::default();
        for op in OpSet::ALL {
            assert!(!set.contains(op), "{op:?}");
            set.insert(op);
            assert!(set.contains(op), "{op:?}");
        }
        assert_eq!(set.ops(), OpSet::ALL);
    }

    #[test]
    fn mkstemp_suffixes() {
        let cases: &[(&str, Option<(usize, usize)>)] = &[
            ("tmpAb3xZ9", Some((3, 9))),
            (".tmpQw7Rt2", Some((4, 10))),
            ("sedQw7Rt2.conf", Some((3, 9))),
            ("aB3dE9", Some((0, 6))),
            // Words and numbers are not random.
            ("PostgreSQL", None),
            ("config", None),
            ("file01", None),
            ("backup.tar", None),
            ("123456", None),
            ("Ab3x", None),
            ("Ab-3xZ9", None),
        ];
        for (c, want) in cases {
            assert_eq!(mkstemp_span(c.as_bytes()), *want, "{c}");
        }
    }

    #[test]
    fn which_names_may_vary() {
        use FileOp::*;
        let file = |p: &str, ops: &[FileOp]| FileAccess {
            path: FsPath::from(p),
            ops: ops.iter().copied().collect(),
            failed: false,
            owned: false,
        };
        let activity = Activity {
            files: vec![
                file("/var/lib/app/new/", &[Mkdir]),
                file("/var/lib/app/new/a/b", &[Read]),
                file("/var/lib/app/t.1", &[Create, Rename]),
                file("/var/lib/app/conf.1", &[Read]),
                file("/tmp/new/", &[Mkdir]),
                file("/tmp/new/x", &[Read]),
                file("/etc/app/new/", &[Mkdir]),
                file("/etc/app/new/x", &[Write]),
                file("/dev/shm/seg.1", &[Read]),
                file("/dev/pts/1", &[Write]),
                FileAccess {
                    failed: true,
                    ..file("/var/lib/app/f.1", &[Create])
                },
            ],
            pid_in_names: [
                PidInName {
                    path: FsPath::from("/var/lib/app/t.1"),
                    start: 15,
                    end: 16,
                },
                // Not digits of its path: ignored.
                PidInName {
                    path: FsPath::from("/var/lib/app/t.1"),
                    start: 1,
                    end: 3,
                },
            ]
            .into(),
            ..Default::default()
        };
        let made = Made::new(&activity);
        // (path, (component, why) that may vary, temporary, pid runs)
        type Case<'a> = (&'a str, &'a [(usize, Why)], bool, &'a [(usize, usize)]);
        let cases: &[Case] = &[
            ("/var/lib/app/new/", &[(4, Why::Wrote)], false, &[]),
            (
                "/var/lib/app/new/a/b",
                &[(4, Why::Wrote), (5, Why::CreatedDir), (6, Why::CreatedDir)],
                false,
                &[],
            ),
            ("/var/lib/app/t.1", &[(4, Why::Wrote)], true, &[(15, 16)]),
            ("/tmp/new/x", &[(3, Why::CreatedDir)], false, &[]),
            ("/dev/shm/seg.1", &[(3, Why::Shm)], false, &[]),
        ];
        for (path, variable, temporary, pid_runs) in cases {
            let want = PathFacts {
                variable: variable.iter().copied().collect(),
                temporary: *temporary,
                pid_runs: pid_runs.to_vec(),
            };
            assert_eq!(made.facts(path.as_bytes()), Some(want), "{path}");
        }
        for path in [
            "/var/lib/app/conf.1",
            "/var/lib/app/f.1",
            "/tmp/new/",
            "/etc/app/new/x",
            "/dev/pts/1",
            "/var/lib/app/unknown",
        ] {
            assert_eq!(made.facts(path.as_bytes()), None, "{path}");
        }
    }
}

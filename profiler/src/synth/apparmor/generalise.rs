//! The only ways a recorded path becomes broader than itself (besides the directory collapse and
//! `read-back`'s added `r`). Each rule has a name (shown in the profile as a comment) and
//! before/after examples in `docs/apparmor.md`.
//!
//! * `proc-pid`: `/proc/<pid>/`, `/proc/self/`, `/proc/thread-self/` → `/proc/@{pid}/`, and
//!   `/proc/@{pid}/task/<tid>/` → `/proc/@{pid}/task/@{tid}/`. A restarted workload has other
//!   pids; `@{pid}` (tunables/kernelvars) matches only pid-shaped numbers.
//! * `uuid`: a path component, or its stem before the first `.`, that is a UUID
//!   (8-4-4-4-12 hex digits) → `[0-9a-fA-F]*-[0-9a-fA-F]*-[0-9a-fA-F]*-[0-9a-fA-F]*-[0-9a-fA-F]*`.
//! * `hex-id`: a component or stem of 16 or more hex digits, with at least one decimal digit
//!   and one letter (container ids, hashes) → `[0-9a-fA-F]*`.
//! * `numeric-id`: a component or stem of 4 or more decimal digits (short numbers such as
//!   `404.html` or `/dev/pts/0` are names, not ids) → `[0-9]*`.
//!
//!
//! With the facts of what the workload made ([`made`]), the names a next run makes
//! differently, in names that may vary (written by the workload, below a directory it created,
//! or in `/dev/shm`; never under `/etc`, `/usr` and the like, never in the first two levels,
//! never over a failed path):
//!
//! * `pid-in-name`: a digit run that was the accessing task's pid or tid in its pid namespace
//!   → `[0-9]*`, or `@{pid}` when it is the whole name.
//! * `number-in-name`: a digit run standing apart (counters, dates, random numbers), or any
//!   digit run below a created directory → `[0-9]*`.
//! * `mkstemp`: six random letters and digits in a temporary file or a shared-memory segment
//!   → `??????`.
//! * `created-dir`, `shm-segment`, `temp-file`: name the condition that let a name vary;
//!   `temp-file` says that the rule allows the temporary names a next run makes.
//!
//! The id rules come first (a UUID stays one glob); the pid comes before them when it is the
//! whole name. AppArmor's `*` and `?` never cross `/`, so none of these reaches another
//! directory.

use super::{
    made::{self, PathFacts, Why},
    pattern::{Pattern, Piece, HEX_GLOB, NUM_GLOB, UUID_GLOB},
};

fn is_uuid(s: &[u8]) -> bool {
    let groups: Vec<&[u8]> = s.split(|&b| b == b'-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.iter().all(u8::is_ascii_hexdigit))
}

fn is_hex_id(s: &[u8]) -> bool {
    s.len() >= 16
        && s.iter().all(u8::is_ascii_hexdigit)
        && s.iter().any(u8::is_ascii_digit)
        && s.iter().any(u8::is_ascii_alphabetic)
}

fn is_numeric_id(s: &[u8]) -> bool {
    s.len() >= 4 && s.iter().all(u8::is_ascii_digit)
}

fn id_glob(s: &[u8]) -> Option<(&'static str, &'static str)> {
    if is_uuid(s) {
        Some((UUID_GLOB, "uuid"))
    } else if is_hex_id(s) {
        Some((HEX_GLOB, "hex-id"))
    } else if is_numeric_id(s) {
        Some((NUM_GLOB, "numeric-id"))
    } else {
        None
    }
}

fn is_pid_name(c: &[u8]) -> bool {
    c == b"self" || c == b"thread-self" || (!c.is_empty() && c.iter().all(u8::is_ascii_digit))
}

/// The pattern for a recorded absolute path and the names of the rules that applied. With
/// `facts` (what the workload made, [`made::Made::facts`]), the names a next run makes
/// differently are generalised too.
pub(crate) fn generalise(path: &[u8], facts: Option<&PathFacts>) -> (Pattern, Vec<&'static str>) {
    let mut rules = Vec::new();
    let add = |rules: &mut Vec<&'static str>, r: &'static str| {
        if !rules.contains(&r) {
            rules.push(r);
        }
    };
    let mut pat = Pattern(Vec::new());
    let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    // comps[0] is the empty string before the leading '/'.
    let in_proc = comps.get(1) == Some(&&b"proc"[..]);
    let proc_pid = in_proc && comps.len() > 2 && is_pid_name(comps[2]);
    let mut at = 0;
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            pat.push_lit(b"/");
            at += 1;
        }
        let start = at;
        at += c.len();
        if c.is_empty() {
            continue;
        }
        if proc_pid && i == 2 {
            pat.0.push(Piece::Glob("@{pid}"));
            add(&mut rules, "proc-pid");
            continue;
        }
        if proc_pid && i == 4 && comps[3] == b"task" && c.iter().all(u8::is_ascii_digit) {
            pat.0.push(Piece::Glob("@{tid}"));
            continue;
        }
        if in_proc && i == 2 {
            // Other /proc entries are kernel names, never ids.
            pat.push_lit(c);
            continue;
        }
        let variable = facts.and_then(|f| Some((f, *f.variable.get(&i)?)));
        // The pid first: `@{pid}` says more than `[0-9]*` for a name that is the pid.
        if let Some((f, why)) = variable {
            if f.pid_runs.contains(&(start, start + c.len())) {
                pat.0.push(Piece::Glob("@{pid}"));
                add(&mut rules, "pid-in-name");
                add_why(&mut rules, why);
                continue;
            }
        }
        if let Some((glob, rule)) = id_glob(c) {
            pat.0.push(Piece::Glob(glob));
            add(&mut rules, rule);
            continue;
        }
        if let Some(dot) = c.iter().position(|&b| b == b'.').filter(|&d| d > 0) {
            if let Some((glob, rule)) = id_glob(&c[..dot]) {
                pat.0.push(Piece::Glob(glob));
                pat.push_lit(&c[dot..]);
                add(&mut rules, rule);
                continue;
            }
        }
        if let Some((f, why)) = variable {
            if let Some(name) = made::name(c, start, f, why) {
                for piece in name.pieces {
                    match piece {
                        Piece::Lit(lit) => pat.push_lit(&lit),
                        glob => pat.0.push(glob),
                    }
                }
                for r in name.rules {
                    add(&mut rules, r);
                }
                add_why(&mut rules, why);
                if f.temporary && i + 1 == comps.len() {
                    add(&mut rules, TEMP_FILE);
                }
                continue;
            }
        }
        pat.push_lit(c);
    }
    pat.shrink_to_fit();
    (pat, rules)
}

/// The note on a rule for a temporary file whose name was generalised: what it allows beyond
/// what was recorded.
pub(crate) const TEMP_FILE: &str = "temp-file: also the temporary names a next run makes";

/// Names the condition that let a component vary, when it is not the plain "the workload
/// wrote this name".
fn add_why(rules: &mut Vec<&'static str>, why: Why) {
    let r = match why {
        Why::Wrote => return,
        Why::CreatedDir => "created-dir",
        Why::Shm => "shm-segment",
    };
    if !rules.contains(&r) {
        rules.push(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_after() {
        let cases: &[(&str, &str)] = &[
            ("/etc/nginx/nginx.conf", "/etc/nginx/nginx.conf"),
            ("/proc/1234/status", "/proc/@{pid}/status"),
            ("/proc/self/fd/", "/proc/@{pid}/fd/"),
            (
                "/proc/thread-self/attr/current",
                "/proc/@{pid}/attr/current",
            ),
            ("/proc/12/task/13/comm", "/proc/@{pid}/task/@{tid}/comm"),
            ("/proc/sys/kernel/hostname", "/proc/sys/kernel/hostname"),
            ("/proc/1234", "/proc/@{pid}"),
            (
                "/run/containers/0f8c7a52-3b9e-4d4e-9a53-2f1c3b0d9e11/state",
                &format!("/run/containers/{UUID_GLOB}/state"),
            ),
            (
                "/var/cache/app/0f8c7a523b9e4d4e9a532f1c3b0d9e11.json",
                "/var/cache/app/[0-9a-fA-F]*.json",
            ),
            (
                "/var/lib/nginx/body/0000000001",
                "/var/lib/nginx/body/[0-9]*",
            ),
            (
                "/usr/share/nginx/html/404.html",
                "/usr/share/nginx/html/404.html",
            ),
            ("/dev/pts/0", "/dev/pts/0"),
            ("/srv/site/deadbeefdeadbeef", "/srv/site/deadbeefdeadbeef"),
            ("/srv/site/", "/srv/site/"),
        ];
        for (before, after) in cases {
            assert_eq!(
                generalise(before.as_bytes(), None).0.render(),
                *after,
                "{before}"
            );
        }
    }
}

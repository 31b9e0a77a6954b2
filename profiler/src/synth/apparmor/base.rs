//! What `#include <abstractions/base>` already grants, so the profile does not repeat it.
//!
//! The table is Debian 12's `abstractions/base` (apparmor 3.0.8) with its variables expanded
//! (`@{etc_ro}` = `/etc/ /usr/etc/`, `@{run}` = `/run/ /var/run/`, `@{PROC}` = `/proc/`,
//! `@{sys}` = `/sys/`, `@{multiarch}` = `*-linux-gnu*`). Only file rules that base grants to
//! every process are listed (not its `owner` rules). A rule is dropped only when base grants
//! every letter it needs; keeping a redundant rule would be harmless, dropping a needed one
//! would not, so the table errs on the side of listing less.

use super::rules::Perms;

/// (pattern, letters granted)
pub(crate) const BASE: &[(&str, &str)] = &[
    ("/dev/log", "w"),
    ("/dev/random", "r"),
    ("/dev/urandom", "r"),
    ("{/run,/var/run}/uuidd/request", "r"),
    ("{/etc,/usr/etc}/locale/**", "r"),
    ("{/etc,/usr/etc}/locale.alias", "r"),
    ("{/etc,/usr/etc}/localtime", "r"),
    ("/etc/writable/localtime", "r"),
    ("/usr/share/locale-bundle/**", "r"),
    ("/usr/share/locale-langpack/**", "r"),
    ("/usr/share/locale/**", "r"),
    ("/usr/share/**/locale/**", "r"),
    ("/usr/share/zoneinfo/", "r"),
    ("/usr/share/zoneinfo/**", "r"),
    ("/usr/share/X11/locale/**", "r"),
    ("{/run,/var/run}/systemd/journal/dev-log", "w"),
    ("{/run,/var/run}/systemd/journal/socket", "w"),
    ("{/run,/var/run}/systemd/journal/stdout", "rw"),
    ("/usr/lib{,32,64}/locale/**", "mr"),
    ("/usr/lib{,32,64}/gconv/*.so", "mr"),
    ("/usr/lib{,32,64}/gconv/gconv-modules*", "mr"),
    ("/usr/lib/*-linux-gnu*/gconv/*.so", "mr"),
    ("/usr/lib/*-linux-gnu*/gconv/gconv-modules*", "mr"),
    ("{/etc,/usr/etc}/bindresvport.blacklist", "r"),
    ("{/etc,/usr/etc}/ld.so.cache", "mr"),
    ("{/etc,/usr/etc}/ld.so.conf", "r"),
    ("{/etc,/usr/etc}/ld.so.conf.d/{,*.conf}", "r"),
    ("{/etc,/usr/etc}/ld.so.preload", "r"),
    ("/{usr/,}lib{,32,64}/ld{,32,64}-*.so", "mr"),
    ("/{usr/,}lib/*-linux-gnu*/ld{,32,64}-*.so", "mr"),
    ("/{usr/,}lib{,32,64}/**", "r"),
    ("/{usr/,}lib{,32,64}/**.so*", "mr"),
    ("/{usr/,}lib/*-linux-gnu*/**", "r"),
    ("/{usr/,}lib/*-linux-gnu*/**.so*", "mr"),
    ("/dev/null", "rw"),
    ("/dev/zero", "rw"),
    ("/dev/full", "rw"),
    ("/proc/sys/kernel/version", "r"),
    ("/proc/sys/kernel/ngroups_max", "r"),
    ("/proc/meminfo", "r"),
    ("/proc/stat", "r"),
    ("/proc/cpuinfo", "r"),
    ("/sys/devices/system/cpu/", "r"),
    ("/sys/devices/system/cpu/online", "r"),
    ("/sys/devices/system/cpu/possible", "r"),
    ("/proc/@{pid}/{maps,auxv,status}", "r"),
    ("/proc/sys/crypto/*", "r"),
    ("/usr/share/common-licenses/**", "r"),
    ("/proc/filesystems", "r"),
    ("/proc/sys/vm/overcommit_memory", "r"),
    ("/proc/sys/kernel/cap_last_cap", "r"),
];

/// Whether base grants `perms` on the literal `path`.
pub(crate) fn covers(path: &[u8], perms: &Perms) -> bool {
    // base grants no exec, link or lock permission on any file.
    if perms.exec || perms.link || perms.lock {
        return false;
    }
    let mut granted = Perms::default();
    for (pattern, lit, letters) in Expanded::get().for_path(path) {
        if path.starts_with(&pattern[..*lit]) && glob_match(pattern, path) {
            granted.read |= letters.contains('r');
            granted.write |= letters.contains('w');
            granted.mmap |= letters.contains('m');
        }
    }
    (!perms.read || granted.read)
        && (!(perms.write || perms.append) || granted.write)
        && (!perms.mmap || granted.mmap)
}

/// A brace-free pattern of base, the length of its literal part before its first glob, and
/// the letters it grants.
type Entry = (Vec<u8>, usize, &'static str);

/// Base's patterns without braces, by the top directory their literal part names: that part
/// decides most patterns without matching, and a path under a directory base says nothing of
/// (`/srv`, `/var/lib`) is decided without looking at any (a million paths times base's
/// patterns, with a copy of the pattern per brace alternative, was most of a synthesis).
struct Expanded {
    by_top: std::collections::BTreeMap<Vec<u8>, Vec<Entry>>,
    /// Patterns whose literal part does not name a whole top directory.
    any: Vec<Entry>,
}

impl Expanded {
    fn get() -> &'static Expanded {
        static EXPANDED: std::sync::OnceLock<Expanded> = std::sync::OnceLock::new();
        EXPANDED.get_or_init(|| {
            let mut out = Expanded {
                by_top: Default::default(),
                any: Vec::new(),
            };
            for (pattern, letters) in BASE {
                for p in expand_braces(pattern.as_bytes()) {
                    let lit = p.iter().position(|b| b"*@".contains(b)).unwrap_or(p.len());
                    match top(&p[..lit]) {
                        Some(t) => out.by_top.entry(t.to_vec()).or_default(),
                        None => &mut out.any,
                    }
                    .push((p, lit, *letters));
                }
            }
            out
        })
    }

    fn for_path(&self, path: &[u8]) -> impl Iterator<Item = &Entry> {
        let by_top = top(path).and_then(|t| self.by_top.get(t));
        by_top.into_iter().flatten().chain(&self.any)
    }
}

/// `dev` of `/dev/null`: the first component, when a `/` follows it.
fn top(path: &[u8]) -> Option<&[u8]> {
    let rest = path.strip_prefix(b"/")?;
    let end = rest.iter().position(|&b| b == b'/')?;
    Some(&rest[..end])
}

/// AppArmor globbing over bytes: `*` (no `/`), `**` (anything), `{a,b}`, and `@{pid}`
/// (one or more digits, enough for matching recorded paths that were generalised already).
pub(crate) fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    if let Some(rest) = pattern
        .strip_prefix(b"@{pid}")
        .or_else(|| pattern.strip_prefix(b"@{tid}"))
    {
        let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
        return (1..=digits).any(|n| glob_match(rest, &text[n..]))
            || (text.starts_with(b"@{pid}") || text.starts_with(b"@{tid}"))
                && glob_match(rest, &text[6..]);
    }
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') if pattern.get(1) == Some(&b'*') => {
            let rest = &pattern[2..];
            (0..=text.len()).any(|n| glob_match(rest, &text[n..]))
        }
        Some(b'*') => {
            let rest = &pattern[1..];
            let max = text.iter().position(|&b| b == b'/').unwrap_or(text.len());
            (0..=max).any(|n| glob_match(rest, &text[n..]))
        }
        Some(b'{') => {
            let Some(close) = matching_brace(pattern) else {
                return false;
            };
            let rest = &pattern[close + 1..];
            split_alternatives(&pattern[1..close])
                .into_iter()
                .any(|alt| {
                    let mut p = alt.to_vec();
                    p.extend_from_slice(rest);
                    glob_match(&p, text)
                })
        }
        Some(&c) => text.first() == Some(&c) && glob_match(&pattern[1..], &text[1..]),
    }
}

fn matching_brace(p: &[u8]) -> Option<usize> {
    let mut depth = 0;
    for (i, &b) in p.iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Every pattern `{a,b}` alternatives spell, outermost first.
fn expand_braces(pattern: &[u8]) -> Vec<Vec<u8>> {
    // `@{pid}` is a variable, not alternatives.
    let open =
        (0..pattern.len()).find(|&i| pattern[i] == b'{' && (i == 0 || pattern[i - 1] != b'@'));
    let Some(open) = open else {
        return vec![pattern.to_vec()];
    };
    let Some(close) = matching_brace(&pattern[open..]).map(|c| open + c) else {
        return vec![pattern.to_vec()];
    };
    let (head, rest) = (&pattern[..open], &pattern[close + 1..]);
    split_alternatives(&pattern[open + 1..close])
        .into_iter()
        .flat_map(|alt| {
            let mut p = head.to_vec();
            p.extend_from_slice(alt);
            p.extend_from_slice(rest);
            expand_braces(&p)
        })
        .collect()
}

fn split_alternatives(inner: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, &b) in inner.iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b',' if depth == 0 => {
                out.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&inner[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand() {
        let cases: &[(&str, &[&str])] = &[
            ("/dev/null", &["/dev/null"]),
            (
                "{/etc,/usr/etc}/ld.so.cache",
                &["/etc/ld.so.cache", "/usr/etc/ld.so.cache"],
            ),
            (
                "/{usr/,}lib{,32}/x",
                &["/usr/lib/x", "/usr/lib32/x", "/lib/x", "/lib32/x"],
            ),
            ("/a/{b,{c,d}}", &["/a/b", "/a/c", "/a/d"]),
            (
                "/proc/@{pid}/{maps,status}",
                &["/proc/@{pid}/maps", "/proc/@{pid}/status"],
            ),
        ];
        for (pattern, want) in cases {
            let got: Vec<String> = expand_braces(pattern.as_bytes())
                .into_iter()
                .map(|p| String::from_utf8(p).unwrap())
                .collect();
            assert_eq!(got, *want, "{pattern}");
        }
    }

    fn perms(letters: &str) -> Perms {
        Perms::from_letters(letters)
    }

    #[test]
    fn what_base_covers() {
        let cases: &[(&str, &str, bool)] = &[
            ("/etc/ld.so.cache", "mr", true),
            ("/usr/lib/x86_64-linux-gnu/libc.so.6", "mr", true),
            ("/lib/x86_64-linux-gnu/libssl.so.3", "mr", true),
            ("/lib64/ld-linux-x86-64.so.2", "r", true),
            ("/dev/null", "rw", true),
            ("/dev/null", "rwk", false),
            ("/proc/@{pid}/status", "r", true),
            ("/proc/123/maps", "r", true),
            ("/proc/self/maps", "r", false),
            ("/etc/localtime", "r", true),
            ("/usr/share/zoneinfo/Europe/Paris", "r", true),
            ("/usr/lib/x86_64-linux-gnu/libc.so.6", "w", false),
            ("/etc/passwd", "r", false),
            ("/etc/nginx/nginx.conf", "r", false),
            ("/usr/sbin/nginx", "r", false),
            ("/sys/devices/system/cpu/online", "r", true),
        ];
        for (path, letters, want) in cases {
            assert_eq!(
                covers(path.as_bytes(), &perms(letters)),
                *want,
                "{path} {letters}"
            );
        }
    }

    #[test]
    fn table_matches_the_installed_base() {
        // Each table line comes from Debian's file; if the file is here, check the literal
        // parts still appear in it, so an upgrade that drops a rule is noticed.
        let Ok(text) = std::fs::read_to_string("/etc/apparmor.d/abstractions/base") else {
            println!("skipped: /etc/apparmor.d/abstractions/base is absent");
            return;
        };
        for needle in [
            "/dev/null                      rw,",
            "/{usr/,}lib{,32,64}/**.so*       mr,",
            "@{PROC}/@{pid}/{maps,auxv,status} r,",
            "@{etc_ro}/ld.so.cache               mr,",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
    }
}

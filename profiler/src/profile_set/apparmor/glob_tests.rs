use super::*;

fn g(s: &str) -> Glob {
    Glob::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn matching_table() {
    let cases: &[(&str, &str, bool)] = &[
        // `*` stays within one component.
        ("/etc/*", "/etc/passwd", true),
        ("/etc/*", "/etc/nginx/nginx.conf", false),
        ("/etc/*.conf", "/etc/a.conf", true),
        ("/etc/*.conf", "/etc/x/a.conf", false),
        ("/etc/*.conf", "/etc/.conf", true),
        // A whole-component star needs one byte: not the directory itself.
        ("/etc/*", "/etc/", false),
        ("/etc/*/", "/etc/nginx/", true),
        ("/etc/*/", "/etc//", false),
        // `**` crosses `/`.
        ("/srv/**", "/srv/site/assets/app.js", true),
        ("/srv/**", "/srv/a", true),
        ("/srv/**", "/srv/", false),
        ("/srv/**", "/srv", false),
        (
            "/usr/lib/**.so*",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            true,
        ),
        ("/usr/lib/**.so*", "/usr/lib/x/README", false),
        // `?` and classes.
        ("/dev/tty?", "/dev/tty1", true),
        ("/dev/tty?", "/dev/tty", false),
        ("/a?b", "/a/b", false),
        (
            "/var/lib/nginx/body/[0-9]*",
            "/var/lib/nginx/body/0000000001",
            true,
        ),
        (
            "/var/lib/nginx/body/[0-9]*",
            "/var/lib/nginx/body/x1",
            false,
        ),
        (
            "/var/lib/nginx/body/[0-9]*",
            "/var/lib/nginx/body/1/x",
            false,
        ),
        ("/x/[^a-c]", "/x/d", true),
        ("/x/[^a-c]", "/x/b", false),
        ("/x/[a-cx]", "/x/x", true),
        // Alternation, nested and with an empty alternative.
        ("/{usr/,}lib{,32,64}/libc.so", "/lib64/libc.so", true),
        ("/{usr/,}lib{,32,64}/libc.so", "/usr/lib/libc.so", true),
        ("/{usr/,}lib{,32,64}/libc.so", "/usr/lib16/libc.so", false),
        ("/etc/{a,b{c,d}}", "/etc/bd", true),
        ("/etc/{a,b{c,d}}", "/etc/b", false),
        // Process ids.
        ("/proc/@{pid}/fd/1", "/proc/1234/fd/1", true),
        ("/proc/@{pid}/fd/1", "/proc/self/fd/1", false),
        ("/proc/@{pid}/fd/1", "/proc/0123/fd/1", false),
        (
            "/proc/@{pid}/task/@{tid}/comm",
            "/proc/1/task/22/comm",
            true,
        ),
        ("@{PROC}/@{pid}/status", "/proc/7/status", true),
        // Escapes are literal bytes, glob characters included.
        ("/srv/my\\x20site/a", "/srv/my site/a", true),
        ("/x/\\x2a", "/x/*", true),
        ("/x/\\x2a", "/x/a", false),
        ("/x/\\*", "/x/*", true),
        // A variable this matcher does not know grants nothing.
        ("@{HOME}/.bashrc", "/root/.bashrc", false),
    ];
    for (glob, path, want) in cases {
        assert_eq!(g(glob).matches(path.as_bytes()), *want, "{glob} ~ {path}");
    }
}

#[test]
fn coverage_table() {
    // (old, new, old covers new)
    let cases: &[(&str, &str, bool)] = &[
        ("/etc/passwd", "/etc/passwd", true),
        ("/etc/*", "/etc/passwd", true),
        ("/etc/passwd", "/etc/*", false),
        ("/etc/*", "/etc/**", false),
        ("/etc/**", "/etc/*", true),
        ("/etc/**", "/etc/nginx/*.conf", true),
        ("/etc/*", "/etc/nginx/*.conf", false),
        ("/var/lib/*", "/var/lib/[0-9]*", true),
        ("/var/lib/[0-9]*", "/var/lib/*", false),
        ("/var/lib/[0-9]*", "/var/lib/[0-5]*", true),
        ("/var/lib/[0-5]*", "/var/lib/[0-9]*", false),
        ("/proc/*/fd/1", "/proc/@{pid}/fd/1", true),
        ("/proc/@{pid}/fd/1", "/proc/*/fd/1", false),
        ("/proc/@{pid}/fd/*", "/proc/@{pid}/fd/1", true),
        // `/dir/*` does not match `dir/` itself, so it cannot cover a glob that can.
        ("/etc/*", "/etc/{,a}", false),
        ("/etc/{,*}", "/etc/{,a}", true),
        ("/etc/{a,b,c}", "/etc/{a,c}", true),
        ("/etc/{a,b}", "/etc/{a,c}", false),
        ("/usr/{bin,sbin}/*", "/usr/sbin/nginx", true),
        ("/**", "/usr/{bin,sbin}/*", true),
        ("@{HOME}/x", "@{HOME}/x", false),
    ];
    for (old, new, want) in cases {
        assert_eq!(g(old).covers(&g(new)), *want, "{old} ⊇ {new}");
    }
}

#[test]
fn bad_globs_are_errors() {
    for bad in [
        "/etc/{a,b",
        "/etc/a}",
        "/x/[abc",
        "/x/\\xZZ",
        "/x/[z-a]",
        "/x/@{pid",
    ] {
        assert!(Glob::parse(bad).is_err(), "{bad}");
    }
}

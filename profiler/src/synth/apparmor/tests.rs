//! Whole-profile tables, bad input, and the real parser over every profile built here.

use std::collections::BTreeSet;

use super::*;
use crate::{
    model::activity::{FileAccess, FileOp, FsPath, SocketKind},
    verify::apparmor::parser::{self, ParserError},
};

fn file(path: &[u8], ops: &[FileOp]) -> FileAccess {
    FileAccess {
        path: FsPath(path.to_vec()),
        ops: ops.iter().copied().collect(),
        failed: false,
        owned: false,
    }
}

fn synth(a: &Activity) -> Profile {
    let p = apparmor("test-profile", a, &AppArmorOptions::default()).unwrap();
    parse_ok(&p.text);
    p
}

/// Every profile in these tests goes through the real parser. Skips with a reason when the
/// parser is absent, unless CI=true.
fn parse_ok(text: &str) {
    match parser::check(text) {
        Ok(()) => {}
        Err(ParserError::Absent(why)) if std::env::var("CI").as_deref() != Ok("true") => {
            println!("skipped parser validation: {why}");
        }
        Err(e) => panic!("{e}\n--- profile ---\n{text}"),
    }
}

fn rule_lines(p: &Profile) -> Vec<String> {
    p.text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.ends_with(',') || l.contains(",  #"))
        .filter(|l| !l.starts_with("abi") && !l.starts_with("#include"))
        .map(|l| l.split("  #").next().unwrap().to_string())
        .collect()
}

use FileOp::*;

#[test]
fn header_and_shape() {
    let p = synth(&Activity::default());
    assert!(p.text.contains("abi <abi/3.0>,"));
    assert!(p.text.contains("#include <tunables/global>"));
    assert!(p
        .text
        .contains("profile test-profile flags=(attach_disconnected,mediate_deleted) {"));
    assert!(p.text.contains("#include <abstractions/base>"));
    assert!(p.text.trim_end().ends_with('}'));
}

#[test]
fn file_rules_table() {
    // (path, ops, owned, expected rule; None: covered by abstractions/base). What the
    // workload wrote it may read back (`read-back`).
    type Case<'a> = (&'a [u8], &'a [FileOp], bool, Option<&'a str>);
    let cases: &[Case] = &[
        (
            b"/etc/nginx/nginx.conf",
            &[Read],
            false,
            Some("/etc/nginx/nginx.conf r,"),
        ),
        (
            b"/usr/sbin/nginx",
            &[Exec, Read, MmapExec],
            false,
            Some("/usr/sbin/nginx rmix,"),
        ),
        (
            b"/run/nginx.pid",
            &[Create, Write, Truncate],
            false,
            Some("/run/nginx.pid rw,"),
        ),
        (
            b"/var/log/nginx/access.log",
            &[Append, Create],
            false,
            Some("/var/log/nginx/access.log rw,"),
        ),
        (
            b"/var/log/nginx/error.log",
            &[Append],
            false,
            Some("/var/log/nginx/error.log ra,"),
        ),
        (
            b"/var/lib/nginx/body/",
            &[Mkdir],
            false,
            Some("/var/lib/nginx/body/ rw,"),
        ),
        (
            b"/run/app.lock",
            &[Lock, Read],
            true,
            Some("owner /run/app.lock rk,"),
        ),
        (b"/data/new", &[Link], false, Some("/data/new l,")),
        (b"/proc/1234/status", &[Read], false, None), // base: @{PROC}/@{pid}/status r
        (
            b"/proc/self/fd/",
            &[Read],
            false,
            Some("/proc/@{pid}/fd/ r,"),
        ),
        (
            b"/lib/x86_64-linux-gnu/libc.so.6",
            &[Read, MmapExec],
            false,
            None,
        ),
        (b"/etc/ld.so.cache", &[Read], false, None),
        (b"/dev/null", &[Read, Write], false, None),
        (
            b"/srv/my site/index.html",
            &[Read],
            false,
            Some("\"/srv/my\\x20site/index.html\" r,"),
        ),
    ];
    for (path, ops, owned, want) in cases {
        let mut f = file(path, ops);
        f.owned = *owned;
        let p = synth(&Activity {
            files: vec![f],
            ..Default::default()
        });
        let lines = rule_lines(&p);
        match want {
            Some(w) => assert_eq!(
                lines,
                vec![w.to_string()],
                "{}",
                String::from_utf8_lossy(path)
            ),
            None => {
                assert!(lines.is_empty(), "{lines:?}");
                assert_eq!(p.summary.covered_by_base, 1);
            }
        }
    }
}

#[test]
fn owner_only_when_every_access_was_owned() {
    let mut a = file(b"/run/x", &[Read]);
    a.owned = true;
    let b = file(b"/run/x", &[Write]);
    let p = synth(&Activity {
        files: vec![a, b],
        ..Default::default()
    });
    assert_eq!(rule_lines(&p), vec!["/run/x rw,"]);
}

#[test]
fn failed_accesses_are_comments_not_rules() {
    let mut f = file(b"/etc/shadow", &[Read]);
    f.failed = true;
    let p = synth(&Activity {
        files: vec![f, file(b"/etc/passwd", &[Read])],
        ..Default::default()
    });
    assert_eq!(rule_lines(&p), vec!["/etc/passwd r,"]);
    assert!(p.text.contains("#   /etc/shadow"));
    assert_eq!(p.summary.failed_left_out, 1);
}

#[test]
fn capabilities_and_network() {
    let p = synth(&Activity {
        capabilities: Some(BTreeSet::from([
            "setuid".to_string(),
            "CAP_SETGID".into(),
            "net_bind_service".into(),
            "made_up".into(),
        ])),
        sockets: BTreeSet::from([
            SocketKind {
                family: "inet".into(),
                kind: "stream".into(),
            },
            SocketKind {
                family: "inet6".into(),
                kind: "dgram".into(),
            },
            SocketKind {
                family: "af_99".into(),
                kind: "stream".into(),
            },
        ]),
        ..Default::default()
    });
    let lines = rule_lines(&p);
    for want in [
        "capability net_bind_service,",
        "capability setgid,",
        "capability setuid,",
        "network inet stream,",
        "network inet6 dgram,",
    ] {
        assert!(lines.contains(&want.to_string()), "{want} in {lines:?}");
    }
    assert_eq!(p.summary.capability_rules, 3);
    assert_eq!(p.summary.network_rules, 2);
    assert_eq!(p.not_expressible.len(), 2, "{:?}", p.not_expressible);
    assert!(!p.text.contains("network,"));
    assert!(!lines
        .iter()
        .any(|l| l == "network inet," || l.starts_with("capability made")));
}

#[test]
fn capabilities_not_recorded_is_said() {
    let p = synth(&Activity::default());
    assert_eq!(p.warnings.len(), 1);
    assert!(p.text.contains("capabilities were not recorded"));
}

#[test]
fn collapse_rules() {
    // 12 read-only files in one directory: dir/*.
    let files: Vec<FileAccess> = (0..12)
        .map(|i| file(format!("/usr/share/nginx/f{i}").as_bytes(), &[Read]))
        .collect();
    let p = synth(&Activity {
        files,
        ..Default::default()
    });
    assert_eq!(rule_lines(&p), vec!["/usr/share/nginx/* r,"]);

    // Spread over two directories: dir/**.
    let mut files: Vec<FileAccess> = (0..6)
        .map(|i| file(format!("/srv/site/f{i}").as_bytes(), &[Read]))
        .collect();
    files.extend((0..6).map(|i| file(format!("/srv/site/assets/a{i}").as_bytes(), &[Read])));
    let p = synth(&Activity {
        files: files.clone(),
        ..Default::default()
    });
    assert_eq!(rule_lines(&p), vec!["/srv/site/** r,"]);

    // Below the threshold: every file stays.
    let p = apparmor(
        "t",
        &Activity {
            files: files.clone(),
            ..Default::default()
        },
        &AppArmorOptions {
            collapse_threshold: 13,
        },
    )
    .unwrap();
    assert_eq!(rule_lines(&p).len(), 12);

    // One write below: no collapse over it.
    let mut with_write = files.clone();
    with_write.push(file(b"/srv/site/assets/upload", &[Write]));
    let p = synth(&Activity {
        files: with_write,
        ..Default::default()
    });
    assert!(
        rule_lines(&p).iter().all(|l| !l.contains('*')),
        "{:?}",
        rule_lines(&p)
    );

    // A failed access below: no collapse (it would allow what failed).
    let mut with_failed = files;
    let mut f = file(b"/srv/site/secret", &[Read]);
    f.failed = true;
    with_failed.push(f);
    let p = synth(&Activity {
        files: with_failed,
        ..Default::default()
    });
    assert!(rule_lines(&p).iter().all(|l| !l.contains('*')));

    // Never at depth 1: /etc/* would allow /etc/shadow.
    let files: Vec<FileAccess> = (0..20)
        .map(|i| file(format!("/etc/f{i}").as_bytes(), &[Read]))
        .collect();
    let p = synth(&Activity {
        files,
        ..Default::default()
    });
    assert_eq!(rule_lines(&p).len(), 20);
}

/// Names without digits, so the name rules leave them literal and only the collapse acts.
fn names(dir: &str, n: u8) -> Vec<String> {
    (0..n)
        .map(|i| format!("{dir}/upload-{}", (b'a' + i) as char))
        .collect()
}

#[test]
fn created_files_collapse_into_their_directory() {
    let made = |paths: Vec<String>, ops: &[FileOp]| {
        let files = paths.iter().map(|p| file(p.as_bytes(), ops)).collect();
        synth(&Activity {
            files,
            ..Default::default()
        })
    };
    // 12 files the workload created and wrote: one rule, read back too.
    let p = made(names("/var/lib/app/uploads", 12), &[Create, Write]);
    assert_eq!(rule_lines(&p), vec!["/var/lib/app/uploads/* rw,"]);
    assert!(
        p.text.contains("collapse dir/* (created): 12 files"),
        "{}",
        p.text
    );

    // Written but not created (files that were there): every rule stays.
    let p = made(names("/var/lib/app/uploads", 12), &[Write]);
    assert_eq!(rule_lines(&p).len(), 12, "{:?}", rule_lines(&p));

    // Created under a system directory: never a glob there.
    let p = made(names("/usr/share/app", 12), &[Create, Write]);
    assert!(rule_lines(&p).iter().all(|l| !l.contains('*')));

    // Below the threshold: literal.
    let p = made(names("/var/lib/app/uploads", 9), &[Create, Write]);
    assert_eq!(rule_lines(&p).len(), 9);

    // One of them executed: no collapse over an exec rule.
    let mut files: Vec<FileAccess> = names("/var/lib/app/uploads", 12)
        .iter()
        .map(|p| file(p.as_bytes(), &[Create, Write]))
        .collect();
    files[0].ops.insert(Exec);
    let p = synth(&Activity {
        files,
        ..Default::default()
    });
    assert!(rule_lines(&p).iter().all(|l| !l.contains('*')));
}

#[test]
fn never_catch_alls() {
    let files: Vec<FileAccess> = (0..50)
        .map(|i| file(format!("/d{}/x/f{i}", i % 5).as_bytes(), &[Read]))
        .collect();
    let p = synth(&Activity {
        files,
        ..Default::default()
    });
    for bad in ["/** r", "/** rw", "  file,", "  network,", "/* r"] {
        assert!(
            !p.text.contains(&format!("\n{bad}")) && !p.text.contains(&format!(" {bad}")),
            "{bad}"
        );
    }
}

#[test]
fn hostile_paths_are_escaped_and_parse() {
    let paths: &[&[u8]] = &[
        b"/srv/a b",
        b"/srv/q\"uote",
        b"/srv/new\nline, /** rw,",
        b"/srv/caf\xe9",
        b"/srv/\xff\xfe",
        b"/srv/glob*?[x]{a,b}^",
        b"/srv/@{HOME}",
        b"/srv/back\\slash",
        b"/srv/#hash",
        b"/srv/tab\there",
    ];
    let files: Vec<FileAccess> = paths.iter().map(|p| file(p, &[Read])).collect();
    let p = synth(&Activity {
        files,
        ..Default::default()
    });
    assert_eq!(p.summary.file_rules, paths.len());
    assert!(p.text.is_ascii());
    assert!(
        !p.text.contains("/** rw"),
        "a newline must not inject a rule"
    );
    assert!(p
        .text
        .contains("\"/srv/new\\x0aline\\x2c\\x20/\\x2a\\x2a\\x20rw\\x2c\" r,"));
}

#[test]
fn unexpressible_paths_are_reported() {
    let p = synth(&Activity {
        files: vec![file(b"relative/x", &[Read]), file(b"", &[Read])],
        ..Default::default()
    });
    assert_eq!(p.not_expressible.len(), 2);
    assert_eq!(p.summary.file_rules, 0);
    assert!(p.text.contains("not expressible"));
}

#[test]
fn profile_names() {
    for ok in ["demo-nginx", "a", "nginx_1.22", "K8s-app"] {
        validate_name(ok).unwrap();
    }
    for bad in [
        "",
        "-x",
        "a b",
        "a/b",
        "ns:x",
        "a//b",
        "x\"",
        "x{",
        "é",
        &"a".repeat(201),
    ] {
        let e = apparmor(bad, &Activity::default(), &AppArmorOptions::default()).unwrap_err();
        assert!(
            e.to_string().contains("invalid AppArmor profile name"),
            "{bad}"
        );
    }
}

#[test]
fn summary_rows() {
    let p = synth(&Activity {
        files: vec![file(b"/usr/sbin/nginx", &[Exec]), file(b"/run/x", &[Write])],
        ..Default::default()
    });
    let rows = p.summary.rows();
    assert_eq!(rows[0], ("file rules", 2));
    assert_eq!(rows[1], ("  of which exec (ix)", 1));
    assert_eq!(rows[2], ("  of which write", 1));
}

/// From `group::FROM_RULES` file rules on, a directory's files with the same letters become
/// one rule: the parser accepts it, it allows each recorded file with its letters, and no
/// letter more (a read-only file of a group is not writable through it).
#[test]
fn a_large_profile_groups_a_directorys_files_and_allows_the_same() {
    let names = ["a.json", "b.log", "c.bin", "d.html"];
    let mut files = Vec::new();
    for d in 0..300 {
        for (i, name) in names.iter().enumerate() {
            let path = format!("/srv/app/d{d}/{name}");
            let ops: &[FileOp] = if i < 2 {
                &[FileOp::Read]
            } else {
                &[FileOp::Write]
            };
            files.push(file(path.as_bytes(), ops));
        }
    }
    let p = synth(&Activity {
        files,
        ..Activity::default()
    });
    assert_eq!(p.summary.file_rules, 1200);
    let lines = rule_lines(&p);
    assert!(
        lines.contains(&"/srv/app/d7/{a.json,b.log} r,".to_string()),
        "{:?}",
        &lines[..lines.len().min(4)]
    );
    // The written files, alike in their read-back note too.
    assert!(lines.contains(&"/srv/app/d7/{c.bin,d.html} rw,".to_string()));
    assert_eq!(lines.len(), 300 * 2);
    for d in [0, 150, 299] {
        for (i, name) in names.iter().enumerate() {
            let path = format!("/srv/app/d{d}/{name}");
            assert!(testglob::allows(&p.text, &path, 'r'), "{path}");
            assert_eq!(testglob::allows(&p.text, &path, 'w'), i >= 2, "{path}");
        }
    }
    assert!(!testglob::allows(&p.text, "/srv/app/d7/e.txt", 'r'));
}

use super::*;
use crate::model::FileOp;

const PROFILE: &str = r#"# AppArmor profile web, synthesized by profgen from a recording.
abi <abi/3.0>,

#include <tunables/global>

profile web flags=(attach_disconnected,mediate_deleted) {
  #include <abstractions/base>

  # capabilities used
  capability chown,
  capability net_bind_service,

  network inet stream,
  network unix,

  owner /etc/group r,
  /proc/@{pid}/fd/1 w,  # proc-pid
  owner /run/app.pid rw,
  "/srv/my\x20site/index.html" r,
  /srv/site/** r,  # collapse dir/**: 12 read-only files
  /usr/sbin/app ix,
  /var/lib/app/body/[0-9]* rw,
  deny /srv/site/secret r,
  signal (receive) peer=unconfined,

  # failed while recording, not allowed:
  #   /etc/ld.so.cache
}
"#;

#[test]
fn reads_what_profgen_writes() {
    let p = parse(PROFILE).unwrap();
    assert_eq!(p.name, "web");
    assert!(p.flags.contains("attach_disconnected"));
    assert!(p.includes_base());
    assert_eq!(p.includes.len(), 1, "tunables are outside the profile");
    assert!(p.allows_capability("CAP_CHOWN") && p.allows_capability("net_bind_service"));
    assert!(!p.allows_capability("sys_admin"));
    assert!(p.allows_socket("inet", "stream") && p.allows_socket("unix", "dgram"));
    assert!(!p.allows_socket("inet", "dgram"));
    assert_eq!(p.files.len(), 8);
    assert!(p.files[0].owner && p.files[0].path.as_str() == "/etc/group");
    assert_eq!(p.files[5].letters.exec.as_deref(), Some("ix"));
    assert_eq!(
        p.other,
        ["signal (receive) peer=unconfined".to_owned()].into()
    );
}

#[test]
fn grants_on_recorded_paths() {
    let p = parse(PROFILE).unwrap();
    let g = Grants::of(&p);
    let need = |ops: &[FileOp]| Letters::needed_by(ops);
    // (path, owned, ops, granted)
    let cases: &[(&str, bool, &[FileOp], bool)] = &[
        ("/etc/group", true, &[FileOp::Read], true),
        ("/etc/group", false, &[FileOp::Read], false),
        ("/run/app.pid", true, &[FileOp::Write, FileOp::Create], true),
        ("/run/app.pid", true, &[FileOp::Append], true),
        ("/run/app.pid", true, &[FileOp::Lock], false),
        ("/srv/my site/index.html", false, &[FileOp::Read], true),
        ("/srv/site/a/b.css", false, &[FileOp::Read], true),
        ("/srv/site/secret", false, &[FileOp::Read], false),
        ("/usr/sbin/app", false, &[FileOp::Exec], true),
        ("/usr/sbin/app2", false, &[FileOp::Exec], false),
        ("/var/lib/app/body/0001", false, &[FileOp::Write], true),
        ("/var/lib/app/body/x", false, &[FileOp::Write], false),
        ("/proc/42/fd/1", false, &[FileOp::Write], true),
        // abstractions/base
        (
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            false,
            &[FileOp::Read, FileOp::MmapExec],
            true,
        ),
        ("/dev/null", false, &[FileOp::Write], true),
        ("/etc/shadow", false, &[FileOp::Read], false),
    ];
    for (path, owned, ops, want) in cases {
        let granted = g.on_path(path.as_bytes(), *owned);
        assert_eq!(
            granted.missing(&need(ops), false).is_empty(),
            *want,
            "{path} {ops:?}: {granted}"
        );
    }
}

#[test]
fn a_rule_set_covers_a_rule() {
    let old = parse(PROFILE).unwrap();
    let g = Grants::of(&old);
    let rule = |text: &str| {
        let p = parse(&format!("profile x {{\n  {text},\n}}\n")).unwrap();
        p.files[0].clone()
    };
    let cases: &[(&str, bool)] = &[
        ("/srv/site/x.html r", true),
        ("/srv/site/*.css r", true),
        ("/srv/site/x.html w", false),
        ("/srv/** r", false),
        ("owner /run/app.pid a", true),
        // `owner` on the old rule only: the new one, for any owner, is wider.
        ("/run/app.pid r", false),
        ("/usr/sbin/app ix", true),
        ("/usr/sbin/app ux", false),
        ("/var/lib/app/body/[0-5]* w", true),
        ("/var/lib/app/body/* w", false),
        // Granted by abstractions/base, which OLD includes.
        ("/usr/lib/x86_64-linux-gnu/libssl.so.3 mr", true),
        ("/etc/ld.so.cache r", true),
    ];
    for (text, want) in cases {
        assert_eq!(g.cover(&rule(text)), *want, "{text}");
    }
}

#[test]
fn refuses_what_it_cannot_read() {
    for bad in [
        "profile a {\n  /x r,\n}\nprofile b {\n}\n",
        "profile a {\n  ^hat {\n  }\n}\n",
        "profile a {\n  /x r,\n",
        "/usr/bin/x\n",
        "profile a {\n  /x rq,\n}\n",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

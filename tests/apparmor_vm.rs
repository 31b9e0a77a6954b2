//! The AppArmor profile for the demo, proven in a kernel that enforces AppArmor.
//!
//! The demo's activity is written out here by hand: what nginx does when it serves
//! `demo/site` with `demo/nginx.conf` from the demo's bundle (the binary, its config, the
//! user database, the site, its pid file and temp dirs, the capabilities it needs to switch to
//! www-data). The profile synthesized from it must pass the real parser; in the VM, whose root
//! is the demo bundle's root filesystem, the test suite must pass with zero DENIED lines, and
//! probes confined by the same profile (read /etc/shadow, write under /usr) must be denied.
//! The VM runs through `verify::apparmor::prove`, what `profgen verify --apparmor` runs.
//!
//! `recorded_profile_enforced_in_a_vm` does the same with the profile synthesized from the
//! demo's real recording (`profiles/demo-nginx/recording.json`, written by `cargo xtask demo`
//! from nginx in runc; `PROFGEN_RECORDING` names another): what the recorder saw must be
//! enough for AppArmor. A DENIED line there names what the recording lacks.
//!
//! Needs `qemu-system-x86_64` and `/boot/vmlinuz-*`, not root. Skips with a reason when they
//! are absent, unless CI=true.

#[path = "support/mod.rs"]
mod support;

use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use profgen::{
    model::{
        activity::{Activity, FileAccess, FileOp, FsPath, SocketKind},
        Recording,
    },
    synth::{
        apparmor::{apparmor, AppArmorOptions},
        workload_activity,
    },
    verify::apparmor::{find_kernel, parser, prove, AppArmorCheck, AppArmorProof, VmOptions},
};
use profgen_demo::{build_bundle, BundleOptions};

const NAME: &str = "demo-nginx";

fn access(path: &str, ops: &[FileOp]) -> FileAccess {
    FileAccess {
        path: FsPath::from(path),
        ops: ops.iter().copied().collect(),
        failed: false,
        owned: false,
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// What the demo nginx does in the guest, paths resolved (Debian's merged /usr).
fn demo_activity() -> Activity {
    use FileOp::*;
    let mut files = vec![
        access("/usr/sbin/nginx", &[Exec, Read, MmapExec]),
        access("/usr/lib/x86_64-linux-gnu/libc.so.6", &[Read, MmapExec]),
        access("/usr/lib/x86_64-linux-gnu/libcrypt.so.1", &[Read, MmapExec]),
        access(
            "/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
            &[Read, MmapExec],
        ),
        access("/usr/lib/x86_64-linux-gnu/libssl.so.3", &[Read, MmapExec]),
        access(
            "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
            &[Read, MmapExec],
        ),
        access("/usr/lib/x86_64-linux-gnu/libz.so.1", &[Read, MmapExec]),
        access(
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            &[Read, MmapExec],
        ),
        access("/etc/ld.so.cache", &[Read]),
        access("/etc/nginx/nginx.conf", &[Read]),
        access("/etc/nginx/mime.types", &[Read]),
        access("/etc/passwd", &[Read]),
        access("/etc/group", &[Read]),
        // O_RDWR|O_CREAT|O_TRUNC, removed at exit.
        access("/run/nginx.pid", &[Read, Create, Write, Truncate, Unlink]),
        access("/var/lib/nginx/", &[Read]),
        // `access_log /dev/stdout` with O_CREAT: AppArmor names the magic link itself.
        access("/proc/1/fd/1", &[Append, Create]),
        access("/srv/site/", &[Read]),
        access("/srv/site/assets/", &[Read]),
        access("/proc/1/status", &[Read]),
    ];
    for t in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        files.push(access(
            &format!("/var/lib/nginx/{t}/"),
            &[Mkdir, Read, Chown],
        ));
    }
    for a in profiler_demo_assets() {
        files.push(access(&format!("/srv/site{a}"), &[Read]));
    }
    // The demo bundle's own name service switch (glibc reads it to look www-data up).
    files.push(access("/etc/nsswitch.conf", &[Read]));
    // Tried and done without (the bundle has none): not allowed.
    let mut localtime = access("/etc/localtime", &[Read]);
    localtime.failed = true;
    files.push(localtime);
    Activity {
        files,
        capabilities: Some(BTreeSet::from(
            ["chown", "setgid", "setuid", "dac_override"].map(String::from),
        )),
        sockets: BTreeSet::from([SocketKind {
            family: "inet".into(),
            kind: "stream".into(),
        }]),
        ..Default::default()
    }
}

/// The site's files, read from `demo/site` so the activity follows the site.
fn profiler_demo_assets() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                out.push(format!("/{}", p.strip_prefix(base).unwrap().display()));
            }
        }
    }
    let site = repo().join("demo/site");
    let mut out = Vec::new();
    walk(&site, &site, &mut out);
    out.sort();
    out
}

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

#[test]
fn demo_profile_passes_the_parser() {
    let p = apparmor(NAME, &demo_activity(), &AppArmorOptions::default()).unwrap();
    println!("{}", p.text);
    match parser::check(&p.text) {
        Ok(()) => {}
        Err(parser::ParserError::Absent(why)) if !ci() => println!("skipped: {why}"),
        Err(e) => panic!("{e}"),
    }
    assert!(p.text.contains("/usr/sbin/nginx rmix,"));
    assert!(!p.text.contains("/etc/shadow"));
    assert!(p.text.contains("#   /etc/localtime"));
}

fn vm_available() -> bool {
    let qemu_ok = std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !qemu_ok || find_kernel().is_none() {
        assert!(
            !ci(),
            "CI=true but qemu-system-x86_64 or /boot/vmlinuz-* is missing"
        );
        println!("skipped: qemu-system-x86_64 or /boot/vmlinuz-* is missing");
        return false;
    }
    true
}

/// nginx's port in the demo bundle.
const PORT: u16 = 8080;

/// Enforces `text` in the VM with the demo bundle and its suite, through the library's
/// proof; panics with every fact that does not hold.
fn prove_in_vm(text: &str) -> AppArmorProof {
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_bundle(&dir.path().join("bundle"), &BundleOptions::new(PORT))
        .expect("building the demo bundle");
    let profile = dir.path().join("apparmor.profile");
    std::fs::write(&profile, text).unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, PORT));
    let proof = prove(&AppArmorCheck {
        profile,
        bundle: bundle.dir.clone(),
        wait_tcp: Some(addr),
        suite: vec![
            support::demo_suite_binary().into(),
            "--url".into(),
            format!("http://{addr}").into(),
        ],
        suite_timeout: Duration::from_secs(120),
        vm: VmOptions::default(),
    })
    .expect("the VM ran");
    println!("{proof}");
    let failures = proof.failures();
    let report = proof.vm.as_ref().expect("the VM ran");
    if !failures.is_empty() {
        panic!("{failures:#?}\n--- console ---\n{}", report.console);
    }
    assert_eq!(report.suite_exit, Some(0));
    let shadow = &report
        .probes
        .iter()
        .find(|p| p.0 == "read-shadow")
        .unwrap()
        .2;
    assert!(
        shadow.iter().any(|l| l.contains("name=\"/etc/shadow\"")),
        "{shadow:?}"
    );
    let usr = &report.probes.iter().find(|p| p.0 == "write-usr").unwrap().2;
    assert!(
        usr.iter().any(|l| l.contains("/usr/profgen-probe")),
        "{usr:?}"
    );
    proof
}

#[test]
fn demo_profile_enforced_in_a_vm() {
    if !vm_available() {
        return;
    }
    let profile = apparmor(NAME, &demo_activity(), &AppArmorOptions::default()).unwrap();
    prove_in_vm(&profile.text);
}

/// The demo's recording: `PROFGEN_RECORDING`, else the committed one.
fn demo_recording() -> (PathBuf, Recording) {
    let path = std::env::var_os("PROFGEN_RECORDING")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("profiles/demo-nginx/recording.json"));
    let rec = Recording::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, rec)
}

#[test]
fn recorded_profile_passes_the_parser() {
    let (path, rec) = demo_recording();
    let activity = workload_activity(&rec);
    assert!(
        !activity.files.is_empty(),
        "{}: no file activity recorded",
        path.display()
    );
    let p = apparmor(NAME, &activity, &AppArmorOptions::default()).unwrap();
    println!("{}", p.text);
    match parser::check(&p.text) {
        Ok(()) => {}
        Err(parser::ParserError::Absent(why)) if !ci() => println!("skipped: {why}"),
        Err(e) => panic!("{e}"),
    }
    assert!(p.text.contains("/usr/sbin/nginx "), "nginx's exec rule");
    assert!(!p.text.contains("/etc/shadow"));
}

#[test]
fn recorded_profile_enforced_in_a_vm() {
    if !vm_available() {
        return;
    }
    let (path, rec) = demo_recording();
    println!("recording: {}", path.display());
    let p = apparmor(NAME, &workload_activity(&rec), &AppArmorOptions::default()).unwrap();
    println!("{}", p.text);
    prove_in_vm(&p.text);
}

//! `profgen verify` on single artifacts, each in a version that must pass and one that must
//! fail: the exit code says verification failed (3) and the summary line names the artifact.
//!
//! * NetworkPolicy: the committed demo policy and recording pass; without the recorded
//!   ingress, or without egress isolation (a probe gets out), they fail. No root needed.
//! * AppArmor: the committed demo profile minus the rule for the page every request falls back
//!   to, plus a rule that lets the shadow probe through: DENIED lines for the suite and a
//!   probe not denied. Needs qemu and a kernel, not root.
//! * seccomp: the committed profile passes with profgen's own probe, mounted into a bundle
//!   that is not modified; the profile allowing `unshare` fails on the probe; a probe path the
//!   bundle lacks is one line of runc's own message. Needs root and runc.

#[path = "support/mod.rs"]
mod support;

use std::{
    fs,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Command, Output},
};

use profgen_demo::{build_bundle, BundleOptions};
use support::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn demo_set() -> PathBuf {
    repo().join("profiles/demo-nginx")
}

/// The summary line on stderr.
fn summary(out: &Output) -> String {
    text(&out.stderr)
        .lines()
        .find(|l| l.starts_with("profgen: verify: "))
        .unwrap_or_else(|| panic!("no summary line:\n{}", text(&out.stderr)))
        .to_owned()
}

fn verify(args: &[&std::ffi::OsStr]) -> Output {
    output(Command::new(profgen_binary()).arg("verify").args(args))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn networkpolicy_proven_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = demo_set().join("networkpolicy.yaml");
    let recording = demo_set().join("recording.json");
    let got = verify(&[
        "--network-policy".as_ref(),
        policy.as_os_str(),
        "--recording".as_ref(),
        recording.as_os_str(),
    ]);
    assert_success("verify the demo NetworkPolicy", &got);
    assert_eq!(summary(&got), "profgen: verify: passed networkpolicy");
    let stdout = text(&got.stdout);
    assert!(
        stdout.contains("ok   recorded 198.51.100.1 -> 192.0.2.10:8080 TCP: allowed"),
        "{stdout}"
    );

    let text_of = fs::read_to_string(&policy).unwrap();
    let cases = [
        (
            "without the recorded ingress",
            text_of.replace(
                "  ingress:\n  - from:\n    - ipBlock:\n        cidr: 198.51.100.1/32\n    ports:\n    - port: 8080\n      protocol: TCP\n",
                "  ingress: []\n",
            ),
            "1 recorded flow(s) refused",
        ),
        (
            "without egress isolation",
            text_of.replace("  - Egress\n", "").replace("  egress: []\n", ""),
            "1 probe(s) admitted",
        ),
    ];
    for (what, broken, reason) in cases {
        assert_ne!(broken, text_of, "{what}: the replacement did not apply");
        let path = dir.path().join("networkpolicy.yaml");
        fs::write(&path, broken).unwrap();
        let got = verify(&[
            "--network-policy".as_ref(),
            path.as_os_str(),
            "--recording".as_ref(),
            recording.as_os_str(),
        ]);
        assert_error(what, &got, EXIT_VERIFY_FAILED, &["networkpolicy"]);
        assert_eq!(
            summary(&got),
            format!("profgen: verify: FAILED networkpolicy ({reason})"),
            "{what}"
        );
    }
}

#[test]
fn bad_input_is_one_line_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let policy = demo_set().join("networkpolicy.yaml");
    let cases: Vec<(Vec<std::ffi::OsString>, &[&str])> = vec![
        (Vec::new(), &["nothing to verify"]),
        (
            vec!["--profiles".into(), dir.path().join("missing").into()],
            &["not a directory"],
        ),
        (
            vec!["--profiles".into(), dir.path().into()],
            &["nothing to verify"],
        ),
        (
            vec!["--network-policy".into(), policy.into()],
            &["--recording"],
        ),
        (vec!["--profiles".into(), demo_set().into()], &["--bundle"]),
        (
            vec![
                "--profiles".into(),
                demo_set().into(),
                "--bundle".into(),
                dir.path().into(),
            ],
            &["suite"],
        ),
    ];
    for (args, mentions) in cases {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let got = verify(&args);
        assert_error(&format!("verify {args:?}"), &got, EXIT_ERROR, mentions);
        assert!(got.stdout.is_empty(), "{args:?} ran something");
    }
}

fn vm_prerequisites() -> Result<(), String> {
    let qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !qemu {
        return Err("qemu-system-x86_64 is not installed".into());
    }
    if profgen::verify::apparmor::find_kernel().is_none() {
        return Err("no /boot/vmlinuz-* (Debian package linux-image-amd64)".into());
    }
    if !Path::new(profgen_demo::config::NGINX_BIN).is_file() {
        return Err("nginx is not installed".into());
    }
    Ok(())
}

#[test]
fn apparmor_missing_a_rule_the_suite_needs_and_letting_a_probe_through_fails() {
    if let Err(reason) = vm_prerequisites() {
        return skip(&reason);
    }
    let dir = tempfile::tempdir().unwrap();
    let port = 8080;
    let bundle = build_bundle(&dir.path().join("bundle"), &BundleOptions::new(port)).unwrap();
    let committed = fs::read_to_string(demo_set().join("apparmor.profile")).unwrap();
    let broken = committed
        .replace("  /srv/site/index.html r,\n", "")
        .replace("  # files\n", "  # files\n  /etc/shadow r,\n");
    assert_ne!(broken, committed);
    let profile = dir.path().join("apparmor.profile");
    fs::write(&profile, broken).unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let got = verify(&[
        "--bundle".as_ref(),
        bundle.dir.as_os_str(),
        "--apparmor".as_ref(),
        profile.as_os_str(),
        "--wait-tcp".as_ref(),
        addr.to_string().as_ref(),
        "--".as_ref(),
        demo_suite_binary().as_os_str(),
        "--url".as_ref(),
        format!("http://{addr}").as_ref(),
    ]);
    assert_error(
        "verify a broken AppArmor profile",
        &got,
        EXIT_VERIFY_FAILED,
        &["apparmor"],
    );
    let line = summary(&got);
    assert!(
        line.starts_with("profgen: verify: FAILED apparmor (")
            && line.contains(" DENIED for the suite, probe read-shadow not denied)"),
        "{line}"
    );
    let stdout = text(&got.stdout);
    for fact in [
        "ok   workload confined: label \"demo-nginx (enforce)\"",
        "FAIL suite in the guest: exit 1",
        "name=\"/srv/site/index.html\"",
        "FAIL probe read-shadow: exit 0, 0 DENIED line(s)",
        "ok   probe write-usr: exit 1, 1 DENIED line(s)",
    ] {
        assert!(stdout.contains(fact), "no `{fact}` in:\n{stdout}");
    }
}

fn runc_prerequisites() -> Result<(), String> {
    if !is_root() {
        return Err("runc containers need root".into());
    }
    if Command::new("runc").arg("--version").output().is_err() {
        return Err("`runc` is not installed".into());
    }
    if !Path::new(profgen_demo::config::NGINX_BIN).is_file() {
        return Err("nginx is not installed".into());
    }
    Ok(())
}

#[test]
fn seccomp_probe_brought_by_profgen_and_a_profile_letting_it_through_fails() {
    if let Err(reason) = runc_prerequisites() {
        return skip(&reason);
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bundle = build_bundle(&dir.path().join("bundle"), &BundleOptions::new(port)).unwrap();
    // A bundle without a probe: profgen must bring its own.
    fs::remove_file(bundle.rootfs.join("probe")).unwrap();
    let before = dir_listing(&bundle.dir);
    let suite = demo_suite_binary();
    let url = bundle.url();
    let run = |profile: &Path, extra: &[&str]| {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--bundle".into(),
            bundle.dir.clone().into(),
            "--seccomp".into(),
            profile.into(),
            "--probe".into(),
            "unshare,personality".into(),
        ];
        args.extend(extra.iter().map(Into::into));
        args.extend([
            "--wait-tcp".into(),
            bundle.addr.to_string().into(),
            "--".into(),
        ]);
        args.extend([suite.clone().into(), "--url".into(), url.clone().into()]);
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        verify(&args)
    };

    let committed = demo_set().join("seccomp.json");
    let got = run(&committed, &[]);
    assert_success("verify the committed seccomp profile", &got);
    assert_eq!(summary(&got), "profgen: verify: passed seccomp");
    let stdout = text(&got.stdout);
    for fact in [
        "unshare: refused with EPERM",
        "personality: refused with EPERM",
    ] {
        assert!(stdout.contains(fact), "no `{fact}` in:\n{stdout}");
    }
    assert_eq!(dir_listing(&bundle.dir), before, "the bundle was modified");

    // The profile allowing unshare: the suite passes, the probe gets through.
    let mut profile: serde_json::Value =
        serde_json::from_slice(&fs::read(&committed).unwrap()).unwrap();
    profile["syscalls"][0]["names"]
        .as_array_mut()
        .unwrap()
        .push("unshare".into());
    let allowing = dir.path().join("allowing-unshare.json");
    fs::write(&allowing, serde_json::to_vec(&profile).unwrap()).unwrap();
    let got = run(&allowing, &[]);
    assert_error(
        "verify a profile allowing unshare",
        &got,
        EXIT_VERIFY_FAILED,
        &["seccomp"],
    );
    assert_eq!(
        summary(&got),
        "profgen: verify: FAILED seccomp (unshare: not refused with EPERM (probe: unshare ok))"
    );

    // A probe path the bundle lacks: runc's own message, in one line, no logger noise.
    let got = run(&committed, &["--probe-path", "/no-such-probe"]);
    assert_error(
        "verify with a missing probe",
        &got,
        EXIT_VERIFY_FAILED,
        &["seccomp"],
    );
    let stdout = text(&got.stdout);
    let fact = stdout
        .lines()
        .find(|l| l.starts_with("FAIL probe failed: "))
        .unwrap_or_else(|| panic!("no probe fact in:\n{stdout}"));
    assert!(
        fact.contains("stat /no-such-probe: no such file or directory") && !fact.contains("time="),
        "{fact}"
    );
}

/// Every path below `dir` with its size, to tell whether anything was added or changed.
fn dir_listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), meta.len()));
        }
    }
    out.sort();
    out
}

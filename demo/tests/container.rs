//! The demo under runc: recorded-style (permissive filter, caller's cgroupsPath) and enforced
//! through `profgen::verify`. Needs root, runc and nginx; skips without them unless `CI=true`.

mod support;

use std::{
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use oci_spec::runtime::LinuxSeccomp;
use profgen::verify::{
    self,
    probe::{Outcome, ProbeResult},
    runc::{unique_id, Runc},
    SeccompCheck,
};
use profgen_demo::{build_bundle, seccomp, Bundle, BundleOptions};

const SUITE: &str = env!("CARGO_BIN_EXE_demo-suite");

fn bundle(dir: &Path, cgroups_path: Option<String>, profile: Option<LinuxSeccomp>) -> Bundle {
    let mut opts = BundleOptions::new(support::free_port());
    opts.cgroups_path = cgroups_path;
    opts.seccomp = profile;
    build_bundle(dir, &opts).unwrap()
}

fn suite_command(bundle: &Bundle) -> Vec<OsString> {
    vec![SUITE.into(), "--url".into(), bundle.url().into()]
}

fn uid_of(pid: u32) -> u32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn children_of(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// What `profgen record` relies on: the container's cgroup exists at the caller's path before
/// the workload starts, the permissive filter is installed, and nothing refuses the probe.
#[test]
fn runs_under_the_recording_filter_in_the_given_cgroup() {
    if !support::require(support::container_prerequisites()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Nested, so the parent runc creates (and leaves behind) is exercised too.
    let parent = format!("profgen-test-{}", std::process::id());
    let cgroups_path = format!("/{parent}/demo");
    let bundle = bundle(
        dir.path(),
        Some(cgroups_path.clone()),
        Some(seccomp::recording()),
    );
    let cgroup2 = profgen::cgroup::cgroup2_mount().unwrap();

    let container = Runc::default()
        .create(&bundle.dir, &unique_id("profgen-demo-test"))
        .unwrap();
    let cgroup_dir = container.cgroup2_dir().unwrap();
    assert_eq!(cgroup_dir, cgroup2.join(&parent).join("demo"));
    // `runc init` waits in the cgroup before the workload starts: a recorder can target it now.
    let procs = fs::read_to_string(cgroup_dir.join("cgroup.procs")).unwrap();
    assert!(
        !procs.trim().is_empty(),
        "nothing in {}",
        cgroup_dir.display()
    );

    container.start().unwrap();
    container
        .wait_tcp(bundle.addr, Duration::from_secs(10))
        .unwrap();
    let pid = container.pid().unwrap().expect("running");
    assert_eq!(
        verify::seccomp_mode(pid).unwrap(),
        2,
        "no seccomp filter in nginx"
    );
    // The master stays root; its two workers switched to www-data.
    assert_eq!(uid_of(pid), 0);
    let workers = children_of(pid);
    assert_eq!(workers.len(), 2, "workers: {workers:?}");
    for w in workers {
        assert_eq!(uid_of(w), 33, "worker {w}");
    }

    let suite = Command::new(SUITE)
        .args(["--url", &bundle.url()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&suite.stdout);
    assert!(suite.status.success(), "{stdout}\n{}", container.logs());
    assert!(stdout.contains(" 0 failed"), "{stdout}");

    let probe = container
        .exec(&[bundle.probe_path, "unshare"], Duration::from_secs(10))
        .unwrap();
    assert_eq!(probe.code, Some(0), "{}", probe.stderr);
    assert_eq!(probe.stdout, "unshare ok\n");

    container.stop(Duration::from_secs(5)).unwrap();
    assert!(!cgroup_dir.exists(), "runc left {}", cgroup_dir.display());
    assert!(!cgroup2.join(&parent).exists(), "parent cgroup left behind");
    let mut leftovers: Vec<PathBuf> = Vec::new();
    for hierarchy in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        if hierarchy.path().join(&parent).exists() {
            leftovers.push(hierarchy.path().join(&parent));
        }
    }
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

/// `profgen verify` end to end on the demo: a profile refusing `unshare` passes (tests green,
/// profgen's own probe, mounted for the run, refused with EPERM); the permissive one fails
/// because the probe gets through.
#[test]
fn verify_accepts_a_refusing_profile_and_rejects_a_permissive_one() {
    if !support::require(support::container_prerequisites()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The bundle's own config has no seccomp and a cgroupsPath: verify replaces both in its copy.
    let bundle = bundle(dir.path(), Some("/profgen-verify-test/unused".into()), None);
    let config_before = fs::read(&bundle.config).unwrap();
    let check = |profile| SeccompCheck {
        test_command: suite_command(&bundle),
        wait_tcp: Some(bundle.addr),
        probe_path: None,
        probes: vec!["unshare".into()],
        test_timeout: Duration::from_secs(120),
        ..SeccompCheck::new(&bundle.dir, profile)
    };

    let report = match verify::seccomp(&check(seccomp::recording_refusing(&["unshare"]))) {
        Ok(report) => report,
        Err(verify::Error::Failed { report, source }) => panic!("{source}\n{report}"),
        Err(err) => panic!("{err}"),
    };
    assert_eq!(report.seccomp_mode, Some(Ok(2)));
    assert!(report.tests.as_ref().unwrap().passed, "{report}");
    assert_eq!(report.running_after_tests, Some(true));
    assert_eq!(
        report.probes.as_ref().unwrap().as_ref().unwrap(),
        &[ProbeResult {
            syscall: "unshare".into(),
            outcome: Outcome::Refused(1)
        }]
    );

    match verify::seccomp(&check(seccomp::recording())) {
        Ok(report) => panic!("a permissive profile passed:\n{report}"),
        Err(verify::Error::Failed { report, source }) => {
            assert!(report.tests.as_ref().unwrap().passed, "{report}");
            assert_eq!(
                report.failures(),
                ["unshare: not refused with EPERM (probe: unshare ok)"]
            );
            assert!(source.to_string().contains("unshare"));
        }
        Err(err) => panic!("{err}"),
    }

    assert_eq!(
        fs::read(&bundle.config).unwrap(),
        config_before,
        "bundle modified"
    );
    assert!(!Path::new("/sys/fs/cgroup/unified/profgen-verify-test").exists());
}

/// A profile under which nginx cannot start is a verification failure with nginx's own error
/// in the report, not an environment error.
#[test]
fn verify_reports_a_workload_that_fails_under_the_profile() {
    if !support::require(support::container_prerequisites()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle(dir.path(), None, None);
    // nginx cannot listen without these.
    let check = SeccompCheck {
        test_command: suite_command(&bundle),
        wait_tcp: Some(bundle.addr),
        probe_path: Some(bundle.probe_path.into()),
        ..SeccompCheck::new(
            &bundle.dir,
            seccomp::recording_refusing(&["bind", "listen"]),
        )
    };
    match verify::seccomp(&check) {
        Ok(report) => panic!("nginx served without bind/listen:\n{report}"),
        Err(verify::Error::Failed { report, .. }) => {
            let failures = report.failures().join("\n");
            assert!(
                failures.contains("never became ready") || failures.contains("did not start"),
                "{report}"
            );
            assert!(report.tests.is_none(), "tests ran against a dead server");
            assert!(
                report.to_string().contains("Operation not permitted"),
                "nginx's error is missing:\n{report}"
            );
        }
        Err(err) => panic!("{err}"),
    }
}

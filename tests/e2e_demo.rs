//! The demo round trip, the way a user runs it: record a parent cgroup, start nginx in a runc
//! container below it *after* the recorder is ready, run the HTTP suite, stop gracefully, stop
//! the recorder, `profgen synth`, `profgen verify`. Then the same proof must fail (exit 3)
//! for the profile minus `accept4`, so a verify that passes everything is caught. The profile
//! allows `socket` and `clone` only with the values nginx used, so the argument probes
//! (`socket(AF_PACKET)`, `clone(CLONE_NEWUSER)`, …) are refused while the suite passes.

#[path = "support/mod.rs"]
mod support;

use std::{
    collections::BTreeSet,
    ffi::OsStr,
    fs,
    net::TcpListener,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};
use profgen::{
    model::{Abi, Recording, Target},
    verify::{
        probe::ARGUMENT_PROBES,
        runc::{unique_id, Runc},
    },
};
use profgen_demo::{build_bundle, seccomp, suite, BundleOptions};
use support::*;

/// Syscalls Docker's default profile allows on x86_64.
const DOCKER_DEFAULT: usize = 309;
/// What runc does while setting the container up, before it loads the filter.
const RUNC_SETUP: [&str; 3] = ["mount", "pivot_root", "sethostname"];
const PROBES: &str = "unshare,ptrace,personality";
/// `AF_INET`: the family of nginx's listening socket.
const AF_INET: u64 = 2;

/// The name probes and the argument probes, as `--probe` takes them.
fn probes() -> String {
    [PROBES.to_owned(), ARGUMENT_PROBES.join(",")].join(",")
}

fn prerequisites() -> Result<(), String> {
    if !is_root() {
        return Err("runc containers and eBPF need root".into());
    }
    for (bin, arg) in [("runc", "--version"), ("cc", "--version")] {
        if Command::new(bin).arg(arg).output().is_err() {
            return Err(format!("`{bin}` is not installed"));
        }
    }
    if !Path::new(profgen_demo::config::NGINX_BIN).is_file() {
        return Err(format!(
            "{} is missing (Debian package nginx)",
            profgen_demo::config::NGINX_BIN
        ));
    }
    Ok(())
}

/// Containers of this process still known to runc.
fn leftover_containers(prefix: &str) -> Vec<String> {
    let out = output(Command::new("runc").args(["list", "-q"]));
    text(&out.stdout)
        .lines()
        .filter(|id| id.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

fn verify(
    profgen: &Path,
    bundle: &profgen_demo::bundle::Bundle,
    profile: &Path,
    suite_bin: &Path,
    security_context: Option<&Path>,
) -> std::process::Output {
    let mut cmd = Command::new(profgen);
    if let Some(sc) = security_context {
        cmd.arg("verify").arg("--security-context").arg(sc);
    } else {
        cmd.arg("verify");
    }
    output(
        cmd.arg("--bundle")
            .arg(&bundle.dir)
            .arg("--seccomp")
            .arg(profile)
            .args(["--probe", &probes(), "--wait-tcp"])
            .arg(bundle.addr.to_string())
            .arg("--")
            .arg(suite_bin)
            .args(["--url", &bundle.url()]),
    )
}

#[test]
fn demo_round_trip_record_synth_verify() {
    if let Err(reason) = prerequisites() {
        return skip(&reason);
    }
    let profgen = profgen_binary();
    let suite_bin = demo_suite_binary();
    // Timed from here: the builds above are cargo's, not profgen's.
    let t0 = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let id_prefix = format!("profgen-e2e-demo-{}", std::process::id());

    // The parent exists before recording; the container's own cgroup must not: runc creates
    // it after the recorder is ready, which is the start race this test is about.
    let parent = CgroupDir::create("profgen-e2e-demo");
    let cgroups_path = format!("{}/nginx", parent.rel);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bundle = build_bundle(
        &work.path().join("bundle"),
        &BundleOptions {
            cgroups_path: Some(cgroups_path.clone()),
            seccomp: Some(seccomp::recording()),
            ..BundleOptions::new(port)
        },
    )
    .expect("building the demo bundle");
    assert!(
        !parent.path.join("nginx").exists(),
        "the container's cgroup exists before the recording started"
    );

    let rec_path = work.path().join("recording.json");
    let recorder = Recorder::start(
        &profgen,
        &[OsStr::new("--cgroup"), parent.path.as_os_str()],
        &rec_path,
    );
    let checks = {
        let container = Runc::default()
            .run_detached(&bundle.dir, &unique_id(&id_prefix))
            .expect("starting the demo container under the recording filter");
        container
            .wait_tcp(bundle.addr, Duration::from_secs(20))
            .expect("nginx accepts connections");
        let checks = suite::run(bundle.addr, Duration::from_secs(10));
        // Graceful: nginx's shutdown path is part of what the profile must allow.
        container
            .stop(Duration::from_secs(10))
            .expect("stopping the container");
        checks
    };
    let failed: Vec<_> = checks
        .iter()
        .filter_map(|c| c.result.as_ref().err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    assert!(
        checks.len() > 5 && failed.is_empty(),
        "suite while recording ({} checks): {failed:#?}",
        checks.len()
    );
    let rec = recorder.stop();
    let t_recorded = t0.elapsed();

    check_recording(&rec, &parent.rel, &cgroups_path);
    probes_succeed_without_a_filter(&bundle);

    // synth
    let profile_dir = work.path().join("profile");
    let got = output(
        Command::new(&profgen)
            .arg("synth")
            .arg(&rec_path)
            .arg("--out")
            .arg(&profile_dir),
    );
    assert_success("profgen synth", &got);
    let profile_path = profile_dir.join("seccomp.json");
    let profile: LinuxSeccomp =
        serde_json::from_slice(&fs::read(&profile_path).unwrap()).expect("seccomp.json parses");
    check_profile(&profile, &rec, &cgroups_path);

    // verify: the suite passes under the profile and the suggested securityContext, the
    // container shows exactly the suggested capabilities, every probe is refused.
    let sc_path = profile_dir.join("securitycontext.yaml");
    let got = verify(&profgen, &bundle, &profile_path, &suite_bin, Some(&sc_path));
    assert_success("profgen verify", &got);
    let report = text(&got.stdout);
    for probe in probes().split(',') {
        assert!(
            report.contains(&format!("{probe}: refused with EPERM")),
            "verify's report does not say {probe} was refused:\n{report}"
        );
    }
    let mut facts = vec![
        "ok   capabilities in the container: CHOWN, SETGID, SETUID",
        "ok   no_new_privs in the container: true",
    ];
    // Suggested only when told which paths are volumes (the demo passes --volumes).
    if fs::read_to_string(&sc_path)
        .unwrap()
        .contains("readOnlyRootFilesystem: true")
    {
        facts.push("ok   root filesystem read-only in the container: true");
    }
    for fact in facts {
        assert!(report.contains(fact), "no `{fact}` in:\n{report}");
    }

    // Without the capabilities nginx's master uses, its workers cannot switch to www-data:
    // the same proof fails. The suggestion is as small as it can be, and needed.
    let no_caps = work.path().join("no-capabilities.yaml");
    fs::write(
        &no_caps,
        "allowPrivilegeEscalation: false\ncapabilities:\n  drop: [ALL]\nreadOnlyRootFilesystem: true\n",
    )
    .unwrap();
    let got = verify(&profgen, &bundle, &profile_path, &suite_bin, Some(&no_caps));
    assert_error(
        "profgen verify with every capability dropped",
        &got,
        EXIT_VERIFY_FAILED,
        &[],
    );

    // The same proof with one syscall nginx needs taken away must fail, with exit code 3.
    let mut broken = profile.clone();
    let rules = broken.syscalls().clone().unwrap_or_default();
    let rules: Vec<_> = rules
        .into_iter()
        .map(|mut r| {
            let names: Vec<String> = r
                .names()
                .iter()
                .filter(|n| *n != "accept4")
                .cloned()
                .collect();
            r.set_names(names);
            r
        })
        .collect();
    broken.set_syscalls(Some(rules));
    assert!(!allowed_names(&broken).contains("accept4"));
    let broken_path = work.path().join("without-accept4.json");
    fs::write(&broken_path, serde_json::to_vec_pretty(&broken).unwrap()).unwrap();
    let got = verify(&profgen, &bundle, &broken_path, &suite_bin, None);
    assert_error(
        "profgen verify with a profile lacking accept4",
        &got,
        EXIT_VERIFY_FAILED,
        &[],
    );

    assert_eq!(
        leftover_containers(&id_prefix),
        Vec::<String>::new(),
        "containers left behind"
    );
    eprintln!(
        "took {:?} (recording done after {t_recorded:?})",
        t0.elapsed()
    );
}

/// The argument probes run on the host, as root and without a filter, are not refused with
/// EPERM: under the profile, EPERM is the profile's doing.
fn probes_succeed_without_a_filter(bundle: &profgen_demo::bundle::Bundle) {
    let probe = bundle
        .rootfs
        .join(bundle.probe_path.trim_start_matches('/'));
    let got = output(Command::new(&probe).args(ARGUMENT_PROBES));
    assert_success("the probe on the host", &got);
    let report = text(&got.stdout);
    for name in ARGUMENT_PROBES {
        let line = report
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for {name} in:\n{report}"));
        assert!(
            !line.ends_with("errno 1"),
            "{line}: refused without a filter"
        );
    }
}

fn check_recording(rec: &Recording, parent_rel: &str, container_rel: &str) {
    assert_no_events_lost(rec);
    assert_eq!(
        rec.target,
        Target::Cgroup {
            cgroup: parent_rel.to_owned()
        }
    );
    // The container's cgroup, created by runc after the recorder was ready, is in the
    // recording under its own path: its first process was attributed to it.
    let nginx = cgroup_at(rec, container_rel);
    assert!(
        nginx.seccomp_filter_seen,
        "runc's installation of the recording filter was not seen"
    );
    let calls: BTreeSet<&str> = syscalls(nginx).into_iter().collect();
    let before: BTreeSet<&str> = nginx
        .excluded_before_filter
        .get(&profgen::model::Abi::X86_64)
        .map(|s| s.iter().map(String::as_str).collect())
        .unwrap_or_default();
    for setup in RUNC_SETUP {
        assert!(
            !calls.contains(setup),
            "runc's set-up syscall {setup} leaked into the profile's syscalls"
        );
        // Seeing them at all is what proves the container's very first syscalls (runc init
        // in the fresh cgroup) were caught.
        assert!(
            before.contains(setup),
            "{setup} missing from excluded_before_filter: {before:?}"
        );
    }
    // After the filter: runc still reads /proc/self/fd (getdents64) and execs nginx; nginx
    // accepts and waits for events.
    for needed in ["getdents64", "execve", "accept4", "exit_group"] {
        assert!(
            calls.contains(needed),
            "{needed} missing from {container_rel}: {calls:?}"
        );
    }
    assert!(
        ["epoll_wait", "epoll_pwait", "epoll_pwait2"]
            .iter()
            .any(|s| calls.contains(s)),
        "no epoll_wait-family syscall recorded: {calls:?}"
    );
    // Capabilities are nginx's own after its exec: the master's chown of its temp
    // directories and the workers' switch to www-data. runc's init used mknod, sys_admin
    // (before the filter) and setpcap (dropping the bounding set after it); none are nginx's.
    let caps: Vec<&str> = nginx
        .activity
        .capabilities
        .as_ref()
        .expect("capabilities recorded on this kernel")
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(caps, ["chown", "setgid", "setuid"], "capabilities of nginx");
    // Files are nginx's: runc's look at /proc/self/fd after the filter is not in them.
    let proc_fd = nginx
        .activity
        .files
        .iter()
        .find(|f| f.path.0.ends_with(b"/fd") && f.path.0.starts_with(b"/proc/"));
    assert!(
        proc_fd.is_none(),
        "runc's /proc/self/fd read counted: {proc_fd:?}"
    );
    // The argument values nginx used after the filter: its listening socket's family, and
    // the master forking its workers without namespace flags.
    let args = nginx
        .args
        .get(&Abi::X86_64)
        .unwrap_or_else(|| panic!("no argument values recorded: {:?}", nginx.args));
    let family = args.get("socket").and_then(|s| s.get(&0));
    assert!(
        family.is_some_and(|f| f.values.contains(&AF_INET) && !f.overflowed),
        "socket families: {family:?}"
    );
    let clone = args.get("clone").and_then(|c| c.get(&0));
    assert!(
        clone.is_some_and(|c| !c.values.is_empty()
            && !c.overflowed
            && c.values.iter().all(|f| f & 0x7E02_0000 == 0)),
        "clone flags: {clone:?}"
    );
    // Nothing is both counted and excluded.
    let both: Vec<_> = calls.intersection(&before).collect();
    assert!(both.is_empty(), "in syscalls and excluded: {both:?}");
    // The parent never held a process; every cgroup is inside the target.
    for cg in &rec.cgroups {
        let path = cg.path.as_deref().unwrap_or("<unnamed>");
        assert!(
            path.starts_with(&format!("{parent_rel}/")),
            "cgroup {path} recorded outside the container's subtree"
        );
    }
}

fn check_profile(profile: &LinuxSeccomp, rec: &Recording, container_rel: &str) {
    assert_eq!(
        profile.default_action(),
        LinuxSeccompAction::ScmpActErrno,
        "defaultAction"
    );
    let archs: Vec<String> = profile
        .architectures()
        .iter()
        .flatten()
        .map(|a| format!("{a:?}"))
        .collect();
    assert!(
        archs.iter().any(|a| a == "ScmpArchX86_64"),
        "architectures {archs:?} lack x86_64"
    );
    let allowed = allowed_names(profile);
    let recorded: BTreeSet<String> = syscalls(cgroup_at(rec, container_rel))
        .into_iter()
        .map(str::to_owned)
        .collect();
    // What the container did after the filter, plus each call's equivalents and the
    // runtimes' own calls after their filter (docs/seccomp.md); nothing else.
    // clone3 answers ENOSYS when clone is filtered (libcs then call clone).
    let missing: Vec<&String> = recorded
        .difference(&allowed)
        .filter(|n| *n != "clone3")
        .collect();
    assert!(
        missing.is_empty(),
        "the profile lacks recorded calls {missing:?}"
    );
    let runtime_calls: BTreeSet<&str> = profgen::synth::seccomp::runtime::RUNTIMES
        .iter()
        .flat_map(|r| r.calls.iter().map(|c| c.name))
        .collect();
    // Equivalents of what was recorded and of what the runtimes call (a runtime's tgkill
    // brings tkill).
    let base: BTreeSet<String> = recorded
        .iter()
        .cloned()
        .chain(runtime_calls.iter().map(|c| c.to_string()))
        .collect();
    let equivalents: BTreeSet<String> =
        profgen::synth::seccomp::equivalents::added(profgen::model::Abi::X86_64, &base)
            .into_values()
            .flatten()
            .collect();
    let unexplained: Vec<&String> = allowed
        .iter()
        .filter(|n| {
            !recorded.contains(*n)
                && !equivalents.contains(*n)
                && !runtime_calls.contains(n.as_str())
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "the profile allows {unexplained:?}: neither recorded, nor equivalents, nor runtime calls"
    );
    for setup in RUNC_SETUP {
        assert!(!allowed.contains(setup), "the profile allows {setup}");
    }
    // socket and clone are allowed only with arguments, and clone3 answers ENOSYS.
    let rules = profile.syscalls().as_deref().unwrap_or_default();
    for name in ["socket", "clone"] {
        let with_args = rules
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .all(|r| {
                r.action() == LinuxSeccompAction::ScmpActAllow
                    && r.args().as_ref().is_some_and(|a| !a.is_empty())
            });
        assert!(with_args, "{name} is allowed without argument conditions");
    }
    let clone3: Vec<_> = rules
        .iter()
        .filter(|r| r.names().iter().any(|n| n == "clone3"))
        .map(|r| (r.action(), r.errno_ret()))
        .collect();
    assert_eq!(
        clone3,
        [(LinuxSeccompAction::ScmpActErrno, Some(38))],
        "clone3 must answer ENOSYS"
    );
    eprintln!(
        "profile allows {} syscalls (Docker's default: {DOCKER_DEFAULT})",
        allowed.len()
    );
    assert!(
        allowed.len() * 2 < DOCKER_DEFAULT,
        "the profile allows {} syscalls: not far smaller than Docker's {DOCKER_DEFAULT}",
        allowed.len()
    );
}

//! The demo on a cgroup v2 only node with crun, the runtime of CRI-O and Podman: Debian's
//! kernel under qemu, booted with `cgroup_no_v1=all` and only `cgroup2` mounted.
//!
//! 1. profgen's eBPF recorder runs in that kernel and records the demo's nginx, started by
//!    crun under a filter that allows everything (the recorder needs the runtime's filter
//!    install to know where the workload starts), while the demo's suite runs against it.
//! 2. The profile synthesized from that recording for crun alone (`--runtime crun`) is
//!    enforced by crun in a second boot: nginx must start with the filter in place (seccomp
//!    mode 2), pass the suite and stay up, and profgen's probe, `crun exec`'d in the container,
//!    must be refused `unshare`, `ptrace` and `personality` with EPERM.
//!
//! Needs qemu-system-x86_64, /boot/vmlinuz-*, crun (`PROFGEN_CRUN` or PATH) and nginx (the
//! demo bundle copies the host's); not root. Skips with a reason when one is absent, unless
//! CI=true. `PROFGEN_BIN` names the profgen to record with (default: this build's).

#[path = "support/mod.rs"]
mod support;

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use profgen::{
    model::Recording,
    synth::seccomp::{synthesize, SeccompOptions},
    verify::{
        apparmor::{find_kernel, VmOptions},
        crun_vm::{run, CrunVm, CrunVmReport},
        probe,
    },
};
use profgen_demo::{build_bundle, seccomp::recording, BundleOptions, PROBE_PATH};

use support::{stripped_profgen, which};

const PORT: u16 = 8080;
/// Calls outside nginx's profile, which the probe makes in the container (`crun exec`).
const PROBED: [&str; 3] = ["unshare", "ptrace", "personality"];

fn show(what: &str, r: &CrunVmReport) {
    println!(
        "{what}: booted in {:.0} s, {:.0} s in all; {:?}",
        r.boot_secs, r.total_secs, r.facts
    );
    for l in &r.lines {
        println!("  {l}");
    }
    let failures = r.failures();
    if !failures.is_empty() {
        panic!("{what}: {failures:#?}\n--- console ---\n{}", r.console);
    }
}

#[test]
fn demo_recorded_and_enforced_under_crun_on_pure_cgroup_v2() {
    let qemu = which("qemu-system-x86_64");
    let crun = std::env::var_os("PROFGEN_CRUN")
        .map(PathBuf::from)
        .or_else(|| which("crun"));
    let (Some(crun), Some(_), Some(_), Some(_)) = (crun, qemu, find_kernel(), which("nginx"))
    else {
        return support::skip("crun, nginx, qemu-system-x86_64 or /boot/vmlinuz-* is missing");
    };
    let dir = tempfile::tempdir().unwrap();
    let bundle = build_bundle(&dir.path().join("bundle"), &BundleOptions::new(PORT))
        .expect("building the demo bundle");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, PORT));
    let vm = CrunVm {
        crun,
        bundle: bundle.dir.clone(),
        seccomp: Some(recording()),
        recorder: Some(stripped_profgen(dir.path())),
        wait_tcp: addr,
        suite: vec![
            support::demo_suite_binary().into(),
            "--url".into(),
            format!("http://{addr}").into(),
        ],
        probe: None,
        vm: VmOptions {
            timeout: Duration::from_secs(900),
            memory_mb: 1024,
            ..VmOptions::default()
        },
    };

    let recorded = run(&vm).expect("the recording guest ran");
    show("recorded under crun", &recorded);
    let json = recorded.recording.as_deref().expect("a recording");
    let rec: Recording = serde_json::from_str(json).expect("the guest's recording parses");
    let cg = rec
        .cgroups
        .iter()
        .find(|c| c.path.as_deref().is_some_and(|p| p.ends_with("/demo")))
        .unwrap_or_else(|| panic!("no cgroup …/demo in the recording: {json}"));
    assert!(
        cg.seccomp_filter_seen,
        "the recorder did not see crun's filter install"
    );
    assert!(cg.entrypoint_seen, "the recorder did not see nginx's exec");
    let calls: std::collections::BTreeSet<String> =
        rec.allowed_syscalls().into_values().flatten().collect();
    println!("recorded in the guest: {} syscalls: {calls:?}", calls.len());
    assert!(
        calls.contains("accept4") || calls.contains("accept"),
        "{calls:?}"
    );
    std::fs::write(dir.path().join("recording.json"), json).unwrap();

    let opts = SeccompOptions {
        runtimes: vec!["crun".into()],
        ..SeccompOptions::default()
    };
    let (profile, summary) = synthesize(&rec, &opts).expect("synthesizing for crun");
    println!("{summary:?}");
    let outside: Vec<String> = PROBED.map(String::from).to_vec();
    let enforced = run(&CrunVm {
        seccomp: Some(profile),
        recorder: None,
        probe: Some((PROBE_PATH.to_owned(), outside.clone())),
        ..vm
    })
    .expect("the enforcing guest ran");
    show("enforced under crun", &enforced);
    println!("probe:\n{}", enforced.probe_output);
    assert_eq!(enforced.probe_rc, Some(0), "{}", enforced.probe_output);
    for p in probe::parse(&enforced.probe_output, &outside).expect("the probe's report") {
        assert!(p.refused_by_seccomp(), "{p} under the profile");
    }
}

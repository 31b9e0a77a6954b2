//! What runc and crun call after installing the container's filter, measured, against the
//! lists `synth::seccomp::runtime` adds to every profile: a call a runtime makes that its list
//! lacks fails here, so the list cannot silently go stale when the runtime changes.
//!
//! runc on this machine (its own cgroup mode); crun in Debian's kernel under qemu with a pure
//! cgroup v2 hierarchy (`cgroup_no_v1=all`, only `cgroup2` mounted). Both through
//! `verify::runtime_calls`: a filter whose default action is `SCMP_ACT_LOG`, the kernel's
//! `type=1326` records read back, the container process's calls up to its exec kept.
//!
//! Root (runc, `/dev/kmsg`, `kernel.printk_ratelimit`); crun from `PROFGEN_CRUN` or `PATH`;
//! qemu and `/boot/vmlinuz-*` for the guest. Skips with a reason when one is absent, unless
//! CI=true.

#[path = "support/mod.rs"]
mod support;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Duration,
};

use profgen::{
    synth::seccomp::runtime,
    verify::{
        apparmor::{find_kernel, VmOptions},
        runtime_calls::{calls, guest, host, Run, Tally, VARIANTS},
    },
};

use support::which;

const RUNS: usize = 3;

/// Every measured call is in the runtime's list; the measurement saw the runtime's exec.
fn assert_listed(name: &str, runs: &[Run]) {
    println!("{name}, {} runs:\n{}", runs.len(), Tally(runs));
    let measured = calls(runs);
    assert!(measured.contains("execve"), "{name}: no exec measured");
    let listed: BTreeSet<&str> = runtime::find(name)
        .unwrap()
        .calls
        .iter()
        .map(|c| c.name)
        .collect();
    let missing: Vec<&String> = measured
        .iter()
        .filter(|c| !listed.contains(c.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{name} calls {missing:?} after its filter, which synth/seccomp/runtime.rs does not list"
    );
    for r in runs {
        assert!(
            r.processes.iter().any(|p| p.execed),
            "{name} {} run {}: no exec",
            r.variant.label(),
            r.index
        );
    }
}

#[test]
fn runc_calls_after_its_filter_are_listed() {
    if !support::is_root() {
        return support::skip("measuring runc needs root");
    }
    let (Some(runc), Some(busybox)) = (which("runc"), which("busybox")) else {
        return support::skip("runc or busybox is not installed");
    };
    let version = std::process::Command::new(&runc).arg("--version").output();
    println!(
        "{}",
        version
            .map(|o| support::text(&o.stdout))
            .unwrap_or_default()
    );
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    println!("host /proc/self/cgroup:\n{cgroup}");
    let runs = host::measure(&runc, &busybox, RUNS).expect("measuring runc");
    assert_eq!(runs.len(), RUNS * VARIANTS.len());
    assert_listed("runc", &runs);
}

fn crun() -> Option<PathBuf> {
    std::env::var_os("PROFGEN_CRUN")
        .map(PathBuf::from)
        .or_else(|| which("crun"))
}

#[test]
fn crun_calls_after_its_filter_are_listed_on_pure_cgroup_v2() {
    let qemu = which("qemu-system-x86_64");
    let (Some(crun), Some(_), Some(_)) = (crun(), qemu, find_kernel()) else {
        return support::skip("crun, qemu-system-x86_64 or /boot/vmlinuz-* is missing");
    };
    let vm = VmOptions {
        timeout: Duration::from_secs(600),
        ..VmOptions::default()
    };
    let (facts, runs) = guest::measure(Path::new(&crun), RUNS, &vm).expect("measuring crun");
    println!("{facts:#?}");
    assert!(
        facts.is_pure_cgroup_v2(),
        "the guest is not pure cgroup v2: {facts:#?}"
    );
    assert!(
        facts.runtime_version.starts_with("crun version"),
        "{facts:?}"
    );
    assert_eq!(runs.len(), RUNS * VARIANTS.len());
    assert_listed("crun", &runs);
}

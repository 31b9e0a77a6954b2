//! The whole round trip on a server that is not the demo: Debian's `redis-server` in an OCI
//! bundle built here (its binary and libraries, nothing of profgen's: no probe), in a network
//! namespace of its own joined to the host by a veth pair, as a pod is to its node.
//! `profgen record` watches it while `redis-benchmark` (its own client) runs from the host;
//! `profgen synth` writes the set; `profgen verify --profiles` must prove all four artifacts
//! with the same client as the suite: under runc (seccomp, securityContext, profgen's probe
//! mounted for the run), in the AppArmor VM (the bundle's root filesystem as the guest's,
//! the client inside the VM), and by the NetworkPolicy evaluator.
//!
//! Needs root, runc, redis-server and redis-tools (Debian `redis-server`), iproute2, qemu and
//! a kernel in /boot. Skips with a reason when they are absent, unless CI=true.

#[path = "support/mod.rs"]
mod support;

use std::{
    ffi::OsStr,
    fs,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use oci_spec::runtime::{LinuxNamespaceType, MountBuilder, Spec};
use profgen::verify::runc::{unique_id, Runc};
use profgen_demo::netns::PodNetwork;
use support::*;

const REDIS: &str = "/usr/bin/redis-server";
const BENCHMARK: &str = "/usr/bin/redis-benchmark";
/// The veth pair (TEST-NET-2, never routed; not the demo's /30, which may be up meanwhile).
const NODE_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 9);
const POD_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const PORT: u16 = 6379;

fn prerequisites() -> Result<(), String> {
    if !is_root() {
        return Err("runc containers, network namespaces and eBPF need root".into());
    }
    for (path, package) in [
        (REDIS, "redis-server"),
        (BENCHMARK, "redis-tools"),
        ("/usr/sbin/runc", "runc"),
        ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
    ] {
        if !Path::new(path).is_file() {
            return Err(format!("{path} is missing (Debian package {package})"));
        }
    }
    if profgen::verify::apparmor::find_kernel().is_none() {
        return Err("no /boot/vmlinuz-* (Debian package linux-image-amd64)".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Err("`ip` is missing (Debian package iproute2)".into());
    }
    Ok(())
}

/// `dir/rootfs` with redis-server and its libraries as on the host, `/data` for its working
/// directory, and `config.json`: `runc spec`'s defaults, redis on the pod's address, the
/// network namespace above, the recording's permissive seccomp filter, `cgroups_path`.
fn build_bundle(dir: &Path, netns: &str, cgroups_path: &str) -> PathBuf {
    let rootfs = dir.join("rootfs");
    profgen_demo::rootfs::create_dirs(&rootfs).unwrap();
    profgen_demo::rootfs::install_binary(&rootfs, Path::new(REDIS)).unwrap();
    for d in ["data", "tmp", "proc", "sys", "dev", "etc"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();

    let mut spec = Spec::default();
    let mut process = spec.process().clone().unwrap();
    process.set_terminal(Some(false));
    process.set_cwd("/data".into());
    process.set_args(Some(
        [
            REDIS,
            "--bind",
            &POD_IP.to_string(),
            "--port",
            &PORT.to_string(),
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/data",
        ]
        .map(String::from)
        .to_vec(),
    ));
    spec.set_process(Some(process));
    let mut mounts = spec.mounts().clone().unwrap();
    mounts.push(
        MountBuilder::default()
            .destination("/data")
            .typ("tmpfs")
            .source("tmpfs")
            .options(vec![
                "nosuid".to_string(),
                "nodev".into(),
                "mode=755".into(),
            ])
            .build()
            .unwrap(),
    );
    spec.set_mounts(Some(mounts));
    let mut linux = spec.linux().clone().unwrap();
    let namespaces = linux
        .namespaces()
        .clone()
        .unwrap()
        .into_iter()
        .map(|mut ns| {
            if ns.typ() == LinuxNamespaceType::Network {
                ns.set_path(Some(PathBuf::from("/run/netns").join(netns)));
            }
            ns
        })
        .collect();
    linux.set_namespaces(Some(namespaces));
    linux.set_seccomp(Some(profgen_demo::seccomp::recording()));
    linux.set_cgroups_path(Some(cgroups_path.into()));
    spec.set_linux(Some(linux));
    spec.set_root(Some(
        oci_spec::runtime::RootBuilder::default()
            .path("rootfs")
            .readonly(false)
            .build()
            .unwrap(),
    ));
    spec.save(dir.join("config.json")).unwrap();
    fs::canonicalize(dir).unwrap()
}

/// redis-benchmark against the pod: a few commands, every one must be answered.
fn client() -> Vec<String> {
    [
        BENCHMARK,
        "-h",
        &POD_IP.to_string(),
        "-p",
        &PORT.to_string(),
        "-q",
        "-n",
        "300",
        "-c",
        "4",
        "-t",
        "ping,set,get,incr,lpush,lpop,sadd,hset",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn redis_set_recorded_synthesized_and_verified() {
    if let Err(reason) = prerequisites() {
        return skip(&reason);
    }
    let profgen = profgen_binary();
    let work = tempfile::tempdir().unwrap();
    let net = PodNetwork::create("profgen-redis", "pgr", std::process::id(), NODE_IP, POD_IP)
        .unwrap_or_else(|e| panic!("{e}"));
    let parent = CgroupDir::create("profgen-e2e-redis");
    let bundle = build_bundle(
        &work.path().join("bundle"),
        &net.netns,
        &format!("{}/redis", parent.rel),
    );
    let addr = SocketAddr::from((POD_IP, PORT));

    // Record redis while its own client exercises it from the node.
    let rec_path = work.path().join("recording.json");
    let recorder = Recorder::start(
        &profgen,
        &[OsStr::new("--cgroup"), parent.path.as_os_str()],
        &rec_path,
    );
    {
        let container = Runc::default()
            .run_detached(&bundle, &unique_id("profgen-e2e-redis"))
            .expect("starting redis under the recording filter");
        container
            .wait_tcp(addr, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("redis never listened: {e}"));
        let args = client();
        let got = output(Command::new(&args[0]).args(&args[1..]));
        assert_success("redis-benchmark while recording", &got);
        container.stop(Duration::from_secs(10)).unwrap();
    }
    let rec = recorder.stop();
    assert_no_events_lost(&rec);

    let set = work.path().join("profiles");
    let got = output(
        Command::new(&profgen)
            .arg("synth")
            .arg(&rec_path)
            .arg("--out")
            .arg(&set)
            .args([
                "--name",
                "redis",
                "--labels",
                "app=redis",
                "--namespace",
                "default",
            ]),
    );
    assert_success("profgen synth", &got);
    for file in [
        "seccomp.json",
        "securitycontext.yaml",
        "apparmor.profile",
        "networkpolicy.yaml",
        "recording.json",
    ] {
        assert!(set.join(file).is_file(), "synth wrote no {file}");
    }
    assert!(
        !bundle.join("rootfs/probe").exists() && !bundle.join("rootfs/.profgen-probe").exists(),
        "the bundle has a probe of its own"
    );

    let args = client();
    let got = output(
        Command::new(&profgen)
            .arg("verify")
            .arg("--profiles")
            .arg(&set)
            .arg("--bundle")
            .arg(&bundle)
            .args([
                "--wait-tcp",
                &addr.to_string(),
                "--pod-ip",
                &POD_IP.to_string(),
            ])
            .arg("--")
            .args(&args),
    );
    let stdout = text(&got.stdout);
    println!("{stdout}");
    assert_success("profgen verify --profiles (redis)", &got);
    assert!(
        text(&got.stderr)
            .contains("profgen: verify: passed seccomp, securitycontext, apparmor, networkpolicy"),
        "{}",
        text(&got.stderr)
    );
    for fact in [
        "ok   unshare: refused with EPERM",
        "ok   workload confined: label \"redis (enforce)\"",
        "ok   suite in the guest: exit 0",
        "ok   0 DENIED for the suite",
        &format!("ok   recorded {NODE_IP} -> {POD_IP}:{PORT} TCP: allowed"),
        &format!("ok   probe a stranger on port {PORT}/TCP"),
    ] {
        assert!(stdout.contains(fact), "no `{fact}` in the report");
    }
    assert!(
        !bundle.join("rootfs/dev/.profgen-probe").exists()
            && !bundle.join("rootfs/.profgen-probe").exists(),
        "the probe's mount point was left in the bundle"
    );
    drop(net);
}

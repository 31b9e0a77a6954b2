//! The agent as the DaemonSet runs it: profgen's image, written by the code behind `cargo
//! xtask image`, unpacked into a root filesystem and run under runc with the securityContext
//! of `deploy/daemonset.yaml` read from the manifest — capabilities BPF and PERFMON alone,
//! read-only root, no new privileges, uid 0, and for `RuntimeDefault` the profile containerd
//! applies (`deploy/runtime-default-seccomp.json`) — and the manifest's volumes and limits.
//! A busybox container then starts in a pod cgroup the replayed API names: the confined agent
//! must record it from its first exec.
//!
//! Two things differ from a pod, neither about confinement: the agent shares the host's
//! network (the replayed API listens on the host's loopback), and the hostPaths it writes
//! (`/var/lib/profgen`, `/var/lib/kubelet/seccomp`) are directories of the test.

#[path = "support/mod.rs"]
mod support;

#[path = "agent_image/pod.rs"]
mod pod;
#[path = "agent_image/spec.rs"]
mod spec;

use std::{
    fs,
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use pod::{agent_lines, http_get, is_running, wait_for_logs, AgentPod};
use profgen::{
    model::Recording,
    verify::runc::{unique_id, Container, Runc},
};
use profgen_demo::image;
use spec::{daemonset_agent, kernel_at_least};
use support::{cluster::*, *};

/// The capabilities the agent holds in the container, as `/proc/<pid>/status` shows them:
/// CAP_PERFMON (38) and CAP_BPF (39).
const CAP_BPF_PERFMON: u64 = (1 << 38) | (1 << 39);

/// Root, a kernel that needs no SYS_RESOURCE, and a static busybox; else the reason is
/// printed (a failure under CI=true).
fn preconditions() -> Option<PathBuf> {
    if !is_root() {
        skip("needs root (runc, eBPF, cgroups)");
        return None;
    }
    if !kernel_at_least(5, 11) {
        skip("before Linux 5.11 BPF maps count against RLIMIT_MEMLOCK: the DaemonSet needs SYS_RESOURCE there");
        return None;
    }
    let busybox = busybox();
    if busybox.is_none() {
        skip("no static busybox for the workload's rootfs");
    }
    busybox
}

#[test]
fn the_agent_records_a_pod_from_its_image_confined_as_the_daemonset_says() {
    let Some(busybox) = preconditions() else {
        return;
    };
    let daemonset = daemonset_agent();
    assert_eq!(
        daemonset.capabilities(),
        ["CAP_BPF", "CAP_PERFMON"],
        "the DaemonSet adds exactly BPF and PERFMON (SYS_RESOURCE is for kernels before 5.11)"
    );
    let mut mount_points = daemonset.mount_paths();
    mount_points.sort();
    assert_eq!(
        mount_points,
        image::MOUNT_POINTS,
        "the image has a directory for each of the DaemonSet's volumeMounts"
    );

    let pod = AgentPod::prepare(&daemonset);
    eprintln!(
        "image {}: layer {} bytes gzip'd",
        pod.image.pinned(),
        pod.image.written.layer.size
    );
    let pod_cgroups = PodCgroups::create(&cgroup2_mount());
    let agent = pod.start();
    let recording: Vec<String> = REPLICAS
        .iter()
        .map(|(name, _, _)| format!("recording pod {NS}/{name}"))
        .collect();
    wait_for_logs(&agent, &recording, Duration::from_secs(60));
    check_confinement(&agent);
    let healthz = http_get(pod.port, "/healthz");
    assert!(
        healthz.starts_with("HTTP/1.1 200"),
        "GET /healthz: {healthz}"
    );

    // The workload starts after the agent, in the first replica's container cgroup.
    let (_, uid, id) = REPLICAS[0];
    let workload_dir = pod.tmp.path().join("workload");
    fs::create_dir(&workload_dir).unwrap();
    let cgroup = format!("{}/cri-containerd-{id}.scope", pod_cgroup(uid));
    let workload = Runc::default()
        .run_detached(
            &bundle(&workload_dir, &busybox, &cgroup),
            &unique_id("profgen-agent-image-workload"),
        )
        .unwrap();

    // The agent's checkpoint, on the hostPath it writes, holds the workload's exec of busybox.
    let set = pod
        .var_lib_profgen
        .join("profiles/kube-system/coredns/coredns");
    let deadline = Instant::now() + Duration::from_secs(15);
    let rec = loop {
        if let Ok(rec) = Recording::load(set.join("recording.json")) {
            if busybox_execs(&rec) == 1 {
                break rec;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no recording with the workload's exec of busybox in {}:\n{}",
            set.display(),
            agent.logs()
        );
        thread::sleep(Duration::from_millis(200));
    };
    let paths: Vec<String> = rec.cgroups.iter().filter_map(|c| c.path.clone()).collect();
    assert_eq!(
        paths,
        [cgroup],
        "the workload's cgroup, named as on the host"
    );
    let record = &rec.cgroups[0];
    assert!(
        record.seccomp_filter_seen && record.entrypoint_seen,
        "{record:?}"
    );
    assert!(
        syscalls(record).contains(&"uname"),
        "the workload's first command (uname) is recorded: {:?}",
        syscalls(record)
    );
    eprintln!(
        "recorded by the confined agent: {} syscalls, {} processes, {} files",
        syscalls(record).len(),
        record.activity.processes.len(),
        record.activity.files.len()
    );

    wait_for_logs(&agent, &["window closed"], Duration::from_secs(60));
    assert!(
        set.join("seccomp.json").is_file(),
        "no profile set in {}",
        set.display()
    );
    assert!(
        pod.kubelet_seccomp.join("profgen/learning.json").is_file(),
        "the learning profile is installed on the writable kubelet seccomp hostPath"
    );
    drop(workload);
    agent.stop(Duration::from_secs(20)).unwrap();
    drop(pod_cgroups);
}

/// The same container under a default profile without the CAP_BPF entry, as a runtime whose
/// default allows bpf(2) only with CAP_SYS_ADMIN (containerd before 1.7): the agent stops at
/// once and says why in one line. This also shows the filter above is in force.
#[test]
fn without_the_cap_bpf_entry_the_agent_stops_with_one_line() {
    if preconditions().is_none() {
        return;
    }
    let pod = AgentPod::prepare(&daemonset_agent());
    pod.edit_config(|config| {
        let rules = config["linux"]["seccomp"]["syscalls"]
            .as_array_mut()
            .unwrap();
        let before = rules.len();
        rules.retain(|r| r["names"] != serde_json::json!(["bpf"]));
        assert_eq!(rules.len(), before - 1, "one rule allowed bpf alone");
    });
    let agent = pod.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while is_running(&agent) {
        assert!(
            Instant::now() < deadline,
            "the agent runs without bpf(2):\n{}",
            agent.logs()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let lines = agent_lines(&agent);
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("profgen: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line:\n{}", agent.logs());
    eprintln!("without the CAP_BPF entry: {}", errors[0]);
    for says in ["refused", "seccomp"] {
        assert!(
            errors[0].contains(says),
            "the error names {says}: {}",
            errors[0]
        );
    }
}

/// What the kernel says about the running agent: only BPF and PERFMON, no new privileges,
/// a seccomp filter, and a read-only root.
fn check_confinement(agent: &Container) {
    let pid = agent.pid().unwrap().expect("the agent runs");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in\n{status}"))
            .to_owned()
    };
    for set in ["CapEff:", "CapPrm:", "CapBnd:"] {
        let caps = u64::from_str_radix(&field(set), 16).unwrap();
        assert_eq!(caps, CAP_BPF_PERFMON, "{set} {caps:#x}");
    }
    assert_eq!(u64::from_str_radix(&field("CapInh:"), 16).unwrap(), 0);
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2", "a seccomp filter is in place");
    let mountinfo = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mountinfo
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .expect("a root mount");
    let options = root.split_whitespace().nth(5).unwrap();
    assert!(options.split(',').any(|o| o == "ro"), "root mount: {root}");
}

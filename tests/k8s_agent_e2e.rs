//! `profgen agent`, `profgen pull` and `profgen record --pod` end to end, on real runc
//! containers placed where a kubelet (systemd driver, containerd) puts a pod's containers, with
//! the API served by a local replay of a real kind cluster's responses.
//!
//! The pods are the two coredns replicas of the kind capture (node `v1.36-control-plane`);
//! each container runs busybox under the learning seccomp profile, in the cgroup named by the
//! pod's UID and its container's id from the capture. The agent is started before the
//! containers, as on a node where the pod cgroup exists before its first container: what the
//! containers do from their first syscall must be in the profile.

#[path = "support/mod.rs"]
mod support;

use std::{
    collections::BTreeMap,
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use profgen::{
    k8s::profiles::Index,
    model::{Abi, Recording},
    verify::runc::{unique_id, Container, Runc},
};
use support::{cluster::*, *};

// ---------------------------------------------------------------------------------------
// The agent process.

struct Agent {
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
}

impl Agent {
    fn start(profgen: &Path, kubeconfig: &Path, args: &[&str]) -> Agent {
        let mut child = Command::new(profgen)
            .arg("agent")
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (pipe, log) = (child.stderr.take().unwrap(), stderr.clone());
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("agent: {line}");
                log.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Agent {
            child: Some(child),
            stderr,
        }
    }

    fn text(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the agent's stderr holds every one of `lines`.
    fn wait_for(&mut self, lines: &[&str], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !lines.iter().all(|l| self.text().contains(l)) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the agent exited ({status}):\n{}", self.text());
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not say {lines:?} within {timeout:?}:\n{}",
                self.text()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        wait_timeout(&mut child, timeout)
            .unwrap_or_else(|| panic!("the agent did not exit:\n{}", self.text()))
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.as_ref().unwrap().id().to_string();
        // Our own child, not yet reaped: the pid is still its.
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        self.wait(Duration::from_secs(30))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn allowed(profile: &serde_json::Value) -> Vec<String> {
    profile["syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
        .flat_map(|r| r["names"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect()
}

/// Checks one profile set: both replicas merged, each cgroup the right container, the start of
/// the container included, runc's own set-up left out.
fn check_set(dir: &Path, index: &Index) {
    let set = index
        .sets
        .iter()
        .find(|s| s.dir == "kube-system/coredns/coredns")
        .unwrap_or_else(|| panic!("no kube-system/coredns/coredns set in {index:#?}"));
    assert_eq!(set.workload.kind, "Deployment", "{set:#?}");
    assert_eq!(set.workload.name, "coredns");
    assert_eq!(
        set.pods,
        REPLICAS
            .iter()
            .map(|(name, _, _)| format!("{NS}/{name}"))
            .collect::<Vec<_>>()
    );
    let set_dir = dir.join(&set.dir);
    let rec = Recording::load(set_dir.join("recording.json")).unwrap();
    let paths: Vec<String> = rec.cgroups.iter().filter_map(|c| c.path.clone()).collect();
    for (_, uid, id) in REPLICAS {
        let want = format!("{}/cri-containerd-{id}.scope", pod_cgroup(uid));
        assert!(
            paths.contains(&want),
            "{want} missing from the set's cgroups {paths:?}"
        );
    }
    assert_eq!(paths.len(), 2, "only the two coredns containers: {paths:?}");
    let profile: serde_json::Value =
        serde_json::from_slice(&fs::read(set_dir.join("seccomp.json")).unwrap()).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    let names = allowed(&profile);
    for want in ["execve", "uname", "nanosleep", "read", "openat"] {
        let found = names.iter().any(|n| n == want)
            || (want == "nanosleep" && names.iter().any(|n| n == "clock_nanosleep"));
        assert!(found, "{want} missing from the profile: {names:?}");
    }
    for setup in ["pivot_root", "mount", "sethostname"] {
        assert!(
            !names.iter().any(|n| n == setup),
            "runc's set-up call {setup} leaked into the profile"
        );
    }
    assert!(rec
        .cgroups
        .iter()
        .all(|c| c.seccomp_filter_seen && c.entrypoint_seen));
    assert_eq!(busybox_execs(&rec), 2, "activity of both containers");
    // runc moving each container's own init in is the start, not a late join.
    assert!(rec.cgroups.iter().all(|c| !c.joined_after_handover));
    // Paths are resolved inside the container's root, which has no /usr (the host's /bin
    // is a link to /usr/bin: resolving on the host would say /usr/bin/busybox).
    for c in &rec.cgroups {
        for f in &c.activity.files {
            assert!(!f.path.as_bytes().starts_with(b"/usr/"), "host path: {f:?}");
        }
    }
    assert!(rec.allowed_syscalls().contains_key(&Abi::X86_64));
    assert!(set_dir.join("securitycontext.md").is_file());
    // What Kubernetes needs, per workload container: the AppArmor profile, a NetworkPolicy
    // selecting the replicas by their shared labels, and the patch wiring both profiles in.
    for file in [
        "apparmor.profile",
        "networkpolicy.yaml",
        "securitycontext.yaml",
        "securitycontext-patch.yaml",
    ] {
        assert!(
            set.files.iter().any(|f| f == file),
            "{file} not in {set:#?}"
        );
    }
    let apparmor = fs::read_to_string(set_dir.join("apparmor.profile")).unwrap();
    assert!(
        apparmor.contains("profile profgen-kube-system-coredns-coredns "),
        "{apparmor}"
    );
    assert!(apparmor.contains("/bin/busybox ix,"), "{apparmor}");
    profgen::verify::apparmor::parser::check(&apparmor)
        .unwrap_or_else(|e| panic!("apparmor_parser refuses the set's profile: {e}\n{apparmor}"));
    let policy: k8s_openapi::api::networking::v1::NetworkPolicy =
        serde_norway::from_str(&fs::read_to_string(set_dir.join("networkpolicy.yaml")).unwrap())
            .unwrap();
    assert_eq!(
        policy
            .spec
            .unwrap()
            .pod_selector
            .unwrap()
            .match_labels
            .unwrap(),
        [("k8s-app".to_owned(), "kube-dns".to_owned())]
            .into_iter()
            .collect()
    );
    // What `profgen verify --security-context` reads.
    profgen::verify::security_context::load(&set_dir.join("securitycontext.yaml"))
        .expect("the set's securitycontext.yaml is a securityContext");
    let patch = fs::read_to_string(set_dir.join("securitycontext-patch.yaml")).unwrap();
    for wired in [
        "localhostProfile: profgen/kube-system/coredns/coredns/seccomp.json",
        "localhostProfile: profgen-kube-system-coredns-coredns",
        "kind: Deployment",
    ] {
        assert!(patch.contains(wired), "no `{wired}` in\n{patch}");
    }
}

/// What the root tests share: the API replaying the captures, a kubeconfig naming it, a
/// static busybox for the rootfs, and the captured pods' cgroups, made as a kubelet makes them
/// before a pod's first container (held by one test at a time). `None`, with the reason
/// printed, when a prerequisite is missing (a failure under CI=true).
struct Node {
    profgen: PathBuf,
    busybox: PathBuf,
    tmp: tempfile::TempDir,
    api: Replay,
    kubeconfig: PathBuf,
    pod_cgroups: PodCgroups,
}

fn node() -> Option<Node> {
    if !is_root() {
        skip("needs root (eBPF, runc, cgroups)");
        return None;
    }
    let fixtures = fixtures();
    let Some(busybox) = busybox() else {
        skip("no static busybox for the container's rootfs");
        return None;
    };
    let tmp = tempfile::tempdir().unwrap();
    let api = serve_api(&fixtures);
    let kubeconfig = kubeconfig(tmp.path(), &api.url);
    Some(Node {
        profgen: profgen_binary(),
        busybox,
        pod_cgroups: PodCgroups::create(&cgroup2_mount()),
        tmp,
        api,
        kubeconfig,
    })
}

#[test]
fn agent_records_pods_from_their_start_and_pull_collects_them() {
    let Some(Node {
        profgen,
        busybox,
        tmp,
        api,
        kubeconfig,
        pod_cgroups,
    }) = node()
    else {
        return;
    };

    let (state, output, pulled) = (
        tmp.path().join("state"),
        tmp.path().join("output"),
        tmp.path().join("profiles"),
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--duration",
        "10s",
        "--namespace",
        NS,
        "--selector",
        "k8s-app=kube-dns",
        "--node",
        NODE,
        "--checkpoint",
        "2s",
        "--state",
        state.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--listen",
        &listen,
    ];
    let mut agent = Agent::start(&profgen, &kubeconfig, &args);
    let recording: Vec<String> = REPLICAS
        .iter()
        .map(|(name, _, _)| format!("recording pod {NS}/{name}"))
        .collect();
    let recording: Vec<&str> = recording.iter().map(String::as_str).collect();
    agent.wait_for(&recording, Duration::from_secs(60));

    let runc = Runc::default();
    let containers: Vec<Container> = REPLICAS
        .iter()
        .enumerate()
        .map(|(i, (_, uid, id))| {
            let dir = tmp.path().join(format!("bundle{i}"));
            fs::create_dir_all(&dir).unwrap();
            let cgroups_path = format!("{}/cri-containerd-{id}.scope", pod_cgroup(uid));
            let b = bundle(&dir, &busybox, &cgroups_path);
            runc.run_detached(&b, &unique_id("profgen-k8s-e2e"))
                .unwrap_or_else(|e| panic!("starting replica {i}: {e}"))
        })
        .collect();

    // A checkpoint during the window already holds the containers' activity (the exec of
    // busybox), so an agent killed now would lose nothing already recorded.
    let checkpointed = output.join("kube-system/coredns/coredns/recording.json");
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let execs = Recording::load(&checkpointed)
            .map(|rec| busybox_execs(&rec))
            .unwrap_or(0);
        if execs == REPLICAS.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint with both containers' exec of busybox ({execs}): {}\n{}",
            fs::read_to_string(&checkpointed).unwrap_or_else(|e| e.to_string()),
            agent.text()
        );
        thread::sleep(Duration::from_millis(200));
    }

    agent.wait_for(&["window closed"], Duration::from_secs(60));
    drop(containers);

    // The files under --output.
    let index: Index =
        serde_json::from_slice(&fs::read(output.join("index.json")).unwrap()).unwrap();
    assert_eq!(index.node, NODE);
    check_set(&output, &index);

    // Over HTTP, into profiles/<ns>/<workload>/.
    let out = Command::new(&profgen)
        .args(["pull", "--from", &format!("http://{listen}"), "--out"])
        .arg(&pulled)
        .output()
        .unwrap();
    assert_success("profgen pull", &out);
    let pulled_index: Index =
        serde_json::from_slice(&fs::read(pulled.join("index.json")).unwrap()).unwrap();
    check_set(&pulled, &pulled_index);
    assert_eq!(
        fs::read(pulled.join("kube-system/coredns/coredns/seccomp.json")).unwrap(),
        fs::read(output.join("kube-system/coredns/coredns/seccomp.json")).unwrap(),
        "one node: pulling changes nothing"
    );

    let status = agent.terminate();
    assert!(
        status.success(),
        "agent after SIGTERM: {status}\n{}",
        agent.text()
    );

    // A restarted agent resumes the window (already over) from its state: the profiles are
    // written again from what was saved, with nothing lost.
    fs::remove_dir_all(&output).unwrap();
    let restart_args: Vec<&str> = args[..args.len() - 2].to_vec();
    let mut again = Agent::start(&profgen, &kubeconfig, &restart_args);
    let status = again.wait(Duration::from_secs(60));
    assert!(
        status.success(),
        "restarted agent: {status}\n{}",
        again.text()
    );
    assert!(
        again.text().contains("resumed 2 pod recording(s)"),
        "{}",
        again.text()
    );
    let index: Index =
        serde_json::from_slice(&fs::read(output.join("index.json")).unwrap()).unwrap();
    check_set(&output, &index);

    let requests = api.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("watch=true") && r.contains("spec.nodeName%3Dv1.36-control-plane")),
        "the agent watches only its node's pods: {requests:?}"
    );
    drop(pod_cgroups);
}

#[test]
fn record_pod_writes_one_set_per_container() {
    let Some(node) = node() else {
        return;
    };
    let (_, uid, id) = REPLICAS[0];
    let set = record_first_replica(&node, &[], |container| {
        // Someone runs `kubectl exec` during the window: runc exec's own set-up (joining the
        // container's namespaces with setns) runs in the container's cgroup after the
        // hand-over; it must stay out of the profile like runc's set-up at the start.
        thread::sleep(Duration::from_millis(500));
        let exec = container
            .exec(&["/bin/busybox", "true"], Duration::from_secs(20))
            .expect("runc exec");
        assert_eq!(exec.code, Some(0), "runc exec: {exec:?}");
    });
    let rec = Recording::load(set.join("recording.json")).unwrap();
    let paths: Vec<String> = rec.cgroups.iter().filter_map(|c| c.path.clone()).collect();
    assert_eq!(
        paths,
        [format!("{}/cri-containerd-{id}.scope", pod_cgroup(uid))]
    );
    assert!(!rec.syscalls_only);
    let profile: serde_json::Value =
        serde_json::from_slice(&fs::read(set.join("seccomp.json")).unwrap()).unwrap();
    assert!(allowed(&profile).iter().any(|n| n == "uname"));
    // runc exec's init drops privileges before its filter (capset, setgroups), as runc
    // run's did; busybox never does. The recording shows it: the profile allows both anyway,
    // for runtimes that make them after the filter (docs/seccomp.md).
    let names: Vec<&String> = rec.cgroups[0].syscalls.values().flatten().collect();
    for setup in ["capset", "setgroups"] {
        assert!(
            !names.iter().any(|n| *n == setup),
            "runc exec's set-up ({setup}) leaked into the recording: {names:?}"
        );
    }
    assert!(!rec.cgroups[0].joined_after_handover);
    assert!(set.join("apparmor.profile").is_file());
}

/// `--syscalls-only` reaches the kernel (no events: no file facts) and the set: its seccomp
/// profile still has the container's start, and nothing is made from facts not recorded.
#[test]
fn record_pod_syscalls_only_writes_the_seccomp_profile_alone() {
    let Some(node) = node() else {
        return;
    };
    let set = record_first_replica(&node, &["--syscalls-only"], |_| {});
    let rec = Recording::load(set.join("recording.json")).unwrap();
    assert!(rec.syscalls_only);
    assert_eq!(rec.cgroups.len(), 1, "{:?}", rec.cgroups);
    assert!(
        rec.cgroups[0].activity.processes.is_empty() && rec.cgroups[0].activity.files.is_empty(),
        "no exit programs, no facts: {:?}",
        rec.cgroups[0].activity
    );
    let profile: serde_json::Value =
        serde_json::from_slice(&fs::read(set.join("seccomp.json")).unwrap()).unwrap();
    assert!(allowed(&profile).iter().any(|n| n == "uname"));
    let mut files: Vec<String> = fs::read_dir(&set)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "kustomization.yaml",
            "recording.json",
            "seccomp.json",
            "securitycontext-patch.yaml"
        ]
    );
}

/// `profgen record --pod` of the first replica for 6 s, `extra` arguments added, while its
/// container (started once the recorder is ready) runs and `during` does its part; the
/// profile set it wrote.
fn record_first_replica(node: &Node, extra: &[&str], during: impl FnOnce(&Container)) -> PathBuf {
    let (name, uid, id) = REPLICAS[0];
    let out_dir = node.tmp.path().join("profiles");
    let ready = node.tmp.path().join("ready");
    let mut record = Command::new(&node.profgen)
        .args([
            "record",
            "--pod",
            &format!("{NS}/{name}"),
            "--duration",
            "6s",
        ])
        .args(extra)
        .arg("--out-dir")
        .arg(&out_dir)
        .arg("--ready-file")
        .arg(&ready)
        .args(["--node", NODE])
        .env("KUBECONFIG", &node.kubeconfig)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(record.try_wait().unwrap().is_none(), "record exited early");
        assert!(Instant::now() < deadline, "record was not ready");
        thread::sleep(Duration::from_millis(50));
    }
    let dir = node.tmp.path().join("bundle");
    fs::create_dir_all(&dir).unwrap();
    let b = bundle(
        &dir,
        &node.busybox,
        &format!("{}/cri-containerd-{id}.scope", pod_cgroup(uid)),
    );
    let container = Runc::default()
        .run_detached(&b, &unique_id("profgen-k8s-e2e"))
        .unwrap();
    during(&container);
    let status = wait_timeout(&mut record, Duration::from_secs(60)).expect("record exits");
    drop(container);
    assert!(status.success(), "profgen record --pod: {status}");
    out_dir.join("kube-system/coredns/coredns")
}

/// Bad input needs no root: the API is asked before anything is loaded into the kernel.
#[test]
fn record_pod_refuses_bad_input_in_one_line() {
    let fixtures = fixtures();
    let profgen = profgen_binary();
    let tmp = tempfile::tempdir().unwrap();
    let api = serve_api(&fixtures);
    let kubeconfig = kubeconfig(tmp.path(), &api.url);
    let run = |args: &[&str], env: &[(&str, &Path)]| {
        let mut cmd = Command::new(&profgen);
        cmd.arg("record").args(args).args(["--duration", "1s"]);
        cmd.env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("HOME", tmp.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        output(&mut cmd)
    };
    let kc: &[(&str, &Path)] = &[("KUBECONFIG", &kubeconfig)];
    type Case<'a> = (Vec<&'a str>, &'a [(&'a str, &'a Path)], Vec<&'a str>);
    let cases: BTreeMap<&str, Case> = BTreeMap::from([
        (
            "typo",
            (
                vec![
                    "--pod",
                    "kube-system/coredns-589f44dc88-4fpnz",
                    "--node",
                    NODE,
                ],
                kc,
                vec!["not found", "did you mean", "coredns-589f44dc88-4fpns"],
            ),
        ),
        (
            "other node",
            (
                vec![
                    "--pod",
                    "kube-system/coredns-589f44dc88-4fpns",
                    "--node",
                    "worker-2",
                ],
                kc,
                vec![
                    "runs on node v1.36-control-plane",
                    "not on this node (worker-2)",
                ],
            ),
        ),
        (
            "no kubeconfig",
            (
                vec!["--pod", "kube-system/coredns-589f44dc88-4fpns"],
                &[],
                vec!["no Kubernetes credentials"],
            ),
        ),
    ]);
    for (what, (args, env, mentions)) in cases {
        let out = run(&args, env);
        assert_error(what, &out, EXIT_ERROR, &mentions);
    }

    // An agent that cannot load eBPF programs says so first, even with the API reachable.
    if is_root() && Command::new("runuser").arg("--help").output().is_ok() {
        let out = output(
            Command::new("runuser")
                .args(["-u", "nobody", "--"])
                .arg(&profgen)
                .args(["agent", "--duration", "1s", "--state", "/nonexistent/state"])
                .env("KUBECONFIG", &kubeconfig),
        );
        assert_error(
            "agent without privileges",
            &out,
            EXIT_NO_PERMISSION,
            &["CAP_BPF"],
        );
    }
}

//! A node of the captured kind cluster, replayed: its API server (the captured responses,
//! byte for byte, through `profgen_testkit::fake_api`), the two coredns replicas' pod cgroups made as a kubelet makes them, and
//! busybox containers in them. Shared by the agent's tests (`k8s_agent_e2e`, `agent_image`).

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    sync::Mutex,
};

use profgen::model::Recording;
use profgen_testkit::{
    busybox as testkit_busybox,
    fake_api::{self, Reply},
};

pub const NODE: &str = "v1.36-control-plane";
pub const NS: &str = "kube-system";
pub const PODLIST: &str = "k8s/kind-v1.36-kube-system-podlist.json";
pub const WATCH: &str = "k8s/kind-v1.36-kube-system-pods-watch-sendInitialEvents-bookmark.jsonl";
/// Both coredns replicas: (pod name, pod UID, coredns container id), from the capture.
pub const REPLICAS: [(&str, &str, &str); 2] = [
    (
        "coredns-589f44dc88-4fpns",
        "f78db027-d69e-485e-9a9e-a6dc7493b6d7",
        "d23296cf3c445ba94bd83b4f0a05d6229c024170e719ea9f8fef7bab8550a480",
    ),
    (
        "coredns-589f44dc88-lxdzt",
        "2992c3af-bd2e-4630-8719-c718669023ed",
        "d126bbc605a057dc4ee4d07b5a2e8750c65b3cde370f2653be0f757e30acbebf",
    ),
];
/// The container's first command makes `uname`, which neither runc's set-up nor busybox's
/// shell loop make: it is in the profile only if the container was recorded from its start.
pub const SCRIPT: &str = "/bin/busybox uname -a >/dev/null; \
    while :; do /bin/busybox cat /proc/self/status >/dev/null; /bin/busybox sleep 0.2; done";

/// The repository's captures (`tests/fixtures/`, provenance in its `SOURCES.md`).
pub fn fixtures() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for file in [PODLIST, WATCH] {
        assert!(
            dir.join(file).is_file(),
            "fixture {file} missing from {}",
            dir.display()
        );
    }
    dir
}

/// The cgroup2 mount (`/sys/fs/cgroup/unified` on this hybrid host).
pub fn cgroup2_mount() -> PathBuf {
    profgen::cgroup::cgroup2_mount().expect("a cgroup2 mount")
}

/// The pod cgroup as the kubelet's systemd driver names it (`-` in the UID becomes `_`).
pub fn pod_cgroup(uid: &str) -> String {
    format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        uid.replace('-', "_")
    )
}

// ---------------------------------------------------------------------------------------
// The API server: captured bodies, byte for byte.

/// The stand-in API server replaying the capture.
pub type Replay = fake_api::Api;

pub fn pod_json(podlist: &str, name: &str) -> Option<String> {
    let list: serde_json::Value = serde_json::from_str(podlist).unwrap();
    list["items"]
        .as_array()?
        .iter()
        .find(|p| p["metadata"]["name"] == name)
        .map(|p| {
            let mut p = p.clone();
            p["kind"] = "Pod".into();
            p["apiVersion"] = "v1".into();
            p.to_string()
        })
}

/// Serves the kube-system pods: list, get, and a watch that sends the captured initial
/// events and then stays open (a quiet cluster), as a real watch does. Anything else (the
/// ReplicaSet the agent asks for) is not found.
pub fn serve_api(fixtures: &Path) -> Replay {
    let podlist = fs::read_to_string(fixtures.join(PODLIST)).unwrap();
    let watch = fs::read_to_string(fixtures.join(WATCH)).unwrap();
    let pods = format!("/api/v1/namespaces/{NS}/pods");
    fake_api::serve(move |path, query| {
        let ok = |body| Reply::Json { status: 200, body };
        let missing = |group, resource, name| Reply::Json {
            status: 404,
            body: fake_api::not_found(group, resource, name),
        };
        if path == pods && query.contains("watch=true") {
            Reply::Watch(watch.clone())
        } else if path == pods {
            ok(podlist.clone())
        } else if let Some(name) = path.strip_prefix(&format!("{pods}/")) {
            pod_json(&podlist, name).map_or_else(|| missing("", "pods", name), ok)
        } else {
            missing("apps", "replicasets", path.rsplit('/').next().unwrap_or(""))
        }
    })
    .unwrap()
}

pub fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    fake_api::kubeconfig(dir, server, "").unwrap()
}

/// A kubeconfig naming a CA file as a pod's service account does: the client then trusts that
/// CA alone and needs no system trust store (the agent's image has none).
pub fn kubeconfig_with_ca(dir: &Path, server: &str, ca: &Path) -> PathBuf {
    let ca = format!("    certificate-authority: {}\n", ca.display());
    fake_api::kubeconfig(dir, server, &ca).unwrap()
}

// ---------------------------------------------------------------------------------------
// The containers.

pub fn busybox() -> Option<PathBuf> {
    testkit_busybox::static_busybox()
}

/// A bundle whose container runs [`SCRIPT`] in `cgroups_path`, under the learning profile.
pub fn bundle(dir: &Path, busybox: &Path, cgroups_path: &str) -> PathBuf {
    let bundle = testkit_busybox::bundle(dir, busybox, SCRIPT).unwrap();
    testkit_busybox::set_cgroups_path(&bundle, cgroups_path).unwrap();
    bundle
}

/// Pod cgroups made for the test, removed (deepest first) at the end. Held by one test at a
/// time: the tests name their containers after the same captured pods, and two runc
/// containers in one cgroup are not what a kubelet makes (the second one's set-up would run
/// in a cgroup whose filter is already in place, and count as the workload's).
pub struct PodCgroups {
    made: Vec<PathBuf>,
    _one_test_at_a_time: std::sync::MutexGuard<'static, ()>,
}

pub static POD_CGROUPS: Mutex<()> = Mutex::new(());

impl PodCgroups {
    pub fn create(mount: &Path) -> Self {
        let guard = POD_CGROUPS.lock().unwrap_or_else(|e| e.into_inner());
        let mut made = Vec::new();
        for (_, uid, _) in REPLICAS {
            let mut path = mount.to_owned();
            for part in pod_cgroup(uid).trim_start_matches('/').split('/') {
                path.push(part);
                if !path.exists() {
                    fs::create_dir(&path).unwrap();
                    made.push(path.clone());
                }
            }
        }
        Self {
            made,
            _one_test_at_a_time: guard,
        }
    }
}

impl Drop for PodCgroups {
    fn drop(&mut self) {
        // runc (cgroupfs driver, hybrid host) also makes the pod's parents in every v1
        // hierarchy, and removes only the ones it made for the last container: the shared
        // `kubepods…` parents of two replicas stay behind unless removed here. Only empty
        // directories can go, so nothing else's cgroup is touched.
        let v1: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("kubepods.slice").is_dir() && !p.ends_with("unified"))
            .collect();
        for hierarchy in v1 {
            for (_, uid, _) in REPLICAS {
                let mut path = pod_cgroup(uid);
                while path.len() > 1 {
                    let _ = fs::remove_dir(hierarchy.join(path.trim_start_matches('/')));
                    path.truncate(path.rfind('/').unwrap_or(0));
                }
            }
        }
        let mut dirs = self.made.clone();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            // Empty once the containers are deleted; a leftover is reported, not hidden.
            if let Err(e) = fs::remove_dir(&d) {
                eprintln!("could not remove {}: {e}", d.display());
            }
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How many of the recording's cgroups executed /bin/busybox (the containers' entrypoint).
pub fn busybox_execs(rec: &Recording) -> usize {
    testkit_busybox::busybox_cgroups(rec)
}

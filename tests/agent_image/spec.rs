//! The OCI runtime config a kubelet and containerd would give the agent's container, made
//! from `deploy/daemonset.yaml`: its args, env, securityContext (capabilities, user,
//! read-only root, no new privileges, seccomp profile), volumeMounts and limits.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{Container, SecurityContext, Volume},
};
use serde_json::{json, Value};

/// Where the test mounts its credentials (a kubeconfig naming the replayed API, and its CA),
/// read-only; a pod has its service account's at /var/run/secrets/kubernetes.io/serviceaccount.
pub const CREDENTIALS: &str = "/etc/profgen";

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The DaemonSet's agent container and the pod's volumes.
pub struct DaemonSetAgent {
    container: Container,
    volumes: Vec<Volume>,
}

pub fn daemonset_agent() -> DaemonSetAgent {
    let path = deploy().join("daemonset.yaml");
    let ds: DaemonSet = serde_norway::from_str(&fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let pod = ds.spec.unwrap().template.spec.unwrap();
    let container = pod
        .containers
        .into_iter()
        .find(|c| c.name == "agent")
        .expect("a container named agent");
    DaemonSetAgent {
        container,
        volumes: pod.volumes.unwrap_or_default(),
    }
}

impl DaemonSetAgent {
    fn security_context(&self) -> &SecurityContext {
        self.container
            .security_context
            .as_ref()
            .expect("securityContext")
    }

    /// The capability sets: drop ALL, then what `add` names, as the runtime spells them.
    pub fn capabilities(&self) -> Vec<String> {
        let caps = self.security_context().capabilities.as_ref().unwrap();
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
        let mut add: Vec<String> = caps
            .add
            .iter()
            .flatten()
            .map(|c| format!("CAP_{c}"))
            .collect();
        add.sort();
        add
    }

    pub fn mount_paths(&self) -> Vec<String> {
        self.container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.clone())
            .collect()
    }

    /// The seccomp profile the runtime applies: the file in `deploy/` standing for it.
    fn seccomp(&self) -> Value {
        let profile = self
            .security_context()
            .seccomp_profile
            .as_ref()
            .expect("seccompProfile");
        let file = match (profile.type_.as_str(), &profile.localhost_profile) {
            ("RuntimeDefault", _) => "runtime-default-seccomp.json".to_owned(),
            ("Localhost", Some(path)) => Path::new(path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
            other => panic!("seccompProfile {other:?}: no profile in deploy/ stands for it"),
        };
        let path = deploy().join(file);
        serde_json::from_slice(&fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn limits(&self) -> Value {
        let limits = self
            .container
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .expect("resources.limits");
        let memory = bytes(&limits["memory"].0);
        let cpu_millis: i64 = limits["cpu"].0.trim_end_matches('m').parse().unwrap();
        json!({
            "memory": {"limit": memory},
            "cpu": {"quota": cpu_millis * 100, "period": 100_000},
        })
    }
}

/// `256Mi`, `16Mi`, `1Gi` in bytes.
fn bytes(quantity: &str) -> i64 {
    let (n, unit) = quantity.split_at(quantity.find(|c: char| !c.is_ascii_digit()).unwrap());
    let n: i64 = n.parse().unwrap();
    match unit {
        "Ki" => n << 10,
        "Mi" => n << 20,
        "Gi" => n << 30,
        other => panic!("quantity unit {other:?}"),
    }
}

/// What differs from the cluster: the test's API, node, listener and host directories.
pub struct AgentSpec<'a> {
    pub entrypoint: Vec<String>,
    /// A directory holding `kubeconfig`, mounted at [`CREDENTIALS`].
    pub credentials: &'a Path,
    pub node: &'a str,
    pub namespace: &'a str,
    pub listen: String,
    /// hostPath → the directory the test mounts in its place.
    pub host_paths: Vec<(String, PathBuf)>,
    pub cgroups_path: String,
}

/// The DaemonSet's args with the window made short, the listener moved to the test's port,
/// and the agent narrowed to the replayed API's namespace and the coredns pods. A flag the
/// DaemonSet no longer has fails here rather than going unnoticed.
fn args(container: &Container, t: &AgentSpec) -> Vec<String> {
    let overrides = BTreeMap::from([
        ("--duration", "20s".to_owned()),
        ("--listen", t.listen.clone()),
    ]);
    let mut args: Vec<String> = container.args.clone().unwrap_or_default();
    for (flag, value) in &overrides {
        let arg = args
            .iter_mut()
            .find(|a| a.starts_with(&format!("{flag}=")))
            .unwrap_or_else(|| panic!("the DaemonSet's args have no {flag}="));
        *arg = format!("{flag}={value}");
    }
    args.extend([
        format!("--namespace={}", t.namespace),
        "--selector=k8s-app=kube-dns".to_owned(),
        "--checkpoint=2s".to_owned(),
    ]);
    t.entrypoint.iter().cloned().chain(args).collect()
}

/// The env: the DaemonSet's (NODE_NAME from the downward API), the image's PATH, and the
/// kubeconfig.
fn env(container: &Container, t: &AgentSpec) -> Vec<String> {
    let mut env = vec![
        "PATH=/usr/bin".to_owned(),
        format!("KUBECONFIG={CREDENTIALS}/kubeconfig"),
    ];
    for var in container.env.iter().flatten() {
        let field = var
            .value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_str());
        match (field, &var.value) {
            (Some("spec.nodeName"), _) => env.push(format!("{}={}", var.name, t.node)),
            (None, Some(value)) => env.push(format!("{}={value}", var.name)),
            other => panic!("env {}: {other:?}", var.name),
        }
    }
    env
}

fn mounts(agent: &DaemonSetAgent, t: &AgentSpec) -> Vec<Value> {
    let mut mounts = Vec::new();
    for m in agent.container.volume_mounts.iter().flatten() {
        let volume = agent
            .volumes
            .iter()
            .find(|v| v.name == m.name)
            .unwrap_or_else(|| panic!("no volume {}", m.name));
        let access = if m.read_only == Some(true) {
            "ro"
        } else {
            "rw"
        };
        if let Some(host) = &volume.host_path {
            let source = t
                .host_paths
                .iter()
                .find(|(path, _)| *path == host.path)
                .map(|(_, dir)| dir.clone())
                .unwrap_or_else(|| PathBuf::from(&host.path));
            mounts.push(json!({
                "destination": m.mount_path, "type": "bind", "source": source,
                "options": ["rbind", "rprivate", access],
            }));
        } else if let Some(dir) = &volume.empty_dir {
            assert_eq!(dir.medium.as_deref(), Some("Memory"), "{}", m.name);
            let size = dir.size_limit.as_ref().map(|q| bytes(&q.0)).unwrap();
            mounts.push(json!({
                "destination": m.mount_path, "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", access, format!("size={size}")],
            }));
        } else {
            panic!(
                "volume {}: only hostPath and emptyDir are translated",
                m.name
            );
        }
    }
    mounts.push(json!({
        "destination": CREDENTIALS, "type": "bind", "source": t.credentials,
        "options": ["rbind", "ro"],
    }));
    mounts
}

/// The whole config.json: runc's defaults (proc, sysfs read-only, /dev, masked paths)
/// with the DaemonSet's container on top.
pub fn agent_spec(agent: &DaemonSetAgent, t: &AgentSpec) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("runc")
        .arg("spec")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "runc spec: {out:?}");
    let mut spec: Value =
        serde_json::from_slice(&fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    let sc = agent.security_context();
    let caps = agent.capabilities();
    let process = &mut spec["process"];
    process["terminal"] = false.into();
    process["args"] = json!(args(&agent.container, t));
    process["env"] = json!(env(&agent.container, t));
    process["user"] = json!({"uid": sc.run_as_user.expect("runAsUser"), "gid": 0});
    process["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
        "inheritable": [], "ambient": [],
    });
    process["noNewPrivileges"] = (sc.allow_privilege_escalation == Some(false)).into();
    spec["root"]["readonly"] = (sc.read_only_root_filesystem == Some(true)).into();
    spec["mounts"]
        .as_array_mut()
        .unwrap()
        .extend(mounts(agent, t));
    let linux = &mut spec["linux"];
    // The host's network: the replayed API listens on its loopback.
    linux["namespaces"] = json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
    ]);
    linux["seccomp"] = agent.seccomp();
    linux["cgroupsPath"] = t.cgroups_path.clone().into();
    linux["resources"]
        .as_object_mut()
        .unwrap()
        .extend(agent.limits().as_object().unwrap().clone());
    spec
}

/// The running kernel is at least `major.minor`.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    version >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_in_bytes() {
        assert_eq!(bytes("256Mi"), 256 << 20);
        assert_eq!(bytes("16Mi"), 16 << 20);
        assert_eq!(bytes("1Gi"), 1 << 30);
    }
}

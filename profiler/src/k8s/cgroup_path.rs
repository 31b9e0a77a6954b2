//! cgroup path → pod, container, runtime, QoS class and cgroup driver.
//!
//! The kubelet and the container runtimes name cgroups by convention, never by API, so this is
//! the only place that knows those conventions. Inputs are whatever a tool shows: a
//! `/proc/<pid>/cgroup` line (`0::/…`, `4:pids:/…`), a path below a cgroup mount, or an
//! absolute `/sys/fs/cgroup/<controller>/…/cgroup.procs` path. Layouts handled:
//!
//! * systemd driver: `kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/`
//!   then `cri-containerd-<id>.scope`, `crio-<id>.scope` (or `crio-conmon-<id>.scope`, the
//!   monitor), `docker-<id>.scope`; Guaranteed pods have no `<qos>` level; kind with a
//!   `kubelet.slice` root prefixes every slice name with `kubelet-`.
//! * the `slice:runtime:id` cgroupsPath some containerd set-ups use under `containerd.service`.
//! * cgroupfs driver: `kubepods/<qos>/pod<uid>/<id>` (`crio-<id>` for CRI-O), Guaranteed
//!   pods directly below `kubepods`.
//! * nesting: anything before the pod's cgroups (a kind/minikube node seen from the host,
//!   `/kubelet` cgroup roots, cgroup-namespace-relative `/../..`) is kept as a prefix.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The container runtime a container cgroup name belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerRuntime {
    Containerd,
    CriO,
    Docker,
    /// A bare 64-hex id (cgroupfs driver): containerd and Docker name cgroups the same way.
    /// The pod's `containerStatuses[].containerID` scheme tells them apart.
    Unknown,
}

impl ContainerRuntime {
    /// The scheme of `containerStatuses[].containerID` (`containerd://…`).
    pub fn from_status_scheme(scheme: &str) -> Self {
        match scheme {
            "containerd" => Self::Containerd,
            "cri-o" => Self::CriO,
            "docker" => Self::Docker,
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for ContainerRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Containerd => "containerd",
            Self::CriO => "cri-o",
            Self::Docker => "docker",
            Self::Unknown => "unknown",
        })
    }
}

/// The pod's QoS class, which picks its parent cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    /// As `status.qosClass` spells it.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Guaranteed" => Some(Self::Guaranteed),
            "Burstable" => Some(Self::Burstable),
            "BestEffort" => Some(Self::BestEffort),
            _ => None,
        }
    }

    /// The cgroup level name (`None` for Guaranteed, which has no level of its own).
    pub fn level(self) -> Option<&'static str> {
        match self {
            Self::Guaranteed => None,
            Self::Burstable => Some("burstable"),
            Self::BestEffort => Some("besteffort"),
        }
    }
}

/// The kubelet's cgroup driver, as seen in the naming.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupDriver {
    /// `*.slice` / `*.scope` units, including the `slice:runtime:id` cgroupsPath form.
    Systemd,
    Cgroupfs,
}

/// Which hierarchy a `/proc/<pid>/cgroup` line belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    V1,
    V2,
}

/// A pod-level cgroup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodCgroup {
    /// `metadata.uid` with dashes (the systemd form's underscores turned back), or, for a
    /// static pod, the 32-hex `kubernetes.io/config.hash`.
    pub uid: String,
    /// `None` when the path does not show it (a cgroup-namespace-relative `/../../pod…`).
    pub qos: Option<QosClass>,
    pub driver: CgroupDriver,
    /// The pod cgroup's own path (prefix included, no trailing `/`). For the
    /// `slice:runtime:id` form the pod has no directory of its own: this is the slice name.
    pub path: String,
}

/// What a container-level cgroup holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerRole {
    /// The container's processes (the pause/sandbox container included: it is a container
    /// cgroup like any other; only the pod's status tells them apart).
    Container,
    /// CRI-O's `conmon` monitor for the container: not the workload.
    Monitor,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCgroup {
    /// 64 hex digits, as in `containerStatuses[].containerID` after the `scheme://`.
    pub id: String,
    pub runtime: ContainerRuntime,
    pub role: ContainerRole,
    /// The container cgroup's path (prefix included).
    pub path: String,
}

/// Everything a cgroup path says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupInfo {
    /// From the `N:controllers:` prefix of a `/proc/<pid>/cgroup` line; `None` for a bare path.
    pub version: Option<CgroupVersion>,
    /// The path, cleaned: no `/proc` line prefix, no `/sys/fs/cgroup/<controller>`, no
    /// trailing `cgroup.procs`-like file.
    pub path: String,
    /// What sits above the kubelet's cgroups: a kind/minikube node (`/system.slice/docker-
    /// <node>.scope/kubelet`, `/docker/<node>`), a `kubelet.slice` root, `containerd.service`.
    pub prefix: String,
    pub pod: Option<PodCgroup>,
    pub container: Option<ContainerCgroup>,
    /// A cgroup below the container's (`/container` of newer CRI-O, a process's own child).
    pub below_container: Option<String>,
}

impl CgroupInfo {
    /// A cgroup of a pod's workload container (not a pod-level cgroup, not a monitor).
    pub fn is_pod_container(&self) -> bool {
        self.pod.is_some()
            && self
                .container
                .as_ref()
                .is_some_and(|c| c.role == ContainerRole::Container)
    }
}

const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
    "systemd",
    "unified",
];

/// Parses a cgroup path or `/proc/<pid>/cgroup` line. Never fails: a path that names no pod
/// and no container gives a [`CgroupInfo`] with both `None`.
pub fn parse(input: &str) -> CgroupInfo {
    let (version, raw) = split_proc_line(input.trim());
    let path = clean_path(raw);
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let mut info = CgroupInfo {
        version,
        path: format!("/{}", comps.join("/")),
        ..Default::default()
    };

    if let Some((idx, pod_comp)) = comps
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, c)| pod_component(c).map(|p| (i, p)))
    {
        let driver = pod_comp.driver;
        let qos = match driver {
            CgroupDriver::Systemd => pod_comp.qos,
            CgroupDriver::Cgroupfs => cgroupfs_qos(&comps[..idx]),
        };
        let root = kubepods_root(&comps[..idx]).unwrap_or(idx);
        info.prefix = join(&comps[..root]);
        info.pod = Some(PodCgroup {
            uid: pod_comp.uid,
            qos,
            driver,
            path: join(&comps[..=idx]),
        });
        if let Some((rt, id)) = pod_comp.inline_container {
            // `kubepods-…-pod<uid>.slice:cri-containerd:<id>`: one component, both levels.
            info.container = Some(ContainerCgroup {
                id,
                runtime: rt,
                role: ContainerRole::Container,
                path: join(&comps[..=idx]),
            });
            info.below_container = rest(&comps[idx + 1..]);
        } else if let Some((rt, role, id)) = comps
            .get(idx + 1)
            .and_then(|c| container_component(c, true))
        {
            info.container = Some(ContainerCgroup {
                id,
                runtime: rt,
                role,
                path: join(&comps[..=idx + 1]),
            });
            info.below_container = rest(&comps[idx + 2..]);
        }
        return info;
    }

    // Not a pod: a runtime's container outside Kubernetes (`/docker/<id>`,
    // `system.slice/docker-<id>.scope`), or a monitor, or nothing.
    for (i, c) in comps.iter().enumerate() {
        let bare_allowed = i > 0 && comps[i - 1] == "docker";
        if let Some((rt, role, id)) = container_component(c, bare_allowed) {
            let runtime = if bare_allowed {
                ContainerRuntime::Docker
            } else {
                rt
            };
            info.prefix = join(&comps[..i]);
            info.container = Some(ContainerCgroup {
                id,
                runtime,
                role,
                path: join(&comps[..=i]),
            });
            info.below_container = rest(&comps[i + 1..]);
            break;
        }
    }
    info
}

/// Splits `N:controllers:/path` into the version and the path; anything else is a path.
fn split_proc_line(s: &str) -> (Option<CgroupVersion>, &str) {
    let mut parts = s.splitn(3, ':');
    if let (Some(n), Some(_ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && path.starts_with('/') {
            let version = if n == "0" {
                CgroupVersion::V2
            } else {
                CgroupVersion::V1
            };
            return (Some(version), path);
        }
    }
    (None, s)
}

fn clean_path(raw: &str) -> String {
    let mut comps: Vec<&str> = raw.split('/').filter(|c| !c.is_empty()).collect();
    // A path read from outside the reader's cgroup namespace starts with `..` levels.
    while comps.first() == Some(&"..") {
        comps.remove(0);
    }
    if comps.starts_with(&["sys", "fs", "cgroup"]) {
        comps.drain(..3);
        // A v1 hierarchy directory (`cpu,cpuacct`, `memory`, `unified`) is a mount, not a
        // cgroup.
        if let Some(first) = comps.first() {
            if first
                .split(',')
                .all(|c| V1_CONTROLLERS.contains(&c.trim_start_matches("name=")))
            {
                comps.remove(0);
            }
        }
    }
    // Interface files (`cgroup.procs`, `cgroup.controllers`, `tasks`) name their directory.
    if let Some(last) = comps.last() {
        if last.starts_with("cgroup.") || *last == "tasks" {
            comps.pop();
        }
    }
    format!("/{}", comps.join("/"))
}

struct PodComponent {
    uid: String,
    driver: CgroupDriver,
    /// Only known from the name for the systemd driver.
    qos: Option<QosClass>,
    inline_container: Option<(ContainerRuntime, String)>,
}

fn pod_component(c: &str) -> Option<PodComponent> {
    // cgroupfs: `pod<uid>`.
    if let Some(uid) = c.strip_prefix("pod") {
        return is_pod_uid(uid).then(|| PodComponent {
            uid: uid.to_owned(),
            driver: CgroupDriver::Cgroupfs,
            qos: None,
            inline_container: None,
        });
    }
    // systemd: `[kubelet-]kubepods[-<qos>]-pod<uid_>.slice[:<runtime>:<id>]`.
    let (unit, inline) = match c.split_once(':') {
        Some((unit, tail)) => {
            let (rt, id) = tail.split_once(':')?;
            let runtime = match rt {
                "cri-containerd" => ContainerRuntime::Containerd,
                "crio" => ContainerRuntime::CriO,
                "docker" => ContainerRuntime::Docker,
                _ => return None,
            };
            if !is_container_id(id) {
                return None;
            }
            (unit, Some((runtime, id.to_owned())))
        }
        None => (c, None),
    };
    let stem = unit.strip_suffix(".slice")?;
    let (head, uid) = stem.rsplit_once("-pod")?;
    if !head.split('-').any(|w| w == "kubepods") {
        return None;
    }
    let uid = uid.replace('_', "-");
    if !is_pod_uid(&uid) {
        return None;
    }
    let qos = if head.ends_with("-besteffort") {
        QosClass::BestEffort
    } else if head.ends_with("-burstable") {
        QosClass::Burstable
    } else {
        QosClass::Guaranteed
    };
    Some(PodComponent {
        uid,
        driver: CgroupDriver::Systemd,
        qos: Some(qos),
        inline_container: inline,
    })
}

/// The QoS of a cgroupfs pod from its parent: `besteffort`/`burstable`, or `kubepods` itself
/// for Guaranteed; `None` when the parent is not shown.
fn cgroupfs_qos(ancestors: &[&str]) -> Option<QosClass> {
    match *ancestors.last()? {
        "besteffort" => Some(QosClass::BestEffort),
        "burstable" => Some(QosClass::Burstable),
        "kubepods" => Some(QosClass::Guaranteed),
        _ => None,
    }
}

/// Index of the kubelet's top cgroup (`kubepods`, `kubepods.slice`,
/// `kubelet-kubepods.slice`) among a pod's ancestors: the prefix ends there. The last one
/// wins so a doubled `/kubepods/kubepods` keeps the outer one as prefix.
fn kubepods_root(ancestors: &[&str]) -> Option<usize> {
    ancestors
        .iter()
        .rposition(|c| *c == "kubepods" || *c == "kubepods.slice" || *c == "kubelet-kubepods.slice")
}

/// A container's own cgroup name. `bare`: whether a plain 64-hex name counts (cgroupfs).
fn container_component(c: &str, bare: bool) -> Option<(ContainerRuntime, ContainerRole, String)> {
    let stem = c.strip_suffix(".scope").unwrap_or(c);
    let (runtime, role, id) = if let Some(id) = stem.strip_prefix("cri-containerd-") {
        (ContainerRuntime::Containerd, ContainerRole::Container, id)
    } else if let Some(id) = stem.strip_prefix("crio-conmon-") {
        (ContainerRuntime::CriO, ContainerRole::Monitor, id)
    } else if let Some(id) = stem.strip_prefix("crio-") {
        (ContainerRuntime::CriO, ContainerRole::Container, id)
    } else if let Some(id) = stem.strip_prefix("docker-") {
        (ContainerRuntime::Docker, ContainerRole::Container, id)
    } else if bare && stem == c {
        (ContainerRuntime::Unknown, ContainerRole::Container, stem)
    } else {
        return None;
    };
    is_container_id(id).then(|| (runtime, role, id.to_owned()))
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A pod UID: an RFC 4122 UUID, or a static pod's 32-hex config hash.
fn is_pod_uid(s: &str) -> bool {
    let hex = |p: &str| p.bytes().all(|b| b.is_ascii_hexdigit());
    if s.len() == 32 {
        return hex(s);
    }
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| hex(p))
}

fn join(comps: &[&str]) -> String {
    if comps.is_empty() {
        String::new()
    } else {
        format!("/{}", comps.join("/"))
    }
}

fn rest(comps: &[&str]) -> Option<String> {
    (!comps.is_empty()).then(|| comps.join("/"))
}

/// The pod-level cgroup path the kubelet creates (below its cgroup root, which is `""` for
/// the default root), so a recorder can watch it before any container starts.
pub fn kubelet_pod_cgroup(driver: CgroupDriver, qos: QosClass, uid: &str) -> String {
    match (driver, qos.level()) {
        (CgroupDriver::Systemd, Some(level)) => format!(
            "/kubepods.slice/kubepods-{level}.slice/kubepods-{level}-pod{}.slice",
            uid.replace('-', "_")
        ),
        (CgroupDriver::Systemd, None) => {
            format!(
                "/kubepods.slice/kubepods-pod{}.slice",
                uid.replace('-', "_")
            )
        }
        (CgroupDriver::Cgroupfs, Some(level)) => format!("/kubepods/{level}/pod{uid}"),
        (CgroupDriver::Cgroupfs, None) => format!("/kubepods/pod{uid}"),
    }
}

/// The container cgroup name a runtime creates below the pod cgroup.
pub fn runtime_container_cgroup(
    driver: CgroupDriver,
    runtime: ContainerRuntime,
    id: &str,
) -> String {
    match (driver, runtime) {
        (CgroupDriver::Systemd, ContainerRuntime::Containerd) => {
            format!("cri-containerd-{id}.scope")
        }
        (CgroupDriver::Systemd, ContainerRuntime::CriO) => format!("crio-{id}.scope"),
        (CgroupDriver::Systemd, _) => format!("docker-{id}.scope"),
        (CgroupDriver::Cgroupfs, ContainerRuntime::CriO) => format!("crio-{id}"),
        (CgroupDriver::Cgroupfs, _) => id.to_owned(),
    }
}

#[cfg(test)]
mod tests;

//! What the agent needs from a Pod object: its containers' runtime ids, the UIDs its cgroups
//! are named by, its QoS class and node. Pure functions over k8s-openapi types.

use k8s_openapi::api::core::v1::Pod;

use super::cgroup_path::{ContainerRuntime, QosClass};

/// A static pod's cgroups are named by this hash, not by the mirror pod's `metadata.uid`.
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// On a mirror pod (what the API shows for a static pod): the same hash.
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";

/// A running (or ran) container of a pod, from `status.*containerStatuses`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodContainer {
    pub name: String,
    pub runtime: ContainerRuntime,
    /// 64 hex digits.
    pub id: String,
    pub init: bool,
}

pub fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

pub fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

/// `namespace/name`.
pub fn key(pod: &Pod) -> String {
    format!("{}/{}", namespace(pod), name(pod))
}

pub fn node(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

pub fn qos(pod: &Pod) -> Option<QosClass> {
    QosClass::parse(pod.status.as_ref()?.qos_class.as_deref()?)
}

/// Every UID a pod's cgroups may carry: `metadata.uid`, and for static pods the config hash.
pub fn cgroup_uids(pod: &Pod) -> Vec<String> {
    let mut uids: Vec<String> = pod.metadata.uid.iter().cloned().collect();
    if let Some(ann) = &pod.metadata.annotations {
        for key in [CONFIG_HASH, CONFIG_MIRROR] {
            if let Some(h) = ann.get(key) {
                if !uids.contains(h) {
                    uids.push(h.clone());
                }
            }
        }
    }
    uids
}

/// The containers that have a runtime id (a container still waiting for its first start has
/// none yet).
pub fn containers(pod: &Pod) -> Vec<PodContainer> {
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    let init = status
        .init_container_statuses
        .iter()
        .flatten()
        .map(|s| (s, true));
    let main = status
        .container_statuses
        .iter()
        .flatten()
        .map(|s| (s, false));
    init.chain(main)
        .filter_map(|(s, init)| {
            let (scheme, id) = s.container_id.as_deref()?.split_once("://")?;
            Some(PodContainer {
                name: s.name.clone(),
                runtime: ContainerRuntime::from_status_scheme(scheme),
                id: id.to_owned(),
                init,
            })
        })
        .collect()
}

/// The container a runtime id belongs to.
pub fn container_by_id<'a>(containers: &'a [PodContainer], id: &str) -> Option<&'a PodContainer> {
    containers.iter().find(|c| c.id == id)
}

/// Volume mount paths of a container: writes below them do not block
/// `readOnlyRootFilesystem`.
pub fn volume_mounts(pod: &Pod, container: &str) -> Vec<String> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .filter(|c| c.name == container)
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .map(|m| m.mount_path.clone())
        .collect()
}

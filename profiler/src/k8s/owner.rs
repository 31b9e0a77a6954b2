//! The workload a pod belongs to: replicas of one workload are recorded into one profile set.

use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::OwnerReference};
use serde::{Deserialize, Serialize};

use super::pod;

/// A workload: what a profile set is named after (`profiles/<namespace>/<name>/`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Workload {
    pub namespace: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`, `Job`, `CronJob`, or `Pod`
    /// (a bare pod, or a static pod named without its node suffix).
    pub kind: String,
    pub api_version: String,
    pub name: String,
}

impl Workload {
    /// `profiles/<ns>/<workload>/`, relative.
    pub fn dir(&self) -> std::path::PathBuf {
        std::path::Path::new(&self.namespace).join(&self.name)
    }
}

/// The managing controller among the owner references.
pub fn controller(refs: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    refs?.iter().find(|r| r.controller == Some(true))
}

/// The next level up for owners that are themselves owned (ReplicaSet → Deployment, Job →
/// CronJob), as the API returned it: `Some(owner of the owner)`, `None` if it has none.
pub enum Parent<'a> {
    /// Not looked up (no permission, or not an owner kind that has parents).
    Unknown,
    Known(Option<&'a OwnerReference>),
}

/// Names the pod's workload. `parent` is the controller of the pod's controller when the
/// caller could fetch it; without it, a ReplicaSet named `<deployment>-<pod-template-hash>`
/// still gives its Deployment.
pub fn workload(p: &Pod, parent: Parent<'_>) -> Workload {
    let namespace = pod::namespace(p).to_owned();
    let make = |kind: &str, api: &str, name: &str| Workload {
        namespace: namespace.clone(),
        kind: kind.to_owned(),
        api_version: api.to_owned(),
        name: name.to_owned(),
    };
    let Some(owner) = controller(p.metadata.owner_references.as_ref()) else {
        return make("Pod", "v1", pod::name(p));
    };
    match owner.kind.as_str() {
        // A static pod: the mirror pod is named `<manifest name>-<node>`.
        "Node" => {
            let name = pod::name(p);
            let base = name
                .strip_suffix(&format!("-{}", owner.name))
                .unwrap_or(name);
            make("Pod", "v1", base)
        }
        "ReplicaSet" | "Job" => match parent {
            Parent::Known(Some(up)) => make(&up.kind, &up.api_version, &up.name),
            Parent::Known(None) => make(&owner.kind, &owner.api_version, &owner.name),
            Parent::Unknown => {
                let hash = p
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("pod-template-hash"));
                match hash.and_then(|h| owner.name.strip_suffix(&format!("-{h}"))) {
                    Some(deployment) if owner.kind == "ReplicaSet" => {
                        make("Deployment", "apps/v1", deployment)
                    }
                    _ => make(&owner.kind, &owner.api_version, &owner.name),
                }
            }
        },
        _ => make(&owner.kind, &owner.api_version, &owner.name),
    }
}

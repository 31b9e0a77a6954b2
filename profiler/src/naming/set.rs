//! The names of one set's artifacts and the workload container they are wired into.

use super::{kube_name, NamingError};
use crate::synth::securitycontext::{seccomp_localhost_path, PatchTarget};

/// What a set's artifacts are called, and where the patch wires them in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetNames {
    /// The AppArmor profile (`appArmorProfile.localhostProfile`). Checked by the AppArmor
    /// synthesizer.
    pub apparmor: String,
    /// `metadata.name` of the NetworkPolicy and of the Security Profiles Operator object.
    pub object: String,
    /// `metadata.namespace` of those objects; `None` leaves it to `kubectl apply -n`.
    pub namespace: Option<String>,
    /// The workload the patch applies to.
    pub target: PatchTarget,
    /// The container the patch applies to (containers are merged by name).
    pub container: String,
    /// `seccompProfile.localhostProfile`: where seccomp.json goes below the kubelet's root.
    pub seccomp_localhost: String,
}

impl SetNames {
    /// `profgen synth`: one set for a workload, named `name`; the workload (`KIND/NAME`) and
    /// container default to `Deployment/NAME` and `NAME` in Kubernetes' spelling, the
    /// namespace of the patch to `default`.
    pub fn for_workload(
        name: &str,
        namespace: Option<&str>,
        workload: Option<&str>,
        container: Option<&str>,
    ) -> Result<Self, NamingError> {
        let target_ns = namespace.unwrap_or("default");
        let target = match workload {
            None => PatchTarget {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: target_ns.into(),
                name: kube_name(name),
            },
            Some(text) => parse_workload(text, target_ns)?,
        };
        Ok(SetNames {
            apparmor: name.to_owned(),
            object: kube_name(name),
            namespace: namespace.map(str::to_owned),
            seccomp_localhost: seccomp_localhost_path(&target.namespace, &target.name, None),
            container: container.map_or_else(|| kube_name(name), str::to_owned),
            target,
        })
    }

    /// The agent and `record --pod`: one set per container of a workload. AppArmor profiles
    /// are global on a node, so the namespace is part of that name.
    pub fn for_container(target: PatchTarget, container: &str) -> Self {
        let base = format!("{}-{container}", target.name);
        SetNames {
            apparmor: format!("profgen-{}-{base}", target.namespace),
            object: kube_name(&base),
            namespace: Some(target.namespace.clone()),
            seccomp_localhost: seccomp_localhost_path(
                &target.namespace,
                &target.name,
                Some(container),
            ),
            container: container.to_owned(),
            target,
        }
    }
}

/// `KIND/NAME` (`Deployment/web`) in `namespace`, with the API version of its kind.
pub fn parse_workload(text: &str, namespace: &str) -> Result<PatchTarget, NamingError> {
    let (kind, name) = match text.split_once('/') {
        Some((k, n)) if !k.is_empty() && !n.is_empty() => (k, n),
        _ => return Err(NamingError::WorkloadShape(text.to_owned())),
    };
    let api_version = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps/v1",
        "Job" | "CronJob" => "batch/v1",
        "Pod" => "v1",
        other => return Err(NamingError::WorkloadKind(other.to_owned())),
    };
    Ok(PatchTarget {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    })
}

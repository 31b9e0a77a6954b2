//! Profile sets on disk: one directory per workload container,
//! `<out>/<namespace>/<workload>/<container>/`, holding the recording it was made from and the
//! artifacts, plus `<out>/index.json` naming every set (what the agent serves and
//! `profgen pull` reads).
//!
//! Replicas merge here: every recorded cgroup attributed to the same workload container, from
//! any pod, lands in the same set.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use super::{owner::Workload, pod};
use crate::{
    model::{CgroupRecord, ModelError, Recording},
    output::{write_atomic, OutputError},
    synth::{
        self,
        apparmor::{self, AppArmorOptions},
        netpol::{self, NetpolOptions},
        securitycontext::{self, ContainerPatch, PatchTarget, Suggestion},
    },
};

/// What was recorded for one pod, with the container each recorded cgroup belongs to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PodRecord {
    pub pod: Pod,
    pub workload: Workload,
    /// Recorded cgroup path → container name. Kept from the moment the pod status named the
    /// container, so a container that restarted (and left the status) stays attributed.
    pub containers: BTreeMap<String, String>,
    pub recording: Recording,
}

/// The index of an output directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// The node that recorded (empty for a merged, pulled directory).
    #[serde(default)]
    pub node: String,
    pub sets: Vec<SetEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetEntry {
    pub workload: Workload,
    pub container: String,
    /// `namespace/name` of the pods recorded.
    pub pods: Vec<String>,
    /// Relative to the output root: `<namespace>/<workload>/<container>`.
    pub dir: String,
    /// File names in `dir`.
    pub files: Vec<String>,
    /// The container's volume mount paths, so a merge elsewhere judges writes alike.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// The workload's pod labels (without per-pod and per-revision ones), which the
    /// NetworkPolicy selects by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Why an artifact is missing (synthesis refused the recording), if one is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

pub const INDEX: &str = "index.json";
pub const RECORDING: &str = "recording.json";
pub const SECCOMP: &str = "seccomp.json";
pub const SECURITY_CONTEXT: &str = "securitycontext.txt";
pub const SECURITY_CONTEXT_YAML: &str = "securitycontext.yaml";
pub const APPARMOR: &str = "apparmor.profile";
pub const NETWORK_POLICY: &str = "networkpolicy.yaml";
pub const PATCH: &str = "securitycontext-patch.yaml";

/// Labels every pod of a workload has but with a value of its own (or of its revision): a
/// policy selecting by them would miss the next replica or rollout.
const PER_POD_LABELS: [&str; 5] = [
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "batch.kubernetes.io/controller-uid",
];

/// The labels a policy for the workload of `pod` can select by.
pub fn workload_labels(pod: &Pod) -> BTreeMap<String, String> {
    let mut labels = pod.metadata.labels.clone().unwrap_or_default();
    labels.retain(|k, _| !PER_POD_LABELS.contains(&k.as_str()) && k != "controller-uid");
    labels
}

#[derive(Debug, thiserror::Error)]
pub enum ProfilesError {
    #[error("creating {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("writing YAML: {0}")]
    Yaml(String),
}

/// One set before writing: the workload container and its recording.
pub struct Set {
    pub workload: Workload,
    pub container: String,
    pub pods: Vec<String>,
    /// Volume mount paths of the container (writes there do not block a read-only root).
    pub volumes: Vec<String>,
    /// See [`SetEntry::labels`].
    pub labels: BTreeMap<String, String>,
    pub recording: Recording,
}

impl Set {
    /// Where the set goes below the output root: `<namespace>/<workload>/<container>`.
    pub fn dir(&self) -> PathBuf {
        self.workload.dir().join(&self.container)
    }
}

/// Groups the pods' recorded cgroups into sets by workload container. Cgroups without a
/// container (the sandbox, the pod cgroup itself, not yet named) are left out.
pub fn sets(pods: &[PodRecord]) -> Vec<Set> {
    let mut grouped: BTreeMap<(Workload, String), Set> = BTreeMap::new();
    for p in pods {
        for cg in &p.recording.cgroups {
            let Some(container) = cg.path.as_ref().and_then(|path| p.containers.get(path)) else {
                continue;
            };
            let key = (p.workload.clone(), container.clone());
            let set = grouped.entry(key).or_insert_with(|| Set {
                workload: p.workload.clone(),
                container: container.clone(),
                pods: Vec::new(),
                volumes: pod::volume_mounts(&p.pod, container),
                labels: workload_labels(&p.pod),
                recording: Recording {
                    cgroups: Vec::new(),
                    ..p.recording.clone()
                },
            });
            let key = pod::key(&p.pod);
            if !set.pods.contains(&key) {
                set.pods.push(key);
                absorb(&mut set.recording, &p.recording);
            }
            set.recording.cgroups.push(cg.clone());
        }
    }
    grouped
        .into_values()
        .map(|mut s| {
            s.pods.sort();
            s.recording
                .cgroups
                .sort_by(|a, b| (&a.path, a.id).cmp(&(&b.path, b.id)));
            s
        })
        .collect()
}

/// The time span and loss counters of another pod's recording. Pods recorded by one session
/// share its loss counters, so the larger count is kept rather than the sum.
fn absorb(into: &mut Recording, other: &Recording) {
    if other.started_at < into.started_at {
        into.started_at.clone_from(&other.started_at);
    }
    if other.ended_at > into.ended_at {
        into.ended_at.clone_from(&other.ended_at);
    }
    for (reason, n) in &other.events_lost {
        let e = into.events_lost.entry(reason.clone()).or_default();
        *e = (*e).max(*n);
    }
}

/// Writes every set below `out` and the index; returns the index.
pub fn write(out: &Path, node: &str, sets: &[Set]) -> Result<Index, ProfilesError> {
    let mut index = Index {
        node: node.to_owned(),
        sets: Vec::new(),
    };
    for set in sets {
        index.sets.push(write_set(out, set)?);
    }
    mkdir(out)?;
    let bytes = serde_json::to_vec_pretty(&index).map_err(ModelError::Serialize)?;
    write_atomic(&out.join(INDEX), &bytes)?;
    Ok(index)
}

/// Why a set recorded with `--syscalls-only` has only its seccomp profile.
pub const SYSCALLS_ONLY: &str = "recorded with --syscalls-only: the securityContext, AppArmor profile and NetworkPolicy need files, network and capabilities too, so only seccomp.json and the patch wiring it in were written";

fn write_set(out: &Path, set: &Set) -> Result<SetEntry, ProfilesError> {
    let rel = set.dir();
    let dir = out.join(&rel);
    mkdir(&dir)?;
    set.recording.save(dir.join(RECORDING))?;
    let mut files = vec![RECORDING.to_owned()];
    let mut problems = Vec::new();
    // A refused synthesis (unknown syscall numbers, say) must not hide the other sets: it is
    // reported in the index and the recording stays for a later `profgen synth`.
    match synth::seccomp(&set.recording, &synth::SeccompOptions::default())
        .and_then(|p| synth::seccomp::to_json(&p))
    {
        Ok(json) => {
            write_atomic(&dir.join(SECCOMP), &json)?;
            files.push(SECCOMP.to_owned());
        }
        Err(e) => problems.push(format!("seccomp: {e}")),
    }
    let w = &set.workload;
    let (suggestion, apparmor_profile) = if set.recording.syscalls_only {
        problems.push(SYSCALLS_ONLY.to_owned());
        let nothing = Suggestion {
            security_context: Default::default(),
            evidence: Vec::new(),
        };
        (nothing, None)
    } else {
        write_activity_artifacts(&dir, set, &mut files, &mut problems)?
    };
    let target = PatchTarget {
        api_version: w.api_version.clone(),
        kind: w.kind.clone(),
        namespace: w.namespace.clone(),
        name: w.name.clone(),
    };
    let seccomp_ok = files.iter().any(|f| f == SECCOMP);
    let container = ContainerPatch {
        name: set.container.clone(),
        suggestion,
        seccomp_localhost: seccomp_ok.then(|| {
            securitycontext::seccomp_localhost_path(&w.namespace, &w.name, Some(&set.container))
        }),
        apparmor_profile,
    };
    let patch = securitycontext::workload_patch(&target, std::slice::from_ref(&container));
    let yaml = serde_norway::to_string(&patch).map_err(|e| ProfilesError::Yaml(e.to_string()))?;
    write_atomic(
        &dir.join(PATCH),
        format!(
            "# Strategic-merge patch: `kubectl patch {} {} -n {} --type strategic --patch-file {PATCH}`.\n# Needs seccomp.json at {} below /var/lib/kubelet/seccomp/ on every node and {APPARMOR} loaded (apparmor_parser -r).\n{yaml}",
            w.kind.to_lowercase(),
            w.name,
            w.namespace,
            container.seccomp_localhost.as_deref().unwrap_or("-"),
        )
        .as_bytes(),
    )?;
    files.push(PATCH.to_owned());
    Ok(SetEntry {
        workload: set.workload.clone(),
        container: set.container.clone(),
        pods: set.pods.clone(),
        dir: rel.display().to_string(),
        files,
        volumes: set.volumes.clone(),
        labels: set.labels.clone(),
        problems,
    })
}

/// The artifacts made from files, network and capabilities: the securityContext suggestion
/// (returned for the patch), the AppArmor profile (its name returned if it was written) and
/// the NetworkPolicy.
fn write_activity_artifacts(
    dir: &Path,
    set: &Set,
    files: &mut Vec<String>,
    problems: &mut Vec<String>,
) -> Result<(Suggestion, Option<String>), ProfilesError> {
    let activity = synth::workload_activity(&set.recording);
    let suggestion = securitycontext::security_context(
        &activity,
        &securitycontext::Options::with_volumes(set.volumes.iter().cloned()),
    );
    write_atomic(
        &dir.join(SECURITY_CONTEXT),
        suggestion.to_string().as_bytes(),
    )?;
    files.push(SECURITY_CONTEXT.to_owned());
    // The suggestion alone, as `profgen verify --security-context` reads it.
    let yaml = serde_norway::to_string(&suggestion.security_context)
        .map_err(|e| ProfilesError::Yaml(e.to_string()))?;
    write_atomic(
        &dir.join(SECURITY_CONTEXT_YAML),
        format!(
            "# The securityContext the recording supports; evidence in {SECURITY_CONTEXT}.\n{yaml}"
        )
        .as_bytes(),
    )?;
    files.push(SECURITY_CONTEXT_YAML.to_owned());

    let w = &set.workload;
    let base = format!("{}-{}", w.name, set.container);
    // AppArmor profiles are global on a node: the namespace is part of the name.
    let apparmor_name = format!("profgen-{}-{base}", w.namespace);
    let apparmor_profile =
        match apparmor::apparmor(&apparmor_name, &activity, &AppArmorOptions::default()) {
            Ok(profile) => {
                write_atomic(&dir.join(APPARMOR), profile.text.as_bytes())?;
                files.push(APPARMOR.to_owned());
                Some(apparmor_name)
            }
            Err(e) => {
                problems.push(format!("apparmor: {e}"));
                None
            }
        };
    if set.labels.is_empty() {
        problems.push("networkpolicy: the pods have no labels to select them by".into());
    } else {
        let opts = NetpolOptions {
            name: synth::kube_name(&base),
            namespace: Some(w.namespace.clone()),
            labels: set.labels.clone(),
            pod: None,
            cluster: None,
            ingress_from_anywhere: false,
            egress_dns_anywhere: false,
        };
        match netpol::synthesize(&activity, &opts).and_then(|s| netpol::to_yaml(&s.policy)) {
            Ok(yaml) => {
                write_atomic(&dir.join(NETWORK_POLICY), yaml.as_bytes())?;
                files.push(NETWORK_POLICY.to_owned());
            }
            Err(e) => problems.push(format!("networkpolicy: {e}")),
        }
    }
    Ok((suggestion, apparmor_profile))
}

fn mkdir(path: &Path) -> Result<(), ProfilesError> {
    std::fs::create_dir_all(path).map_err(|source| ProfilesError::Dir {
        path: path.to_owned(),
        source,
    })
}

/// Merges sets of the same workload container recorded on several nodes (what `profgen pull`
/// collects): what any replica did is allowed.
pub fn merge_pulled(pulled: Vec<(SetEntry, Recording)>) -> Result<Vec<Set>, ModelError> {
    type Group = (
        Vec<String>,
        Vec<String>,
        BTreeMap<String, String>,
        Vec<Recording>,
    );
    let mut grouped: BTreeMap<(Workload, String), Group> = BTreeMap::new();
    for (entry, rec) in pulled {
        let g = grouped
            .entry((entry.workload, entry.container))
            .or_default();
        g.0.extend(entry.pods);
        g.1.extend(entry.volumes);
        g.2.extend(entry.labels);
        g.3.push(rec);
    }
    grouped
        .into_iter()
        .map(
            |((workload, container), (mut pods, mut volumes, labels, recs))| {
                pods.sort();
                pods.dedup();
                volumes.sort();
                volumes.dedup();
                Ok(Set {
                    workload,
                    container,
                    pods,
                    volumes,
                    labels,
                    recording: Recording::merge(&recs)?,
                })
            },
        )
        .collect()
}

/// Only the cgroups of `rec` below (or at) `cgroup`.
pub fn below<'a>(
    cgroups: impl IntoIterator<Item = &'a CgroupRecord>,
    cgroup: &str,
) -> Vec<CgroupRecord> {
    let prefix = format!("{}/", cgroup.trim_end_matches('/'));
    cgroups
        .into_iter()
        .filter(|cg| {
            cg.path
                .as_deref()
                .is_some_and(|p| p == cgroup || p.starts_with(&prefix))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    #[test]
    fn policies_select_by_the_labels_every_replica_shares() {
        let mut pod = Pod::default();
        pod.metadata.labels = Some(
            [
                ("k8s-app", "kube-dns"),
                ("pod-template-hash", "589f44dc88"),
                ("controller-revision-hash", "7d9"),
                ("statefulset.kubernetes.io/pod-name", "web-0"),
                ("tier", "control-plane"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        );
        let labels: Vec<_> = workload_labels(&pod).into_keys().collect();
        assert_eq!(labels, ["k8s-app", "tier"]);
        assert!(workload_labels(&Pod::default()).is_empty());
    }

    fn set(syscalls_only: bool) -> Set {
        let mut recording = fixtures::recording(vec![fixtures::cgroup_with(
            &["read", "write", "openat", "exit_group"],
            &["/etc/nginx/nginx.conf"],
        )]);
        recording.syscalls_only = syscalls_only;
        Set {
            workload: Workload {
                namespace: "web".into(),
                kind: "Deployment".into(),
                api_version: "apps/v1".into(),
                name: "nginx".into(),
            },
            container: "nginx".into(),
            pods: vec!["web/nginx-1".into()],
            volumes: Vec::new(),
            labels: BTreeMap::from([("app".into(), "nginx".into())]),
            recording,
        }
    }

    #[test]
    fn a_syscalls_only_set_gets_its_seccomp_profile_alone() {
        let out = tempfile::tempdir().unwrap();
        let index = write(out.path(), "node-1", &[set(true)]).unwrap();
        let entry = &index.sets[0];
        assert_eq!(entry.dir, "web/nginx/nginx");
        assert_eq!(entry.files, [RECORDING, SECCOMP, PATCH]);
        assert_eq!(entry.problems, [SYSCALLS_ONLY]);
        let patch = std::fs::read_to_string(out.path().join(&entry.dir).join(PATCH)).unwrap();
        assert!(patch.contains("localhostProfile"), "{patch}");
        assert!(!patch.contains("appArmorProfile"), "{patch}");
        let saved = Recording::load(out.path().join(&entry.dir).join(RECORDING)).unwrap();
        assert!(saved.syscalls_only);

        // The same recording with its activity gets every artifact.
        let full = write(out.path(), "node-1", &[set(false)]).unwrap();
        assert_eq!(
            full.sets[0].files,
            [
                RECORDING,
                SECCOMP,
                SECURITY_CONTEXT,
                SECURITY_CONTEXT_YAML,
                APPARMOR,
                NETWORK_POLICY,
                PATCH
            ]
        );
        assert!(
            full.sets[0].problems.is_empty(),
            "{:?}",
            full.sets[0].problems
        );
    }
}

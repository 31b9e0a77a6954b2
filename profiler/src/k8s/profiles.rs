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
    naming::SetNames,
    output::{write_atomic, OutputError},
    profile_set::{self, BuildError, BuildOptions, Mode, WriteError},
    synth::securitycontext::PatchTarget,
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
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Write(#[from] WriteError),
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

fn write_set(out: &Path, set: &Set) -> Result<SetEntry, ProfilesError> {
    let rel = set.dir();
    let w = &set.workload;
    let target = PatchTarget {
        api_version: w.api_version.clone(),
        kind: w.kind.clone(),
        namespace: w.namespace.clone(),
        name: w.name.clone(),
    };
    // A refused artifact (unknown syscall numbers, say) must not hide the rest of the set nor
    // the other sets: it is reported in the index and the recording stays for a later
    // `profgen synth`.
    let mut opts = BuildOptions::new(
        SetNames::for_container(target, &set.container),
        Mode::Lenient,
    );
    opts.labels = set.labels.clone();
    opts.volumes = set.volumes.clone();
    let built = profile_set::build(&set.recording, &opts)?;
    profile_set::write(&out.join(&rel), &built)?;
    Ok(SetEntry {
        workload: set.workload.clone(),
        container: set.container.clone(),
        pods: set.pods.clone(),
        dir: rel.display().to_string(),
        files: built.file_names().into_iter().map(str::to_owned).collect(),
        volumes: set.volumes.clone(),
        labels: set.labels.clone(),
        problems: built.problems,
    })
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

    fn names(files: &[&str]) -> Vec<String> {
        files.iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn a_syscalls_only_set_gets_its_seccomp_profile_alone() {
        use crate::profile_set::{Artifact::*, SYSCALLS_ONLY};
        let out = tempfile::tempdir().unwrap();
        let index = write(out.path(), "node-1", &[set(true)]).unwrap();
        let entry = &index.sets[0];
        assert_eq!(entry.dir, "web/nginx/nginx");
        let files = [Seccomp, SecurityContextPatch, Kustomization, Recording];
        assert_eq!(entry.files, names(&files.map(|a| a.file_name())));
        assert_eq!(entry.problems, [SYSCALLS_ONLY]);
        let dir = out.path().join(&entry.dir);
        let patch = std::fs::read_to_string(dir.join(SecurityContextPatch.file_name())).unwrap();
        assert!(patch.contains("localhostProfile"), "{patch}");
        assert!(!patch.contains("appArmorProfile"), "{patch}");
        assert!(!patch.contains("apparmor.profile"), "{patch}");
        let saved = crate::model::Recording::load(dir.join(Recording.file_name())).unwrap();
        assert!(saved.syscalls_only);

        // The same recording with its activity gets every artifact, the evidence report as
        // Markdown like `profgen synth`'s.
        let full = write(out.path(), "node-1", &[set(false)]).unwrap();
        let files: Vec<_> = crate::profile_set::Artifact::ALL
            .into_iter()
            .filter(|a| *a != SpoSeccompProfile)
            .collect();
        assert_eq!(
            full.sets[0].files,
            names(&files.iter().map(|a| a.file_name()).collect::<Vec<_>>())
        );
        assert!(
            full.sets[0].problems.is_empty(),
            "{:?}",
            full.sets[0].problems
        );
        let md = std::fs::read_to_string(dir.join("securitycontext.md")).unwrap();
        assert!(
            md.starts_with("# securityContext for web/nginx (container nginx)"),
            "{md}"
        );
        // An earlier agent's plain-text report does not outlive the set it belonged to.
        std::fs::write(dir.join("securitycontext.txt"), "old").unwrap();
        write(out.path(), "node-1", &[set(true)]).unwrap();
        assert!(!dir.join("securitycontext.txt").exists());
        assert!(!dir.join("apparmor.profile").exists());
    }
}

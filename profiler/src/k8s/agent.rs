//! The agent's decisions, kept apart from the kernel and the API so they are tested on real
//! captures: which cgroups to record for the pods of this node, which pod and container a
//! recorded cgroup belongs to, how replicas merge into one profile set, and how state survives
//! a restart.
//!
//! The pod cgroup (not each container's) is the recording target: containers that start or
//! restart later are created below it, so the recorder sees them from their first syscall.

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use k8s_openapi::api::core::v1::Pod;
use serde::{de::DeserializeOwned, Serialize};

use super::{
    cgroup_path::{self, ContainerRole},
    owner::Workload,
    pod,
};

/// How deep below the cgroup2 mount pod cgroups are looked for: kind nests them under
/// `/system.slice/docker-<node>.scope/kubelet/kubepods/<qos>/pod<uid>` (6 levels).
const MAX_DEPTH: usize = 8;

/// Pod-level cgroups below `root` (the cgroup2 mount), by the UID in their name: path below
/// `root`, starting with `/`.
pub fn find_pod_cgroups(root: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![(root.to_owned(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = e.path();
            let rel = format!("/{}", path.strip_prefix(root).unwrap_or(&path).display());
            let info = cgroup_path::parse(&rel);
            match (&info.pod, &info.container) {
                // A pod cgroup: record it, and do not descend (its containers are below it).
                (Some(p), None) => {
                    found.insert(p.uid.clone(), rel);
                }
                _ if depth + 1 < MAX_DEPTH => stack.push((path, depth + 1)),
                _ => {}
            }
        }
    }
    found
}

/// Matches pods (named by the caller's keys) to their pod cgroups, as [`find_pod_cgroups`]
/// found them: the pods whose cgroup exists, with its path below the root, and apart the
/// pods without one yet (pending, or just scheduled), to be placed on a later try.
pub fn plan<'a, K>(
    pods: impl IntoIterator<Item = (K, &'a Pod)>,
    pod_cgroups: &BTreeMap<String, String>,
) -> (Vec<(K, String)>, Vec<K>) {
    let mut targets = Vec::new();
    let mut waiting = Vec::new();
    for (key, p) in pods {
        match pod::cgroup_uids(p)
            .iter()
            .find_map(|uid| pod_cgroups.get(uid))
        {
            Some(cgroup) => targets.push((key, cgroup.clone())),
            None => waiting.push(key),
        }
    }
    (targets, waiting)
}

/// What a recorded cgroup was.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attribution {
    /// A workload container (by its name in the pod spec).
    Container {
        pod: String,
        container: String,
        workload: Workload,
    },
    /// The pod's sandbox (pause) container or CRI-O's monitor: not the workload, not profiled.
    Infrastructure { pod: String },
    /// The pod cgroup itself, or a container id the pod status does not know (yet).
    Unknown { pod: Option<String> },
}

/// Names the container a recorded cgroup path (`CgroupRecord::path`) belongs to.
pub fn attribute(cgroup: &str, pods: &[(Pod, Workload)]) -> Attribution {
    let info = cgroup_path::parse(cgroup);
    let Some(pc) = &info.pod else {
        return Attribution::Unknown { pod: None };
    };
    let Some((p, w)) = pods
        .iter()
        .find(|(p, _)| pod::cgroup_uids(p).contains(&pc.uid))
    else {
        return Attribution::Unknown { pod: None };
    };
    let key = pod::key(p);
    let Some(c) = &info.container else {
        return Attribution::Unknown { pod: Some(key) };
    };
    if c.role == ContainerRole::Monitor {
        return Attribution::Infrastructure { pod: key };
    }
    match pod::container_by_id(&pod::containers(p), &c.id) {
        Some(pc) => Attribution::Container {
            pod: key,
            container: pc.name.clone(),
            workload: w.clone(),
        },
        // Every container the kubelet starts is in the status; the sandbox is not.
        None if p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some() =>
        {
            Attribution::Infrastructure { pod: key }
        }
        None => Attribution::Unknown { pod: Some(key) },
    }
}

/// The permissive seccomp profile recorded workloads run under during the learning window
/// (`localhostProfile: profgen/learning.json`): a filter must be in place so the runtime's
/// `seccomp()` call marks where the container's own syscalls begin, and it must allow
/// everything so no syscall is hidden from the recorder.
pub const LEARNING_PROFILE: &str = include_str!("../../../deploy/learning-seccomp.json");

/// `localhostProfile` of [`LEARNING_PROFILE`].
pub const LEARNING_PROFILE_PATH: &str = "profgen/learning.json";

/// Installs [`LEARNING_PROFILE`] below the kubelet's seccomp root
/// (`/var/lib/kubelet/seccomp`), atomically.
pub fn install_learning_profile(seccomp_root: &Path) -> Result<PathBuf, StateError> {
    let dir = seccomp_root.join("profgen");
    let state = StateDir::open(&dir)?;
    let path = seccomp_root.join(LEARNING_PROFILE_PATH);
    let err = |source| StateError {
        path: path.clone(),
        source,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&state.root).map_err(err)?;
    tmp.write_all(LEARNING_PROFILE.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(&path).map_err(|e| err(e.error))?;
    Ok(path)
}

#[derive(Debug, thiserror::Error)]
#[error("agent state {path}: {source}")]
pub struct StateError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The agent's state directory (a hostPath): one JSON document per key, each replaced
/// atomically (write a temporary file, fsync, rename), so a restart or a crash mid-write
/// leaves either the old or the new document, never half of one.
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn open(root: &Path) -> Result<Self, StateError> {
        fs::create_dir_all(root).map_err(|source| StateError {
            path: root.to_owned(),
            source,
        })?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        // Keys are pod UIDs or `ns/workload/container`: flatten the separators.
        self.root.join(format!("{}.json", key.replace('/', "__")))
    }

    pub fn save<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StateError> {
        let path = self.path(key);
        let err = |source| StateError {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| err(e.into()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.root).map_err(err)?;
        tmp.write_all(&bytes).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&path).map_err(|e| err(e.error))?;
        Ok(())
    }

    pub fn load<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StateError> {
        let path = self.path(key);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StateError {
                    path,
                    source: e.into(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError { path, source }),
        }
    }

    /// Every saved key, for resuming after a restart.
    pub fn keys(&self) -> Result<Vec<String>, StateError> {
        let entries = fs::read_dir(&self.root).map_err(|source| StateError {
            path: self.root.clone(),
            source,
        })?;
        let mut keys: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                Some(name.strip_suffix(".json")?.replace("__", "/"))
            })
            .collect();
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests;

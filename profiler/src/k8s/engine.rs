//! What `profgen record --pod` and `profgen agent` share: the pods being recorded, their pod
//! cgroups as live targets, the container each recorded cgroup belongs to, and turning it
//! all into profile sets (and, for the agent, into state that survives a restart).

use std::{collections::BTreeMap, path::Path};

use k8s_openapi::api::core::v1::Pod;

use super::{
    agent::{self, Attribution, StateDir, StateError},
    owner::Workload,
    pod,
    profiles::{self, Index, PodRecord, ProfilesError},
};
use crate::{
    model::{Recording, Target},
    record::{self, snapshot::Snapshot, LiveRecorder},
};

/// State keys of pod records start with this, followed by the pod UID.
const POD_KEY: &str = "pod-";

struct Entry {
    pod: Pod,
    workload: Workload,
    /// Below the cgroup root, once found.
    cgroup: Option<String>,
    containers: BTreeMap<String, String>,
    /// What earlier agent runs recorded for this pod (from the state directory).
    previous: Option<Recording>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Record(#[from] record::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Profiles(#[from] ProfilesError),
    #[error("merging pod {pod}'s recording with the saved one: {source}")]
    Merge {
        pod: String,
        #[source]
        source: crate::model::ModelError,
    },
}

pub struct Engine {
    recorder: LiveRecorder,
    /// By pod UID.
    pods: BTreeMap<String, Entry>,
    state: Option<StateDir>,
}

impl Engine {
    pub fn new(recorder: LiveRecorder) -> Self {
        Self {
            recorder,
            pods: BTreeMap::new(),
            state: None,
        }
    }

    /// Persists pod records in `state` and resumes from what it holds: pods recorded by an
    /// earlier run keep their recording, and what this run records is merged into it.
    pub fn with_state(mut self, state: StateDir) -> Result<Self, EngineError> {
        for key in state.keys()? {
            let Some(uid) = key.strip_prefix(POD_KEY) else {
                continue;
            };
            if let Some(saved) = state.load::<PodRecord>(&key)? {
                self.pods.insert(
                    uid.to_owned(),
                    Entry {
                        pod: saved.pod,
                        workload: saved.workload,
                        cgroup: None,
                        containers: saved.containers,
                        previous: Some(saved.recording),
                    },
                );
            }
        }
        self.state = Some(state);
        Ok(self)
    }

    pub fn recorder(&self) -> &LiveRecorder {
        &self.recorder
    }

    pub fn recorder_mut(&mut self) -> &mut LiveRecorder {
        &mut self.recorder
    }

    /// Pods resumed from the state directory.
    pub fn resumed(&self) -> usize {
        self.pods.values().filter(|e| e.previous.is_some()).count()
    }

    /// A pod was seen (new, or its status changed: a container got its runtime id).
    pub fn apply(&mut self, p: Pod, workload: Workload) {
        let uid = p.metadata.uid.clone().unwrap_or_else(|| pod::key(&p));
        match self.pods.get_mut(&uid) {
            Some(e) => {
                e.pod = p;
                e.workload = workload;
            }
            None => {
                self.pods.insert(
                    uid,
                    Entry {
                        pod: p,
                        workload,
                        cgroup: None,
                        containers: BTreeMap::new(),
                        previous: None,
                    },
                );
            }
        }
        self.attribute();
    }

    pub fn knows(&self, p: &Pod) -> bool {
        p.metadata
            .uid
            .as_ref()
            .is_some_and(|u| self.pods.contains_key(u))
    }

    /// Makes every pod whose cgroup exists a target. Returns the pods newly targeted and the
    /// pods still without a cgroup (`namespace/name`).
    pub fn place(&mut self) -> Result<Placed, EngineError> {
        let unplaced: Vec<(String, &Pod)> = self
            .pods
            .iter()
            .filter(|(_, e)| e.cgroup.is_none())
            .map(|(uid, e)| (uid.clone(), &e.pod))
            .collect();
        if unplaced.is_empty() {
            return Ok(Placed::default());
        }
        let found = agent::find_pod_cgroups(self.recorder.root());
        let (targets, waiting) = agent::plan(unplaced, &found);
        let mut placed = Placed::default();
        for (uid, cg) in targets {
            self.recorder.add_target(&cg)?;
            if let Some(e) = self.pods.get_mut(&uid) {
                e.cgroup = Some(cg);
                placed.targeted.push(pod::key(&e.pod));
            }
        }
        placed.waiting = waiting
            .iter()
            .filter_map(|uid| self.pods.get(uid))
            .map(|e| pod::key(&e.pod))
            .collect();
        self.attribute();
        Ok(placed)
    }

    /// Names the container of every recorded cgroup not named yet.
    pub fn attribute(&mut self) {
        self.recorder.scan();
        let paths = self.recorder.paths();
        for e in self.pods.values_mut() {
            let Some(cg) = &e.cgroup else {
                continue;
            };
            let prefix = format!("{cg}/");
            let pods = [(e.pod.clone(), e.workload.clone())];
            for path in paths.values().filter(|p| p.starts_with(&prefix)) {
                if e.containers.contains_key(path) {
                    continue;
                }
                // The sandbox, or a container the status does not list yet: asked again on
                // the next status change.
                if let Attribution::Container { container, .. } = agent::attribute(path, &pods) {
                    e.containers.insert(path.clone(), container);
                }
            }
        }
    }

    /// Saves state and writes the profile sets with everything recorded so far, so an agent
    /// restart loses nothing already written.
    pub fn checkpoint(&mut self, out: &Path, node: &str) -> Result<Index, EngineError> {
        self.attribute();
        let snap = self.recorder.so_far()?;
        persist(&self.pods, self.state.as_ref(), &snap, out, node)
    }

    /// Stops recording; saves state and writes the complete profile sets. Returns the index
    /// and what the kernel could not record.
    pub fn finish(mut self, out: &Path, node: &str) -> Result<(Index, Vec<String>), EngineError> {
        self.attribute();
        let snap = self.recorder.finish()?;
        let index = persist(&self.pods, self.state.as_ref(), &snap, out, node)?;
        Ok((index, snap.warnings))
    }
}

fn persist(
    pods: &BTreeMap<String, Entry>,
    state: Option<&StateDir>,
    snap: &Snapshot,
    out: &Path,
    node: &str,
) -> Result<Index, EngineError> {
    let records = records(pods, snap)?;
    save(state, &records)?;
    Ok(profiles::write(out, node, &profiles::sets(&records))?)
}

/// Each pod's recording so far: this run's merged with what earlier runs saved.
fn records(pods: &BTreeMap<String, Entry>, snap: &Snapshot) -> Result<Vec<PodRecord>, EngineError> {
    let mut out = Vec::new();
    for e in pods.values() {
        let current = e.cgroup.as_ref().map(|cg| {
            snap.recording(
                Target::Cgroup { cgroup: cg.clone() },
                profiles::below(snap.cgroups.values(), cg),
            )
        });
        let recording = match (&e.previous, current) {
            (Some(prev), Some(cur)) => {
                Recording::merge(&[prev.clone(), cur]).map_err(|source| EngineError::Merge {
                    pod: pod::key(&e.pod),
                    source,
                })?
            }
            (Some(prev), None) => prev.clone(),
            (None, Some(cur)) => cur,
            (None, None) => continue,
        };
        out.push(PodRecord {
            pod: e.pod.clone(),
            workload: e.workload.clone(),
            containers: e.containers.clone(),
            recording,
        });
    }
    Ok(out)
}

fn save(state: Option<&StateDir>, records: &[PodRecord]) -> Result<(), StateError> {
    let Some(state) = state else {
        return Ok(());
    };
    for r in records {
        let uid = r
            .pod
            .metadata
            .uid
            .clone()
            .unwrap_or_else(|| pod::key(&r.pod));
        state.save(&format!("{POD_KEY}{uid}"), r)?;
    }
    Ok(())
}

#[derive(Debug, Default)]
pub struct Placed {
    pub targeted: Vec<String>,
    pub waiting: Vec<String>,
}

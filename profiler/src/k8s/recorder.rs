//! A recording session whose targets arrive while it runs: pods are scheduled onto the node
//! during the learning window, and each pod cgroup becomes a target as soon as it exists, so
//! its containers are recorded from their first syscall.
//!
//! Built on [`crate::record::kernel`] directly: `record::record` takes one target fixed at
//! start, which suits `profgen record --cgroup` but not a node whose pods come and go.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::SystemTime,
};

use crate::{
    cgroup::Cgroup,
    model::{CgroupRecord, Host, Recording, Target, SCHEMA_VERSION},
    record::{
        activity::Collector,
        kernel::{kernel_release, Hook, Kernel},
        session::{cgroup_record, phases},
        Error,
    },
};

/// Loaded eBPF programs, the pod cgroups they record, and what was learnt so far.
pub struct LiveRecorder {
    kernel: Kernel,
    /// The cgroup2 tree (possibly a hostPath view of the host's).
    root: PathBuf,
    targets: BTreeSet<String>,
    /// cgroup id → path below the root, learnt while the cgroup exists (a container's cgroup
    /// is removed when it stops, possibly before the window ends).
    paths: BTreeMap<u64, String>,
    collector: Collector,
    started_at: SystemTime,
    include_runtime_setup: bool,
}

/// What the kernel recorded for every cgroup below the targets, by cgroup id.
pub struct Snapshot {
    pub cgroups: BTreeMap<u64, CgroupRecord>,
    pub events_lost: BTreeMap<String, u64>,
    pub warnings: Vec<String>,
}

impl LiveRecorder {
    /// Loads and attaches the programs; nothing is recorded until [`Self::add_target`].
    /// Fails with a permission error (exit code 4) without root or CAP_BPF + CAP_PERFMON.
    pub fn start(root: &Path, include_runtime_setup: bool) -> Result<Self, Error> {
        let kernel = Kernel::load(Hook::Record)?;
        Ok(Self {
            kernel,
            root: root.to_owned(),
            targets: BTreeSet::new(),
            paths: BTreeMap::new(),
            collector: Collector::default(),
            started_at: SystemTime::now(),
            include_runtime_setup,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Records the cgroup `rel` (below the root) and everything created below it from now.
    /// Adding a target twice is a no-op.
    pub fn add_target(&mut self, rel: &str) -> Result<bool, Error> {
        if self.targets.contains(rel) {
            return Ok(false);
        }
        let cg = Cgroup::at(&self.root, rel)?;
        self.kernel.add_target(cg.id()?, cg.level())?;
        self.targets.insert(cg.rel.clone());
        self.scan();
        Ok(true)
    }

    pub fn targets(&self) -> &BTreeSet<String> {
        &self.targets
    }

    /// The ring buffer's fd, readable when events wait.
    pub fn events_fd(&self) -> Option<std::os::fd::RawFd> {
        self.kernel.events_fd()
    }

    /// Resolves waiting events now, while the processes that made them still exist.
    pub fn drain(&mut self) {
        for ev in self.kernel.drain_events() {
            self.collector.add(&ev);
        }
    }

    /// Learns the names of cgroups below the targets (call often: short-lived containers).
    pub fn scan(&mut self) {
        for rel in &self.targets {
            let cg = Cgroup {
                mount: self.root.clone(),
                rel: rel.clone(),
            };
            for (id, path) in cg.walk() {
                self.paths.entry(id).or_insert(path);
            }
        }
    }

    /// Paths of every cgroup seen below the targets.
    pub fn paths(&self) -> &BTreeMap<u64, String> {
        &self.paths
    }

    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// Everything so far, activity included; the recording goes on.
    pub fn so_far(&mut self) -> Result<Snapshot, Error> {
        self.drain();
        self.scan();
        let capabilities = self.kernel.limits.capabilities.clone();
        let phases = phases(&self.kernel.cgroups()?);
        let activities =
            self.collector
                .so_far(capabilities.is_none(), &phases, self.include_runtime_setup);
        self.snapshot(activities, capabilities)
    }

    /// Stops recording and returns everything.
    pub fn finish(mut self) -> Result<Snapshot, Error> {
        self.drain();
        self.scan();
        let capabilities = self.kernel.limits.capabilities.clone();
        let collector = std::mem::take(&mut self.collector);
        let unresolved = collector.unresolved;
        let phases = phases(&self.kernel.cgroups()?);
        let activities =
            collector.finish_with(capabilities.is_none(), &phases, self.include_runtime_setup);
        let mut snap = self.snapshot(activities, capabilities)?;
        if unresolved > 0 {
            snap.warnings.push(format!(
                "{unresolved} file or socket fact(s) could not be resolved (the process exited before its path or fd could be read)"
            ));
        }
        Ok(snap)
    }

    fn snapshot(
        &self,
        mut activities: BTreeMap<u64, crate::model::Activity>,
        capabilities_missing: Option<String>,
    ) -> Result<Snapshot, Error> {
        let bitmaps = self.kernel.cgroups()?;
        let events_lost = self.kernel.events_lost()?;
        let mut warnings: Vec<String> = capabilities_missing
            .into_iter()
            .chain(self.kernel.limits.late_joins.clone())
            .collect();
        if !self.kernel.limits.missing_exits.is_empty() {
            warnings.push(format!(
                "no events for syscalls without exit tracepoints here: {}",
                self.kernel.limits.missing_exits.join(", ")
            ));
        }
        let cgroups: BTreeMap<u64, CgroupRecord> = bitmaps
            .iter()
            .map(|(&id, value)| {
                let mut rec = cgroup_record(
                    id,
                    self.paths.get(&id).cloned(),
                    value,
                    self.include_runtime_setup,
                );
                rec.activity = activities.remove(&id).unwrap_or_default();
                (id, rec)
            })
            .collect();
        warnings.extend(CgroupRecord::late_join_warnings(cgroups.values()));
        Ok(Snapshot {
            cgroups,
            events_lost,
            warnings,
        })
    }
}

/// A recording of some cgroups of a snapshot: one pod's, or one container's.
pub fn recording(
    target_cgroup: &str,
    started_at: SystemTime,
    mut cgroups: Vec<CgroupRecord>,
    events_lost: BTreeMap<String, u64>,
) -> Recording {
    cgroups.sort_by(|a, b| (&a.path, a.id).cmp(&(&b.path, b.id)));
    let uts = nix::sys::utsname::uname().ok();
    Recording {
        schema_version: SCHEMA_VERSION,
        profgen_version: env!("CARGO_PKG_VERSION").to_owned(),
        host: Host {
            kernel_release: kernel_release(),
            machine: uts
                .map(|u| u.machine().to_string_lossy().into_owned())
                .unwrap_or_else(|| std::env::consts::ARCH.to_owned()),
        },
        started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
        ended_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        target: Target::Cgroup {
            cgroup: target_cgroup.to_owned(),
        },
        runtime: None,
        syscalls_only: false,
        coverage: Default::default(),
        events_lost,
        cgroups,
    }
}

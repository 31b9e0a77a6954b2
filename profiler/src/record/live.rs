//! The recorder every front end drives: `profgen record` gives it its one target before the
//! workload starts; `record --pod` and the agent add each pod cgroup as soon as it exists
//! (pods come and go during the learning window), so containers are recorded from their
//! first syscall either way.
//!
//! The front ends own their event loops (what stops them differs); each one awaits
//! [`LiveRecorder::readable`] and calls [`LiveRecorder::drain`], calls [`LiveRecorder::tick`]
//! every [`TICK`], and ends with [`LiveRecorder::finish`].

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use profiler_common::bitmap::{phase, CgroupSyscalls};
use tokio::io::{unix::AsyncFd, Interest};

use super::{
    activity::Collector,
    kernel::{EventRing, Hook, Kernel},
    progress::{Counts, Progress},
    snapshot::{self, cgroup_record, phases, runtime_with_version, Snapshot},
    Error,
};
use crate::{
    cgroup::Cgroup,
    model::{Activity, CgroupRecord, Runtime},
};

/// How often cgroup names are learnt (short-lived containers' cgroups vanish) and the
/// progress line is considered.
pub const TICK: Duration = Duration::from_millis(100);

/// What is recorded, whatever the targets.
#[derive(Clone, Copy, Debug, Default)]
pub struct LiveOptions {
    /// Keep what tasks did before the runtime installed its seccomp filter in the profile.
    pub include_runtime_setup: bool,
    /// Record only syscalls (for seccomp): no file, network or capability facts, and less
    /// overhead for every process on the machine.
    pub syscalls_only: bool,
}

/// Loaded eBPF programs, the cgroups they record, and what was learnt so far.
pub struct LiveRecorder {
    kernel: Kernel,
    /// The event ring buffer, registered with the event loop; `None` with `syscalls_only`.
    ring: Option<AsyncFd<EventRing>>,
    /// The cgroup2 tree (possibly a hostPath view of the host's).
    root: PathBuf,
    /// Below the root.
    targets: BTreeSet<String>,
    /// cgroup id → path below the root, learnt while the cgroup exists (a container's cgroup
    /// is removed when it stops, possibly before the recording ends).
    paths: BTreeMap<u64, String>,
    collector: Collector,
    events: u64,
    /// Cgroups no runtime set up, whose filter therefore marks no hand-over.
    without_runtime: BTreeSet<u64>,
    /// By runtime name: its version is asked once.
    runtime_versions: BTreeMap<String, Runtime>,
    started_at: SystemTime,
    opts: LiveOptions,
}

impl LiveRecorder {
    /// Loads and attaches the programs; nothing is recorded until [`Self::add_target`].
    /// Fails with a permission error (exit code 4) without root or CAP_BPF + CAP_PERFMON.
    /// Must run inside the tokio runtime that will await [`Self::readable`].
    pub fn start(root: &Path, opts: LiveOptions) -> Result<Self, Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Io {
                context: "watching the event ring buffer".into(),
                source: std::io::Error::other("no event loop is running"),
            });
        }
        let mut kernel = Kernel::load(if opts.syscalls_only {
            Hook::SyscallsOnly
        } else {
            Hook::Record
        })?;
        let ring = kernel.take_events().map(watch).transpose()?;
        Ok(Self {
            kernel,
            ring,
            root: root.to_owned(),
            targets: BTreeSet::new(),
            paths: BTreeMap::new(),
            collector: Collector::default(),
            events: 0,
            without_runtime: BTreeSet::new(),
            runtime_versions: BTreeMap::new(),
            started_at: SystemTime::now(),
            opts,
        })
    }

    /// The cgroup2 tree targets are named below.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Records the cgroup `rel` (below the root) and everything created below it from now.
    /// Returns false if it already was a target.
    pub fn add_target(&mut self, rel: &str) -> Result<bool, Error> {
        let cg = Cgroup::at(&self.root, rel)?;
        if self.targets.contains(&cg.rel) {
            return Ok(false);
        }
        self.kernel.add_target(cg.id()?, cg.level())?;
        self.targets.insert(cg.rel);
        self.scan();
        Ok(true)
    }

    /// The cgroup `id` has no container runtime in front of its workload (the one profgen
    /// made for `record -- CMD`): a filter the workload installs itself (a self-sandboxing
    /// program) does not make what it did before someone else's set-up. Runtimes that the
    /// workload starts put their containers in cgroups of their own.
    pub fn without_runtime(&mut self, id: u64) {
        self.without_runtime.insert(id);
    }

    /// Resolves when events wait to be drained, never when this recording makes none. Safe
    /// to drop unresolved (in a `select!`): readiness is cleared only once it resolves, and
    /// the caller then drains.
    pub async fn readable(&self) {
        let Some(ring) = &self.ring else {
            return std::future::pending().await;
        };
        // An error means the event loop is shutting down: the final drain takes the rest.
        if let Ok(mut guard) = ring.readable().await {
            guard.clear_ready();
        }
    }

    /// Resolves waiting events now, while the processes that made them still exist.
    pub fn drain(&mut self) {
        let Some(ring) = self.ring.as_mut() else {
            return;
        };
        let events = ring.get_mut().drain();
        self.collector.note_processes(&events);
        for ev in &events {
            self.events += 1;
            self.collector.add(ev);
        }
    }

    /// What every front end does every [`TICK`]: learn the names of new cgroups, and show
    /// the progress line when it is due.
    pub fn tick(&mut self, progress: &mut Progress) -> Result<(), Error> {
        self.scan();
        if progress.due() {
            progress.show(&self.counts()?);
        }
        Ok(())
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

    /// Paths of every cgroup seen below the targets, by id.
    pub fn paths(&self) -> &BTreeMap<u64, String> {
        &self.paths
    }

    /// What the progress line reports.
    pub fn counts(&self) -> Result<Counts, Error> {
        let lost = self.kernel.events_lost()?.values().sum();
        Ok(Counts::of_bitmaps(
            &self.kernel.cgroups()?,
            self.events,
            lost,
        ))
    }

    /// Everything so far, activity included; the recording goes on.
    pub fn so_far(&mut self) -> Result<Snapshot, Error> {
        self.drain();
        self.scan();
        let bitmaps = self.bitmaps()?;
        let activities = self.collector.so_far(
            self.capabilities_recorded(),
            &phases(&bitmaps),
            self.opts.include_runtime_setup,
        );
        let runtimes = self.runtimes();
        self.snapshot(&bitmaps, activities, runtimes, self.collector.unresolved)
    }

    /// Stops recording (the programs are detached when this returns) and returns
    /// everything.
    pub fn finish(mut self) -> Result<Snapshot, Error> {
        self.drain();
        self.scan();
        let bitmaps = self.bitmaps()?;
        let runtimes = self.runtimes();
        let collector = std::mem::take(&mut self.collector);
        let unresolved = collector.unresolved;
        let activities = collector.finish_with(
            self.capabilities_recorded(),
            &phases(&bitmaps),
            self.opts.include_runtime_setup,
        );
        self.snapshot(&bitmaps, activities, runtimes, unresolved)
    }

    /// The kernel's bitmaps, with cgroups that have no runtime kept in set-up.
    fn bitmaps(&self) -> Result<BTreeMap<u64, CgroupSyscalls>, Error> {
        let mut bitmaps = self.kernel.cgroups()?;
        for id in &self.without_runtime {
            if let Some(own) = bitmaps.get_mut(id) {
                own.phase = phase::SETUP;
            }
        }
        Ok(bitmaps)
    }

    fn capabilities_recorded(&self) -> bool {
        self.kernel.limits.capabilities.is_none()
    }

    fn runtimes(&mut self) -> BTreeMap<u64, Runtime> {
        let versions = &mut self.runtime_versions;
        self.collector
            .runtimes
            .iter()
            .map(|(&id, name)| {
                let runtime = versions
                    .entry(name.clone())
                    .or_insert_with(|| runtime_with_version(name.clone()));
                (id, runtime.clone())
            })
            .collect()
    }

    fn snapshot(
        &self,
        bitmaps: &BTreeMap<u64, CgroupSyscalls>,
        mut activities: BTreeMap<u64, Activity>,
        runtimes: BTreeMap<u64, Runtime>,
        unresolved: u64,
    ) -> Result<Snapshot, Error> {
        let cgroups: BTreeMap<u64, CgroupRecord> = bitmaps
            .iter()
            .map(|(&id, value)| {
                let mut rec = cgroup_record(
                    id,
                    self.paths.get(&id).cloned(),
                    value,
                    self.opts.include_runtime_setup,
                );
                rec.activity = activities.remove(&id).unwrap_or_default();
                (id, rec)
            })
            .collect();
        Ok(Snapshot {
            warnings: snapshot::warnings(&self.kernel.limits, unresolved, cgroups.values()),
            cgroups,
            events_lost: self.kernel.events_lost()?,
            runtimes,
            started_at: self.started_at,
            ended_at: SystemTime::now(),
            syscalls_only: self.opts.syscalls_only,
            event_exits: self.kernel.event_exits,
        })
    }
}

/// Registers the ring buffer with the event loop, which then owns it.
fn watch(ring: EventRing) -> Result<AsyncFd<EventRing>, Error> {
    // SAFETY: the `AsyncFd` owns the ring, and the ring owns its map's fd (aya keeps it as
    // an `OwnedFd` until the ring is dropped): the fd stays open, the same one, for as long
    // as the registration lives. The ring is only ever drained through `get_mut`, never
    // replaced, so `as_raw_fd` keeps returning that fd.
    unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }.map_err(|e| Error::Io {
        context: "watching the event ring buffer".into(),
        source: e.into(),
    })
}

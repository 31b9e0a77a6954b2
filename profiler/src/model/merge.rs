//! Combining recordings (replicas of a workload, or several runs of its tests) and the
//! questions synthesis asks of one.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Abi, Activity, CgroupRecord, FileAccess, FsPath, ModelError, Recording, SyscallSet,
    SCHEMA_VERSION,
};

impl Recording {
    /// One line per cgroup a process joined after the runtime's hand-over.
    pub fn late_join_warnings(&self) -> Vec<String> {
        CgroupRecord::late_join_warnings(&self.cgroups)
    }

    /// The syscalls the profile must allow: the union over all cgroups, per ABI.
    pub fn allowed_syscalls(&self) -> SyscallSet {
        let mut all = SyscallSet::new();
        for cg in &self.cgroups {
            union_into(&mut all, &cg.syscalls);
        }
        all.retain(|_, names| !names.is_empty());
        all
    }

    /// Syscall numbers no table could name, per ABI, over all cgroups.
    pub fn unknown_numbers(&self) -> BTreeMap<Abi, BTreeSet<u32>> {
        let mut all: BTreeMap<Abi, BTreeSet<u32>> = BTreeMap::new();
        for cg in &self.cgroups {
            for (abi, nrs) in &cg.unknown_numbers {
                all.entry(*abi).or_default().extend(nrs);
            }
        }
        all.retain(|_, nrs| !nrs.is_empty());
        all
    }

    /// All events the kernel side lost, whatever the reason.
    pub fn events_lost_total(&self) -> u64 {
        self.events_lost
            .values()
            .fold(0u64, |sum, n| sum.saturating_add(*n))
    }

    /// One recording holding everything `recordings` saw: what any of them allowed is
    /// allowed, lost events add up. Meant for replicas of one workload and repeated runs of
    /// its tests; the target and runtime are the first recording's, the time span covers
    /// all of them. A cgroup seen in several (same path and id) is merged into one entry.
    pub fn merge(recordings: &[Recording]) -> Result<Recording, ModelError> {
        let (first, rest) = recordings.split_first().ok_or(ModelError::MergeNothing)?;
        if let Some(other) = rest.iter().find(|r| r.host.machine != first.host.machine) {
            return Err(ModelError::MergeMachines {
                first: first.host.machine.clone(),
                other: other.host.machine.clone(),
            });
        }
        let kernels: BTreeSet<&str> = recordings
            .iter()
            .map(|r| r.host.kernel_release.as_str())
            .collect();

        let mut events_lost: BTreeMap<String, u64> = BTreeMap::new();
        let mut cgroups: BTreeMap<(Option<String>, u64), CgroupRecord> = BTreeMap::new();
        for rec in recordings {
            for (reason, n) in &rec.events_lost {
                let sum = events_lost.entry(reason.clone()).or_default();
                *sum = sum.saturating_add(*n);
            }
            for cg in &rec.cgroups {
                match cgroups.entry((cg.path.clone(), cg.id)) {
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(cg.clone());
                    }
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        merge_cgroup(e.get_mut(), cg);
                    }
                }
            }
        }

        let mut merged = Recording {
            schema_version: SCHEMA_VERSION,
            profgen_version: env!("CARGO_PKG_VERSION").to_owned(),
            host: super::Host {
                kernel_release: kernels.into_iter().collect::<Vec<_>>().join(", "),
                machine: first.host.machine.clone(),
                event_exits: first
                    .host
                    .event_exits
                    .filter(|exits| rest.iter().all(|r| r.host.event_exits == Some(*exits))),
            },
            started_at: recordings
                .iter()
                .map(|r| r.started_at.clone())
                .min()
                .unwrap_or_default(),
            ended_at: recordings
                .iter()
                .map(|r| r.ended_at.clone())
                .max()
                .unwrap_or_default(),
            target: first.target.clone(),
            runtime: recordings.iter().find_map(|r| r.runtime.clone()),
            // A part without activity makes the merged activity incomplete.
            syscalls_only: recordings.iter().any(|r| r.syscalls_only),
            coverage: super::Coverage::of_merge(recordings),
            events_lost,
            cgroups: cgroups.into_values().collect(),
        };
        merged.sort_cgroups();
        Ok(merged)
    }
}

fn union_into(into: &mut SyscallSet, from: &SyscallSet) {
    for (abi, names) in from {
        into.entry(*abi).or_default().extend(names.iter().cloned());
    }
}

/// Folds `other` (the same cgroup seen again) into `into`. A call allowed in either run is
/// allowed, so it can no longer count as set-up only.
///
/// The same cgroup seen before its runtime installed the seccomp filter (an early snapshot,
/// e.g. an agent checkpoint taken during the runtime's set-up) and after it: the early
/// snapshot's calls are set-up, not the container's, so it only adds to the excluded list.
fn merge_cgroup(into: &mut CgroupRecord, other: &CgroupRecord) {
    let same_id = into.id == other.id;
    merge_cgroup_as(into, other, same_id);
}

/// The activity of every cgroup in `cgroups`, folded by [`merge_cgroup`]'s rules as if they
/// were one cgroup seen several times (what synthesis makes one profile from), without
/// copying the recording.
pub(crate) fn fold_as_one(cgroups: &[CgroupRecord]) -> Activity {
    let Some((first, rest)) = cgroups.split_first() else {
        return Activity::default();
    };
    let mut one = first.clone();
    for cg in rest {
        merge_cgroup_as(&mut one, cg, true);
    }
    one.activity
}

/// [`merge_cgroup`], with `same_id` saying whether the two are one cgroup.
fn merge_cgroup_as(into: &mut CgroupRecord, other: &CgroupRecord, same_id: bool) {
    if into.seccomp_filter_seen != other.seccomp_filter_seen && same_id {
        let (armed, early) = if into.seccomp_filter_seen {
            (into.clone(), other)
        } else {
            (other.clone(), &*into)
        };
        let mut merged = armed;
        let mut setup = early.syscalls.clone();
        union_into(&mut setup, &early.excluded_before_filter);
        union_into(&mut merged.excluded_before_filter, &setup);
        for (abi, excluded) in &mut merged.excluded_before_filter {
            if let Some(allowed) = merged.syscalls.get(abi) {
                excluded.retain(|name| !allowed.contains(name));
            }
        }
        merged
            .excluded_before_filter
            .retain(|_, names| !names.is_empty());
        *into = merged;
        return;
    }
    if into.entrypoint_seen != other.entrypoint_seen && same_id {
        // Both after the filter, one before the entrypoint's exec: that one's activity is
        // the runtime's last steps (runc dropping capabilities, reading /proc/self/fd).
        if other.entrypoint_seen {
            into.activity = other.activity.clone();
            into.entrypoint_seen = true;
        }
        let mut syscalls_only = other.clone();
        syscalls_only.activity = Default::default();
        merge_cgroup_calls(into, &syscalls_only);
        return;
    }
    merge_cgroup_calls(into, other);
    merge_activity(&mut into.activity, &other.activity);
}

/// The syscall half of [`merge_cgroup`].
fn merge_cgroup_calls(into: &mut CgroupRecord, other: &CgroupRecord) {
    super::args::merge_args(into, other);
    into.seccomp_filter_seen |= other.seccomp_filter_seen;
    into.entrypoint_seen |= other.entrypoint_seen;
    into.joined_after_handover |= other.joined_after_handover;
    union_into(&mut into.syscalls, &other.syscalls);
    union_into(
        &mut into.excluded_before_filter,
        &other.excluded_before_filter,
    );
    for (abi, excluded) in &mut into.excluded_before_filter {
        if let Some(allowed) = into.syscalls.get(abi) {
            excluded.retain(|name| !allowed.contains(name));
        }
    }
    into.excluded_before_filter
        .retain(|_, names| !names.is_empty());
    for (abi, nrs) in &other.unknown_numbers {
        into.unknown_numbers.entry(*abi).or_default().extend(nrs);
    }
}

/// Everything either run did. Destructured in full so a new field cannot be forgotten here.
fn merge_activity(into: &mut Activity, other: &Activity) {
    let Activity {
        files,
        pid_in_names,
        aggregated_dirs,
        capabilities,
        sockets,
        listens,
        flows,
        unix_sockets,
        uids,
        gids,
        processes,
        privilege_gained,
    } = other;
    // One entry per (path, failed, owned), with every operation either run did. `into`'s
    // own entries are moved, not copied. Both lists come sorted by path: the sort merges two
    // runs, where a map of a million files would search for each.
    fn entry(f: &FileAccess) -> (&FsPath, bool, bool) {
        (&f.path, f.failed, f.owned)
    }
    let mut all = std::mem::take(&mut into.files);
    all.extend(files.iter().cloned());
    all.sort_by(|a, b| entry(a).cmp(&entry(b)));
    all.dedup_by(|next, kept| {
        let same = entry(next) == entry(kept);
        if same {
            kept.ops.append(&mut next.ops);
        }
        same
    });
    into.files = all;
    // `None` means the kernel could not tell; a run that could tell is the better evidence.
    if let Some(caps) = capabilities {
        into.capabilities
            .get_or_insert_with(BTreeSet::new)
            .extend(caps.iter().cloned());
    }
    into.pid_in_names.extend(pid_in_names.iter().cloned());
    into.aggregated_dirs.extend(aggregated_dirs.iter().cloned());
    into.sockets.extend(sockets.iter().cloned());
    into.listens.extend(listens.iter().cloned());
    into.flows.extend(flows.iter().cloned());
    into.unix_sockets.extend(unix_sockets.iter().cloned());
    into.uids.extend(uids);
    into.gids.extend(gids);
    into.processes.extend(processes.iter().cloned());
    into.privilege_gained |= *privilege_gained;
}

impl CgroupRecord {
    /// One line per cgroup of `cgroups` a process joined after the runtime's hand-over.
    pub fn late_join_warnings<'a>(
        cgroups: impl IntoIterator<Item = &'a CgroupRecord>,
    ) -> Vec<String> {
        cgroups
            .into_iter()
            .filter(|c| c.joined_after_handover)
            .map(|c| {
                format!(
                    "a process joined {} after its runtime handed over (runc exec, kubectl exec?) and could not be followed (too many at once): what it did before its own seccomp filter counts as the workload's; review the profile, or record again without exec",
                    c.path.as_deref().unwrap_or("a cgroup")
                )
            })
            .collect()
    }
}

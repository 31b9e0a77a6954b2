//! Small recordings for tests.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

/// A recording of one command with `cgroups`, nothing lost.
pub(crate) fn recording(cgroups: Vec<CgroupRecord>) -> Recording {
    Recording {
        schema_version: SCHEMA_VERSION,
        profgen_version: "0.1.0".into(),
        host: Host {
            kernel_release: "6.18.0".into(),
            machine: "x86_64".into(),
            event_exits: None,
        },
        started_at: "2026-01-01T00:00:00Z".into(),
        ended_at: "2026-01-01T00:01:00Z".into(),
        target: Target::Command {
            argv: vec!["nginx".into()],
            cgroup: "/profgen/1".into(),
        },
        runtime: None,
        syscalls_only: false,
        coverage: Coverage::default(),
        events_lost: BTreeMap::from([("ringbuf_full".into(), 0), ("map_full".into(), 0)]),
        cgroups,
    }
}

/// A cgroup that made `syscalls` after its runtime armed the filter.
pub(crate) fn cgroup(id: u64, path: &str, syscalls: &[(Abi, &[&str])]) -> CgroupRecord {
    CgroupRecord {
        id,
        path: Some(path.into()),
        seccomp_filter_seen: true,
        entrypoint_seen: true,
        joined_after_handover: false,
        syscalls: set(syscalls),
        excluded_before_filter: SyscallSet::new(),
        unknown_numbers: BTreeMap::new(),
        args: BTreeMap::new(),
        activity: Default::default(),
    }
}

pub(crate) fn set(syscalls: &[(Abi, &[&str])]) -> SyscallSet {
    syscalls
        .iter()
        .map(|(abi, names)| {
            let names: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
            (*abi, names)
        })
        .collect()
}

/// A cgroup that made `calls` (x86_64) and read `files`.
pub(crate) fn cgroup_with(calls: &[&str], files: &[&str]) -> CgroupRecord {
    let mut cg = cgroup(1, "/profgen/1", &[(Abi::X86_64, calls)]);
    cg.activity.files = files
        .iter()
        .map(|p| FileAccess {
            path: FsPath::from(*p),
            ops: BTreeSet::from([FileOp::Read]),
            failed: false,
            owned: false,
        })
        .collect();
    cg
}

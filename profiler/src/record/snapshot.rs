//! What a live recording holds at one moment, and the one way a [`Recording`] is made of it:
//! `profgen record` makes one of the whole snapshot, `record --pod` and the agent one per pod.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::SystemTime,
};

use profiler_common::bitmap::{phase, Abi as KernelAbi, CgroupSyscalls};

use super::kernel::{kernel_release, Limits};
use crate::{
    model::{
        Abi, ArgSet, ArgValues, CallArgs, CgroupRecord, EventExits, Host, Recording, Runtime,
        SyscallSet, Target, SCHEMA_VERSION,
    },
    syscalls,
};

/// What the kernel recorded for every cgroup below the targets, and what it could not.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// By cgroup id.
    pub cgroups: BTreeMap<u64, CgroupRecord>,
    pub events_lost: BTreeMap<String, u64>,
    /// What this kernel could not record, and facts that could not be resolved.
    pub warnings: Vec<String>,
    /// The container runtime seen setting up each cgroup, by cgroup id.
    pub runtimes: BTreeMap<u64, Runtime>,
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    pub syscalls_only: bool,
    /// How the kernel completed events at syscall exit (`None`: no events recorded).
    pub event_exits: Option<EventExits>,
}

impl Snapshot {
    /// The recording of `cgroups` (all of this snapshot's, or one pod's) as `target`: its
    /// runtime is the first one seen setting up one of them.
    pub fn recording(&self, target: Target, mut cgroups: Vec<CgroupRecord>) -> Recording {
        cgroups.sort_by(|a, b| (&a.path, a.id).cmp(&(&b.path, b.id)));
        let runtime = cgroups
            .iter()
            .find_map(|c| self.runtimes.get(&c.id))
            .cloned();
        Recording {
            schema_version: SCHEMA_VERSION,
            profgen_version: env!("CARGO_PKG_VERSION").to_owned(),
            host: host(self.event_exits),
            started_at: humantime::format_rfc3339_seconds(self.started_at).to_string(),
            ended_at: humantime::format_rfc3339_seconds(self.ended_at).to_string(),
            target,
            runtime,
            syscalls_only: self.syscalls_only,
            coverage: Default::default(),
            events_lost: self.events_lost.clone(),
            cgroups,
        }
    }
}

/// What the user is told besides the recording: what this kernel cannot record, facts lost
/// to processes that exited, and processes that joined a container too late to be followed.
pub fn warnings<'a>(
    limits: &Limits,
    unresolved: u64,
    cgroups: impl IntoIterator<Item = &'a CgroupRecord>,
) -> Vec<String> {
    let mut warnings: Vec<String> = limits
        .capabilities
        .iter()
        .chain(&limits.late_joins)
        .cloned()
        .collect();
    if !limits.missing_exits.is_empty() {
        warnings.push(format!(
            "no events for syscalls without exit tracepoints here: {}",
            limits.missing_exits.join(", ")
        ));
    }
    if unresolved > 0 {
        warnings.push(format!(
            "{unresolved} file or socket fact(s) could not be resolved (the process exited before its path or fd could be read)"
        ));
    }
    warnings.extend(CgroupRecord::late_join_warnings(cgroups));
    warnings
}

/// Each cgroup's phase in its runtime's hand-over.
pub fn phases(bitmaps: &BTreeMap<u64, CgroupSyscalls>) -> BTreeMap<u64, u32> {
    bitmaps.iter().map(|(&id, v)| (id, v.phase)).collect()
}

/// Turns one cgroup's bitmaps into names. After the runtime installed its seccomp filter
/// only the `after` half counts; what only happened before is kept apart as runtime set-up.
pub fn cgroup_record(
    id: u64,
    path: Option<String>,
    value: &CgroupSyscalls,
    include_runtime_setup: bool,
) -> CgroupRecord {
    let armed = value.phase != phase::SETUP;
    let mut syscalls = SyscallSet::new();
    let mut excluded = SyscallSet::new();
    let mut unknown = BTreeMap::new();
    for kabi in KernelAbi::ALL {
        let abi = model_abi(kabi);
        let (before, unknown_before) = syscalls::decode(abi, &value.before[kabi as usize]);
        let (after, unknown_after) = syscalls::decode(abi, &value.after[kabi as usize]);
        let (kept, dropped): (BTreeSet<String>, BTreeSet<String>) =
            if armed && !include_runtime_setup {
                let dropped = before.difference(&after).cloned().collect();
                (after, dropped)
            } else {
                (before.union(&after).cloned().collect(), BTreeSet::new())
            };
        let unknown_kept: BTreeSet<u32> = if armed && !include_runtime_setup {
            unknown_after
        } else {
            unknown_before.union(&unknown_after).copied().collect()
        };
        if !kept.is_empty() {
            syscalls.insert(abi, kept);
        }
        if !dropped.is_empty() {
            excluded.insert(abi, dropped);
        }
        if !unknown_kept.is_empty() {
            unknown.insert(abi, unknown_kept);
        }
    }
    // Values are kept from the filter on only: with the set-up kept, calls made before it
    // have none, so none are reported.
    let args = if armed && !include_runtime_setup {
        arg_values(&value.args)
    } else {
        ArgSet::new()
    };
    CgroupRecord {
        id,
        path,
        seccomp_filter_seen: armed,
        entrypoint_seen: value.phase == phase::WORKLOAD,
        joined_after_handover: value.joined_late != 0,
        syscalls,
        excluded_before_filter: excluded,
        unknown_numbers: unknown,
        args,
        activity: Default::default(),
    }
}

/// The kernel's watched argument values, by syscall name and argument index (x86_64).
fn arg_values(kernel: &profiler_common::args::ArgValues) -> ArgSet {
    let mut calls: BTreeMap<String, CallArgs> = BTreeMap::new();
    for (slot, watched) in profiler_common::args::WATCHED.iter().enumerate() {
        let (values, overflowed) = kernel.get(slot);
        let values: BTreeSet<u64> = values.collect();
        if values.is_empty() && !overflowed {
            continue;
        }
        calls
            .entry(watched.name.to_owned())
            .or_default()
            .insert(watched.index, ArgValues { values, overflowed });
    }
    if calls.is_empty() {
        ArgSet::new()
    } else {
        ArgSet::from([(Abi::X86_64, calls)])
    }
}

fn model_abi(abi: KernelAbi) -> Abi {
    match abi {
        KernelAbi::X86_64 => Abi::X86_64,
        KernelAbi::I386 => Abi::I386,
        KernelAbi::X32 => Abi::X32,
    }
}

fn host(event_exits: Option<EventExits>) -> Host {
    let uts = nix::sys::utsname::uname().ok();
    Host {
        event_exits,
        kernel_release: kernel_release(),
        machine: uts
            .map(|u| u.machine().to_string_lossy().into_owned())
            .unwrap_or_else(|| std::env::consts::ARCH.to_owned()),
    }
}

/// The runtime's version as its `--version` prints it, when it is on `PATH` (an agent in a
/// container usually does not see the node's runtime: the name alone then).
pub fn runtime_with_version(name: String) -> Runtime {
    let version = std::process::Command::new(&name)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines()
                .next()?
                .split_whitespace()
                .last()
                .map(str::to_owned)
        });
    Runtime { name, version }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn bits(numbers: &[u32]) -> [u64; profiler_common::bitmap::WORDS] {
        let mut words = [0u64; profiler_common::bitmap::WORDS];
        for &n in numbers {
            words[(n / 64) as usize] |= 1 << (n % 64);
        }
        words
    }

    fn names(rec: &CgroupRecord, abi: Abi) -> Vec<&str> {
        rec.syscalls
            .get(&abi)
            .map(|s| s.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    #[test]
    fn after_the_filter_only_the_workloads_syscalls_count() {
        // x86_64: 0 read, 1 write, 165 mount.
        let mut value = CgroupSyscalls::ZERO;
        value.before[KernelAbi::X86_64 as usize] = bits(&[0, 165]);
        value.after[KernelAbi::X86_64 as usize] = bits(&[0, 1]);
        struct Case {
            phase: u32,
            include_runtime_setup: bool,
            kept: &'static [&'static str],
            excluded: &'static [&'static str],
            filter_seen: bool,
            entrypoint_seen: bool,
        }
        let case =
            |phase, include_runtime_setup, kept, excluded, filter_seen, entrypoint_seen| Case {
                phase,
                include_runtime_setup,
                kept,
                excluded,
                filter_seen,
                entrypoint_seen,
            };
        let cases = [
            case(
                phase::SETUP,
                false,
                &["mount", "read", "write"],
                &[],
                false,
                false,
            ),
            case(
                phase::FILTERED,
                false,
                &["read", "write"],
                &["mount"],
                true,
                false,
            ),
            case(
                phase::WORKLOAD,
                false,
                &["read", "write"],
                &["mount"],
                true,
                true,
            ),
            case(
                phase::WORKLOAD,
                true,
                &["mount", "read", "write"],
                &[],
                true,
                true,
            ),
        ];
        for c in cases {
            value.phase = c.phase;
            let rec = cgroup_record(7, Some("/a".into()), &value, c.include_runtime_setup);
            let case = format!(
                "phase {}, include_runtime_setup {}",
                c.phase, c.include_runtime_setup
            );
            assert_eq!(names(&rec, Abi::X86_64), c.kept, "{case}");
            let dropped: Vec<&str> = rec
                .excluded_before_filter
                .get(&Abi::X86_64)
                .map(|s| s.iter().map(String::as_str).collect())
                .unwrap_or_default();
            assert_eq!(dropped, c.excluded, "{case}");
            assert_eq!(
                (rec.seccomp_filter_seen, rec.entrypoint_seen),
                (c.filter_seen, c.entrypoint_seen),
                "{case}"
            );
            assert!(!rec.syscalls.contains_key(&Abi::I386), "{case}");
        }
    }

    #[test]
    fn argument_values_are_reported_from_the_filter_on() {
        use profiler_common::args::{slot, stored};
        let mut value = CgroupSyscalls::ZERO;
        value.after[KernelAbi::X86_64 as usize] = bits(&[16, 41]);
        let a = &mut value.args;
        // AF_UNSPEC is 0, which an empty slot is not.
        a.values[slot::SOCKET_DOMAIN][..3].copy_from_slice(&[stored(10), stored(0), stored(2)]);
        a.overflowed = 1 << slot::IOCTL_REQUEST;
        let cases = [
            (phase::WORKLOAD, false, true),
            (phase::FILTERED, false, true),
            // No filter seen (a command without a runtime), or the set-up kept: calls made
            // before the filter carry no values, so none are claimed.
            (phase::SETUP, false, false),
            (phase::WORKLOAD, true, false),
        ];
        for (phase, include_setup, reported) in cases {
            value.phase = phase;
            let rec = cgroup_record(7, None, &value, include_setup);
            assert_eq!(!rec.args.is_empty(), reported, "{phase} {include_setup}");
            if !reported {
                continue;
            }
            let calls = &rec.args[&Abi::X86_64];
            assert_eq!(
                calls["socket"][&0],
                ArgValues {
                    values: [0, 2, 10].into(),
                    overflowed: false
                }
            );
            assert!(!calls["socket"].contains_key(&1), "type never made");
            assert!(calls["ioctl"][&1].overflowed);
            assert_eq!(calls.len(), 2, "{calls:?}");
        }
    }

    fn snapshot() -> Snapshot {
        let cg = |id, path: &str| CgroupRecord {
            id,
            path: Some(path.into()),
            ..cgroup_record(id, None, &CgroupSyscalls::ZERO, false)
        };
        Snapshot {
            cgroups: BTreeMap::from([(1, cg(1, "/pod/b")), (2, cg(2, "/pod/a")), (3, cg(3, "/x"))]),
            events_lost: BTreeMap::from([("ringbuf_full".into(), 2)]),
            warnings: Vec::new(),
            runtimes: BTreeMap::from([
                (1, runtime_with_version("profgen-no-such-runtime".into())),
                (
                    3,
                    Runtime {
                        name: "crun".into(),
                        version: Some("1.8".into()),
                    },
                ),
            ]),
            started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(60),
            ended_at: SystemTime::UNIX_EPOCH + Duration::from_secs(125),
            syscalls_only: true,
            event_exits: Some(EventExits::Tracepoint),
        }
    }

    #[test]
    fn a_recording_names_its_cgroups_in_order_and_their_runtime() {
        let snap = snapshot();
        let pod: Vec<CgroupRecord> = [1, 2].iter().map(|id| snap.cgroups[id].clone()).collect();
        let rec = snap.recording(
            Target::Cgroup {
                cgroup: "/pod".into(),
            },
            pod,
        );
        let paths: Vec<_> = rec.cgroups.iter().map(|c| c.path.as_deref()).collect();
        assert_eq!(paths, [Some("/pod/a"), Some("/pod/b")]);
        // The pod's own runtime (not found on PATH: no version), not another pod's.
        assert_eq!(
            rec.runtime,
            Some(Runtime {
                name: "profgen-no-such-runtime".into(),
                version: None
            })
        );
        assert_eq!(rec.started_at, "1970-01-01T00:01:00Z");
        assert_eq!(rec.ended_at, "1970-01-01T00:02:05Z");
        assert!(rec.syscalls_only);
        assert_eq!(rec.events_lost_total(), 2);
        assert_eq!(rec.host.kernel_release, kernel_release());
        assert_eq!(rec.host.event_exits, Some(EventExits::Tracepoint));

        let other = snap.recording(
            Target::Cgroup {
                cgroup: "/elsewhere".into(),
            },
            Vec::new(),
        );
        assert_eq!(other.runtime, None);
    }

    #[test]
    fn warnings_say_what_the_kernel_could_not_record() {
        let limits = Limits {
            capabilities: Some("no cap_capable".into()),
            missing_exits: vec!["sys_exit_openat2".into(), "sys_exit_bind".into()],
            late_joins: None,
        };
        let mut late = snapshot().cgroups[&2].clone();
        late.joined_after_handover = true;
        let w = warnings(&limits, 3, [&late]);
        assert_eq!(w.len(), 4, "{w:#?}");
        assert_eq!(w[0], "no cap_capable");
        assert_eq!(
            w[1],
            "no events for syscalls without exit tracepoints here: sys_exit_openat2, sys_exit_bind"
        );
        assert!(w[2].starts_with("3 file or socket fact(s)"), "{}", w[2]);
        assert!(w[3].contains("/pod/a"), "{}", w[3]);
        assert!(warnings(&Limits::default(), 0, []).is_empty());
    }
}

//! Every map of the eBPF side, in one place. Names and capacities come from
//! `profiler_common::maps` so userspace and kernel agree.

use crate::current_cgroup::LastTask;
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use profiler_common::{
    bitmap::{slot_owner, CgroupSyscalls},
    event::Event,
    maps::{
        EVENTS_BYTES, MAX_CGROUPS, MAX_DIRS, MAX_LATE_TASKS, MAX_PENDING, MAX_SENT,
        MAX_TARGET_LEVELS, MAX_TARGET_ROOTS,
    },
    stats::Stat,
};

#[map]
pub static SLOTS: Array<CgroupSyscalls> = Array::with_max_entries(slot_owner::SLOTS, 0);

#[map]
pub static CGROUP_SYSCALLS: HashMap<u64, CgroupSyscalls> =
    HashMap::with_max_entries(MAX_CGROUPS, 0);

#[map]
pub static TARGET_ROOTS: HashMap<u64, u32> = HashMap::with_max_entries(MAX_TARGET_ROOTS, 0);

#[map]
pub static TARGET_LEVELS: Array<u32> = Array::with_max_entries(MAX_TARGET_LEVELS, 0);

/// tgid → own phase, for processes that joined a cgroup after its hand-over.
#[map]
pub static LATE_TASKS: HashMap<u32, u32> = HashMap::with_max_entries(MAX_LATE_TASKS, 0);

/// The generation of the per-CPU memory of tasks' cgroups (one entry; see
/// `current_cgroup.rs`).
#[map]
pub static CGROUP_GENERATION: Array<u64> = Array::with_max_entries(1, 0);

/// Per CPU: the task that last entered a syscall there, and its cgroup.
#[map]
pub static LAST_TASK: PerCpuArray<LastTask> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static EVENTS_ENABLED: Array<u32> = Array::with_max_entries(1, 0);

#[map]
pub static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Stat::COUNT, 0);

/// One all-zero `CgroupSyscalls`: the value is larger than the 512-byte eBPF stack, so new
/// entries are inserted from here. Never written.
#[map]
pub static ZERO_CGROUP: Array<CgroupSyscalls> = Array::with_max_entries(1, 0);

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

#[map]
pub static PENDING: LruHashMap<u64, Event> = LruHashMap::with_max_entries(MAX_PENDING, 0);

#[map]
pub static SENT: LruHashMap<u64, u8> = LruHashMap::with_max_entries(MAX_SENT, 0);

/// Directory key → distinct names sent for it (see `events::aggregate`).
#[map]
pub static DIRS: LruHashMap<u64, u32> = LruHashMap::with_max_entries(MAX_DIRS, 0);

/// Per-CPU room to build an `Event` (larger than the eBPF stack).
#[map]
pub static SCRATCH: PerCpuArray<Event> = PerCpuArray::with_max_entries(1, 0);

/// Counts one lost or degraded event.
#[inline(always)]
pub fn count(stat: Stat) {
    if let Some(counter) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot, and programs do not preempt each other on one CPU.
        unsafe { *counter += 1 };
    }
}

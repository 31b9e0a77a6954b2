//! Syscall recording: on `sys_enter`, set a bit per (cgroup, ABI, syscall number). Nothing is
//! streamed; once a workload has made each of its syscalls once, the program only reads.
//!
//! The hot path is the cgroup id (remembered per CPU for the task that ran last, see
//! `current_cgroup.rs`), one inlined array access (the cgroup's slot), one register load and
//! a bit test, then one test of the syscall number for the few that make events or have
//! watched arguments (`arg_values.rs`).

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_get_current_pid_tgid,
        bpf_probe_read_kernel,
    },
    macros::{btf_tracepoint, raw_tracepoint, tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
};
use core::{
    intrinsics::{atomic_cxchg, atomic_or, atomic_xadd, AtomicOrdering},
    ptr::{read_volatile, write_volatile},
};
use profiler_common::{
    args,
    bitmap::{phase, seccomp_install as sc, slot, slot_owner, Abi, CgroupSyscalls},
    event::{nr as event_nr, staging},
    maps::MAX_TARGET_LEVELS,
    stats::Stat,
};

use crate::{
    arg_values, current_cgroup,
    events::{self, Args},
    maps::{
        count, CGROUP_SYSCALLS, EVENTS_ENABLED, LATE_TASKS, SLOTS, TARGET_LEVELS, TARGET_ROOTS,
        ZERO_CGROUP,
    },
    tracepoint::field,
};

/// Byte offsets in x86_64 `struct pt_regs` (a user-visible ABI, `asm/ptrace.h`).
pub mod regs {
    pub const BX: usize = 40;
    pub const R10: usize = 56;
    pub const R9: usize = 64;
    pub const R8: usize = 72;
    pub const DX: usize = 96;
    pub const CX: usize = 88;
    pub const SI: usize = 104;
    pub const DI: usize = 112;
    pub const CS: usize = 136;
}

/// How a program reads the syscall's registers.
pub trait Regs {
    fn read(&self, offset: usize) -> Option<u64>;
}

/// BTF tracepoint: `regs` is a typed kernel pointer the verifier lets us load from directly.
pub struct BtfRegs(pub *const u8);

impl Regs for BtfRegs {
    #[inline(always)]
    fn read(&self, offset: usize) -> Option<u64> {
        // SAFETY: the verifier checks the access against `struct pt_regs` and turns it into
        // a fault-safe load.
        Some(unsafe { read_volatile(self.0.wrapping_add(offset).cast::<u64>()) })
    }
}

/// Raw tracepoint: `regs` is an opaque number; reads go through a helper.
struct RawRegs(*const u8);

impl Regs for RawRegs {
    #[inline(always)]
    fn read(&self, offset: usize) -> Option<u64> {
        // SAFETY: the helper validates the address; a fault returns an error.
        unsafe { bpf_probe_read_kernel(self.0.wrapping_add(offset).cast::<u64>()) }.ok()
    }
}

#[btf_tracepoint(function = "sys_enter")]
pub fn enter_btf_syscall(ctx: BtfTracePointContext) -> i32 {
    let regs: *const u8 = ctx.arg(0);
    record(BtfRegs(regs), ctx.arg(1), current_cgroup::by_regs(regs));
    0
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn enter_raw_syscall(ctx: RawTracePointContext) -> i32 {
    // SAFETY: helper without preconditions.
    let cgroup = unsafe { bpf_get_current_cgroup_id() };
    record(RawRegs(ctx.arg(0)), ctx.arg(1), cgroup);
    0
}

/// An empty program on the same hook: the floor any syscall-entry hook costs. Only the
/// benchmark attaches it.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn enter_raw_syscall_empty(_ctx: RawTracePointContext) -> i32 {
    0
}

/// An empty program on the exit hook of every syscall, for the benchmark.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn exit_raw_syscall_empty(_ctx: RawTracePointContext) -> i32 {
    0
}

#[inline(always)]
fn record(regs: impl Regs, id: u64, cgroup: u64) -> Option<()> {
    let entry = recorded(cgroup)?;

    let Some(cs) = regs.read(regs::CS) else {
        count(Stat::RegsUnreadable);
        return None;
    };
    let (abi, nr) = Abi::classify(id, cs);
    let Some((word, mask)) = slot(nr) else {
        count(Stat::SyscallOutOfRange);
        return None;
    };

    // SAFETY: as above. Concurrent writers only set bits (atomic or) and move `phase`
    // forward (one aligned store).
    let entry = unsafe { &mut *entry };
    let (now, late) = task_phase(entry);
    let bitmaps = if now == phase::SETUP {
        &mut entry.before
    } else {
        &mut entry.after
    };
    let bits: *mut u64 = bitmaps.get_mut(abi as usize)?.get_mut(word)?;
    // Test before setting: the steady state stays read-only.
    // SAFETY: as above.
    if unsafe { read_volatile(bits) } & mask == 0 {
        unsafe { atomic_or::<u64, u64, { AtomicOrdering::Relaxed }>(bits, mask) };
    }

    let next = if now == phase::WORKLOAD {
        now
    } else {
        let installs = now == phase::SETUP && installs_seccomp_filter(&regs, abi, nr);
        phase::next(now, abi, nr, installs)
    };
    if next != now {
        match late {
            // A late joiner that executed its program is one of the workload's from now on.
            Some((tgid, _)) if next == phase::WORKLOAD => {
                let _ = LATE_TASKS.remove(&tgid);
                // SAFETY: aligned word of a live map value. Adding u32::MAX subtracts one
                // (BPF has no atomic subtract).
                unsafe {
                    atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(
                        &raw mut entry.late_pending,
                        u32::MAX,
                    )
                };
            }
            // SAFETY: its own map value, an aligned word.
            Some((_, own)) => unsafe { write_volatile(own, next) },
            // SAFETY: as above.
            None => unsafe { write_volatile(&mut entry.phase, next) },
        }
    }
    // Files, execs and sockets of the native ABI, and its watched arguments; the other ABIs
    // are rare enough to leave to the syscall list. Every other call pays this one test.
    if abi == Abi::X86_64 && args::is_interesting(nr) {
        // Arguments count from the filter on, like the `after` bitmaps.
        if now != phase::SETUP && args::is_watched(nr) {
            arg_values::capture(&mut entry.args, &regs, nr);
        }
        if event_nr::is_event(nr) && stages(nr) {
            events::stage(nr as u32, cgroup, next, &Args::read(&regs));
        }
    }
    Some(())
}

/// Whether the exit program needs event syscall `nr` staged (see `events.rs`).
#[inline(always)]
fn stages(nr: u64) -> bool {
    match EVENTS_ENABLED.get(0) {
        Some(&staging::ALL) => true,
        Some(&staging::EXECS) => event_nr::is_exec(nr),
        _ => false,
    }
}

/// The phase that applies to the current task: its own while it is a process that joined
/// after the hand-over and has not executed its program yet (`runc exec`), else the
/// cgroup's. The map is looked at only while such a process is pending.
#[inline(always)]
pub fn task_phase(entry: &CgroupSyscalls) -> (u32, Option<(u32, *mut u32)>) {
    // SAFETY: aligned words of a live map value.
    let cgroup_phase = unsafe { read_volatile(&entry.phase) };
    if cgroup_phase == phase::SETUP || unsafe { read_volatile(&entry.late_pending) } == 0 {
        return (cgroup_phase, None);
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    match LATE_TASKS.get_ptr_mut(&tgid) {
        // SAFETY: map value, an aligned word.
        Some(own) => (unsafe { read_volatile(own) }, Some((tgid, own))),
        None => (cgroup_phase, None),
    }
}

/// The record of `cgroup` if it is recorded: its slot when it owns one (the hot path), else
/// the overflow map, else a check of its ancestry whose answer the slot remembers.
#[inline(always)]
pub fn recorded(cgroup: u64) -> Option<*mut CgroupSyscalls> {
    let slot_entry = SLOTS.get_ptr_mut(slot_owner::index(cgroup))?;
    // SAFETY: map values live as long as the map; `owner` only changes by compare-exchange.
    let owner = unsafe { read_volatile(&(*slot_entry).owner) };
    if owner == cgroup {
        Some(slot_entry)
    } else if owner == cgroup | slot_owner::NOT_TARGET {
        None
    } else {
        lookup_slow(cgroup, slot_entry, owner)
    }
}

/// Capabilities used by recorded cgroups (`capability:cap_capable`, Linux 6.14+).
#[tracepoint]
pub fn capable(ctx: TracePointContext) -> u32 {
    // SAFETY: helper without preconditions.
    let cgroup = unsafe { bpf_get_current_cgroup_id() };
    if let Some(entry) = recorded(cgroup) {
        // SAFETY: map value.
        let (phase, _) = task_phase(unsafe { &*entry });
        events::capable(&ctx, cgroup, phase);
    }
    0
}

/// `cgroup:cgroup_attach_task` format: `int dst_root` at 8, `u64 dst_id` at 16, `int pid`
/// (the thread group leader's) at 24.
const ATTACH_ROOT: usize = 8;
const ATTACH_ID: usize = 16;
const ATTACH_PID: usize = 24;

/// A process moved to another cgroup: the per-CPU memory of tasks' cgroups is stale.
///
/// A process moved into a recorded cgroup whose runtime already handed over (`runc exec`)
/// gets a phase of its own, starting at set-up: what it does before its own filter is not
/// the workload's. When it cannot be followed, the cgroup is flagged instead.
#[tracepoint]
pub fn cgroup_joined(ctx: TracePointContext) -> u32 {
    // The moved task (and its threads) may be remembered under their old cgroup.
    current_cgroup::forget_all();
    // Offsets checked against the tracepoint's format at load time.
    let root: i32 = field(&ctx, ATTACH_ROOT);
    let id: u64 = field(&ctx, ATTACH_ID);
    let pid: i32 = field(&ctx, ATTACH_PID);
    // Hierarchy 0 is cgroup v2's; v1 hierarchies (a hybrid host) are not recorded.
    if root != 0 {
        return 0;
    }
    let entry = match SLOTS.get_ptr_mut(slot_owner::index(id)) {
        // SAFETY: map value; `owner` is one aligned word.
        Some(slot) if unsafe { read_volatile(&(*slot).owner) } == id => slot,
        _ => match CGROUP_SYSCALLS.get_ptr_mut(id) {
            Some(entry) => entry,
            None => return 0,
        },
    };
    // SAFETY: map value; aligned words.
    unsafe {
        if read_volatile(&(*entry).phase) == phase::SETUP {
            return 0;
        }
        match LATE_TASKS.insert(pid as u32, phase::SETUP, BPF_NOEXIST as u64) {
            Ok(()) => {
                atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(
                    &raw mut (*entry).late_pending,
                    1,
                );
            }
            // Already followed (moved twice).
            Err(e) if e == -EEXIST => {}
            Err(_) => write_volatile(&mut (*entry).joined_late, 1),
        }
    }
    0
}

const EEXIST: i32 = 17;

/// The cgroup's slot belongs to someone else or is empty: look in the overflow map, or find
/// out whether the cgroup is recorded and remember the answer.
#[inline(always)]
fn lookup_slow(
    cgroup: u64,
    slot_entry: *mut CgroupSyscalls,
    owner: u64,
) -> Option<*mut CgroupSyscalls> {
    if let Some(entry) = CGROUP_SYSCALLS.get_ptr_mut(cgroup) {
        return Some(entry);
    }
    // SAFETY (both exchanges): `owner` is an aligned u64 inside a live map value.
    let owner_ptr = unsafe { &raw mut (*slot_entry).owner };
    if !is_target() {
        if owner == 0 {
            unsafe {
                atomic_cxchg::<u64, { AtomicOrdering::Relaxed }, { AtomicOrdering::Relaxed }>(
                    owner_ptr,
                    0,
                    cgroup | slot_owner::NOT_TARGET,
                )
            };
        }
        return None;
    }
    // A slot that is empty or only remembers a non-recorded cgroup has all-zero bitmaps:
    // take it.
    if owner == 0 || owner & slot_owner::NOT_TARGET != 0 {
        let (_, taken) = unsafe {
            atomic_cxchg::<u64, { AtomicOrdering::Relaxed }, { AtomicOrdering::Relaxed }>(
                owner_ptr, owner, cgroup,
            )
        };
        if taken || unsafe { read_volatile(owner_ptr) } == cgroup {
            return Some(slot_entry);
        }
    }
    // Collision with another recorded cgroup: use the overflow map. EEXIST means another
    // CPU inserted it first, which is fine.
    let zero = ZERO_CGROUP.get(0)?;
    let _ = CGROUP_SYSCALLS.insert(cgroup, zero, BPF_NOEXIST as u64);
    let entry = CGROUP_SYSCALLS.get_ptr_mut(cgroup);
    if entry.is_none() {
        count(Stat::CgroupMapFull);
    }
    entry
}

/// Whether the current task's cgroup lies in a recorded subtree. Cgroups created after the recording started
/// are caught from their first syscall this way, without racing their creation.
#[inline(always)]
fn is_target() -> bool {
    for i in 0..MAX_TARGET_LEVELS {
        let Some(&level) = TARGET_LEVELS.get(i) else {
            return false;
        };
        if level == 0 {
            return false;
        }
        // SAFETY: helper without preconditions.
        let ancestor = unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) };
        // SAFETY: the value is not read.
        if ancestor != 0 && unsafe { TARGET_ROOTS.get(ancestor) }.is_some() {
            return true;
        }
    }
    false
}

/// Whether this call installs a seccomp filter: `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`
/// or `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog)` with a program. From then on the
/// runtime's own set-up is over and what the cgroup does must be allowed by the profile.
/// libseccomp probes for kernel features with the same calls and a NULL program (they fail
/// with EFAULT): those must not count.
#[inline(always)]
fn installs_seccomp_filter(regs: &impl Regs, abi: Abi, nr: u64) -> bool {
    let (seccomp, prctl, arg0, arg1) = match abi {
        Abi::X86_64 | Abi::X32 => (sc::X86_64_SECCOMP, sc::X86_64_PRCTL, regs::DI, regs::SI),
        Abi::I386 => (sc::I386_SECCOMP, sc::I386_PRCTL, regs::BX, regs::CX),
    };
    // The third argument is in dx for both ABIs.
    let has_program = || regs.read(regs::DX).is_some_and(|p| p != 0);
    if nr == seccomp {
        regs.read(arg0) == Some(sc::SECCOMP_SET_MODE_FILTER) && has_program()
    } else if nr == prctl {
        regs.read(arg0) == Some(sc::PR_SET_SECCOMP)
            && regs.read(arg1) == Some(sc::SECCOMP_MODE_FILTER)
            && has_program()
    } else {
        false
    }
}

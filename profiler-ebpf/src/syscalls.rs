//! Syscall recording: one raw tracepoint on `sys_enter` sets a bit per (cgroup, ABI, syscall
//! number). Nothing is streamed; once every syscall a workload uses has been seen, the
//! program only reads.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_probe_read_kernel},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use core::{
    intrinsics::{atomic_or, AtomicOrdering},
    ptr::{read_volatile, write_volatile},
};
use profiler_common::{
    bitmap::{seccomp_install as sc, slot, Abi, CgroupSyscalls},
    maps::MAX_TARGET_LEVELS,
    stats::Stat,
};

use crate::maps::{count, CGROUP_SYSCALLS, TARGET_LEVELS, TARGET_ROOTS, ZERO_CGROUP};

/// Byte offsets in x86_64 `struct pt_regs` (a user-visible ABI, `asm/ptrace.h`).
mod regs {
    pub const BX: usize = 40;
    pub const CX: usize = 88;
    pub const SI: usize = 104;
    pub const DI: usize = 112;
    pub const CS: usize = 136;
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn enter_raw_syscall(ctx: RawTracePointContext) -> i32 {
    record(&ctx);
    0
}

/// An empty program on the same hook: the floor any syscall-entry hook costs. Only the
/// benchmark attaches it, to compare profgen against.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn enter_raw_syscall_empty(_ctx: RawTracePointContext) -> i32 {
    0
}

#[inline(always)]
fn record(ctx: &RawTracePointContext) -> Option<()> {
    // SAFETY: helper without preconditions.
    let cgroup = unsafe { bpf_get_current_cgroup_id() };
    let entry = match CGROUP_SYSCALLS.get_ptr_mut(cgroup) {
        Some(entry) => entry,
        None => adopt(cgroup)?,
    };
    let regs: *const u8 = ctx.arg(0);
    let id: u64 = ctx.arg(1);
    let Some(cs) = read_reg(regs, regs::CS) else {
        count(Stat::RegsUnreadable);
        return None;
    };
    let (abi, nr) = Abi::classify(id, cs);
    let Some((word, mask)) = slot(nr) else {
        count(Stat::SyscallOutOfRange);
        return None;
    };

    // SAFETY: `entry` points into a map value that lives as long as the map. Concurrent
    // writers only set bits (atomic or) and flip `armed` 0 -> 1 (one aligned store).
    let entry = unsafe { &mut *entry };
    let armed = unsafe { read_volatile(&entry.armed) } != 0;
    let bitmaps = if armed { &mut entry.after } else { &mut entry.before };
    let bits: *mut u64 = bitmaps.get_mut(abi as usize)?.get_mut(word)?;
    // Test before setting: the steady state stays read-only.
    // SAFETY: as above.
    if unsafe { read_volatile(bits) } & mask == 0 {
        unsafe { atomic_or::<u64, u64, { AtomicOrdering::Relaxed }>(bits, mask) };
    }

    if !armed && installs_seccomp_filter(abi, nr, regs) {
        // SAFETY: as above.
        unsafe { write_volatile(&mut entry.armed, 1) };
    }
    Some(())
}

/// Starts recording a cgroup the first time one of its tasks makes a syscall, when it lies
/// below a target root. Cgroups created after the recording started are caught from their
/// first syscall this way, without racing their creation.
#[inline(always)]
fn adopt(cgroup: u64) -> Option<*mut CgroupSyscalls> {
    for i in 0..MAX_TARGET_LEVELS {
        let level = *TARGET_LEVELS.get(i)?;
        if level == 0 {
            return None;
        }
        // SAFETY: helper without preconditions.
        let ancestor = unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) };
        // SAFETY: the value is not read.
        if unsafe { TARGET_ROOTS.get(ancestor) }.is_some() {
            let zero = ZERO_CGROUP.get(0)?;
            // EEXIST means another CPU adopted it first: fine.
            let _ = CGROUP_SYSCALLS.insert(cgroup, zero, BPF_NOEXIST as u64);
            let entry = CGROUP_SYSCALLS.get_ptr_mut(cgroup);
            if entry.is_none() {
                count(Stat::CgroupMapFull);
            }
            return entry;
        }
    }
    None
}

/// Whether this call installs a seccomp filter: `seccomp(SECCOMP_SET_MODE_FILTER, …)` or
/// `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, …)`. From then on the runtime's own setup is
/// over and what the cgroup does must be allowed by the profile.
#[inline(always)]
fn installs_seccomp_filter(abi: Abi, nr: u64, regs: *const u8) -> bool {
    let (seccomp, prctl, arg0, arg1) = match abi {
        Abi::X86_64 | Abi::X32 => (sc::X86_64_SECCOMP, sc::X86_64_PRCTL, regs::DI, regs::SI),
        Abi::I386 => (sc::I386_SECCOMP, sc::I386_PRCTL, regs::BX, regs::CX),
    };
    if nr == seccomp {
        read_reg(regs, arg0) == Some(sc::SECCOMP_SET_MODE_FILTER)
    } else if nr == prctl {
        read_reg(regs, arg0) == Some(sc::PR_SET_SECCOMP)
            && read_reg(regs, arg1) == Some(sc::SECCOMP_MODE_FILTER)
    } else {
        false
    }
}

#[inline(always)]
fn read_reg(regs: *const u8, offset: usize) -> Option<u64> {
    // SAFETY: the kernel validates the address; a fault returns an error.
    unsafe { bpf_probe_read_kernel(regs.wrapping_add(offset).cast::<u64>()) }.ok()
}

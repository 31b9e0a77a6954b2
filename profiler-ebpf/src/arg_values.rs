//! The values of watched syscall arguments (`profiler_common::args`), kept per cgroup.
//!
//! Reached only for the few watched syscall numbers, after one bit test every syscall
//! already pays (`args::is_interesting`). A value already kept costs a scan of at most
//! `VALUES` words and no write. How slots are claimed without losing a value to a race
//! between CPUs: `profiler_common::args::keep`, tested there with threads.

use aya_ebpf::helpers::bpf_probe_read_user;
use core::{
    intrinsics::{atomic_cxchg, atomic_or, AtomicOrdering},
    ptr::read_volatile,
};
use profiler_common::args::{keep, nr, slot, ArgValues, Slots, SOCK_TYPE_MASK, VALUES};

use crate::syscalls::{regs, Regs};

/// Keeps the watched arguments of x86_64 syscall `nr`.
#[inline(always)]
pub fn capture(args: &mut ArgValues, regs: &impl Regs, nr: u64) {
    let arg = |offset| regs.read(offset);
    match nr as u32 {
        nr::SOCKET => {
            put(args, slot::SOCKET_DOMAIN, arg(regs::DI));
            put(
                args,
                slot::SOCKET_TYPE,
                arg(regs::SI).map(|t| t & SOCK_TYPE_MASK),
            );
        }
        nr::CLONE => put(args, slot::CLONE_FLAGS, arg(regs::DI)),
        // `struct clone_args` begins with its u64 flags. The caller has just written the
        // struct, so its page is present; a failed read counts as an overflow.
        nr::CLONE3 => {
            let flags = arg(regs::DI).and_then(|p| {
                // SAFETY: user pointer, checked by the helper.
                unsafe { bpf_probe_read_user(p as *const u64) }.ok()
            });
            put(args, slot::CLONE3_FLAGS, flags);
        }
        nr::UNSHARE => put(args, slot::UNSHARE_FLAGS, arg(regs::DI)),
        nr::SETNS => put(args, slot::SETNS_NSTYPE, arg(regs::SI)),
        nr::IOCTL => put(args, slot::IOCTL_REQUEST, arg(regs::SI)),
        nr::PRCTL => put(args, slot::PRCTL_OPTION, arg(regs::DI)),
        nr::PERSONALITY => put(args, slot::PERSONALITY, arg(regs::DI)),
        nr::FCNTL => put(args, slot::FCNTL_CMD, arg(regs::SI)),
        nr::SETSOCKOPT => {
            put(args, slot::SETSOCKOPT_LEVEL, arg(regs::SI));
            put(args, slot::SETSOCKOPT_OPTNAME, arg(regs::DX));
        }
        nr::BPF => put(args, slot::BPF_CMD, arg(regs::DI)),
        nr::PTRACE => put(args, slot::PTRACE_REQUEST, arg(regs::DI)),
        _ => {}
    }
}

/// Keeps `value` for watched argument `slot` unless it is kept already; `None` (an unreadable
/// argument) or no room left marks the argument overflowed.
#[inline(always)]
fn put(args: &mut ArgValues, slot: usize, value: Option<u64>) {
    let kept = value.is_some_and(|value| keep(&MapSlots(&raw mut args.values[slot]), value));
    if !kept {
        overflow(args, 1u64 << slot);
    }
}

/// One argument's slots in a live map value, shared with the other CPUs.
struct MapSlots(*mut [u64; VALUES]);

impl MapSlots {
    /// Slot `i`, masked: `keep` only asks for `i < VALUES`, and the mask gives the verifier
    /// that bound whatever LLVM made of the loop.
    #[inline(always)]
    fn at(&self, i: usize) -> *mut u64 {
        // SAFETY: in bounds of the array.
        unsafe { self.0.cast::<u64>().add(i & (VALUES - 1)) }
    }
}

const _: () = assert!(VALUES.is_power_of_two(), "slots are indexed with a mask");

impl Slots for MapSlots {
    #[inline(always)]
    fn load(&self, i: usize) -> u64 {
        // SAFETY: an aligned word of a live map value.
        unsafe { read_volatile(self.at(i)) }
    }

    #[inline(always)]
    fn claim(&self, i: usize, word: u64) -> bool {
        // SAFETY: as above; other CPUs only claim slots the same way.
        let (_, claimed) = unsafe {
            atomic_cxchg::<u64, { AtomicOrdering::Relaxed }, { AtomicOrdering::Relaxed }>(
                self.at(i),
                0,
                word,
            )
        };
        claimed
    }
}

#[inline(always)]
fn overflow(args: &mut ArgValues, bit: u64) {
    // SAFETY: aligned word of a live map value; test before setting keeps it read-only.
    unsafe {
        if read_volatile(&args.overflowed) & bit == 0 {
            atomic_or::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut args.overflowed, bit);
        }
    }
}

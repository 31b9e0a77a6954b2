//! The values of watched syscall arguments (`profiler_common::args`), kept per cgroup.
//!
//! Reached only for the few watched syscall numbers, after one bit test every syscall
//! already pays (`args::is_interesting`). A value already kept costs a scan of at most
//! `VALUES` words and no write.

use aya_ebpf::helpers::bpf_probe_read_user;
use core::{
    intrinsics::{atomic_cxchg, atomic_or, AtomicOrdering},
    ptr::{read_volatile, write_volatile},
};
use profiler_common::args::{nr, slot, ArgValues, SOCK_TYPE_MASK, VALUES};

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
    let bit = 1u64 << slot;
    let Some(value) = value else {
        overflow(args, bit);
        return;
    };
    // SAFETY (every access below): aligned words of a live map value. Concurrent writers
    // only claim slots (compare-and-exchange) and write the slot they claimed.
    let len = unsafe { read_volatile(&args.len[slot]) } as usize;
    let values = &mut args.values[slot];
    for (i, kept) in values.iter().enumerate() {
        if i >= len {
            break;
        }
        if unsafe { read_volatile(kept) } == value {
            return;
        }
    }
    if len >= VALUES {
        overflow(args, bit);
        return;
    }
    // Claim slot `len`. Another CPU claiming it first (a new value of the same argument in
    // the same instant) marks the argument overflowed: never a value lost, at worst an
    // argument left unfiltered. (The BPF target has compare-and-exchange, not fetch-add.)
    let (_, claimed) = unsafe {
        atomic_cxchg::<u64, { AtomicOrdering::Relaxed }, { AtomicOrdering::Relaxed }>(
            &raw mut args.len[slot],
            len as u64,
            len as u64 + 1,
        )
    };
    if !claimed {
        overflow(args, bit);
        return;
    }
    // `len < VALUES` here, and LLVM knows it, so it would drop both a bounds check and a
    // mask. Linux 6.1's verifier reaches this point on a path whose range for `len` is
    // contradictory (it does not prune such paths), and adding that to the slot's address
    // makes it a scalar: it refuses the program. A volatile read of the index keeps the
    // mask in the program, and the mask gives the verifier a range it can use.
    let index = unsafe { read_volatile(&len) } & (VALUES - 1);
    unsafe { write_volatile(&mut values[index], value) };
}

const _: () = assert!(VALUES.is_power_of_two(), "slots are indexed with a mask");

#[inline(always)]
fn overflow(args: &mut ArgValues, bit: u64) {
    // SAFETY: aligned word of a live map value; test before setting keeps it read-only.
    unsafe {
        if read_volatile(&args.overflowed) & bit == 0 {
            atomic_or::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut args.overflowed, bit);
        }
    }
}

//! The current task's cgroup id, as cheaply as the kernel allows.
//!
//! * Remembered: each CPU remembers the task that last entered a syscall on it (by its
//!   kernel stack, which `regs` points into) and that task's cgroup id. A task making
//!   syscalls in a row on one CPU (the common case under load) pays two compares.
//! * Walked: otherwise four loads through the kernel's types, `task_struct.cgroups →
//!   css_set.dfl_cgrp → cgroup.kn → kernfs_node.id`, at offsets userspace read from the
//!   running kernel's BTF ([`CgroupIdPath`]).
//! * The helper, `bpf_get_current_cgroup_id`, when the offsets are not known.
//!
//! What remembered answers are worth: a task's cgroup changes only when it is moved
//! (`cgroup:cgroup_attach_task`), and a kernel stack changes hands only when a task exits
//! and a new one is forked (`sched:sched_process_fork`, which fires before the child first
//! runs). Both bump `CGROUP_GENERATION`, and a remembered answer counts only within its
//! generation. Userspace sets the generation to 1 once both hooks are attached; while it is
//! 0 nothing is remembered.

use aya_ebpf::{
    helpers::{bpf_get_current_cgroup_id, generated::bpf_get_current_task_btf},
    macros::tracepoint,
    programs::TracePointContext,
};
use core::{
    intrinsics::{atomic_xadd, AtomicOrdering},
    ptr::read_volatile,
};
use profiler_common::cgroup_id::CgroupIdPath;

use crate::maps::{CGROUP_GENERATION, LAST_TASK};

/// Set by userspace from the running kernel's BTF before loading; read-only to the program,
/// so the verifier knows the offsets.
#[unsafe(no_mangle)]
static CGROUP_ID_PATH: CgroupIdPath = CgroupIdPath::HELPER;

/// What one CPU remembers about the task that last entered a syscall on it.
#[repr(C)]
pub struct LastTask {
    /// The task's saved registers (`regs`), at the top of its kernel stack.
    regs: u64,
    generation: u64,
    cgroup: u64,
}

/// The cgroup id of the current task, whose saved registers are at `regs` (a pointer typed
/// by BTF): the syscall-entry program's hot path. Called with preemption disabled.
#[inline(always)]
pub fn by_regs(regs: *const u8) -> u64 {
    let (Some(generation), Some(last)) = (CGROUP_GENERATION.get_ptr(0), LAST_TASK.get_ptr_mut(0))
    else {
        return walked();
    };
    // Read before the walk (volatile accesses keep their order): a move bumps the generation
    // only after it happened, so an answer walked after this read is never older than it.
    // SAFETY: aligned word of a map value.
    let generation = unsafe { read_volatile(generation) };
    // SAFETY: this CPU's value; the program cannot be preempted while it reads and writes it.
    let last = unsafe { &mut *last };
    if generation == 0 {
        return walked();
    }
    if last.regs == regs as u64 && last.generation == generation {
        return last.cgroup;
    }
    let cgroup = walked();
    last.regs = regs as u64;
    last.generation = generation;
    last.cgroup = cgroup;
    cgroup
}

/// Every CPU forgets what it remembered.
#[inline(always)]
pub fn forget_all() {
    if let Some(generation) = CGROUP_GENERATION.get_ptr_mut(0) {
        // SAFETY: aligned word of a map value; updated atomically by every CPU.
        unsafe {
            if read_volatile(generation) != 0 {
                atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(generation, 1);
            }
        }
    }
}

/// A task was forked: it may run on a kernel stack a task that exited had, and is
/// remembered under.
#[tracepoint]
pub fn task_forked(_ctx: TracePointContext) -> u32 {
    forget_all();
    0
}

/// The current task's cgroup id by four loads the verifier checks against the kernel's
/// types, or by the helper when the offsets are not known.
#[inline(always)]
fn walked() -> u64 {
    match offsets() {
        // SAFETY: helper without preconditions.
        Some(path) => walk(unsafe { bpf_get_current_task_btf() } as *const u8, &path),
        // SAFETY: helper without preconditions.
        None => unsafe { bpf_get_current_cgroup_id() },
    }
}

/// The cgroup id of `task`, the current task as `bpf_get_current_task_btf` gave it (for a
/// program that needs the task anyway).
#[inline(always)]
pub fn of_current_task(task: *const u8) -> u64 {
    match offsets() {
        Some(path) => walk(task, &path),
        // SAFETY: helper without preconditions.
        None => unsafe { bpf_get_current_cgroup_id() },
    }
}

#[inline(always)]
fn offsets() -> Option<CgroupIdPath> {
    // SAFETY: a global of the object; the volatile read keeps the compiler from folding
    // the initial value.
    let path = unsafe { read_volatile(&CGROUP_ID_PATH) };
    path.known().then_some(path)
}

#[inline(always)]
fn walk(task: *const u8, path: &CgroupIdPath) -> u64 {
    let at = |base: *const u8, offset: u32| base.wrapping_add(offset as usize);
    // SAFETY: each pointer is typed by the kernel's BTF (task_struct → css_set → cgroup →
    // kernfs_node); the verifier checks every offset against those types and turns the
    // loads into fault-safe ones.
    unsafe {
        let css_set = read_volatile(at(task, path.task_cgroups).cast::<*const u8>());
        let cgroup = read_volatile(at(css_set, path.css_set_dfl_cgrp).cast::<*const u8>());
        let kn = read_volatile(at(cgroup, path.cgroup_kn).cast::<*const u8>());
        read_volatile(at(kn, path.kernfs_node_id).cast::<u64>())
    }
}

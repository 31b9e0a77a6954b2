//! Map names, shared so userspace looks up exactly what the kernel side declares.

/// `HashMap<u64 cgroup id, CgroupSyscalls>`: per leaf cgroup, the syscalls it made.
pub const CGROUP_SYSCALLS: &str = "CGROUP_SYSCALLS";
/// `HashMap<u64 cgroup id, u32 unused>`: the roots of the recorded cgroup subtrees.
pub const TARGET_ROOTS: &str = "TARGET_ROOTS";
/// `Array<u32>`: the distinct levels (depth below the cgroup v2 root) of the target roots,
/// so the kernel knows which ancestors to compare. 0 marks an unused slot.
pub const TARGET_LEVELS: &str = "TARGET_LEVELS";
/// `PerCpuArray<u64>`: counters of lost or degraded data, indexed by [`crate::stats::Stat`].
pub const STATS: &str = "STATS";

/// Capacity of [`CGROUP_SYSCALLS`]: distinct cgroups recorded at once.
pub const MAX_CGROUPS: u32 = 4096;
/// Capacity of [`TARGET_ROOTS`].
pub const MAX_TARGET_ROOTS: u32 = 256;
/// Capacity of [`TARGET_LEVELS`].
pub const MAX_TARGET_LEVELS: u32 = 8;

/// Name of the syscall-entry program (a raw tracepoint on `raw_syscalls:sys_enter`).
pub const PROG_SYS_ENTER: &str = "enter_raw_syscall";
/// The tracepoint it attaches to.
pub const TP_SYS_ENTER: &str = "sys_enter";

//! Map names, shared so userspace looks up exactly what the kernel side declares.

/// `Array<CgroupSyscalls>`: the syscalls of recorded cgroups, direct-mapped by cgroup id
/// (see `bitmap::slot_owner`).
pub const SLOTS: &str = "SLOTS";
/// `HashMap<u64 cgroup id, CgroupSyscalls>`: recorded cgroups whose slot was taken.
pub const CGROUP_SYSCALLS: &str = "CGROUP_SYSCALLS";
/// `HashMap<u64 cgroup id, u32 unused>`: the roots of the recorded cgroup subtrees.
pub const TARGET_ROOTS: &str = "TARGET_ROOTS";
/// `Array<u32>`: the distinct levels (depth below the cgroup v2 root) of the target roots,
/// so the kernel knows which ancestors to compare. 0 marks an unused slot.
pub const TARGET_LEVELS: &str = "TARGET_LEVELS";
/// `Array<u32>` of one entry: which event syscalls the entry program stages for the exit
/// program (`event::staging`; `OFF` when only syscalls are recorded).
pub const EVENTS_ENABLED: &str = "EVENTS_ENABLED";
/// `Array<u64>` of one entry: the generation of what each CPU remembers about the task that
/// last entered a syscall there (its cgroup). Bumped by the kernel side whenever a task
/// changes cgroup or is forked; userspace sets it to 1 once the programs that bump it are
/// attached (0: nothing is remembered).
pub const CGROUP_GENERATION: &str = "CGROUP_GENERATION";
/// `PerCpuArray<u64>`: counters of lost or degraded data, indexed by [`crate::stats::Stat`].
pub const STATS: &str = "STATS";

/// `RingBuf` of `event::Event`s.
pub const EVENTS: &str = "EVENTS";
/// `LruHashMap<u64 pid_tgid, Event>`: syscall events between entry and exit.
pub const PENDING: &str = "PENDING";
/// `LruHashMap<u64 fact hash, u8>`: facts already sent (the kernel-side deduplication).
pub const SENT: &str = "SENT";

/// `LruHashMap<u64 directory key, u32 names sent>`: how many distinct names each directory
/// had per operation (see [`DIR_AGGREGATE_AFTER`]).
pub const DIRS: &str = "DIRS";

/// Ring buffer size in bytes (a power of two, a multiple of the page size). 16 MiB holds
/// about 22 000 events (736 bytes each with the ring's header): the burst of distinct facts a
/// program makes at start (its libraries, configuration, a runtime's set-up) while the
/// recorder is descheduled for tens of milliseconds on a loaded node. Floods of names in one
/// directory do not fill it: they are aggregated before it (see [`DIR_AGGREGATE_AFTER`]).
pub const EVENTS_BYTES: u32 = 16 << 20;
/// Distinct names per directory and operation sent one by one; the next one is sent as a
/// directory fact (`event::status::DIR_AGGREGATED`) and the names after it not at all. A
/// workload making a file per upload, session or segment would otherwise fill the ring
/// buffer (a million names lose events) and the recording (a rule per name). 64 is well
/// above the directories programs read whole at start (a locale or zoneinfo directory has
/// fewer), and AppArmor's own collapse already globs 10 or more names of one directory.
pub const DIR_AGGREGATE_AFTER: u32 = 64;
/// Capacity of [`DIRS`]: directories counted at once. An evicted directory starts counting
/// again: up to [`DIR_AGGREGATE_AFTER`] more names and the directory fact again, nothing
/// lost.
pub const MAX_DIRS: u32 = 16384;
/// Capacity of [`PENDING`]: syscalls in flight at once.
pub const MAX_PENDING: u32 = 8192;
/// Capacity of [`SENT`]: distinct facts remembered. An evicted fact may be sent again,
/// never lost.
pub const MAX_SENT: u32 = 65536;

/// The classic tracepoint program that makes syscall events at `syscalls:sys_exit_*`,
/// reading the arguments from the task's saved registers. Preferred.
pub const PROG_SYS_EXIT_EVENT_REGS: &str = "exit_event_syscall_regs";
/// The same from what the entry program staged, for kernels before 5.15.
pub const PROG_SYS_EXIT_EVENT: &str = "exit_event_syscall";
/// The classic tracepoint program on `capability:cap_capable` (Linux 6.14+).
pub const PROG_CAP_CAPABLE: &str = "capable";
/// The classic tracepoint program on `cgroup:cgroup_attach_task`.
pub const PROG_CGROUP_ATTACH: &str = "cgroup_joined";
/// The classic tracepoint program on `sched:sched_process_fork`.
pub const PROG_TASK_FORKED: &str = "task_forked";

/// Capacity of [`CGROUP_SYSCALLS`]: distinct cgroups recorded at once.
pub const MAX_CGROUPS: u32 = 4096;
/// Processes that joined a recorded cgroup after its hand-over (`runc exec`), by tgid, with
/// their own phase until they execute their program.
pub const LATE_TASKS: &str = "LATE_TASKS";
/// Capacity of [`LATE_TASKS`]: joins in flight at once.
pub const MAX_LATE_TASKS: u32 = 1024;
/// Capacity of [`TARGET_ROOTS`].
pub const MAX_TARGET_ROOTS: u32 = 256;
/// Capacity of [`TARGET_LEVELS`].
pub const MAX_TARGET_LEVELS: u32 = 8;

/// The syscall-entry program as a BTF tracepoint: reads the registers directly. Preferred.
pub const PROG_SYS_ENTER_BTF: &str = "enter_btf_syscall";
/// The same as a raw tracepoint, for kernels without BTF: reads registers with a helper.
pub const PROG_SYS_ENTER_RAW: &str = "enter_raw_syscall";
/// An empty raw tracepoint on the same hook: the cost floor, for the benchmark.
pub const PROG_SYS_ENTER_EMPTY: &str = "enter_raw_syscall_empty";
/// The tracepoint they attach to (`raw_syscalls:sys_enter`).
pub const TP_SYS_ENTER: &str = "sys_enter";
/// An empty classic tracepoint program for the `syscalls:sys_exit_*` tracepoints recording
/// attaches its exit program to: the floor of that hook, for the benchmark.
pub const PROG_SYS_EXIT_EVENT_EMPTY: &str = "exit_event_syscall_empty";
/// An empty raw tracepoint on `raw_syscalls:sys_exit`, for the benchmark: what one program
/// run on every syscall's exit costs.
pub const PROG_SYS_EXIT_EMPTY: &str = "exit_raw_syscall_empty";
/// The tracepoint it attaches to (`raw_syscalls:sys_exit`).
pub const TP_SYS_EXIT: &str = "sys_exit";

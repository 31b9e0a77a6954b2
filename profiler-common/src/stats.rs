//! Counters of data the kernel side could not record. Every one of them is reported in the
//! recording and on the terminal: a profile built from incomplete data must say so.

/// Index into the `STATS` per-CPU array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// A new cgroup could not be inserted because `CGROUP_SYSCALLS` was full: all of its
    /// syscalls are lost.
    CgroupMapFull = 0,
    /// A syscall number was outside the bitmap (>= `SYSCALL_SLOTS`).
    SyscallOutOfRange = 1,
    /// Reading the syscall's registers failed, so its arguments (and for the seccomp
    /// arming check, its meaning) are unknown.
    RegsUnreadable = 2,
    /// The ring buffer was full: an event (file, exec, socket, capability) was dropped.
    RingBufFull = 3,
    /// A syscall's arguments could not be staged until its exit (the `PENDING` map was
    /// full): its event was dropped.
    PendingFull = 4,
}

impl Stat {
    pub const ALL: [Stat; 5] = [
        Stat::CgroupMapFull,
        Stat::SyscallOutOfRange,
        Stat::RegsUnreadable,
        Stat::RingBufFull,
        Stat::PendingFull,
    ];
    pub const COUNT: u32 = Self::ALL.len() as u32;

    /// Stable name used in recordings.
    pub const fn name(self) -> &'static str {
        match self {
            Stat::CgroupMapFull => "cgroup_map_full",
            Stat::SyscallOutOfRange => "syscall_out_of_range",
            Stat::RegsUnreadable => "regs_unreadable",
            Stat::RingBufFull => "ring_buffer_full",
            Stat::PendingFull => "pending_map_full",
        }
    }
}

//! Rare events, sent through one ring buffer: files, execs, sockets, capabilities. Each is
//! sent once per distinct fact (the kernel keeps a set of what it already sent).
//!
//! A syscall event is made at the syscall's exit, with its result, so failed calls can be
//! told apart. What the exit program cannot read there itself is staged at `sys_enter` in
//! the `PENDING` map, keyed by task (see [`staging`]).

/// Bytes of a path kept per event (longer paths are cut and flagged).
pub const PATH_LEN: usize = 256;
/// Bytes of a socket address kept (enough for `sockaddr_un`).
pub const ADDR_LEN: usize = 128;

/// What the entry program stages for the exit program: the value of the `EVENTS_ENABLED`
/// map.
pub mod staging {
    /// Nothing: syscalls only, no exit program.
    pub const OFF: u32 = 0;
    /// Every event syscall: the exit program cannot find the task's saved registers
    /// (`bpf_task_pt_regs`, Linux 5.15+).
    pub const ALL: u32 = 1;
    /// Execs only (their arguments are gone once the new program runs); the exit program
    /// reads the other event syscalls' arguments from the saved registers.
    pub const EXECS: u32 = 2;
}

/// `Event::kind`.
pub mod kind {
    /// A syscall with its arguments and result (`Event::nr` says which).
    pub const SYSCALL: u32 = 1;
    /// A capability check (`capability:cap_capable`); `Event::flags` is the capability.
    pub const CAPABILITY: u32 = 2;
}

/// `Event::status` bits.
pub mod status {
    /// `path` was longer than [`super::PATH_LEN`] and is cut.
    pub const PATH_TRUNCATED: u32 = 1;
    /// `path2` was cut.
    pub const PATH2_TRUNCATED: u32 = 2;
    /// A user-memory string or address could not be read.
    pub const UNREADABLE: u32 = 4;
    /// The cgroup's runtime had installed its seccomp filter when the call was made: the
    /// container's own activity, not the runtime's set-up.
    pub const AFTER_FILTER: u32 = 8;
    /// After the filter, the runtime had executed the container's entrypoint: the workload's
    /// own activity (set together with `AFTER_FILTER`).
    pub const WORKLOAD: u32 = 16;
    /// The directory of `path` (everything up to its last `/`) had more than
    /// [`crate::maps::DIR_AGGREGATE_AFTER`] distinct names for this operation: this event
    /// stands for every name in it, and no more per-name events follow for it.
    pub const DIR_AGGREGATED: u32 = 32;

    /// The bits for a cgroup in `phase` (see [`crate::bitmap::phase`]).
    #[inline(always)]
    pub const fn of_phase(phase: u32) -> u32 {
        match phase {
            crate::bitmap::phase::SETUP => 0,
            crate::bitmap::phase::FILTERED => AFTER_FILTER,
            _ => AFTER_FILTER | WORKLOAD,
        }
    }
}

/// One event. Plain integers and byte arrays, no implicit padding.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub kind: u32,
    /// x86_64 syscall number.
    pub nr: u32,
    pub cgroup: u64,
    /// `bpf_get_current_pid_tgid`: tgid in the upper half, tid in the lower.
    pub pid_tgid: u64,
    /// `bpf_get_current_uid_gid`: gid in the upper half, uid in the lower.
    pub uid_gid: u64,
    /// The syscall's return value.
    pub ret: i64,
    /// Up to four integer arguments, as the syscall's handler in the kernel side says.
    pub args: [u64; 4],
    pub status: u32,
    pub path_len: u32,
    pub path2_len: u32,
    pub addr_len: u32,
    pub path: [u8; PATH_LEN],
    pub path2: [u8; PATH_LEN],
    pub addr: [u8; ADDR_LEN],
}

impl Event {
    pub const ZERO: Self = Self {
        kind: 0,
        nr: 0,
        cgroup: 0,
        pid_tgid: 0,
        uid_gid: 0,
        ret: 0,
        args: [0; 4],
        status: 0,
        path_len: 0,
        path2_len: 0,
        addr_len: 0,
        path: [0; PATH_LEN],
        path2: [0; PATH_LEN],
        addr: [0; ADDR_LEN],
    };
}

#[cfg(feature = "user")]
// SAFETY: repr(C), integers and byte arrays only, no implicit padding (checked below).
unsafe impl aya::Pod for Event {}

/// x86_64 syscall numbers that produce events, and what their arguments mean.
pub mod nr {
    pub const OPEN: u32 = 2;
    pub const MMAP: u32 = 9;
    pub const SOCKET: u32 = 41;
    pub const CONNECT: u32 = 42;
    pub const ACCEPT: u32 = 43;
    pub const SENDTO: u32 = 44;
    pub const SENDMSG: u32 = 46;
    pub const BIND: u32 = 49;
    pub const LISTEN: u32 = 50;
    pub const EXECVE: u32 = 59;
    pub const FLOCK: u32 = 73;
    pub const TRUNCATE: u32 = 76;
    pub const RENAME: u32 = 82;
    pub const MKDIR: u32 = 83;
    pub const RMDIR: u32 = 84;
    pub const CREAT: u32 = 85;
    pub const LINK: u32 = 86;
    pub const UNLINK: u32 = 87;
    pub const SYMLINK: u32 = 88;
    pub const CHMOD: u32 = 90;
    pub const CHOWN: u32 = 92;
    pub const LCHOWN: u32 = 94;
    pub const OPENAT: u32 = 257;
    pub const MKDIRAT: u32 = 258;
    pub const FCHOWNAT: u32 = 260;
    pub const UNLINKAT: u32 = 263;
    pub const RENAMEAT: u32 = 264;
    pub const LINKAT: u32 = 265;
    pub const SYMLINKAT: u32 = 266;
    pub const FCHMODAT: u32 = 268;
    pub const ACCEPT4: u32 = 288;
    pub const RENAMEAT2: u32 = 316;
    pub const EXECVEAT: u32 = 322;
    pub const OPENAT2: u32 = 437;

    /// Every event syscall and its name (`syscalls:sys_exit_<name>` is its exit tracepoint).
    pub const ALL: [(u32, &str); 34] = [
        (OPEN, "open"),
        (MMAP, "mmap"),
        (SOCKET, "socket"),
        (CONNECT, "connect"),
        (ACCEPT, "accept"),
        (SENDTO, "sendto"),
        (SENDMSG, "sendmsg"),
        (BIND, "bind"),
        (LISTEN, "listen"),
        (EXECVE, "execve"),
        (FLOCK, "flock"),
        (TRUNCATE, "truncate"),
        (RENAME, "rename"),
        (MKDIR, "mkdir"),
        (RMDIR, "rmdir"),
        (CREAT, "creat"),
        (LINK, "link"),
        (UNLINK, "unlink"),
        (SYMLINK, "symlink"),
        (CHMOD, "chmod"),
        (CHOWN, "chown"),
        (LCHOWN, "lchown"),
        (OPENAT, "openat"),
        (MKDIRAT, "mkdirat"),
        (FCHOWNAT, "fchownat"),
        (UNLINKAT, "unlinkat"),
        (RENAMEAT, "renameat"),
        (LINKAT, "linkat"),
        (SYMLINKAT, "symlinkat"),
        (FCHMODAT, "fchmodat"),
        (ACCEPT4, "accept4"),
        (RENAMEAT2, "renameat2"),
        (EXECVEAT, "execveat"),
        (OPENAT2, "openat2"),
    ];

    /// Whether `nr` replaces the process image: its arguments are gone by the time it returns.
    #[inline(always)]
    pub const fn is_exec(nr: u64) -> bool {
        nr == EXECVE as u64 || nr == EXECVEAT as u64
    }

    /// Bit set of event syscalls, tested on the hot path. As wide as the syscall bitmaps
    /// (1024 bits) so any in-range number indexes it: the verifier needs the bound on the very
    /// register used to index, and the compiler reuses the bitmap's word index.
    pub const fn mask() -> [u64; 16] {
        let mut m = [0u64; 16];
        let mut i = 0;
        while i < ALL.len() {
            let n = ALL[i].0;
            m[(n / 64) as usize] |= 1 << (n % 64);
            i += 1;
        }
        m
    }
    pub const MASK: [u64; 16] = mask();

    #[inline(always)]
    pub const fn is_event(nr: u64) -> bool {
        nr < 1024 && MASK[((nr >> 6) & 15) as usize] & (1 << (nr & 63)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_has_no_implicit_padding() {
        let fields = 4 + 4 + 8 + 8 + 8 + 8 + 32 + 4 * 4 + 2 * PATH_LEN + ADDR_LEN;
        assert_eq!(core::mem::size_of::<Event>(), fields);
    }

    #[test]
    fn paths_are_word_aligned() {
        // The kernel side hashes paths a u64 at a time.
        assert_eq!(core::mem::offset_of!(Event, path) % 8, 0);
        assert_eq!(core::mem::offset_of!(Event, path2) % 8, 0);
        assert_eq!(core::mem::offset_of!(Event, addr) % 8, 0);
        assert_eq!(core::mem::align_of::<Event>(), 8);
    }

    #[test]
    fn event_mask_matches_table() {
        for (n, _) in nr::ALL {
            assert!(nr::is_event(n as u64), "{n}");
        }
        assert!(!nr::is_event(39)); // getppid
        assert!(!nr::is_event(0)); // read
        assert!(!nr::is_event(1000));
    }
}

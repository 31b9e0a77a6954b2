//! Syscalls that do the same thing: a profile recorded with one libc, kernel or runtime must
//! keep working when the next run picks the other call (glibc's `fstat` becoming
//! `newfstatat`, a thread started with `clone3` instead of `clone`, Go's `epoll_pwait` next to
//! nginx's `epoll_wait`).
//!
//! Each [`Group`] holds calls that perform one operation with one authority: allowing a
//! member never lets the workload do something the recorded member could not. Where one call
//! does strictly more than another (`clone` can create namespaces, `fork` cannot;
//! `prlimit64` reaches other processes, `setrlimit` does not), the weaker ones are
//! [`Group::weaker`]: added when a member was recorded, never the other way round. Calls that
//! open another class of authority are in no group at all (`open_by_handle_at` skips path
//! permissions, `unshare` and `setns` change namespaces, `ptrace`, `personality`).

use std::collections::{BTreeMap, BTreeSet};

use crate::{model::Abi, syscalls};

/// Calls that perform the same operation with the same authority.
#[derive(Debug)]
pub struct Group {
    /// What the group does, as the synth table and `docs/seccomp.md` name it.
    pub label: &'static str,
    /// Any one recorded allows all of them (those the ABI has).
    pub members: &'static [&'static str],
    /// Also allowed when a member was recorded; recording one of these adds no member,
    /// because each does strictly less.
    pub weaker: &'static [&'static str],
    /// Which libc, kernel or runtime picks which member.
    pub why: &'static str,
    /// Why no member can do more than the one recorded.
    pub authority: &'static str,
}

/// Calls no group may add, whatever was recorded: each opens a class of authority of its own
/// (namespaces, tracing other processes, execution domains, file handles that skip path
/// permissions, mounts, kernel modules and programs). `tests::never_added` holds the table
/// to it.
pub const NEVER_ADDED: &[&str] = &[
    "unshare",
    "setns",
    "ptrace",
    "personality",
    "open_by_handle_at",
    "name_to_handle_at",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsmount",
    "open_tree",
    "move_mount",
    "bpf",
    "perf_event_open",
    "init_module",
    "finit_module",
    "kexec_load",
    "process_vm_readv",
    "process_vm_writev",
    "keyctl",
    "add_key",
    "userfaultfd",
];

const TIME64: &str = "musl ≥1.2 and 32-bit glibc with 64-bit time call the `_time64` form (i386, Linux 5.1) first and fall back to the old one on ENOSYS";
const TIME64_SAME: &str = "the same call with a 64-bit `time_t`";
const ID16: &str =
    "i386's old form takes 16-bit ids; libcs call the `32` form, old static binaries the old one";
const ID16_SAME: &str = "the same call; 16-bit ids are a subset of 32-bit ones";

const fn group(
    label: &'static str,
    members: &'static [&'static str],
    why: &'static str,
    authority: &'static str,
) -> Group {
    Group {
        label,
        members,
        weaker: &[],
        why,
        authority,
    }
}

/// Every group, in the order the synth table and the docs list them. A name is a member of at
/// most one group (`tests::members_are_disjoint`).
pub const GROUPS: &[Group] = &[
    group(
        "epoll wait",
        &["epoll_wait", "epoll_pwait", "epoll_pwait2"],
        "glibc's `epoll_wait()` is `epoll_wait` on x86_64 (`epoll_pwait` on ports without it); Go's runtime calls `epoll_pwait` (runc's, in the demo's recordings); `epoll_pwait2` (Linux 5.11) is the nanosecond-timeout form",
        "wait for events on an epoll fd already held; the p-forms only also set the caller's own signal mask for the wait",
    ),
    group(
        "epoll create",
        &["epoll_create", "epoll_create1"],
        "musl's `epoll_create()` calls `epoll_create1`, glibc calls `epoll_create` where the port has it; Go and Rust call `epoll_create1`",
        "create a new epoll instance for the caller; the flag only sets close-on-exec",
    ),
    group(
        "stat",
        &[
            "stat", "lstat", "fstat", "newfstatat", "statx", "stat64", "lstat64", "fstat64",
            "fstatat64",
        ],
        "glibc ≥2.33 implements `stat`/`lstat`/`fstat` with `newfstatat` (`fstatat64` on i386), older glibc and musl call them directly; Rust's std and coreutils try `statx` first",
        "read a file's metadata; the path forms look the path up with the caller's own permissions, as `openat(O_PATH)` and `fstat` would; none writes",
    ),
    group(
        "statfs",
        &["statfs", "fstatfs", "statfs64", "fstatfs64"],
        "glibc's `statvfs()`/`fstatvfs()` call `statfs`/`fstatfs`, the `64` forms on i386",
        "read a filesystem's counters through a path or an fd, with the caller's own permissions",
    ),
    group(
        "open",
        &["open", "openat", "openat2", "creat"],
        "glibc ≥2.26 and Go call `openat` for `open()`, musl calls `open` on x86_64; `creat()` is `open` with O_CREAT, O_WRONLY and O_TRUNC; runc, systemd and libpathrs call `openat2` (Linux 5.6) where the kernel has it",
        "open a path with the caller's own permissions; `openat2`'s RESOLVE_* flags only narrow the lookup (`open_by_handle_at`, which needs CAP_DAC_READ_SEARCH and skips path permissions, is in no group)",
    ),
    group(
        "poll",
        &["poll", "ppoll", "ppoll_time64"],
        "glibc and musl call `poll` where the port has it and `ppoll` elsewhere (`ppoll_time64` first on 32-bit with 64-bit time); event loops call `ppoll` to set a signal mask for the wait",
        "wait for readiness of fds already held; `ppoll` only also sets the caller's own signal mask",
    ),
    group(
        "select",
        &["select", "_newselect", "pselect6", "pselect6_time64"],
        "glibc calls `select` where the port has it (`_newselect` on i386, whose `select` is the old one-argument form) and `pselect6` elsewhere; `pselect()` is `pselect6`",
        "wait for readiness of fds already held; `pselect6` only also sets the caller's own signal mask",
    ),
    group(
        "dup2",
        &["dup2", "dup3"],
        "glibc's `dup2()` calls `dup2` on x86_64 and `dup3` where the port lacks it; `dup3` (Linux 2.6.27) adds O_CLOEXEC",
        "copy an fd already held onto a chosen number; the flag only sets close-on-exec",
    ),
    Group {
        label: "clone",
        members: &["clone", "clone3"],
        weaker: &["fork", "vfork"],
        why: "glibc ≥2.34 uses `clone3` for `pthread_create` and `posix_spawn` and falls back to `clone` on ENOSYS; glibc's `fork()`, musl and Go call `clone`",
        authority: "`clone3` takes `clone`'s flags (its additions need an fd of a cgroup the caller may write, or CAP_CHECKPOINT_RESTORE); `fork` and `vfork` are `clone` with fixed flags, so they do less",
    },
    group(
        "fork",
        &["fork", "vfork"],
        "binaries that call `fork` or `vfork` directly (old static libcs, some language runtimes)",
        "a child in the caller's own namespaces either way; neither can pass CLONE_NEW* flags, so `clone` and `clone3` are never added from them (nor `unshare`, from anything)",
    ),
    group(
        "pipe",
        &["pipe", "pipe2"],
        "glibc and musl call `pipe` for `pipe()` where the port has it; Go, Rust's std and `pipe2()` call `pipe2` (Linux 2.6.27)",
        "create a pipe for the caller; the flags only set close-on-exec, non-blocking or packet mode",
    ),
    group(
        "accept",
        &["accept", "accept4"],
        "glibc's `accept()` calls `accept` on x86_64 (i386 has only `accept4`); nginx, Go and Rust's std call `accept4` (Linux 2.6.28)",
        "take a connection from a listening socket already held; the flags only set the new fd's flags",
    ),
    group(
        "wait",
        &["wait4", "waitid", "waitpid"],
        "glibc's `wait()`/`waitpid()` call `wait4` (`waitpid` on i386); Go's `os.Process.Wait` calls `waitid` (WNOWAIT) and then `wait4`",
        "wait for and reap the caller's own children (`waitid(P_PIDFD)` too: a pidfd of anything else gives ECHILD)",
    ),
    group(
        "getdents",
        &["getdents", "getdents64"],
        "glibc, musl and Go read directories with `getdents64`; `getdents` is the older form old static binaries call",
        "read the entries of a directory fd already held",
    ),
    group(
        "signalfd",
        &["signalfd", "signalfd4"],
        "glibc calls `signalfd4` (Linux 2.6.27), older libcs `signalfd`",
        "an fd receiving the caller's own signals; the flags only set close-on-exec or non-blocking",
    ),
    group(
        "eventfd",
        &["eventfd", "eventfd2"],
        "glibc calls `eventfd2` (Linux 2.6.27), older libcs `eventfd`",
        "a counter fd for the caller; the flags only set close-on-exec, non-blocking or semaphore mode",
    ),
    group(
        "inotify init",
        &["inotify_init", "inotify_init1"],
        "glibc's `inotify_init()` calls `inotify_init` where the port has it; Go, Rust's notify and `inotify_init1()` call `inotify_init1` (Linux 2.6.27)",
        "an inotify instance for the caller; watches are added by `inotify_add_watch` with read permission either way",
    ),
    group(
        "rename",
        &["rename", "renameat", "renameat2"],
        "glibc's `rename()` calls `rename` on x86_64 and `renameat`/`renameat2` where the port lacks it; Go calls `renameat`, coreutils' `mv` `renameat2(RENAME_NOREPLACE)`",
        "move a name between directories the caller may write; RENAME_EXCHANGE swaps two names the caller could rename anyway, RENAME_WHITEOUT needs CAP_MKNOD",
    ),
    group(
        "unlink",
        &["unlink", "unlinkat", "rmdir"],
        "glibc's `unlink()`/`rmdir()` call `unlink`/`rmdir` on x86_64 and `unlinkat` elsewhere; Go, Rust's std and coreutils' `rm` call `unlinkat`",
        "remove a name from a directory the caller may write; `unlinkat(AT_REMOVEDIR)` is `rmdir`, so the three are one permission check (write and search on the parent, sticky-bit rules)",
    ),
    group(
        "mkdir",
        &["mkdir", "mkdirat"],
        "glibc's `mkdir()` calls `mkdir` on x86_64 and `mkdirat` elsewhere; Go and Rust's std call `mkdirat`",
        "make a directory in one the caller may write",
    ),
    group(
        "mknod",
        &["mknod", "mknodat"],
        "glibc's `mknod()`/`mkfifo()` call `mknodat` on current versions, older ones `mknod`",
        "make a node in a directory the caller may write; device nodes need CAP_MKNOD with either",
    ),
    group(
        "chmod",
        &["chmod", "fchmod", "fchmodat", "fchmodat2"],
        "glibc ≥2.39 calls `fchmodat2` (Linux 6.6) for `fchmodat(AT_SYMLINK_NOFOLLOW)` and `lchmod()`; Go and Rust's std call `fchmodat`; `chmod`/`fchmod` are the x86_64 forms",
        "change a file's mode: only its owner or CAP_FOWNER may, whichever form names the file",
    ),
    group(
        "chown",
        &[
            "chown", "fchown", "lchown", "fchownat", "chown32", "fchown32", "lchown32",
        ],
        "glibc calls `chown`/`fchown`/`lchown` on x86_64 (the `32` forms on i386) and `fchownat` elsewhere; Go calls `fchownat`",
        "change a file's owner or group: CAP_CHOWN, or the owner choosing one of its own groups, whichever form names the file",
    ),
    group(
        "link",
        &["link", "linkat"],
        "glibc's `link()` calls `link` on x86_64 and `linkat` elsewhere; Go calls `linkat`",
        "add a name for a file in a directory the caller may write (protected_hardlinks applies to both)",
    ),
    group(
        "symlink",
        &["symlink", "symlinkat"],
        "glibc's `symlink()` calls `symlink` on x86_64 and `symlinkat` elsewhere; Go calls `symlinkat`",
        "make a symbolic link in a directory the caller may write",
    ),
    group(
        "readlink",
        &["readlink", "readlinkat"],
        "glibc's `readlink()` calls `readlink` on x86_64 and `readlinkat` elsewhere; Go and Rust's std call `readlinkat`",
        "read a symbolic link's target with the caller's own permissions",
    ),
    group(
        "access",
        &["access", "faccessat", "faccessat2"],
        "glibc ≥2.33 calls `faccessat2` (Linux 5.8) for `faccessat()` with flags and `eaccess()`, falling back to `faccessat`; `access()` is `access` on x86_64",
        "test the caller's own permissions on a path; nothing changes",
    ),
    group(
        "utime",
        &[
            "utime", "utimes", "futimesat", "utimensat", "utimensat_time64",
        ],
        "`utime`/`utimes`/`futimesat` are the old forms; current glibc, musl and Go set times with `utimensat` (`futimens()` is `utimensat` on an fd), `utimensat_time64` on 32-bit with 64-bit time",
        "set a file's timestamps: its owner, or anyone who may write it for \"now\", whichever form names the file",
    ),
    group(
        "sleep",
        &["nanosleep", "clock_nanosleep", "clock_nanosleep_time64"],
        "glibc implements `nanosleep()` and `sleep()` with `clock_nanosleep`; musl and Go's runtime call `nanosleep`; `clock_nanosleep_time64` on 32-bit with 64-bit time",
        "suspend the caller; nothing else is affected",
    ),
    group(
        "clock read",
        &["time", "gettimeofday", "clock_gettime", "clock_gettime64"],
        "libcs read clocks through the vDSO and make the syscall where the clocksource has no vDSO support (some VMs); musl's `time()` and `gettimeofday()` are `clock_gettime`",
        "read a clock; no member sets one",
    ),
    Group {
        label: "prlimit",
        members: &["prlimit64"],
        weaker: &["getrlimit", "setrlimit", "ugetrlimit"],
        why: "current glibc and musl implement `getrlimit()`/`setrlimit()` with `prlimit64(0, …)`; older libcs and static binaries call `getrlimit`/`setrlimit` (`ugetrlimit` on i386)",
        authority: "`prlimit64` on the caller itself is `getrlimit` and `setrlimit`; the reverse is not added: `prlimit64` can also reach another process of the same user",
    },
    group(
        "getrlimit",
        &["getrlimit", "ugetrlimit"],
        "i386's `getrlimit` is the old form that clamps at 2 GiB, libcs call `ugetrlimit`; x86_64 has only `getrlimit`",
        "read the caller's own limits",
    ),
    group(
        "read",
        &["read", "readv"],
        "musl's stdio reads with `readv` (the caller's buffer and the FILE's in one call), glibc's with `read`",
        "read from an fd already held, at its position",
    ),
    group(
        "positional read",
        &["pread64", "preadv", "preadv2"],
        "`pread()`/`preadv()` call `pread64`/`preadv`; `preadv2` (Linux 4.6) is what `preadv2()` and I/O libraries asking for RWF_NOWAIT call",
        "read from an fd already held at an offset, as `lseek` and `read` would; the RWF_* flags only change waiting and caching",
    ),
    group(
        "write",
        &["write", "writev"],
        "musl's stdio writes with `writev`, glibc's with `write`; servers pick `writev` for header and body",
        "write to an fd already held, at its position",
    ),
    group(
        "positional write",
        &["pwrite64", "pwritev", "pwritev2"],
        "`pwrite()`/`pwritev()` call `pwrite64`/`pwritev`; `pwritev2` (Linux 4.6) carries RWF_* flags (RWF_APPEND, RWF_DSYNC)",
        "write to an fd already held at an offset, as `lseek` and `write` would",
    ),
    group(
        "sendfile",
        &["sendfile", "sendfile64"],
        "i386 glibc's `sendfile()` calls `sendfile64` (64-bit offsets); x86_64 has only `sendfile`",
        "copy between two fds already held",
    ),
    group(
        "recvmsg",
        &["recvmsg", "recvmmsg", "recvmmsg_time64"],
        "`recvmmsg` is a batch of `recvmsg` calls (DNS and QUIC servers, Go's x/net); `recvmmsg_time64` on 32-bit with 64-bit time",
        "receive on a socket already held, ancillary data included as with `recvmsg`; `recvfrom` is not a member because `recvmsg` also receives file descriptors (SCM_RIGHTS)",
    ),
    group(
        "sendmsg",
        &["sendmsg", "sendmmsg"],
        "`sendmmsg` is a batch of `sendmsg` calls: glibc's resolver sends its A and AAAA queries with one",
        "send on a socket already held, ancillary data included as with `sendmsg`; `sendto` is not a member because `sendmsg` also passes file descriptors",
    ),
    group(
        "mmap",
        &["mmap", "mmap2"],
        "i386's `mmap` takes its arguments in a struct (the old form); libcs call `mmap2` (offset in pages); x86_64 has only `mmap`",
        "map memory or an fd already held, with the same protection checks",
    ),
    group(
        "fcntl",
        &["fcntl", "fcntl64"],
        "i386 libcs call `fcntl64` (64-bit locks); x86_64 has only `fcntl`",
        "the same commands on an fd already held",
    ),
    group(
        "lseek",
        &["lseek", "_llseek"],
        "i386 libcs call `_llseek` (64-bit offsets); x86_64 has only `lseek`",
        "move an fd's position",
    ),
    group(
        "truncate",
        &["truncate", "ftruncate", "truncate64", "ftruncate64"],
        "i386 libcs call the `64` forms (64-bit lengths)",
        "change a file's length: write permission on it, whichever form names it",
    ),
    group(
        "fadvise",
        &["fadvise64", "fadvise64_64"],
        "i386 glibc's `posix_fadvise()` calls `fadvise64_64` (64-bit offsets)",
        "advise the page cache about an fd already held",
    ),
    group(
        "tgkill",
        &["tkill", "tgkill"],
        "glibc's `raise()` and `pthread_kill()` call `tgkill`, musl's call `tkill`",
        "signal one thread, with `kill`'s permission check; `tgkill` only adds a check of the thread group",
    ),
    group(
        "alarm",
        &["alarm", "setitimer"],
        "glibc's `alarm()` calls `alarm` on x86_64 and `setitimer` where the port lacks it; musl's calls `setitimer`",
        "arm the caller's own interval timers",
    ),
    group(
        "getxattr",
        &["getxattr", "lgetxattr", "fgetxattr", "getxattrat"],
        "libcs and coreutils call the path, link and fd forms; Linux 6.13 added `getxattrat`",
        "read an extended attribute with the caller's own permissions (trusted.* needs CAP_SYS_ADMIN with any form)",
    ),
    group(
        "listxattr",
        &["listxattr", "llistxattr", "flistxattr", "listxattrat"],
        "libcs and coreutils call the path, link and fd forms; Linux 6.13 added `listxattrat`",
        "list extended attributes with the caller's own permissions",
    ),
    group(
        "setxattr",
        &["setxattr", "lsetxattr", "fsetxattr", "setxattrat"],
        "libcs and coreutils call the path, link and fd forms; Linux 6.13 added `setxattrat`",
        "set an extended attribute: the same permission and capability checks with any form",
    ),
    group(
        "removexattr",
        &["removexattr", "lremovexattr", "fremovexattr", "removexattrat"],
        "libcs and coreutils call the path, link and fd forms; Linux 6.13 added `removexattrat`",
        "remove an extended attribute: the same permission and capability checks with any form",
    ),
    group("futex", &["futex", "futex_time64"], TIME64, TIME64_SAME),
    group(
        "rt_sigtimedwait",
        &["rt_sigtimedwait", "rt_sigtimedwait_time64"],
        TIME64,
        TIME64_SAME,
    ),
    group(
        "timerfd_settime",
        &["timerfd_settime", "timerfd_settime64"],
        TIME64,
        TIME64_SAME,
    ),
    group(
        "timerfd_gettime",
        &["timerfd_gettime", "timerfd_gettime64"],
        TIME64,
        TIME64_SAME,
    ),
    group(
        "timer_settime",
        &["timer_settime", "timer_settime64"],
        TIME64,
        TIME64_SAME,
    ),
    group(
        "timer_gettime",
        &["timer_gettime", "timer_gettime64"],
        TIME64,
        TIME64_SAME,
    ),
    group(
        "clock_getres",
        &["clock_getres", "clock_getres_time64"],
        TIME64,
        TIME64_SAME,
    ),
    group(
        "clock_settime",
        &["clock_settime", "clock_settime64"],
        TIME64,
        "the same call with a 64-bit `time_t` (CAP_SYS_TIME either way)",
    ),
    group(
        "clock_adjtime",
        &["clock_adjtime", "clock_adjtime64"],
        TIME64,
        "the same call with a 64-bit `time_t` (CAP_SYS_TIME to adjust, either way)",
    ),
    group(
        "sched_rr_get_interval",
        &["sched_rr_get_interval", "sched_rr_get_interval_time64"],
        TIME64,
        TIME64_SAME,
    ),
    group(
        "mq_timedsend",
        &["mq_timedsend", "mq_timedsend_time64"],
        TIME64,
        TIME64_SAME,
    ),
    group(
        "mq_timedreceive",
        &["mq_timedreceive", "mq_timedreceive_time64"],
        TIME64,
        TIME64_SAME,
    ),
    group(
        "io_pgetevents",
        &["io_pgetevents", "io_pgetevents_time64"],
        TIME64,
        TIME64_SAME,
    ),
    group("getuid", &["getuid", "getuid32"], ID16, ID16_SAME),
    group("geteuid", &["geteuid", "geteuid32"], ID16, ID16_SAME),
    group("getgid", &["getgid", "getgid32"], ID16, ID16_SAME),
    group("getegid", &["getegid", "getegid32"], ID16, ID16_SAME),
    group("getresuid", &["getresuid", "getresuid32"], ID16, ID16_SAME),
    group("getresgid", &["getresgid", "getresgid32"], ID16, ID16_SAME),
    group("getgroups", &["getgroups", "getgroups32"], ID16, ID16_SAME),
    group("setuid", &["setuid", "setuid32"], ID16, ID16_SAME),
    group("setgid", &["setgid", "setgid32"], ID16, ID16_SAME),
    group("setreuid", &["setreuid", "setreuid32"], ID16, ID16_SAME),
    group("setregid", &["setregid", "setregid32"], ID16, ID16_SAME),
    group("setresuid", &["setresuid", "setresuid32"], ID16, ID16_SAME),
    group("setresgid", &["setresgid", "setresgid32"], ID16, ID16_SAME),
    group("setfsuid", &["setfsuid", "setfsuid32"], ID16, ID16_SAME),
    group("setfsgid", &["setfsgid", "setfsgid32"], ID16, ID16_SAME),
    group("setgroups", &["setgroups", "setgroups32"], ID16, ID16_SAME),
];

/// What the groups add to the syscalls `recorded` for `abi`: per group label, the names of
/// that ABI that were not recorded. Only recorded names trigger a group (an added name adds
/// nothing further), and a name is credited to the first group, in table order, that adds it.
pub fn added(abi: Abi, recorded: &BTreeSet<String>) -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut added: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for g in GROUPS {
        if !g.members.iter().any(|m| recorded.contains(*m)) {
            continue;
        }
        for name in g.members.iter().chain(g.weaker) {
            if !recorded.contains(*name) && syscalls::is_known(abi, name) && seen.insert(*name) {
                added.entry(g.label).or_default().insert((*name).to_owned());
            }
        }
    }
    added
}

/// The groups as the Markdown table of `docs/seccomp.md` (`tests::docs_list_the_groups` keeps
/// the two equal).
pub fn markdown_table() -> String {
    let mut md = String::from(
        "| group | members | also allows (weaker) | who picks which | same authority because |\n|---|---|---|---|---|\n",
    );
    let names = |list: &[&str]| {
        if list.is_empty() {
            return "—".to_owned();
        }
        list.iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for g in GROUPS {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            g.label,
            names(g.members),
            names(g.weaker),
            g.why,
            g.authority
        ));
    }
    md
}

#[cfg(test)]
#[path = "equivalents_tests.rs"]
mod tests;

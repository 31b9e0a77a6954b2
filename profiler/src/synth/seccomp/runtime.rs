//! What a container runtime itself calls after it installed the container's filter and
//! before it execs the entrypoint. Those calls go through the profile too, so a profile
//! recorded under one runtime (or one `noNewPrivileges` setting) can stop the container from
//! starting under another: runc installs the filter just before its exec when
//! `noNewPrivileges` is set and before it switches credentials when not; crun, the default of
//! CRI-O and Podman, does the same with other calls.
//!
//! Every call cites where it comes from: measured (`verify::runtime_calls`: the kernel's log of
//! a `SCMP_ACT_LOG` filter; runc on the machine profgen is developed on, crun in Debian's
//! kernel with a pure cgroup v2 hierarchy; `tests/runtime_calls.rs` fails when a runtime makes
//! a call its list lacks) or read in the runtime's source (releases newer than the ones
//! measured).

use super::SynthError;

/// One call a runtime makes after installing the filter.
#[derive(Debug)]
pub struct Call {
    /// The x86_64 name (the runtime runs as a native process, whatever the workload's ABI).
    pub name: &'static str,
    /// Where the fact comes from.
    pub source: &'static str,
}

/// A container runtime and its calls after the filter.
#[derive(Debug)]
pub struct Runtime {
    pub name: &'static str,
    pub calls: &'static [Call],
}

const fn call(name: &'static str, source: &'static str) -> Call {
    Call { name, source }
}

/// How runc was measured: `tests/runtime_calls.rs` (`verify::runtime_calls`) runs a busybox
/// `true` under a filter whose default action is `SCMP_ACT_LOG` and keeps the kernel's
/// `type=1326` records of the container's process up to its `execve`: 24 runs, 3 of each of
/// `noNewPrivileges` true/false × root/nobody × `run`/`create`+`start` (12 with
/// `noNewPrivileges` false, 6 of them as nobody). runc 1.1.5+ds1-1+deb12u1 (Debian 12; Go
/// 1.19.8, libseccomp 2.5.4), Linux 6.18, hybrid cgroup hierarchy. An earlier strace of 12
/// runs as root saw the same calls on the thread that installs the filter, and more on runc
/// init's other threads, which the filter covers only with `SECCOMP_FILTER_FLAG_TSYNC`.
const RUNC: &[Call] = &[
    call("close", "measured, 24 of 24 runs: closes the sync and log pipes and the exec fifo (standard_init_linux.go after InitSeccomp)"),
    call("openat", "measured, 24 of 24: reopens the exec fifo through /proc/self/fd and opens /proc/self/fd to close leftover fds"),
    call("write", "measured, 24 of 24: writes \"0\" to the exec fifo"),
    call("getpid", "measured, 24 of 24: the container state handed to startContainer hooks"),
    call("fstatfs", "measured, 24 of 24: checks that /proc/self/fd is procfs before reading it"),
    call("getdents64", "measured, 24 of 24: lists /proc/self/fd to close the fds not passed on (CVE-2024-21626)"),
    call("epoll_ctl", "measured, 24 of 24: Go's os.File registers the /proc/self/fd directory with the netpoller"),
    call("execve", "measured, 24 of 24: the entrypoint"),
    call("futex", "measured, 14 of 24 (11 of the 12 with create+start): Go's runtime parking and waking threads"),
    call("rt_sigreturn", "measured, 1 of 24: return from Go's preemption signal handler"),
    call("epoll_pwait", "strace only, on runc init's other threads (7 of 12 runs; also in the demo's recordings): Go's netpoller; never seen by the filter in 24 SCMP_ACT_LOG runs, kept for profiles with SECCOMP_FILTER_FLAG_TSYNC"),
    call("nanosleep", "strace only, on runc init's other threads (12 of 12): Go's runtime.usleep; never seen by the filter in 24 SCMP_ACT_LOG runs, kept for SECCOMP_FILTER_FLAG_TSYNC"),
    call("sched_yield", "strace only, on runc init's other threads (5 of 12): Go's runtime.osyield; never seen by the filter in 24 SCMP_ACT_LOG runs, kept for SECCOMP_FILTER_FLAG_TSYNC"),
    call("tgkill", "strace only, on runc init's other threads (1 of 12): Go's preemption signal; never seen by the filter in 24 SCMP_ACT_LOG runs, kept for SECCOMP_FILTER_FLAG_TSYNC"),
    call("capget", "measured with noNewPrivileges false, 12 of 12: finalizeNamespace reads the capability sets"),
    call("capset", "measured with noNewPrivileges false, 12 of 12: finalizeNamespace applies the capability sets"),
    call("prctl", "measured with noNewPrivileges false, 12 of 12: PR_CAPBSET_DROP and PR_SET_KEEPCAPS in finalizeNamespace"),
    call("setgroups", "measured with noNewPrivileges false, 12 of 12: setupUser"),
    call("setgid", "measured with noNewPrivileges false, 12 of 12: setupUser"),
    call("setuid", "measured with noNewPrivileges false, 12 of 12: setupUser"),
    call("fchown", "measured with noNewPrivileges false as nobody, 6 of 6: fixStdioPermissions gives the stdio pipes to the container's user"),
    call("chdir", "measured with noNewPrivileges false, 12 of 12: finalizeNamespace changes to the process cwd"),
    call("getcwd", "measured with noNewPrivileges false, 12 of 12: finalizeNamespace checks the cwd"),
    call("fcntl", "measured with noNewPrivileges false, 12 of 12: CloseExecFrom marks leftover fds close-on-exec"),
    call("read", "measured with noNewPrivileges false, 12 of 12: reads /proc/self/status, /etc/passwd and /proc/self/setgroups"),
    call("fstat", "measured with noNewPrivileges false, 12 of 12: setupUser checks fds 0-2 and /proc/self/setgroups"),
    call("newfstatat", "measured with noNewPrivileges false, 12 of 12: setupUser's look at /dev/null and exec.LookPath of the entrypoint"),
    call("faccessat2", "measured with noNewPrivileges false, 12 of 12: system.Eaccess on the entrypoint"),
    call("getppid", "measured with noNewPrivileges false, 12 of 12: the check that runc is still the parent"),
    call("close_range", "runc ≥1.2 source (libcontainer/utils/utils_unix.go CloseExecFrom): close_range(CLOSE_RANGE_CLOEXEC) when the kernel has it; not measured"),
    call("openat2", "runc ≥1.3 source (internal/pathrs, filepath-securejoin's pathrs-lite): /proc/thread-self/fd is looked up with openat2 to reopen the exec fifo and list fds; not measured"),
    call("statx", "runc ≥1.3 source (pathrs-lite's checkSubpathOvermount reads mount ids with statx); not measured"),
];

/// How crun was measured: the same way as runc (`tests/runtime_calls.rs`, 24 runs, 12 with
/// `noNewPrivileges` false, 6 of those with `create`+`start`), in a guest with a pure cgroup v2
/// hierarchy (`cgroup_no_v1=all`, only `cgroup2` mounted, `/proc/self/cgroup` is `0::/`):
/// crun 1.8.1-1+deb12u1 (Debian 12), Debian 12's Linux 6.1.0-57-amd64 under qemu. The
/// explanations are from crun's source (`src/libcrun/container.c` `container_init`,
/// `linux.c` `set_required_caps`). The calls not measured were read in crun 1.29.1-52-gba38286f,
/// whose post-filter path does more than 1.8.1's; startContainer hooks (which run after the
/// filter in crun) are not listed: a workload with such hooks must record them.
const CRUN: &[Call] = &[
    call("close", "measured, 24 of 24 runs: container_init closes the seccomp fd and the sync socket after libcrun_apply_seccomp"),
    call("execve", "measured, 24 of 24: container_init's execv of the entrypoint"),
    call("prctl", "measured with noNewPrivileges false, 12 of 12: set_required_caps' PR_CAPBSET_DROP, PR_SET_KEEPCAPS, PR_CAP_AMBIENT"),
    call("setresgid", "measured with noNewPrivileges false, 12 of 12: set_required_caps"),
    call("setresuid", "measured with noNewPrivileges false, 12 of 12: set_required_caps"),
    call("capset", "measured with noNewPrivileges false, 12 of 12: set_required_caps"),
    call("rt_sigprocmask", "measured with noNewPrivileges false, 12 of 12: unblock_signals"),
    call("rt_sigaction", "measured with noNewPrivileges false, 12 of 12: unblock_signals resets every handler"),
    call("write", "measured with noNewPrivileges false, 12 of 12: sync_socket_send_sync tells crun the container is ready"),
    call("read", "measured with noNewPrivileges false and create+start, 6 of 6: container_init reads the exec fifo until `crun start`"),
    call("pselect6", "measured with noNewPrivileges false and create+start, 6 of 6: container_init's select() on the exec fifo (glibc's select on x86_64)"),
    call("select", "crun 1.29 source, container_init: select() on the exec fifo, as a libc that calls select itself makes it; not measured"),
    call("close_range", "crun 1.29 source, utils.c mark_or_close_fds_ge_than: closes every fd past the preserved ones right before execv; not measured (1.8.1 makes no such call after its filter)"),
    call("openat", "crun 1.29 source, utils.c mark_or_close_fds_ge_than: opens /proc/self/fd when close_range fails (kernels before 5.9); not measured"),
    call("fstatfs", "crun 1.29 source, utils.c mark_or_close_fds_ge_than: check_proc_super_magic on /proc/self/fd; not measured"),
    call("getdents64", "crun 1.29 source, utils.c mark_or_close_fds_ge_than: readdir of /proc/self/fd; not measured"),
    call("wait4", "crun 1.29 source, seccomp.c libcrun_apply_seccomp: waitpid for the helper that sends a seccomp listener fd (profiles with a listenerPath); not measured"),
    call("faccessat2", "crun 1.29 source, with noNewPrivileges false when the lookup before the filter failed: utils.c find_executable's eaccess (glibc ≥2.33); not measured"),
    call("statx", "crun 1.29 source, with noNewPrivileges false when the lookup before the filter failed: utils.c get_file_type; not measured"),
    call("chdir", "crun 1.29 source, with noNewPrivileges false when the chdir before the filter failed: linux.c libcrun_safe_chdir; not measured"),
    call("getcwd", "crun 1.29 source, with noNewPrivileges false when the chdir before the filter failed: linux.c libcrun_safe_chdir; not measured"),
];

/// Every runtime profgen knows.
pub const RUNTIMES: &[Runtime] = &[
    Runtime {
        name: "runc",
        calls: RUNC,
    },
    Runtime {
        name: "crun",
        calls: CRUN,
    },
];

/// The runtimes a profile allows by default: a profile recorded under one must start under
/// the other.
pub fn default_names() -> Vec<String> {
    RUNTIMES.iter().map(|r| r.name.to_owned()).collect()
}

/// The runtime called `name`, or an error naming the known ones.
pub fn find(name: &str) -> Result<&'static Runtime, SynthError> {
    RUNTIMES
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| SynthError::UnknownRuntime {
            name: name.to_owned(),
            known: RUNTIMES
                .iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The runtimes' calls as the Markdown table of `docs/seccomp.md`.
pub fn markdown_table() -> String {
    let mut md = String::from("| runtime | syscall | source |\n|---|---|---|\n");
    for r in RUNTIMES {
        for c in r.calls {
            md.push_str(&format!("| {} | `{}` | {} |\n", r.name, c.name, c.source));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::{model::Abi, syscalls};

    #[test]
    fn every_call_is_an_x86_64_syscall_listed_once() {
        for r in RUNTIMES {
            let mut seen = BTreeSet::new();
            for c in r.calls {
                assert!(
                    syscalls::is_known(Abi::X86_64, c.name),
                    "{}: {}",
                    r.name,
                    c.name
                );
                assert!(seen.insert(c.name), "{}: {} twice", r.name, c.name);
                assert!(!c.source.is_empty(), "{}: {} has no source", r.name, c.name);
            }
            assert!(!r.calls.is_empty(), "{}", r.name);
        }
    }

    #[test]
    fn no_runtime_needs_a_namespace_or_tracing_call() {
        for r in RUNTIMES {
            for c in r.calls {
                assert!(
                    !super::super::equivalents::NEVER_ADDED.contains(&c.name),
                    "{}: {}",
                    r.name,
                    c.name
                );
            }
        }
    }

    #[test]
    fn unknown_runtime_names_the_known_ones() {
        assert_eq!(find("crun").unwrap().name, "crun");
        let err = find("youki").unwrap_err().to_string();
        assert!(
            err.contains("`youki`") && err.contains("runc, crun"),
            "{err}"
        );
        assert!(!err.contains('\n'));
        assert_eq!(default_names(), ["runc", "crun"]);
    }
}

//! What a container runtime itself calls after it installed the container's filter and
//! before it execs the entrypoint. Those calls go through the profile too, so a profile
//! recorded under one runtime (or one `noNewPrivileges` setting) can stop the container from
//! starting under another: runc installs the filter just before its exec when
//! `noNewPrivileges` is set and before it switches credentials when not; crun, the default of
//! CRI-O and Podman, does the same with other calls.
//!
//! Every call cites where it comes from: measured (runc, on the machine profgen is developed
//! on) or read in the runtime's source (crun; runc releases newer than the one measured).

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

/// How runc was measured: `strace -f runc run` of a busybox `true` with a permissive filter,
/// 6 runs with `noNewPrivileges` true and 6 with it false, keeping the calls of the thread that
/// installed the filter until its `execve`. runc 1.1.5+ds1-1+deb12u1 (Debian 12; Go 1.19.8,
/// libseccomp 2.5.4, with the CVE-2024-21626 fix), Linux 6.18.
const RUNC: &[Call] = &[
    call("close", "measured, every run: closes the sync and log pipes and the exec fifo (standard_init_linux.go after InitSeccomp)"),
    call("openat", "measured, every run: reopens the exec fifo through /proc/self/fd and opens /proc/self/fd to close leftover fds"),
    call("write", "measured, every run: writes \"0\" to the exec fifo"),
    call("getpid", "measured, every run: the container state handed to startContainer hooks"),
    call("fstatfs", "measured, every run: checks that /proc/self/fd is procfs before reading it"),
    call("getdents64", "measured, every run: lists /proc/self/fd to close the fds not passed on (CVE-2024-21626)"),
    call("epoll_ctl", "measured, every run: Go's os.File registers the /proc/self/fd directory with the netpoller"),
    call("execve", "measured, every run: the entrypoint"),
    call("futex", "measured, 11 of 12 runs: Go's runtime parking and waking threads"),
    call("rt_sigreturn", "measured, 1 of 12 runs: return from Go's preemption signal handler"),
    call("epoll_pwait", "measured on runc init's other threads after the filter (7 of 12 runs; also in the demo's recordings): Go's netpoller, which can run on the filtered thread, and is filtered too when the profile asks for SECCOMP_FILTER_FLAG_TSYNC"),
    call("nanosleep", "measured on runc init's other threads after the filter (12 of 12): Go's runtime.usleep"),
    call("sched_yield", "measured on runc init's other threads after the filter (5 of 12): Go's runtime.osyield"),
    call("tgkill", "measured on runc init's other threads after the filter (1 of 12): Go's preemption signal to a thread"),
    call("capget", "measured with noNewPrivileges false, every run: finalizeNamespace reads the capability sets"),
    call("capset", "measured with noNewPrivileges false, every run: finalizeNamespace applies the capability sets"),
    call("prctl", "measured with noNewPrivileges false, every run: PR_CAPBSET_DROP and PR_SET_KEEPCAPS in finalizeNamespace"),
    call("setgroups", "measured with noNewPrivileges false, every run: setupUser"),
    call("setgid", "measured with noNewPrivileges false, every run: setupUser"),
    call("setuid", "measured with noNewPrivileges false, every run: setupUser"),
    call("chdir", "measured with noNewPrivileges false, every run: finalizeNamespace changes to the process cwd"),
    call("getcwd", "measured with noNewPrivileges false, every run: finalizeNamespace checks the cwd"),
    call("fcntl", "measured with noNewPrivileges false, every run: CloseExecFrom marks leftover fds close-on-exec"),
    call("read", "measured with noNewPrivileges false, every run: reads /proc/self/status, /etc/passwd and /proc/self/setgroups"),
    call("fstat", "measured with noNewPrivileges false, every run: setupUser checks fds 0-2 and /proc/self/setgroups"),
    call("newfstatat", "measured with noNewPrivileges false, every run: setupUser's look at /dev/null and exec.LookPath of the entrypoint"),
    call("faccessat2", "measured with noNewPrivileges false, every run: system.Eaccess on the entrypoint"),
    call("getppid", "measured with noNewPrivileges false, every run: the check that runc is still the parent"),
    call("close_range", "runc ≥1.2 source (libcontainer/utils/utils_unix.go CloseExecFrom): close_range(CLOSE_RANGE_CLOEXEC) when the kernel has it; not measured"),
    call("openat2", "runc ≥1.3 source (internal/pathrs, filepath-securejoin's pathrs-lite): /proc/thread-self/fd is looked up with openat2 to reopen the exec fifo and list fds; not measured"),
    call("statx", "runc ≥1.3 source (pathrs-lite's checkSubpathOvermount reads mount ids with statx); not measured"),
];

/// crun, read in its source: containers/crun at 1.29.1-52-gba38286f, `src/libcrun/container.c`
/// (`container_init`, `container_init_setup`, `apply_security_settings`), `seccomp.c`
/// (`libcrun_apply_seccomp`), `linux.c` (`set_required_caps`, `libcrun_safe_chdir`) and
/// `utils.c` (`mark_or_close_fds_ge_than`, `find_executable`). Not measured: crun is not
/// installed on this machine. Calls of startContainer hooks (which run after the filter in
/// crun) are not listed: a workload with such hooks must record them.
const CRUN: &[Call] = &[
    call("close", "container.c container_init: closes the seccomp fd and the sync socket after libcrun_apply_seccomp"),
    call("close_range", "utils.c mark_or_close_fds_ge_than: closes every fd past the preserved ones right before execv"),
    call("openat", "utils.c mark_or_close_fds_ge_than: opens /proc/self/fd when close_range fails (kernels before 5.9)"),
    call("fstatfs", "utils.c mark_or_close_fds_ge_than: check_proc_super_magic on /proc/self/fd"),
    call("getdents64", "utils.c mark_or_close_fds_ge_than: readdir of /proc/self/fd"),
    call("execve", "container.c container_init: execv of the entrypoint"),
    call("wait4", "seccomp.c libcrun_apply_seccomp: waitpid for the helper that sends a seccomp listener fd (profiles with a listenerPath)"),
    call("prctl", "with noNewPrivileges false, linux.c set_required_caps: PR_CAPBSET_DROP, PR_SET_KEEPCAPS, PR_CAP_AMBIENT"),
    call("setresgid", "with noNewPrivileges false, linux.c set_required_caps"),
    call("setresuid", "with noNewPrivileges false, linux.c set_required_caps"),
    call("capset", "with noNewPrivileges false, linux.c set_required_caps"),
    call("rt_sigprocmask", "with noNewPrivileges false, container.c unblock_signals"),
    call("rt_sigaction", "with noNewPrivileges false, container.c unblock_signals resets every handler"),
    call("write", "with noNewPrivileges false, container.c sync_socket_send_sync: tells crun the container is ready"),
    call("read", "with noNewPrivileges false, container.c container_init: reads the exec fifo (crun create, then start)"),
    call("pselect6", "with noNewPrivileges false, container.c container_init: select() on the exec fifo (glibc's select where the port lacks the select syscall)"),
    call("select", "with noNewPrivileges false, container.c container_init: select() on the exec fifo"),
    call("faccessat2", "with noNewPrivileges false, when the lookup before the filter failed: utils.c find_executable's eaccess (glibc ≥2.33)"),
    call("statx", "with noNewPrivileges false, when the lookup before the filter failed: utils.c get_file_type"),
    call("chdir", "with noNewPrivileges false, when the chdir before the filter failed: linux.c libcrun_safe_chdir"),
    call("getcwd", "with noNewPrivileges false, when the chdir before the filter failed: linux.c libcrun_safe_chdir"),
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

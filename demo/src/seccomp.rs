//! Seccomp settings for running the demo: a permissive filter for recording, and variants
//! that refuse a few syscalls, to show that the probe notices.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder,
};

/// EPERM, what the refusing rules return.
const EPERM: u32 = 1;

/// The filter to record under: it allows everything, yet runc still installs it.
///
/// The recorder needs a filter in place for two reasons: the runtime's call installing it marks
/// the end of its own set-up (what it does afterwards belongs in the profile, what it did
/// before does not), and a stricter filter (RuntimeDefault) would hide the calls it refuses,
/// because `sys_enter` runs after seccomp.
///
/// Seen with strace on runc 1.1.5 (libseccomp 2.5.4): with no `flags` the filter goes in with
/// `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog)`, right before the workload's `execve`.
/// Long before that, while still mounting and pivoting, libseccomp probes the kernel with
/// `seccomp(SECCOMP_SET_MODE_FILTER, flag, NULL)` calls that fail with EFAULT: only a call
/// with a program marks the moment.
///
/// No rule is needed to make runc load it: runc 1.1.5 installs a filter whenever
/// `defaultAction` is set, even with an empty rule list (checked: `Seccomp: 2`,
/// `Seccomp_filters: 1` in the container's `/proc/PID/status`). It skips seccomp only when both
/// `defaultAction` and `syscalls` are empty.
///
/// Every ABI of the host architecture is listed: with only the native one, libseccomp's
/// bad-architecture action would kill a process making, say, an i386 `int 0x80` call, and the
/// recording would miss it.
pub fn recording() -> LinuxSeccomp {
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(host_architectures())
        .build()
        .expect("all fields are set")
}

/// [`recording`] plus a rule refusing `names` with EPERM.
pub fn recording_refusing(names: &[&str]) -> LinuxSeccomp {
    let mut profile = recording();
    let rule = LinuxSyscallBuilder::default()
        .names(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(EPERM)
        .build()
        .expect("all fields are set");
    profile.set_syscalls(Some(vec![rule]));
    profile
}

/// The seccomp architectures of the build target: the native ABI first, then the compat ones
/// the kernel accepts from the same processes.
pub fn host_architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_allows_everything_and_has_no_rules() {
        let json = serde_json::to_value(recording()).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ALLOW");
        assert!(json.get("syscalls").is_none());
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            json["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
    }

    #[test]
    fn refusing_adds_one_errno_rule() {
        let json = serde_json::to_value(recording_refusing(&["unshare"])).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(
            json["syscalls"],
            serde_json::json!([{"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}])
        );
    }
}

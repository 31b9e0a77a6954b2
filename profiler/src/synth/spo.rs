//! The seccomp profile as a Security Profiles Operator (SPO) object, for clusters where the
//! operator installs profiles on the nodes.
//!
//! A [`SeccompProfile`] carries the rules of the synthesized OCI profile
//! ([`seccomp`](super::seccomp())) under the operator's field names: the operator writes them
//! back out as a Localhost profile on every node, which pods reference by
//! [`localhost_profile`].
//!
//! The API version is `v1beta1`: the operator serves it from its 0.4 release to its 1.0 one,
//! which added `v1` beside it. Since the operator's 0.9 release its profiles are
//! cluster-scoped: the API server drops `metadata.namespace` and the node file is
//! `operator/<name>.json`. Earlier releases kept them per namespace
//! (`operator/<namespace>/<name>.json`), so the namespace is set when known.
//!
//! There is no AppArmor counterpart: the operator's `AppArmorProfile` took a profile's text
//! (`spec.policy`) only before its 0.9 release; later ones build the profile themselves from
//! coarse allow lists (`spec.abstract`), which cannot carry the profile profgen writes.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};
use serde::Serialize;

use super::seccomp::DEFAULT_ERRNO;
use crate::naming::{check_dns_label, check_subdomain};

/// `apiVersion` of the operator's `SeccompProfile`.
pub const SECCOMP_API_VERSION: &str = "security-profiles-operator.x-k8s.io/v1beta1";

/// `kind` of the operator's seccomp profile object.
pub const SECCOMP_KIND: &str = "SeccompProfile";

/// Why the seccomp profile cannot become an operator object.
#[derive(Debug, thiserror::Error)]
pub enum SpoError {
    #[error("{what} {name:?} is not a valid Kubernetes name: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: String,
    },

    /// The operator's object has no `defaultErrnoRet`; the runtime then returns EPERM.
    #[error(
        "the seccomp profile refuses with errno {0}, and a SeccompProfile object can only refuse with EPERM (it has no defaultErrnoRet)"
    )]
    DefaultErrno(u32),

    #[error(
        "the seccomp profile has {0}, which a SeccompProfile object made by profgen does not carry"
    )]
    NotCarried(&'static str),

    #[error("the seccomp profile has a rule without syscall names, which a SeccompProfile object refuses")]
    EmptyRule,

    #[error("the seccomp profile's errnoRet {0} is out of range for a SeccompProfile object (at most 2^31-1)")]
    ErrnoOutOfRange(u32),

    #[error("the seccomp profile compares an argument of {name} with {value:#x}, out of range for a SeccompProfile object (at most 2^63-1); write the profile with `profgen synth --no-args` for the operator")]
    ArgOutOfRange { name: String, value: u64 },
}

/// A `SeccompProfile` object of the Security Profiles Operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub spec: SeccompProfileSpec,
}

/// The object's name and, when known, the workload's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The rules: the OCI profile's, under the operator's field names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfileSpec {
    pub default_action: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<SyscallRule>,
}

/// One rule: the syscalls it names and what happens when they are called.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    pub names: Vec<String>,
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Conditions on the arguments, AND-ed (the operator's `Arg`, as OCI's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<SyscallArg>,
}

/// One argument condition: `arg[index] op value`, or `(arg[index] & value) == valueTwo` for
/// `SCMP_CMP_MASKED_EQ`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallArg {
    pub index: usize,
    pub value: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_two: Option<u64>,
    pub op: &'static str,
}

/// The `SeccompProfile` object `name` (in `namespace`, when known) holding `profile`'s rules.
///
/// `name` must be a Kubernetes object name (DNS-1123 subdomain), `namespace` a namespace name.
/// Refused: a default errno other than EPERM (the object cannot say it), rules without names,
/// and listener (SCMP_ACT_NOTIFY agent) settings; profgen's own profiles have none of these.
/// Argument conditions are carried as they are.
pub fn seccomp_profile(
    profile: &LinuxSeccomp,
    name: &str,
    namespace: Option<&str>,
) -> Result<SeccompProfile, SpoError> {
    check_subdomain(name).map_err(|reason| SpoError::InvalidName {
        what: "SeccompProfile name",
        name: name.into(),
        reason,
    })?;
    if let Some(ns) = namespace {
        check_dns_label(ns).map_err(|reason| SpoError::InvalidName {
            what: "namespace",
            name: ns.into(),
            reason,
        })?;
    }
    match profile.default_errno_ret() {
        Some(errno) if errno != DEFAULT_ERRNO => return Err(SpoError::DefaultErrno(errno)),
        _ => {}
    }
    if profile.listener_path().is_some() {
        return Err(SpoError::NotCarried("a listenerPath"));
    }
    if profile.listener_metadata().is_some() {
        return Err(SpoError::NotCarried("listenerMetadata"));
    }

    let syscalls = profile
        .syscalls()
        .iter()
        .flatten()
        .map(|rule| {
            if rule.names().is_empty() {
                return Err(SpoError::EmptyRule);
            }
            if let Some(errno) = rule.errno_ret() {
                if i32::try_from(errno).is_err() {
                    return Err(SpoError::ErrnoOutOfRange(errno));
                }
            }
            Ok(SyscallRule {
                names: rule.names().clone(),
                action: action(rule.action()),
                errno_ret: rule.errno_ret(),
                args: rule
                    .args()
                    .iter()
                    .flatten()
                    .map(|a| arg(a, &rule.names()[0]))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    Ok(SeccompProfile {
        api_version: SECCOMP_API_VERSION,
        kind: SECCOMP_KIND,
        metadata: Metadata {
            name: name.into(),
            namespace: namespace.map(str::to_owned),
        },
        spec: SeccompProfileSpec {
            default_action: action(profile.default_action()),
            architectures: profile
                .architectures()
                .iter()
                .flatten()
                .map(|a| arch(*a))
                .collect(),
            flags: profile.flags().iter().flatten().map(|f| flag(*f)).collect(),
            syscalls,
        },
    })
}

/// Where pods find the profile the operator installs from `object`, for
/// `seccompProfile.localhostProfile` (cluster-scoped profiles, the operator's 0.9 release on).
pub fn localhost_profile(object: &SeccompProfile) -> String {
    format!("operator/{}.json", object.metadata.name)
}

/// The operator's name for a seccomp action (the libseccomp names, as in OCI).
fn action(a: LinuxSeccompAction) -> &'static str {
    match a {
        LinuxSeccompAction::ScmpActKill => "SCMP_ACT_KILL",
        LinuxSeccompAction::ScmpActKillThread => "SCMP_ACT_KILL_THREAD",
        LinuxSeccompAction::ScmpActKillProcess => "SCMP_ACT_KILL_PROCESS",
        LinuxSeccompAction::ScmpActTrap => "SCMP_ACT_TRAP",
        LinuxSeccompAction::ScmpActErrno => "SCMP_ACT_ERRNO",
        LinuxSeccompAction::ScmpActNotify => "SCMP_ACT_NOTIFY",
        LinuxSeccompAction::ScmpActTrace => "SCMP_ACT_TRACE",
        LinuxSeccompAction::ScmpActLog => "SCMP_ACT_LOG",
        LinuxSeccompAction::ScmpActAllow => "SCMP_ACT_ALLOW",
    }
}

/// The operator's int64 fields (recent releases) hold values up to 2^63-1.
fn arg(a: &LinuxSeccompArg, name: &str) -> Result<SyscallArg, SpoError> {
    if let Some(value) = [Some(a.value()), a.value_two()]
        .into_iter()
        .flatten()
        .find(|v| i64::try_from(*v).is_err())
    {
        return Err(SpoError::ArgOutOfRange {
            name: name.to_owned(),
            value,
        });
    }
    Ok(SyscallArg {
        index: a.index(),
        value: a.value(),
        value_two: a.value_two(),
        op: match a.op() {
            LinuxSeccompOperator::ScmpCmpNe => "SCMP_CMP_NE",
            LinuxSeccompOperator::ScmpCmpLt => "SCMP_CMP_LT",
            LinuxSeccompOperator::ScmpCmpLe => "SCMP_CMP_LE",
            LinuxSeccompOperator::ScmpCmpEq => "SCMP_CMP_EQ",
            LinuxSeccompOperator::ScmpCmpGe => "SCMP_CMP_GE",
            LinuxSeccompOperator::ScmpCmpGt => "SCMP_CMP_GT",
            LinuxSeccompOperator::ScmpCmpMaskedEq => "SCMP_CMP_MASKED_EQ",
        },
    })
}

/// The operator's name for an architecture (the libseccomp names, as in OCI).
fn arch(a: Arch) -> &'static str {
    match a {
        Arch::ScmpArchNative => "SCMP_ARCH_NATIVE",
        Arch::ScmpArchX86 => "SCMP_ARCH_X86",
        Arch::ScmpArchX86_64 => "SCMP_ARCH_X86_64",
        Arch::ScmpArchX32 => "SCMP_ARCH_X32",
        Arch::ScmpArchArm => "SCMP_ARCH_ARM",
        Arch::ScmpArchAarch64 => "SCMP_ARCH_AARCH64",
        Arch::ScmpArchMips => "SCMP_ARCH_MIPS",
        Arch::ScmpArchMips64 => "SCMP_ARCH_MIPS64",
        Arch::ScmpArchMips64n32 => "SCMP_ARCH_MIPS64N32",
        Arch::ScmpArchMipsel => "SCMP_ARCH_MIPSEL",
        Arch::ScmpArchMipsel64 => "SCMP_ARCH_MIPSEL64",
        Arch::ScmpArchMipsel64n32 => "SCMP_ARCH_MIPSEL64N32",
        Arch::ScmpArchPpc => "SCMP_ARCH_PPC",
        Arch::ScmpArchPpc64 => "SCMP_ARCH_PPC64",
        Arch::ScmpArchPpc64le => "SCMP_ARCH_PPC64LE",
        Arch::ScmpArchS390 => "SCMP_ARCH_S390",
        Arch::ScmpArchS390x => "SCMP_ARCH_S390X",
        Arch::ScmpArchRiscv64 => "SCMP_ARCH_RISCV64",
    }
}

/// The operator's name for a seccomp(2) filter flag.
fn flag(f: LinuxSeccompFilterFlag) -> &'static str {
    match f {
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => "SECCOMP_FILTER_FLAG_LOG",
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => "SECCOMP_FILTER_FLAG_TSYNC",
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    }
}

#[cfg(test)]
#[path = "spo_tests.rs"]
mod tests;

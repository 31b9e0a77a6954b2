//! The seccomp profile (OCI `linux.seccomp`): refuse everything with EPERM, allow exactly
//! the syscalls the recording saw.

use std::collections::{BTreeMap, BTreeSet};

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};

use super::SynthError;
use crate::{
    model::{Abi, Recording},
    syscalls,
};

/// `EPERM`: what a refused call returns, as in Docker's profile. The workload's error then
/// reads "operation not permitted", which points at the profile, rather than ENOSYS, which
/// reads as a kernel without the call.
pub const DEFAULT_ERRNO: u32 = 1;

/// Syscalls Docker's default seccomp profile allows on x86_64, for comparison.
///
/// Source: `profiles/seccomp/default.json` of moby/profiles seccomp v0.2.3, as vendored in
/// moby/moby (commit 35797366d7, May 2026). Of its allowed names, 300 are x86_64 syscalls
/// allowed unconditionally, and 9 more are allowed for a container with Docker's default
/// capabilities on amd64: `arch_prctl` and `modify_ldt` (amd64 only), `chroot`
/// (CAP_SYS_CHROOT), `clone`, `personality` and `socket` (with argument filters), `ptrace`,
/// `process_vm_readv` and `process_vm_writev` (kernel 4.8+). Names of other architectures
/// (`socketcall`, `*_time64`, `mmap2`, …) and calls that need extra capabilities are not
/// counted.
pub const DOCKER_DEFAULT_X86_64: usize = 309;

/// The libseccomp architecture of an ABI.
pub fn arch(abi: Abi) -> Arch {
    match abi {
        Abi::X86_64 => Arch::ScmpArchX86_64,
        Abi::I386 => Arch::ScmpArchX86,
        Abi::X32 => Arch::ScmpArchX32,
    }
}

/// The profile for `rec`: default action `SCMP_ACT_ERRNO` (EPERM), the architectures that
/// were recorded, and one allow rule naming every recorded syscall.
///
/// Names are one list for all architectures because libseccomp resolves each name per
/// architecture (and runc skips names an architecture does not have). A name the tables do
/// not know, or a number they could not name, is an error: the profile would otherwise
/// refuse a call the workload makes.
pub fn seccomp(rec: &Recording) -> Result<LinuxSeccomp, SynthError> {
    let unknown = rec.unknown_numbers();
    if !unknown.is_empty() {
        return Err(SynthError::UnknownNumbers { numbers: unknown });
    }
    let allowed = rec.allowed_syscalls();
    if allowed.is_empty() {
        return Err(SynthError::NothingRecorded);
    }
    for (abi, names) in &allowed {
        if let Some(name) = names.iter().find(|n| !syscalls::is_known(*abi, n)) {
            return Err(SynthError::UnknownSyscall {
                abi: *abi,
                name: name.clone(),
            });
        }
    }

    let names: BTreeSet<&String> = allowed.values().flatten().collect();
    let mut rule = LinuxSyscall::default();
    rule.set_names(names.into_iter().cloned().collect())
        .set_action(LinuxSeccompAction::ScmpActAllow);

    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_default_errno_ret(Some(DEFAULT_ERRNO))
        .set_architectures(Some(allowed.keys().map(|abi| arch(*abi)).collect()))
        .set_syscalls(Some(vec![rule]));
    Ok(profile)
}

/// The profile as written to disk: pretty JSON ending in a newline.
pub fn to_json(profile: &LinuxSeccomp) -> Result<Vec<u8>, SynthError> {
    let mut bytes = serde_json::to_vec_pretty(profile).map_err(SynthError::Serialize)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// What a profile allows, in numbers a reviewer can weigh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeccompSummary {
    /// Syscalls allowed per recorded ABI.
    pub per_abi: BTreeMap<Abi, usize>,
    /// Distinct names in the allow rule (a name recorded on two ABIs counts once).
    pub total: usize,
    /// Events the recording lost: non-zero means the profile may be missing calls.
    pub events_lost: u64,
    /// [`DOCKER_DEFAULT_X86_64`].
    pub docker_default_x86_64: usize,
}

impl SeccompSummary {
    pub fn of(rec: &Recording) -> Self {
        let allowed = rec.allowed_syscalls();
        let total = allowed.values().flatten().collect::<BTreeSet<_>>().len();
        SeccompSummary {
            per_abi: allowed.iter().map(|(abi, n)| (*abi, n.len())).collect(),
            total,
            events_lost: rec.events_lost_total(),
            docker_default_x86_64: DOCKER_DEFAULT_X86_64,
        }
    }

    /// x86_64 syscalls allowed, as a fraction of what Docker's default profile allows.
    pub fn x86_64_vs_docker(&self) -> Option<f64> {
        let ours = *self.per_abi.get(&Abi::X86_64)?;
        Some(ours as f64 / self.docker_default_x86_64 as f64)
    }
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;

//! Why a recording cannot become a profile. Each message says what to do about it.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    model::Abi,
    synth::{apparmor::AppArmorError, netpol::NetpolError, spo::SpoError},
    syscalls::KERNEL_VERSION,
};

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error(
        "the recording has no syscalls: nothing ran in the target while recording (check the target, and that the workload ran)"
    )]
    NothingRecorded,

    #[error(
        "the recording names syscall `{name}` for {abi}, which profgen does not know (its tables cover Linux {KERNEL_VERSION}): fix the recording or upgrade profgen"
    )]
    UnknownSyscall { abi: Abi, name: String },

    #[error(
        "the recording has syscall numbers profgen cannot name ({}), and a profile without them would refuse them silently: upgrade profgen (its tables cover Linux {KERNEL_VERSION}) and synthesize again",
        describe_numbers(.numbers)
    )]
    UnknownNumbers {
        numbers: BTreeMap<Abi, BTreeSet<u32>>,
    },

    #[error(
        "unknown container runtime `{name}`: profgen knows {known} (or synthesize with --exact)"
    )]
    UnknownRuntime { name: String, known: String },

    #[error("cannot serialize the profile: {0}")]
    Serialize(#[source] serde_json::Error),

    /// The AppArmor synthesizer refused (an invalid profile name).
    #[error(transparent)]
    AppArmor(#[from] AppArmorError),

    /// `apparmor_parser -Q -K` refused the synthesized profile: a bug in profgen, never
    /// something to write out.
    #[error("apparmor_parser refused the synthesized profile {name}: {reason}")]
    AppArmorRejected { name: String, reason: String },

    /// The NetworkPolicy synthesizer refused (labels, names, a snapshot without the pod).
    #[error(transparent)]
    NetworkPolicy(#[from] NetpolError),

    /// The seccomp profile cannot become a Security Profiles Operator object (`--spo`).
    #[error(transparent)]
    Spo(#[from] SpoError),
}

fn describe_numbers(numbers: &BTreeMap<Abi, BTreeSet<u32>>) -> String {
    numbers
        .iter()
        .map(|(abi, nrs)| {
            let nrs: Vec<String> = nrs.iter().map(u32::to_string).collect();
            format!("{abi}: {}", nrs.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

//! What a seccomp profile allows, per architecture, as (name, argument conditions) pairs.

use std::collections::{BTreeMap, BTreeSet};

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg};

use crate::model::Abi;

/// The name a diff and a check show for an architecture: the recording's ABI names for the
/// three profgen records, libseccomp's otherwise.
pub fn arch_name(arch: Arch) -> String {
    match arch {
        Arch::ScmpArchX86_64 => Abi::X86_64.to_string(),
        Arch::ScmpArchX86 => Abi::I386.to_string(),
        Arch::ScmpArchX32 => Abi::X32.to_string(),
        Arch::ScmpArchNative => NATIVE.to_owned(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// An empty `architectures` list: the runtime's native one only.
pub const NATIVE: &str = "native";

/// Whether an action lets the call run (or hands it to something that may).
pub fn lets_through(action: LinuxSeccompAction) -> bool {
    !matches!(
        action,
        LinuxSeccompAction::ScmpActErrno
            | LinuxSeccompAction::ScmpActKill
            | LinuxSeccompAction::ScmpActKillThread
            | LinuxSeccompAction::ScmpActKillProcess
            | LinuxSeccompAction::ScmpActTrap
    )
}

/// One allow rule entry: a syscall name, and its argument conditions (`None`: any
/// arguments).
pub type Allowed = BTreeSet<(String, Option<String>)>;

/// The conditions of a rule, in a stable text form: `arg1 == 0x10 && arg2 & 0xff == 0x1`.
pub fn args_text(args: &[LinuxSeccompArg]) -> String {
    let mut parts: Vec<String> = args
        .iter()
        .map(|a| {
            let op = match a.op() {
                oci_spec::runtime::LinuxSeccompOperator::ScmpCmpNe => "!=",
                oci_spec::runtime::LinuxSeccompOperator::ScmpCmpLt => "<",
                oci_spec::runtime::LinuxSeccompOperator::ScmpCmpLe => "<=",
                oci_spec::runtime::LinuxSeccompOperator::ScmpCmpEq => "==",
                oci_spec::runtime::LinuxSeccompOperator::ScmpCmpGe => ">=",
                oci_spec::runtime::LinuxSeccompOperator::ScmpCmpGt => ">",
                oci_spec::runtime::LinuxSeccompOperator::ScmpCmpMaskedEq => {
                    return format!(
                        "arg{} & {:#x} == {:#x}",
                        a.index(),
                        a.value(),
                        a.value_two().unwrap_or(0)
                    )
                }
            };
            format!("arg{} {op} {:#x}", a.index(), a.value())
        })
        .collect();
    parts.sort();
    parts.join(" && ")
}

/// The architectures a profile's rules apply to, by [`arch_name`].
pub fn architectures(profile: &LinuxSeccomp) -> BTreeSet<String> {
    match profile.architectures().as_deref() {
        None | Some([]) => BTreeSet::from([NATIVE.to_owned()]),
        Some(list) => list.iter().map(|a| arch_name(*a)).collect(),
    }
}

/// What each architecture allows: every name of every rule whose action lets the call run.
/// The same entries for every listed architecture, since a rule names calls for all of them
/// (libseccomp resolves each name per architecture).
pub fn allowed(profile: &LinuxSeccomp) -> BTreeMap<String, Allowed> {
    let mut entries = Allowed::new();
    for rule in profile.syscalls().iter().flatten() {
        if !lets_through(rule.action()) {
            continue;
        }
        let args = rule
            .args()
            .as_deref()
            .filter(|a| !a.is_empty())
            .map(args_text);
        for name in rule.names() {
            entries.insert((name.clone(), args.clone()));
        }
    }
    architectures(profile)
        .into_iter()
        .map(|arch| (arch, entries.clone()))
        .collect()
}

/// How a profile treats a call of an ABI made with unknown arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Only rules with argument conditions name it (the recording holds no argument values).
    OnlyWithArguments(Vec<String>),
    Denied(&'static str),
}

/// Whether `profile` lets a call `name` of `abi` through.
pub fn verdict(profile: &LinuxSeccomp, abi: Abi, name: &str) -> Verdict {
    let arches = architectures(profile);
    let arch = abi.to_string();
    // libseccomp always filters the native architecture; on an x86_64 host that is x86_64.
    let listed = arches.contains(&arch) || (abi == Abi::X86_64 && arches.contains(NATIVE));
    if !listed {
        return Verdict::Denied("its architecture is not in `architectures`");
    }
    let mut with_args = Vec::new();
    let mut named_by_denial = false;
    for rule in profile.syscalls().iter().flatten() {
        if !rule.names().iter().any(|n| n == name) {
            continue;
        }
        let args = rule.args().as_deref().filter(|a| !a.is_empty());
        match (lets_through(rule.action()), args) {
            (true, None) => return Verdict::Allowed,
            (true, Some(a)) => with_args.push(args_text(a)),
            (false, None) => named_by_denial = true,
            (false, Some(_)) => {}
        }
    }
    if !with_args.is_empty() {
        return Verdict::OnlyWithArguments(with_args);
    }
    if lets_through(profile.default_action()) && !named_by_denial {
        return Verdict::Allowed;
    }
    Verdict::Denied("no rule allows it")
}

//! The seccomp profile (OCI `linux.seccomp`): refuse everything with EPERM, allow the
//! syscalls the recording saw, their [`equivalents`] (the same operation by another call, as
//! another libc or kernel makes it), and what the container [`runtime`]s call after
//! installing the filter. [`SeccompOptions::exact`] allows the recording alone. Watched
//! syscalls whose argument values the recording holds are allowed only with those values
//! ([`args`]); [`SeccompOptions::no_args`] allows names only.

pub mod args;
pub mod equivalents;
pub mod runtime;

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

/// How the profile is made from the recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeccompOptions {
    /// Allow exactly what was recorded: no [`equivalents`], no [`runtime`] calls.
    pub exact: bool,
    /// Runtimes whose calls after the filter are allowed ([`runtime::RUNTIMES`] names).
    /// Ignored when `exact`.
    pub runtimes: Vec<String>,
    /// Allow names only: no rules on the recorded argument values ([`args`]).
    pub no_args: bool,
}

impl Default for SeccompOptions {
    /// Equivalents on, and every runtime profgen knows: a profile recorded under runc must
    /// start under crun, with another libc, and with the other `noNewPrivileges` setting.
    fn default() -> Self {
        SeccompOptions {
            exact: false,
            runtimes: runtime::default_names(),
            no_args: false,
        }
    }
}

impl SeccompOptions {
    /// Only what was recorded.
    pub fn exact() -> Self {
        SeccompOptions {
            exact: true,
            runtimes: Vec::new(),
            no_args: false,
        }
    }
}

/// What a profile allows, and why each name beyond the recording is there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowed {
    /// Every allowed name, per ABI.
    pub per_abi: BTreeMap<Abi, BTreeSet<String>>,
    /// Distinct names the recording holds (any ABI).
    pub recorded: BTreeSet<String>,
    /// Names added by an equivalence group (per group label) that no ABI recorded.
    pub equivalents: BTreeMap<&'static str, BTreeSet<String>>,
    /// Names added for a runtime (per runtime) that were neither recorded nor equivalents. A
    /// name two runtimes need is listed under both.
    pub runtimes: BTreeMap<String, BTreeSet<String>>,
}

/// What a profile allows: the names, and the argument rules some of them get.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The names; a name answered ENOSYS ([`args::ArgPlan::enosys`]) is not among them.
    pub allowed: Allowed,
    pub args: args::ArgPlan,
}

/// The names `rec` needs under `opts` ([`allowed`]) and their argument rules.
pub fn plan(rec: &Recording, opts: &SeccompOptions) -> Result<Plan, SynthError> {
    let mut allowed = allowed(rec, opts)?;
    let args = args::plan(rec, &allowed, opts);
    // `clone3` answers ENOSYS so that libcs use the filtered `clone`: however it was added
    // (recorded, as `clone`'s equivalent, for a runtime), it is not allowed.
    for name in &args.enosys {
        for names in allowed.per_abi.values_mut() {
            names.remove(name);
        }
        for names in allowed.equivalents.values_mut() {
            names.remove(name);
        }
        allowed.equivalents.retain(|_, names| !names.is_empty());
        for names in allowed.runtimes.values_mut() {
            names.remove(name);
        }
    }
    Ok(Plan { allowed, args })
}

impl Allowed {
    /// Every allowed name, whatever its ABI, sorted.
    pub fn names(&self) -> BTreeSet<&String> {
        self.per_abi.values().flatten().collect()
    }
}

/// What the profile for `rec` allows under `opts`: the recorded syscalls of each ABI, the
/// other members of their equivalence groups that the ABI has, and the runtimes' own calls
/// after the filter (x86_64: the runtime is a native process, whatever the workload runs).
///
/// A name the tables do not know, or a number they could not name, is an error: the profile
/// would otherwise refuse a call the workload makes. So is an unknown runtime.
pub fn allowed(rec: &Recording, opts: &SeccompOptions) -> Result<Allowed, SynthError> {
    let unknown = rec.unknown_numbers();
    if !unknown.is_empty() {
        return Err(SynthError::UnknownNumbers { numbers: unknown });
    }
    let recorded = rec.allowed_syscalls();
    if recorded.is_empty() {
        return Err(SynthError::NothingRecorded);
    }
    for (abi, names) in &recorded {
        if let Some(name) = names.iter().find(|n| !syscalls::is_known(*abi, n)) {
            return Err(SynthError::UnknownSyscall {
                abi: *abi,
                name: name.clone(),
            });
        }
    }
    let runtimes = if opts.exact {
        Vec::new()
    } else {
        opts.runtimes
            .iter()
            .map(|name| runtime::find(name))
            .collect::<Result<Vec<_>, _>>()?
    };

    let mut out = Allowed {
        recorded: recorded.values().flatten().cloned().collect(),
        per_abi: recorded.clone(),
        ..Allowed::default()
    };
    // The runtime's calls first: they are made whatever the workload is, and their
    // equivalents are added like the workload's (a Go runtime that preempts with tgkill in
    // one run may use tkill in another), so the profile does not depend on which runs
    // happened to record a runtime call.
    for r in runtimes {
        let native = out.per_abi.entry(Abi::X86_64).or_default();
        native.extend(r.calls.iter().map(|c| c.name.to_owned()));
        let new: BTreeSet<String> = r
            .calls
            .iter()
            .filter(|c| !out.recorded.contains(c.name))
            .map(|c| c.name.to_owned())
            .collect();
        out.runtimes.insert(r.name.to_owned(), new);
    }
    if !opts.exact {
        let base = out.per_abi.clone();
        let before: BTreeSet<String> = base.values().flatten().cloned().collect();
        for (abi, names) in &base {
            for (label, added) in equivalents::added(*abi, names) {
                out.per_abi
                    .entry(*abi)
                    .or_default()
                    .extend(added.iter().cloned());
                let new = added.into_iter().filter(|n| !before.contains(n));
                out.equivalents.entry(label).or_default().extend(new);
            }
        }
        out.equivalents.retain(|_, names| !names.is_empty());
    }
    Ok(out)
}

/// The profile for `rec`: default action `SCMP_ACT_ERRNO` (EPERM), the architectures that
/// are allowed something, and one allow rule naming every [`allowed`] syscall.
///
/// Names are one list for all architectures because libseccomp resolves each name per
/// architecture (and runc skips names an architecture does not have).
pub fn seccomp(rec: &Recording, opts: &SeccompOptions) -> Result<LinuxSeccomp, SynthError> {
    Ok(profile(&plan(rec, opts)?))
}

/// The profile and its summary, from one synthesis.
pub fn synthesize(
    rec: &Recording,
    opts: &SeccompOptions,
) -> Result<(LinuxSeccomp, SeccompSummary), SynthError> {
    let plan = plan(rec, opts)?;
    Ok((profile(&plan), SeccompSummary::new(&plan, rec)))
}

/// One rule allowing every name without argument rules, then one per argument rule, then
/// ENOSYS for the names that answer it.
fn profile(plan: &Plan) -> LinuxSeccomp {
    let allowed = &plan.allowed;
    let mut rule = LinuxSyscall::default();
    rule.set_names(
        allowed
            .names()
            .into_iter()
            .filter(|n| !plan.args.rules.contains_key(*n))
            .cloned()
            .collect(),
    )
    .set_action(LinuxSeccompAction::ScmpActAllow);
    let mut rules = vec![rule];
    for (name, conditions) in &plan.args.rules {
        for args in conditions {
            let mut rule = LinuxSyscall::default();
            rule.set_names(vec![name.clone()])
                .set_action(LinuxSeccompAction::ScmpActAllow)
                .set_args(Some(args.clone()));
            rules.push(rule);
        }
    }
    for name in &plan.args.enosys {
        let mut rule = LinuxSyscall::default();
        rule.set_names(vec![name.clone()])
            .set_action(LinuxSeccompAction::ScmpActErrno)
            .set_errno_ret(Some(args::ENOSYS));
        rules.push(rule);
    }

    let mut profile = LinuxSeccomp::default();
    profile
        .set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_default_errno_ret(Some(DEFAULT_ERRNO))
        .set_architectures(Some(allowed.per_abi.keys().map(|abi| arch(*abi)).collect()))
        .set_syscalls(Some(rules));
    profile
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
    /// Syscalls allowed per ABI.
    pub per_abi: BTreeMap<Abi, usize>,
    /// Distinct names in the allow rule (a name allowed on two ABIs counts once).
    pub total: usize,
    /// Distinct names the recording holds.
    pub recorded: usize,
    /// Names allowed only because a recorded call has them as equivalents, per group.
    pub added_as_equivalents: BTreeMap<&'static str, BTreeSet<String>>,
    /// Names allowed only because a runtime calls them after its filter, per runtime.
    pub added_for_runtimes: BTreeMap<String, BTreeSet<String>>,
    /// Events the recording lost: non-zero means the profile may be missing calls.
    pub events_lost: u64,
    /// [`DOCKER_DEFAULT_X86_64`].
    pub docker_default_x86_64: usize,
    /// The argument rules.
    pub args: ArgSummary,
}

/// The argument rules of a profile, in numbers and words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArgSummary {
    /// Rules with argument conditions.
    pub rules: usize,
    /// What each name with argument rules allows.
    pub allows: BTreeMap<String, String>,
    /// Names answered with ENOSYS.
    pub enosys: BTreeSet<String>,
    /// Arguments not filtered because their values overflowed.
    pub overflowed: BTreeSet<String>,
}

impl ArgSummary {
    /// The synth table's rows: label and value.
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut rows = vec![("rules with arguments".to_owned(), self.rules.to_string())];
        for (name, allows) in &self.allows {
            rows.push((format!("values allowed, {name}"), allows.clone()));
        }
        for name in &self.enosys {
            rows.push((
                format!("{name} answers"),
                "ENOSYS (libcs fall back to the filtered clone)".to_owned(),
            ));
        }
        let overflowed: Vec<&str> = self.overflowed.iter().map(String::as_str).collect();
        rows.push((
            "arguments not filtered (overflowed)".to_owned(),
            if overflowed.is_empty() {
                "0".to_owned()
            } else {
                overflowed.join("\n")
            },
        ));
        rows
    }
}

impl SeccompSummary {
    /// The summary of the profile [`seccomp`] makes from `rec` under `opts`.
    pub fn of(rec: &Recording, opts: &SeccompOptions) -> Result<Self, SynthError> {
        Ok(Self::new(&plan(rec, opts)?, rec))
    }

    fn new(plan: &Plan, rec: &Recording) -> Self {
        let allowed = &plan.allowed;
        SeccompSummary {
            per_abi: allowed
                .per_abi
                .iter()
                .map(|(abi, n)| (*abi, n.len()))
                .collect(),
            total: allowed.names().len(),
            recorded: allowed.recorded.len(),
            added_as_equivalents: allowed.equivalents.clone(),
            added_for_runtimes: allowed.runtimes.clone(),
            events_lost: rec.events_lost_total(),
            docker_default_x86_64: DOCKER_DEFAULT_X86_64,
            args: ArgSummary {
                rules: plan.args.rule_count(),
                allows: plan.args.allows.clone(),
                enosys: plan.args.enosys.clone(),
                overflowed: plan.args.overflowed.clone(),
            },
        }
    }

    /// Distinct names added by equivalence, sorted.
    pub fn equivalent_names(&self) -> BTreeSet<&String> {
        self.added_as_equivalents.values().flatten().collect()
    }

    /// x86_64 syscalls allowed, as a fraction of what Docker's default profile allows.
    pub fn x86_64_vs_docker(&self) -> Option<f64> {
        let ours = *self.per_abi.get(&Abi::X86_64)?;
        Some(ours as f64 / self.docker_default_x86_64 as f64)
    }
}

#[cfg(test)]
mod tests;

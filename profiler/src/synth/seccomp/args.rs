//! Argument rules: a watched syscall (`profiler_common::args`) whose recorded values are
//! complete is allowed only with those values, so the dangerous uses of an allowed call stay
//! refused: `socket(AF_PACKET)` next to `socket(AF_INET)`, `clone(CLONE_NEWUSER)` next to a
//! thread's `clone`, `ioctl(TIOCSTI)` next to `ioctl(TCGETS)`.
//!
//! * Enumerations get one rule per value (`SCMP_CMP_EQ`); rules for one name are OR-ed, and a
//!   call no rule matches gets the default action. Two watched arguments of one call
//!   (`socket`'s family and type, `setsockopt`'s level and name) get a rule per combination,
//!   AND-ing the two; the recording keeps each argument's values on their own, so a
//!   combination of seen values is allowed even if that pair was never made.
//! * `clone`'s flags are a flag word: only the namespace bits are checked,
//!   `(flags & CLONE_NS_MASK) == seen` for each combination of namespace flags seen, and for
//!   none (plain forks and threads: what `fork` and `vfork` do). seccomp cannot read
//!   `clone3`'s flags (they are behind a pointer), so when `clone` is filtered `clone3` answers
//!   ENOSYS, as in Docker's profile: libcs then call `clone` with the same flags. Its values
//!   count towards `clone`'s.
//! * The calls a container runtime makes after its filter ([`super::runtime`]) go through the
//!   same rules: their arguments ([`RUNTIME_ARGS`]) are allowed too.
//!
//! Not filtered: an argument with more values than [`MAX_VALUES_PER_ARG`] (or that the kernel
//! side marked overflowed), a name a cgroup made with arguments unknown, a name allowed on
//! another ABI than x86_64 (rules apply to every architecture of the profile, and only
//! x86_64's arguments are recorded).
//!
//! Rule count: at most [`MAX_RULES_PER_NAME`] rules per name and [`MAX_ARG_RULES`] in all.
//! seccomp programs are limited to 4096 BPF instructions; runc 1.1.5 with libseccomp 2.5.4
//! loads a profile with every watched argument at its bound (110 argument rules, 371 names,
//! three x86 architectures) and one with 660 more argument rules (see `docs/seccomp.md`).

use std::collections::{BTreeMap, BTreeSet};

use oci_spec::runtime::{LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompOperator};
use profiler_common::args::{SOCK_TYPE_MASK, WATCHED};

use super::{runtime, Allowed, SeccompOptions};
use crate::model::{Abi, ArgValues, CallArgs, Recording};

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
/// CLONE_NEWPID | CLONE_NEWNET`: the flags Docker's profile refuses `clone` with.
pub const CLONE_NS_MASK: u64 = 0x7E02_0000;

/// `ENOSYS`: what `clone3` answers when `clone` is filtered, so libcs fall back to `clone`.
pub const ENOSYS: u32 = 38;

/// At most this many rules for one name (combinations of two arguments); past it only the
/// first argument is checked.
pub const MAX_RULES_PER_NAME: usize = 16;

/// An argument with more allowed values than this (the recorded ones and a runtime's) is not
/// filtered.
pub const MAX_VALUES_PER_ARG: usize = 16;

/// Argument rules a profile can hold: `socket` and `setsockopt` 16 each (combinations),
/// `clone` 9 (8 values and none), `prctl` and `fcntl` 11 each (8 recorded and 3 of the
/// runtimes'), 8 each for the six other names, and `clone3`'s ENOSYS rule.
pub const MAX_ARG_RULES: usize = 16 * 2 + 9 + 11 * 2 + 8 * 6 + 1;

/// How a watched argument is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    Equal,
    /// `(arg & mask) == value`.
    Masked(u64),
}

/// The check for a watched (name, index); `clone` is handled on its own.
fn check(name: &str, index: u8) -> Check {
    match (name, index) {
        ("socket", 1) => Check::Masked(SOCK_TYPE_MASK),
        _ => Check::Equal,
    }
}

/// Argument values a runtime passes to a call it makes after its filter.
#[derive(Debug)]
pub struct RuntimeArgs {
    pub runtime: &'static str,
    pub name: &'static str,
    pub index: u8,
    pub values: &'static [u64],
    pub source: &'static str,
}

/// What runc and crun pass to the watched calls of [`super::runtime`]'s tables. A runtime call
/// with a watched argument missing here leaves that name unfiltered.
pub const RUNTIME_ARGS: &[RuntimeArgs] = &[
    RuntimeArgs {
        runtime: "runc",
        name: "prctl",
        index: 0,
        // PR_SET_KEEPCAPS, PR_CAPBSET_DROP, PR_CAP_AMBIENT
        values: &[8, 24, 47],
        source: "measured (strace, runc 1.1.5, noNewPrivileges false): PR_CAPBSET_DROP for each capability, PR_CAP_AMBIENT lower and raise, PR_SET_KEEPCAPS 1 and 0",
    },
    RuntimeArgs {
        runtime: "runc",
        name: "fcntl",
        index: 1,
        // F_SETFD, F_GETFL, F_SETFL
        values: &[2, 3, 4],
        source: "measured (strace, runc 1.1.5): F_SETFD FD_CLOEXEC on leftover fds (noNewPrivileges false), F_GETFL and F_SETFL O_NONBLOCK on another thread of runc init (every run)",
    },
    RuntimeArgs {
        runtime: "crun",
        name: "prctl",
        index: 0,
        values: &[8, 24, 47],
        source: "crun source, linux.c set_required_caps: PR_CAPBSET_DROP, PR_SET_KEEPCAPS, PR_CAP_AMBIENT",
    },
];

/// The argument rules of a profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArgPlan {
    /// Names allowed only with arguments: each rule's conditions are AND-ed, a name's rules
    /// OR-ed. These names leave the plain allow rule.
    pub rules: BTreeMap<String, Vec<Vec<LinuxSeccompArg>>>,
    /// Names answered with ENOSYS rather than allowed (`clone3` when `clone` is filtered).
    pub enosys: BTreeSet<String>,
    /// Arguments left unfiltered because their values overflowed: `socket arg0 (address
    /// family)`.
    pub overflowed: BTreeSet<String>,
    /// What each filtered name allows, for people: `arg0 in {0x1, 0x2}`.
    pub allows: BTreeMap<String, String>,
}

impl ArgPlan {
    /// Rules with argument conditions, all names.
    pub fn rule_count(&self) -> usize {
        self.rules.values().map(Vec::len).sum()
    }
}

/// The argument rules for `rec`, whose profile allows `allowed` (names, equivalents and
/// runtime calls already added).
pub fn plan(rec: &Recording, allowed: &Allowed, opts: &SeccompOptions) -> ArgPlan {
    let mut plan = ArgPlan::default();
    let Some(native) = allowed.per_abi.get(&Abi::X86_64) else {
        return plan;
    };
    if opts.no_args {
        return plan;
    }
    let elsewhere: BTreeSet<&String> = allowed
        .per_abi
        .iter()
        .filter(|(abi, _)| **abi != Abi::X86_64)
        .flat_map(|(_, names)| names)
        .collect();
    let filterable = |name: &str| native.contains(name) && !elsewhere.contains(&name.to_owned());
    let runtimes: Vec<&str> = if opts.exact {
        Vec::new()
    } else {
        opts.runtimes.iter().map(String::as_str).collect()
    };

    let names: BTreeSet<&str> = WATCHED
        .iter()
        .map(|w| w.name)
        .filter(|n| !matches!(*n, "clone" | "clone3"))
        .collect();
    for name in names {
        if !filterable(name) {
            continue;
        }
        if let Some(values) = values_for(rec, name, &runtimes) {
            enumerations(&mut plan, name, &values);
        }
    }
    if filterable("clone") && !elsewhere.contains(&"clone3".to_owned()) {
        clone(&mut plan, rec, native.contains("clone3"));
    }
    plan
}

/// Every value `name` (x86_64) may be called with: the recorded ones and the runtimes'. `None`
/// when they are not all known.
fn values_for(rec: &Recording, name: &str, runtimes: &[&str]) -> Option<CallArgs> {
    let recorded = rec
        .allowed_syscalls()
        .get(&Abi::X86_64)
        .is_some_and(|n| n.contains(name));
    let mut values = if recorded {
        rec.arg_values(Abi::X86_64, name)?
    } else {
        CallArgs::new()
    };
    let mut from_runtime = false;
    for r in runtimes {
        let calls_it = runtime::find(r)
            .map(|r| r.calls.iter().any(|c| c.name == name))
            .unwrap_or(false);
        if !calls_it {
            continue;
        }
        let known: Vec<&RuntimeArgs> = RUNTIME_ARGS
            .iter()
            .filter(|a| a.runtime == *r && a.name == name)
            .collect();
        if known.is_empty() {
            return None;
        }
        for a in known {
            // An index the recording has no values for stays unknown.
            let entry = values.entry(a.index).or_insert_with(|| ArgValues {
                overflowed: recorded,
                ..ArgValues::default()
            });
            entry.values.extend(a.values);
            from_runtime = true;
        }
    }
    (recorded || from_runtime).then_some(values)
}

/// One rule per combination of the values of `name`'s complete arguments.
fn enumerations(plan: &mut ArgPlan, name: &str, args: &CallArgs) {
    let mut checked: Vec<(u8, Check, Vec<u64>)> = Vec::new();
    for w in WATCHED.iter().filter(|w| w.name == name) {
        let label = format!("{name} arg{} ({})", w.index, w.what);
        let Some(values) = args.get(&w.index) else {
            // Watched but not in the recording: its values are unknown.
            continue;
        };
        match values.complete() {
            Some(v) if v.len() <= MAX_VALUES_PER_ARG => {
                let check = check(name, w.index);
                if checked.iter().map(|c| c.2.len()).product::<usize>() * v.len()
                    > MAX_RULES_PER_NAME
                {
                    plan.overflowed
                        .insert(format!("{label}: too many combinations"));
                    continue;
                }
                checked.push((w.index, check, v.iter().copied().collect()));
            }
            _ => {
                plan.overflowed.insert(label);
            }
        }
    }
    if checked.is_empty() {
        return;
    }
    let mut rules: Vec<Vec<LinuxSeccompArg>> = vec![Vec::new()];
    for (index, check, values) in &checked {
        rules = rules
            .iter()
            .flat_map(|rule| {
                values.iter().map(move |v| {
                    let mut r = rule.clone();
                    r.push(condition(*index, *check, *v));
                    r
                })
            })
            .collect();
    }
    let allows = checked
        .iter()
        .map(|(index, check, values)| {
            let arg = match check {
                Check::Equal => format!("arg{index}"),
                Check::Masked(m) => format!("arg{index} & {m:#x}"),
            };
            format!("{arg} in {}", hex_set(values))
        })
        .collect::<Vec<_>>()
        .join(", ");
    plan.allows.insert(name.to_owned(), allows);
    plan.rules.insert(name.to_owned(), rules);
}

/// `clone` by its namespace flags (with `clone3`'s), and `clone3` answering ENOSYS.
fn clone(plan: &mut ArgPlan, rec: &Recording, clone3_allowed: bool) {
    let recorded = rec.allowed_syscalls();
    let native = recorded.get(&Abi::X86_64);
    let mut flags = BTreeSet::new();
    let mut any = false;
    for name in ["clone", "clone3"] {
        if !native.is_some_and(|n| n.contains(name)) {
            continue;
        }
        any = true;
        let Some(values) = rec.arg_values(Abi::X86_64, name) else {
            return;
        };
        match values.get(&0).and_then(|v| v.complete()) {
            Some(v) => flags.extend(v.iter().copied()),
            None => {
                plan.overflowed.insert(format!("{name} arg0 (flags)"));
                return;
            }
        }
    }
    if !any {
        return;
    }
    let mut namespaces: BTreeSet<u64> = flags.iter().map(|f| f & CLONE_NS_MASK).collect();
    namespaces.insert(0);
    if namespaces.len() > MAX_RULES_PER_NAME {
        plan.overflowed
            .insert("clone arg0 (flags): too many namespace combinations".into());
        return;
    }
    let rules = namespaces
        .iter()
        .map(|ns| vec![condition(0, Check::Masked(CLONE_NS_MASK), *ns)])
        .collect();
    let allows = if namespaces.len() == 1 {
        format!("arg0 & {CLONE_NS_MASK:#x} == 0 (no namespace flags)")
    } else {
        format!("arg0 & {CLONE_NS_MASK:#x} in {}", hex_set(&namespaces))
    };
    plan.allows.insert("clone".into(), allows);
    plan.rules.insert("clone".into(), rules);
    if clone3_allowed {
        plan.enosys.insert("clone3".into());
    }
}

fn condition(index: u8, check: Check, value: u64) -> LinuxSeccompArg {
    let arg = LinuxSeccompArgBuilder::default().index(usize::from(index));
    let arg = match check {
        Check::Equal => arg.op(LinuxSeccompOperator::ScmpCmpEq).value(value),
        Check::Masked(mask) => arg
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .value(mask)
            .value_two(value),
    };
    arg.build().expect("every field is set")
}

fn hex_set<'a>(values: impl IntoIterator<Item = &'a u64>) -> String {
    let v: Vec<String> = values.into_iter().map(|v| format!("{v:#x}")).collect();
    format!("{{{}}}", v.join(", "))
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;

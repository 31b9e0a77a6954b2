//! A syscall the profile allows only with argument conditions, judged against the values the
//! recording holds for it.
//!
//! The recording keeps each argument's values on their own, not which values went together
//! in one call. A value that every allowing rule refuses was certainly refused; the call is
//! certainly allowed when every combination of the recorded values passes some rule; in
//! between, or without complete values, nothing can be said.

use std::collections::BTreeSet;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};

use crate::{model::CallArgs, profile_set::seccomp::lets_through};

/// Combinations of recorded values tried at most.
const MAX_COMBINATIONS: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgVerdict {
    /// Every recorded call passes some rule.
    Allowed,
    /// Values no allowing rule lets through, as `arg0 = 0x11`.
    Refused(Vec<String>),
    /// The values are incomplete, or only some of their combinations pass.
    Unknown,
}

/// How `profile`'s rules with conditions for `name` treat the calls made with `args`.
pub fn judge(profile: &LinuxSeccomp, name: &str, args: Option<&CallArgs>) -> ArgVerdict {
    let rules: Vec<&[LinuxSeccompArg]> = profile
        .syscalls()
        .iter()
        .flatten()
        .filter(|r| lets_through(r.action()) && r.names().iter().any(|n| n == name))
        .filter_map(|r| r.args().as_deref().filter(|a| !a.is_empty()))
        .collect();
    let Some(args) = args else {
        return ArgVerdict::Unknown;
    };
    if rules.is_empty() {
        return ArgVerdict::Unknown;
    }
    let indexes: BTreeSet<usize> = rules
        .iter()
        .flat_map(|r| r.iter().map(|c| c.index()))
        .collect();
    let mut known: Vec<(usize, Vec<u64>)> = Vec::new();
    let mut complete = true;
    for &index in &indexes {
        match u8::try_from(index)
            .ok()
            .and_then(|i| args.get(&i))
            .and_then(|v| v.complete())
        {
            Some(values) => known.push((index, values.iter().copied().collect())),
            None => complete = false,
        }
    }

    // A value every rule's conditions on its argument refuse.
    let refused: Vec<String> = known
        .iter()
        .flat_map(|(index, values)| values.iter().map(move |v| (*index, *v)))
        .filter(|(index, v)| {
            !rules.iter().any(|rule| {
                rule.iter()
                    .filter(|c| c.index() == *index)
                    .all(|c| holds(c, *v))
            })
        })
        .map(|(index, v)| format!("arg{index} = {v:#x}"))
        .collect();
    if !refused.is_empty() {
        return ArgVerdict::Refused(refused);
    }
    let combinations: usize = known.iter().map(|(_, v)| v.len().max(1)).product();
    if !complete || combinations > MAX_COMBINATIONS {
        return ArgVerdict::Unknown;
    }
    let mut call = vec![0u64; indexes.iter().max().map_or(0, |m| m + 1)];
    if every_combination(&known, &mut call, &|call| {
        rules
            .iter()
            .any(|rule| rule.iter().all(|c| holds(c, call[c.index()])))
    }) {
        ArgVerdict::Allowed
    } else {
        ArgVerdict::Unknown
    }
}

/// Whether `profile` answers `name` with ENOSYS, as profiles filtering `clone` answer `clone3`
/// so that libcs make the same call through `clone`.
pub fn answers_enosys(profile: &LinuxSeccomp, name: &str) -> bool {
    profile.syscalls().iter().flatten().any(|r| {
        r.names().iter().any(|n| n == name)
            && r.action() == LinuxSeccompAction::ScmpActErrno
            && r.errno_ret() == Some(ENOSYS)
            && r.args().as_ref().is_none_or(|a| a.is_empty())
    })
}

const ENOSYS: u32 = 38;

/// Whether `test` holds for every call made of one value per argument of `known`.
fn every_combination(
    known: &[(usize, Vec<u64>)],
    call: &mut [u64],
    test: &dyn Fn(&[u64]) -> bool,
) -> bool {
    let Some(((index, values), rest)) = known.split_first() else {
        return test(call);
    };
    values.iter().all(|v| {
        call[*index] = *v;
        every_combination(rest, call, test)
    })
}

/// libseccomp's comparison of a 64-bit argument.
fn holds(c: &LinuxSeccompArg, arg: u64) -> bool {
    let value = c.value();
    match c.op() {
        LinuxSeccompOperator::ScmpCmpNe => arg != value,
        LinuxSeccompOperator::ScmpCmpLt => arg < value,
        LinuxSeccompOperator::ScmpCmpLe => arg <= value,
        LinuxSeccompOperator::ScmpCmpEq => arg == value,
        LinuxSeccompOperator::ScmpCmpGe => arg >= value,
        LinuxSeccompOperator::ScmpCmpGt => arg > value,
        LinuxSeccompOperator::ScmpCmpMaskedEq => arg & value == c.value_two().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ArgValues;

    fn profile() -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 0xfff7f7ffu64, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 0xfff7f7ffu64, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 0x7e020000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]
        }))
        .unwrap()
    }

    fn call(args: &[(u8, &[u64], bool)]) -> CallArgs {
        args.iter()
            .map(|(i, v, overflowed)| {
                (
                    *i,
                    ArgValues {
                        values: v.iter().copied().collect(),
                        overflowed: *overflowed,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn recorded_values_are_judged_against_the_rules() {
        let p = profile();
        let refused = |v: &[&str]| ArgVerdict::Refused(v.iter().map(|s| s.to_string()).collect());
        let cases = [
            // (name, args, verdict)
            (
                "clone",
                Some(call(&[(0, &[0x1200011, 0x3d0f00], false)])),
                ArgVerdict::Allowed,
            ),
            (
                "clone",
                Some(call(&[(0, &[0x1200011, 0x1000_0011], false)])),
                refused(&["arg0 = 0x10000011"]),
            ),
            // Only the family and type pairs the rules name.
            (
                "socket",
                Some(call(&[(0, &[2], false), (1, &[0x80801], false)])),
                ArgVerdict::Allowed,
            ),
            (
                "socket",
                Some(call(&[(0, &[17], false), (1, &[3], false)])),
                refused(&["arg0 = 0x11", "arg1 = 0x3"]),
            ),
            // Each value passes some rule, but (2, 2) may have been made: cannot tell.
            (
                "socket",
                Some(call(&[(0, &[1, 2], false), (1, &[1, 2], false)])),
                ArgVerdict::Unknown,
            ),
            // An overflowed type: the family still tells a refusal, never an allowance.
            (
                "socket",
                Some(call(&[(0, &[2], false), (1, &[1], true)])),
                ArgVerdict::Unknown,
            ),
            (
                "socket",
                Some(call(&[(0, &[16], false), (1, &[1], true)])),
                refused(&["arg0 = 0x10"]),
            ),
            ("socket", None, ArgVerdict::Unknown),
        ];
        for (name, args, want) in cases {
            assert_eq!(judge(&p, name, args.as_ref()), want, "{name} {args:?}");
        }
        assert!(answers_enosys(&p, "clone3"));
        assert!(!answers_enosys(&p, "clone") && !answers_enosys(&p, "read"));
    }
}

//! The values a workload passed to a few syscalls' flag and enumeration arguments (the
//! kernel side's watched arguments, `profiler_common::args`), so the seccomp profile can allow
//! a syscall only with those values.
//!
//! A syscall a cgroup made without values for it (recorded by an older profgen, made before
//! the runtime's filter with `--include-runtime-setup`, or of an ABI whose arguments are not
//! watched) has unknown arguments: nothing may be filtered for it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Abi, CgroupRecord, Recording};

/// Distinct values kept per argument, as the kernel side keeps them.
pub const MAX_VALUES: usize = profiler_common::args::VALUES;

/// The values seen for one argument.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgValues {
    pub values: BTreeSet<u64>,
    /// More distinct values were passed than are kept, or one could not be read: the values
    /// are incomplete and the argument is not filtered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overflowed: bool,
}

impl ArgValues {
    /// The values, when they are all of them.
    pub fn complete(&self) -> Option<&BTreeSet<u64>> {
        (!self.overflowed).then_some(&self.values)
    }

    /// What either saw; overflowed when either did or the union exceeds [`MAX_VALUES`].
    fn union(&mut self, other: &ArgValues) {
        self.values.extend(&other.values);
        self.overflowed |= other.overflowed || self.values.len() > MAX_VALUES;
    }
}

/// The watched arguments of one syscall, by argument index.
pub type CallArgs = BTreeMap<u8, ArgValues>;

/// Per ABI, per syscall name.
pub type ArgSet = BTreeMap<Abi, BTreeMap<String, CallArgs>>;

/// Two sightings of one syscall: an index only one of them watched is incomplete.
fn union_call(into: &mut CallArgs, other: &CallArgs) {
    let indexes: BTreeSet<u8> = into.keys().chain(other.keys()).copied().collect();
    for index in indexes {
        let entry = into.entry(index).or_insert_with(|| ArgValues {
            overflowed: true,
            ..ArgValues::default()
        });
        match other.get(&index) {
            Some(values) => entry.union(values),
            None => entry.overflowed = true,
        }
    }
}

impl CgroupRecord {
    /// The recorded values of `name` of `abi`: `None` when it was not made, `Some(None)`
    /// when it was made with arguments unknown.
    fn call_args(&self, abi: Abi, name: &str) -> Option<Option<&CallArgs>> {
        let made = self.syscalls.get(&abi).is_some_and(|n| n.contains(name));
        made.then(|| self.args.get(&abi).and_then(|calls| calls.get(name)))
    }
}

impl Recording {
    /// The argument values `name` of `abi` was called with, over every cgroup that made it;
    /// `None` when it was not recorded or when one cgroup made it with arguments unknown.
    pub fn arg_values(&self, abi: Abi, name: &str) -> Option<CallArgs> {
        let mut all: Option<CallArgs> = None;
        for seen in self.cgroups.iter().filter_map(|cg| cg.call_args(abi, name)) {
            let seen = seen?;
            match &mut all {
                None => all = Some(seen.clone()),
                Some(all) => union_call(all, seen),
            }
        }
        all
    }
}

/// Folds `other`'s argument values into `into`'s: the same cgroup seen in another run. Called
/// before their syscall sets are joined. A call either made with arguments unknown keeps no
/// values (see the module's doc).
pub(super) fn merge_args(into: &mut CgroupRecord, other: &CgroupRecord) {
    let mut merged = ArgSet::new();
    let calls: BTreeSet<(Abi, &String)> = [&*into, other]
        .iter()
        .flat_map(|cg| {
            cg.syscalls
                .iter()
                .flat_map(|(abi, names)| names.iter().map(move |n| (*abi, n)))
        })
        .collect();
    for (abi, name) in calls {
        let seen = [into.call_args(abi, name), other.call_args(abi, name)];
        let mut union: Option<CallArgs> = None;
        let mut unknown = false;
        for args in seen.into_iter().flatten() {
            match (args, &mut union) {
                (None, _) => unknown = true,
                (Some(args), None) => union = Some(args.clone()),
                (Some(args), Some(union)) => union_call(union, args),
            }
        }
        if let (Some(args), false) = (union, unknown) {
            merged.entry(abi).or_default().insert(name.clone(), args);
        }
    }
    into.args = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{cgroup, recording};

    fn values(v: &[u64], overflowed: bool) -> ArgValues {
        ArgValues {
            values: v.iter().copied().collect(),
            overflowed,
        }
    }

    fn with_args(id: u64, calls: &[&str], args: &[(&str, u8, ArgValues)]) -> CgroupRecord {
        let mut cg = cgroup(id, "/c", &[(Abi::X86_64, calls)]);
        for (name, index, v) in args {
            cg.args
                .entry(Abi::X86_64)
                .or_default()
                .entry(name.to_string())
                .or_default()
                .insert(*index, v.clone());
        }
        cg
    }

    #[test]
    fn values_are_the_union_over_cgroups_unless_one_does_not_know_them() {
        let a = with_args(1, &["socket"], &[("socket", 0, values(&[1, 2], false))]);
        let b = with_args(2, &["socket"], &[("socket", 0, values(&[10], false))]);
        let old = with_args(3, &["socket"], &[]);
        let other = with_args(4, &["read"], &[]);

        let rec = recording(vec![a.clone(), b.clone(), other.clone()]);
        let got = rec.arg_values(Abi::X86_64, "socket").unwrap();
        assert_eq!(got[&0], values(&[1, 2, 10], false));
        assert_eq!(rec.arg_values(Abi::X86_64, "clone"), None);
        assert_eq!(rec.arg_values(Abi::I386, "socket"), None);
        // A cgroup that made socket without values makes them unknown.
        let rec = recording(vec![a, b, old]);
        assert_eq!(rec.arg_values(Abi::X86_64, "socket"), None);
    }

    #[test]
    fn union_overflows_past_the_bound_and_where_one_side_did_not_watch() {
        let mut a: CallArgs = [(0, values(&[1, 2, 3, 4, 5], false))].into();
        union_call(&mut a, &[(0, values(&[5, 6, 7, 8], false))].into());
        assert_eq!(a[&0].values.len(), 8);
        assert!(!a[&0].overflowed, "8 values fit");
        union_call(&mut a, &[(0, values(&[9], false))].into());
        assert!(a[&0].overflowed, "9 do not");

        let mut b: CallArgs = [(0, values(&[1], false))].into();
        union_call(&mut b, &[(1, values(&[2], false))].into());
        assert!(b[&0].overflowed && b[&1].overflowed, "{b:?}");
        assert_eq!(b[&0].complete(), None);
        let c: CallArgs = [(0, values(&[1], true))].into();
        let mut d: CallArgs = [(0, values(&[2], false))].into();
        union_call(&mut d, &c);
        assert!(d[&0].overflowed);
    }

    #[test]
    fn merging_a_cgroup_keeps_values_only_where_both_runs_knew_them() {
        let mut into = with_args(
            1,
            &["socket", "ioctl"],
            &[
                ("socket", 0, values(&[2], false)),
                ("ioctl", 1, values(&[0x5401], false)),
            ],
        );
        // The other run: socket with another family, ioctl with arguments unknown, prctl
        // which the first run did not make.
        let mut other = with_args(
            1,
            &["socket", "prctl"],
            &[
                ("socket", 0, values(&[1], false)),
                ("prctl", 0, values(&[15], false)),
            ],
        );
        other
            .syscalls
            .get_mut(&Abi::X86_64)
            .unwrap()
            .insert("ioctl".into());
        merge_args(&mut into, &other);
        let calls = &into.args[&Abi::X86_64];
        assert_eq!(calls["socket"][&0], values(&[1, 2], false));
        assert_eq!(calls["prctl"][&0], values(&[15], false));
        assert!(!calls.contains_key("ioctl"), "{calls:?}");
    }
}

//! seccomp: the default action, and the allowed (name, arguments) entries per architecture.
//! A name allowed outright covers the same name with argument conditions, not the reverse.

use oci_spec::runtime::LinuxSeccomp;

use super::{Change, Item};
use crate::profile_set::{
    seccomp::{allowed, lets_through, Allowed},
    Artifact,
};

const A: Artifact = Artifact::Seccomp;

pub(super) fn diff(old: &LinuxSeccomp, new: &LinuxSeccomp, out: &mut Vec<Item>) {
    let (od, nd) = (old.default_action(), new.default_action());
    if od != nd {
        let change = match (lets_through(od), lets_through(nd)) {
            (false, true) => Change::Added,
            (true, false) => Change::Removed,
            _ => Change::Changed,
        };
        out.push(Item::new(
            A,
            "defaultAction",
            change,
            format!("{od} → {nd}"),
        ));
    }
    if old.default_errno_ret() != new.default_errno_ret() {
        let show = |e: Option<u32>| e.map_or("unset".to_owned(), |e| e.to_string());
        out.push(Item::new(
            A,
            "defaultErrnoRet",
            Change::Changed,
            format!(
                "{} → {}",
                show(old.default_errno_ret()),
                show(new.default_errno_ret())
            ),
        ));
    }
    let (old, new) = (allowed(old), allowed(new));
    let empty = Allowed::new();
    for (arch, entries) in &new {
        let before = old.get(arch).unwrap_or(&empty);
        for e in entries.iter().filter(|e| !covered(before, e)) {
            out.push(Item::new(A, arch.as_str(), Change::Added, show(e)));
        }
    }
    for (arch, entries) in &old {
        let after = new.get(arch).unwrap_or(&empty);
        for e in entries.iter().filter(|e| !covered(after, e)) {
            out.push(Item::new(A, arch.as_str(), Change::Removed, show(e)));
        }
    }
}

fn covered(set: &Allowed, (name, args): &(String, Option<String>)) -> bool {
    set.contains(&(name.clone(), None))
        || (args.is_some() && set.contains(&(name.clone(), args.clone())))
}

fn show((name, args): &(String, Option<String>)) -> String {
    match args {
        None => name.clone(),
        Some(a) => format!("{name} (only if {a})"),
    }
}

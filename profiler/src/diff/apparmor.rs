//! AppArmor: file rules by coverage (a NEW rule is added unless OLD's rules, with
//! `abstractions/base` when OLD includes it, grant its letters on every path it matches),
//! capabilities, network rules, includes, flags; deny rules and rules of other kinds by text.

use std::collections::BTreeSet;

use super::{Change, Item};
use crate::profile_set::{
    apparmor::{Capabilities, Grants, NetworkRule, Profile},
    Artifact,
};

const A: Artifact = Artifact::AppArmor;

pub(super) fn diff(old: &Profile, new: &Profile, out: &mut Vec<Item>) {
    if old.name != new.name {
        out.push(Item::new(
            A,
            "profile",
            Change::Changed,
            format!("{} → {}", old.name, new.name),
        ));
    }
    flags(old, new, out);
    files(old, new, out);
    capabilities(&old.capabilities, &new.capabilities, Change::Added, out);
    capabilities(&new.capabilities, &old.capabilities, Change::Removed, out);
    network(&old.network, &new.network, Change::Added, out);
    network(&new.network, &old.network, Change::Removed, out);
    // What denies: losing one widens.
    let denies = |p: &Profile| -> BTreeSet<String> {
        let caps = p
            .denied_capabilities
            .names
            .iter()
            .map(|c| format!("deny capability {c}"));
        let all = p
            .denied_capabilities
            .all
            .then(|| "deny capability".to_owned());
        let net = p.denied_network.iter().map(|n| format!("deny {n}"));
        let files = p.files.iter().filter(|r| r.deny).map(|r| r.to_string());
        caps.chain(all).chain(net).chain(files).collect()
    };
    text_sets("deny", &denies(new), &denies(old), out);
    // Rules this reader does not model, and includes it does not expand: any new one may
    // widen, so it counts as added.
    text_sets("other rule", &old.other, &new.other, out);
    let inc = |p: &Profile| -> BTreeSet<String> {
        p.includes
            .iter()
            .map(|i| format!("#include <{i}>"))
            .collect()
    };
    text_sets("include", &inc(old), &inc(new), out);
}

/// Items only in `new` are added, only in `old` removed.
fn text_sets(section: &str, old: &BTreeSet<String>, new: &BTreeSet<String>, out: &mut Vec<Item>) {
    for t in new.difference(old) {
        out.push(Item::new(A, section, Change::Added, t.clone()));
    }
    for t in old.difference(new) {
        out.push(Item::new(A, section, Change::Removed, t.clone()));
    }
}

fn flags(old: &Profile, new: &Profile, out: &mut Vec<Item>) {
    match (old.enforces(), new.enforces()) {
        (true, false) => out.push(Item::new(
            A,
            "flags",
            Change::Added,
            "NEW does not enforce (complain or unconfined): everything is allowed",
        )),
        (false, true) => out.push(Item::new(A, "flags", Change::Removed, "NEW enforces")),
        _ => {}
    }
    if old.flags != new.flags {
        let show = |f: &BTreeSet<String>| f.iter().cloned().collect::<Vec<_>>().join(",");
        out.push(Item::new(
            A,
            "flags",
            Change::Changed,
            format!("({}) → ({})", show(&old.flags), show(&new.flags)),
        ));
    }
}

fn files(old: &Profile, new: &Profile, out: &mut Vec<Item>) {
    for (from, to, change) in [(old, new, Change::Added), (new, old, Change::Removed)] {
        let grants = Grants::of(from);
        for r in to.files.iter().filter(|r| !r.deny) {
            if !grants.cover(r) {
                out.push(Item::new(A, "file", change, r.to_string()));
            }
        }
    }
}

/// Capabilities of `new` that `old` does not grant, as `change`.
fn capabilities(old: &Capabilities, new: &Capabilities, change: Change, out: &mut Vec<Item>) {
    if new.all && !old.all {
        out.push(Item::new(
            A,
            "capability",
            change,
            "every capability (`capability,`)",
        ));
    }
    for c in new.names.iter().filter(|c| !old.allows(c)) {
        out.push(Item::new(A, "capability", change, c.clone()));
    }
}

fn network(old: &[NetworkRule], new: &[NetworkRule], change: Change, out: &mut Vec<Item>) {
    for r in new.iter().filter(|r| !old.iter().any(|o| o.covers(r))) {
        out.push(Item::new(A, "network", change, r.to_string()));
    }
}

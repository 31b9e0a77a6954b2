//! Two recordings: syscalls per ABI, files with their operations (successful ones, as the
//! synthesizer sees them), capabilities, flows. "Added": NEW's workload did it, OLD's did not.

use std::collections::{BTreeMap, BTreeSet};

use super::{Change, Diff, Item};
use crate::{
    model::{Activity, FileOp, Flow, Recording},
    profile_set::Artifact,
    synth::workload_activity,
    verify::netpol::protocol_name,
};

const A: Artifact = Artifact::Recording;

pub fn diff_recordings(old: &Recording, new: &Recording) -> Diff {
    let mut diff = Diff {
        of_recordings: true,
        ..Diff::default()
    };
    let (os, ns) = (old.allowed_syscalls(), new.allowed_syscalls());
    let empty = BTreeSet::new();
    for abi in os.keys().chain(ns.keys()).collect::<BTreeSet<_>>() {
        let section = format!("syscalls {abi}");
        let (o, n) = (os.get(abi).unwrap_or(&empty), ns.get(abi).unwrap_or(&empty));
        sets(&section, o, n, &mut diff.items);
    }
    let (oa, na) = (workload_activity(old), workload_activity(new));
    files(&oa, &na, &mut diff.items);
    match (&oa.capabilities, &na.capabilities) {
        (Some(o), Some(n)) => sets("capabilities", o, n, &mut diff.items),
        _ => diff
            .notes
            .push("capabilities not compared: one recording could not record them".into()),
    }
    let flows = |a: &Activity| -> BTreeSet<String> { a.flows.iter().map(show_flow).collect() };
    sets("flows", &flows(&oa), &flows(&na), &mut diff.items);
    for (which, rec) in [("OLD", old), ("NEW", new)] {
        if rec.syscalls_only {
            diff.notes.push(format!(
                "{which} holds syscalls only: files, capabilities and flows were not recorded"
            ));
        }
    }
    diff.finish()
}

fn sets(section: &str, old: &BTreeSet<String>, new: &BTreeSet<String>, out: &mut Vec<Item>) {
    for s in new.difference(old) {
        out.push(Item::new(A, section, Change::Added, s.clone()));
    }
    for s in old.difference(new) {
        out.push(Item::new(A, section, Change::Removed, s.clone()));
    }
}

fn ops_by_path(a: &Activity) -> BTreeMap<String, BTreeSet<FileOp>> {
    let mut out: BTreeMap<String, BTreeSet<FileOp>> = BTreeMap::new();
    for f in a.files.iter().filter(|f| !f.failed) {
        let path = String::from_utf8_lossy(f.path.as_bytes()).into_owned();
        out.entry(path).or_default().extend(f.ops.iter().copied());
    }
    out
}

fn show_ops(ops: &BTreeSet<FileOp>) -> String {
    ops.iter()
        .map(|op| {
            serde_json::to_value(op)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn files(old: &Activity, new: &Activity, out: &mut Vec<Item>) {
    let (o, n) = (ops_by_path(old), ops_by_path(new));
    let none = BTreeSet::new();
    for (from, to, change) in [(&o, &n, Change::Added), (&n, &o, Change::Removed)] {
        for (path, ops) in to {
            let before = from.get(path).unwrap_or(&none);
            let extra: BTreeSet<FileOp> = ops.difference(before).copied().collect();
            if !extra.is_empty() {
                out.push(Item::new(
                    A,
                    "files",
                    change,
                    format!("{path}: {}", show_ops(&extra)),
                ));
            }
        }
    }
}

fn show_flow(f: &Flow) -> String {
    let proto = protocol_name(f.protocol);
    match f.direction {
        crate::model::Direction::Ingress => {
            format!("ingress {proto} from {} to port {}", f.peer, f.local_port)
        }
        crate::model::Direction::Egress => {
            format!("egress {proto} to {} port {}", f.peer, f.peer_port)
        }
    }
}

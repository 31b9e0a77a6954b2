//! securityContext, field by field. Losing `runAsNonRoot: true`, `readOnlyRootFilesystem:
//! true` or `allowPrivilegeEscalation: false`, becoming privileged or root, adding a
//! capability or no longer dropping one, an `Unconfined` seccomp or AppArmor profile, an
//! `Unmasked` /proc: added. The opposite: removed. Any other difference: changed.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::SecurityContext;
use serde_json::{Map, Value};

use super::{Change, Item};
use crate::profile_set::Artifact;

const A: Artifact = Artifact::SecurityContext;

fn object(sc: &SecurityContext) -> Map<String, Value> {
    match serde_json::to_value(sc) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or("unset".to_owned(), Value::to_string)
}

/// Widening when NEW loses the value that confines (`confining`), narrowing when it gains it.
fn confining_value(old: Option<&Value>, new: Option<&Value>, confining: &Value) -> Change {
    match (old == Some(confining), new == Some(confining)) {
        (true, false) => Change::Added,
        (false, true) => Change::Removed,
        _ => Change::Changed,
    }
}

/// Widening when NEW gains a value that opens (`opening`), narrowing when it loses it.
fn opening_value(old: Option<&Value>, new: Option<&Value>, opening: &Value) -> Change {
    match (old == Some(opening), new == Some(opening)) {
        (false, true) => Change::Added,
        (true, false) => Change::Removed,
        _ => Change::Changed,
    }
}

fn type_of(v: Option<&Value>) -> Option<&Value> {
    v.and_then(|v| v.get("type"))
}

pub(super) fn diff(old: &SecurityContext, new: &SecurityContext, out: &mut Vec<Item>) {
    let (o, n) = (object(old), object(new));
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    for key in keys {
        let (ov, nv) = (o.get(key), n.get(key));
        if ov == nv {
            continue;
        }
        if key == "capabilities" {
            capabilities(old, new, out);
            continue;
        }
        let change = match key.as_str() {
            "runAsNonRoot" | "readOnlyRootFilesystem" => {
                confining_value(ov, nv, &Value::Bool(true))
            }
            "allowPrivilegeEscalation" => confining_value(ov, nv, &Value::Bool(false)),
            "privileged" => opening_value(ov, nv, &Value::Bool(true)),
            "runAsUser" => opening_value(ov, nv, &Value::from(0)),
            "procMount" => opening_value(ov, nv, &Value::from("Unmasked")),
            "seccompProfile" | "appArmorProfile" => {
                opening_value(type_of(ov), type_of(nv), &Value::from("Unconfined"))
            }
            _ => Change::Changed,
        };
        out.push(Item::new(
            A,
            key.as_str(),
            change,
            format!("{} → {}", show(ov), show(nv)),
        ));
    }
}

fn capabilities(old: &SecurityContext, new: &SecurityContext, out: &mut Vec<Item>) {
    let caps = |sc: &SecurityContext, add: bool| -> BTreeSet<String> {
        let c = sc.capabilities.as_ref();
        let list = if add {
            c.and_then(|c| c.add.as_ref())
        } else {
            c.and_then(|c| c.drop.as_ref())
        };
        list.into_iter()
            .flatten()
            .map(|n| {
                let n = n.trim().to_ascii_uppercase();
                n.strip_prefix("CAP_").unwrap_or(&n).to_owned()
            })
            .collect()
    };
    let (oa, na) = (caps(old, true), caps(new, true));
    let (od, nd) = (caps(old, false), caps(new, false));
    for c in na.difference(&oa) {
        out.push(Item::new(A, "capabilities.add", Change::Added, c.clone()));
    }
    for c in oa.difference(&na) {
        out.push(Item::new(A, "capabilities.add", Change::Removed, c.clone()));
    }
    for c in od.difference(&nd) {
        out.push(Item::new(
            A,
            "capabilities.drop",
            Change::Added,
            format!("{c} no longer dropped"),
        ));
    }
    for c in nd.difference(&od) {
        out.push(Item::new(
            A,
            "capabilities.drop",
            Change::Removed,
            format!("{c} dropped"),
        ));
    }
}

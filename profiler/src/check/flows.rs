//! Recorded flows judged by the NetworkPolicy evaluator. The recording does not hold the
//! workload's own address, so the workload becomes a pod of the snapshot with addresses no
//! flow uses, in the policies' namespace, with labels their podSelector selects; only the
//! workload's side of each connection is judged (its ingress, or its egress).

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use k8s_openapi::{
    api::networking::v1::NetworkPolicy, apimachinery::pkg::apis::meta::v1::LabelSelector,
};

use crate::{
    cluster::{Cluster, Pod},
    model::Activity,
    profile_set::Artifact,
    verify::netpol::{protocol_name, recorded_connections, Evaluator, PolicyError, Side},
};

/// Labels a selector selects: its matchLabels, the first value of each `In`, a value for
/// each `Exists`.
fn labels_for(sel: Option<&LabelSelector>) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> =
        sel.and_then(|s| s.match_labels.clone()).unwrap_or_default();
    for e in sel
        .and_then(|s| s.match_expressions.as_ref())
        .into_iter()
        .flatten()
    {
        match e.operator.as_str() {
            "In" => {
                if let Some(v) = e.values.iter().flatten().next() {
                    labels.entry(e.key.clone()).or_insert_with(|| v.clone());
                }
            }
            "Exists" => {
                labels
                    .entry(e.key.clone())
                    .or_insert_with(|| "profgen-check".into());
            }
            _ => {}
        }
    }
    labels
}

/// An address of the documentation ranges that no flow and no pod of `cluster` uses.
fn free_address(v6: bool, activity: &Activity, cluster: &Cluster) -> Option<IpAddr> {
    let used = |ip: IpAddr| {
        activity.flows.iter().any(|f| f.peer.to_canonical() == ip)
            || cluster.pods.iter().any(|p| p.ips.contains(&ip))
    };
    (1..=254u8)
        .map(|i| {
            if v6 {
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i)))
            } else {
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))
            }
        })
        .find(|ip| !used(*ip))
}

/// (what, why) for every recorded flow the policies do not admit on the workload's side.
pub(super) fn judge(
    policies: &[NetworkPolicy],
    activity: &Activity,
    cluster: Option<&Cluster>,
    notes: &mut Vec<String>,
) -> Result<Vec<(String, String)>, PolicyError> {
    let Some(first) = policies.first() else {
        return Ok(Vec::new());
    };
    if activity.flows.is_empty() {
        return Ok(Vec::new());
    }
    let mut world = cluster.cloned().unwrap_or_default();
    let (Some(v4), Some(v6)) = (
        free_address(false, activity, &world),
        free_address(true, activity, &world),
    ) else {
        notes.push("flows not judged: every documentation address is a peer, none is left to stand for the workload".into());
        return Ok(Vec::new());
    };
    let mine = [v4, v6];
    let spec = first.spec.as_ref();
    world.pods.push(Pod {
        name: "profgen-check-workload".into(),
        namespace: first
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        labels: labels_for(spec.and_then(|s| s.pod_selector.as_ref())),
        ips: mine.to_vec(),
        node: None,
        host_network: false,
        phase: Some("Running".into()),
        owners: Vec::new(),
        ports: Vec::new(),
    });
    let selector_peers = policies.iter().filter_map(|p| p.spec.as_ref()).any(|s| {
        let ingress = s
            .ingress
            .iter()
            .flatten()
            .flat_map(|r| r.from.iter().flatten());
        let egress = s
            .egress
            .iter()
            .flatten()
            .flat_map(|r| r.to.iter().flatten());
        ingress.chain(egress).any(|p| p.ip_block.is_none())
    });
    if selector_peers && cluster.is_none() {
        notes.push(format!(
            "{} names peers by selectors: give --cluster FILE (the snapshot synth used) so their addresses resolve to pods",
            Artifact::NetworkPolicy
        ));
    }
    let eval = Evaluator::new(policies, &world)?;
    let (conns, unmatched) = recorded_connections(activity, &mine);
    notes.extend(
        unmatched
            .into_iter()
            .map(|f| format!("flow not judged: {f}")),
    );
    let mut out = Vec::new();
    for conn in conns {
        let verdict = eval.check(&conn);
        let ingress = mine.contains(&conn.to);
        let (side, what) = if ingress {
            (
                verdict.ingress,
                format!(
                    "ingress {} from {} to port {}",
                    protocol_name(conn.protocol),
                    conn.from,
                    conn.port
                ),
            )
        } else {
            (
                verdict.egress,
                format!(
                    "egress {} to {} port {}",
                    protocol_name(conn.protocol),
                    conn.to,
                    conn.port
                ),
            )
        };
        if let Side::Denied { isolated_by } = side {
            out.push((
                what,
                format!(
                    "{}: no rule of {} admits it",
                    Artifact::NetworkPolicy,
                    isolated_by.join(", ")
                ),
            ));
        }
    }
    Ok(out)
}

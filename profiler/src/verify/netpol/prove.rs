//! Proving a NetworkPolicy without a cluster: the workload as a pod in a snapshot made from
//! the policy itself, every recorded flow replayed (each must be admitted), then probes that
//! must be denied: a stranger on each ingress port, a recorded client on a port nothing was
//! recorded on, and a connection out to a destination the workload never used.
//!
//! The pod is named and labelled from the first policy (`metadata`, `podSelector.matchLabels`,
//! namespace `default` when unset). Its address is given, found in the snapshot, or else a
//! placeholder from the documentation ranges ([`PLACEHOLDER_V4`], [`PLACEHOLDER_V6`]): the
//! recording has the peers' addresses, not the workload's own, and the evaluator only needs an
//! address that stands for the pod. Probes come from other reserved ranges, never from an
//! address the recording saw.
//!
//! A probe admitted by a rule open to every peer (no `from`/`to`, or an `ipBlock` of `/0`:
//! `profgen synth --ingress-from-anywhere`) is reported, not failed: that widening was asked
//! for.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer};

use super::{recorded_connections, Cidr, Connection, Evaluator, PolicyError, Verdict};
use crate::{
    cluster::{Cluster, Namespace, Pod, NAMESPACE_NAME_LABEL},
    model::{Activity, Direction, Protocol},
};

/// The pod's address when nothing gives it (RFC 5737 TEST-NET-1 / RFC 3849).
pub const PLACEHOLDER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
pub const PLACEHOLDER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
/// A client the recording never saw (RFC 5737 TEST-NET-3 / RFC 3849).
const STRANGER_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const STRANGER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 7);
/// A destination the workload never used (RFC 2544 benchmarking range / RFC 3849).
const ELSEWHERE_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 7);
const ELSEWHERE_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xeeee, 0, 0, 0, 0, 7);
/// Ports tried, in order, for "a port nothing was recorded on" and the connection out.
const OTHER_PORTS: [u16; 4] = [8443, 8444, 9, 65000];
const EGRESS_PORTS: [u16; 3] = [443, 8443, 65001];

#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error("the file holds no NetworkPolicy")]
    NoPolicy,
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// What to prove.
#[derive(Clone, Debug)]
pub struct NetpolCheck<'a> {
    pub policies: &'a [NetworkPolicy],
    /// The workload's activity (`synth::workload_activity` of the recording).
    pub activity: &'a Activity,
    /// The pod's addresses, when known; families without one get a placeholder.
    pub pod_ips: Vec<IpAddr>,
    /// Pods, services and namespaces the peers may be (policies made with `--cluster`).
    pub cluster: Option<&'a Cluster>,
}

/// A probe and what the evaluator said.
#[derive(Clone, Debug)]
pub struct Probe {
    pub what: String,
    pub connection: Connection,
    pub verdict: Verdict,
    /// Admitted by a rule open to every peer: widened on request, not a failure.
    pub widened: bool,
}

/// Every fact of the proof.
#[derive(Clone, Debug)]
pub struct NetpolProof {
    pub pod: Pod,
    /// The pod's addresses that are placeholders, not the workload's.
    pub placeholders: Vec<IpAddr>,
    pub recorded: Vec<(Connection, Verdict)>,
    /// Recorded flows of a family the pod has no address of (cannot happen with placeholders).
    pub unmatched: Vec<String>,
    pub probes: Vec<Probe>,
}

impl NetpolProof {
    /// The facts that do not hold.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .recorded
            .iter()
            .filter(|(_, v)| !v.allowed())
            .map(|(c, v)| format!("recorded flow {c} refused: {v}"))
            .collect();
        out.extend(
            self.unmatched
                .iter()
                .map(|f| format!("recorded flow of a family the pod has no address of: {f}")),
        );
        out.extend(
            self.probes
                .iter()
                .filter(|p| p.verdict.allowed() && !p.widened)
                .map(|p| {
                    format!(
                        "probe {} ({}) admitted: {}",
                        p.what, p.connection, p.verdict
                    )
                }),
        );
        out
    }

    /// The failures in a few words, for a summary line.
    pub fn short_reason(&self) -> Option<String> {
        let refused = self.recorded.iter().filter(|(_, v)| !v.allowed()).count();
        let admitted = self
            .probes
            .iter()
            .filter(|p| p.verdict.allowed() && !p.widened)
            .count();
        let mut parts = Vec::new();
        if refused > 0 {
            parts.push(format!("{refused} recorded flow(s) refused"));
        }
        if !self.unmatched.is_empty() {
            parts.push(format!("{} flow(s) unmatched", self.unmatched.len()));
        }
        if admitted > 0 {
            parts.push(format!("{admitted} probe(s) admitted"));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// One phrase for a passing proof.
    pub fn passed_phrase(&self) -> String {
        format!(
            "{} recorded flow(s) admitted, {} probe(s) denied",
            self.recorded.len(),
            self.probes.iter().filter(|p| !p.verdict.allowed()).count()
        )
    }
}

impl fmt::Display for NetpolProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self
            .pod
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let ips: Vec<String> = self
            .pod
            .ips
            .iter()
            .map(|ip| match self.placeholders.contains(ip) {
                true => format!("{ip} (a placeholder)"),
                false => ip.to_string(),
            })
            .collect();
        writeln!(
            f,
            "pod {}/{} ({}) at {}",
            self.pod.namespace,
            self.pod.name,
            labels.join(","),
            ips.join(", "),
        )?;
        if self.recorded.is_empty() {
            writeln!(
                f,
                "ok   no recorded flow to replay (the workload made no connection)"
            )?;
        }
        for (c, v) in &self.recorded {
            let mark = if v.allowed() { "ok  " } else { "FAIL" };
            writeln!(f, "{mark} recorded {c}: {v}")?;
        }
        for u in &self.unmatched {
            writeln!(
                f,
                "FAIL recorded flow of a family the pod has no address of: {u}"
            )?;
        }
        for p in &self.probes {
            let mark = match (p.verdict.allowed(), p.widened) {
                (false, _) => "ok  ",
                (true, true) => "note",
                (true, false) => "FAIL",
            };
            let widened = if p.widened {
                " (a rule open to every peer: widened on request)"
            } else {
                ""
            };
            writeln!(
                f,
                "{mark} probe {}, {}: {}{widened}",
                p.what, p.connection, p.verdict
            )?;
        }
        Ok(())
    }
}

/// Replays the recorded flows and the probes against the policies.
pub fn prove(check: &NetpolCheck<'_>) -> Result<NetpolProof, ProveError> {
    let first = check.policies.first().ok_or(ProveError::NoPolicy)?;
    let (mut cluster, pod, placeholders) = world(first, check);
    if !cluster.pods.iter().any(|p| p.ips == pod.ips) {
        cluster.pods.push(pod.clone());
    }
    let eval = Evaluator::new(check.policies, &cluster)?;
    let (recorded, unmatched) = recorded_connections(check.activity, &pod.ips);
    let recorded: Vec<(Connection, Verdict)> = recorded
        .into_iter()
        .map(|c| {
            let v = eval.check(&c);
            (c, v)
        })
        .collect();
    let probes = probes(&recorded, &pod.ips)
        .into_iter()
        .map(|(what, connection)| {
            let verdict = eval.check(&connection);
            let dir = if pod.ips.contains(&connection.to) {
                Direction::Ingress
            } else {
                Direction::Egress
            };
            let widened = verdict.allowed() && has_open_rule(check.policies, dir);
            Probe {
                what,
                connection,
                verdict,
                widened,
            }
        })
        .collect();
    Ok(NetpolProof {
        pod,
        placeholders,
        recorded,
        unmatched,
        probes,
    })
}

/// The snapshot to judge in, the workload's pod, and which of its addresses are placeholders.
fn world(policy: &NetworkPolicy, check: &NetpolCheck<'_>) -> (Cluster, Pod, Vec<IpAddr>) {
    let namespace = policy
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let labels: BTreeMap<String, String> = policy
        .spec
        .as_ref()
        .and_then(|s| s.pod_selector.as_ref())
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut cluster = check.cluster.cloned().unwrap_or_default();
    if !cluster.namespaces.iter().any(|n| n.name == namespace) {
        cluster.namespaces.push(Namespace {
            name: namespace.clone(),
            labels: BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), namespace.clone())]),
        });
    }
    // The workload's own pod in the snapshot, when it has one and no address was given.
    if check.pod_ips.is_empty() && !labels.is_empty() {
        if let Some(pod) = cluster.pods.iter().find(|p| {
            p.namespace == namespace
                && !p.ips.is_empty()
                && labels.iter().all(|(k, v)| p.labels.get(k) == Some(v))
        }) {
            return (cluster.clone(), pod.clone(), Vec::new());
        }
    }
    let peers: BTreeSet<IpAddr> = check.activity.flows.iter().map(|f| f.peer).collect();
    let mut placeholders = Vec::new();
    if !check.pod_ips.iter().any(IpAddr::is_ipv4) {
        placeholders.push(unused(IpAddr::V4(PLACEHOLDER_V4), &peers));
    }
    if !check.pod_ips.iter().any(IpAddr::is_ipv6) {
        placeholders.push(unused(IpAddr::V6(PLACEHOLDER_V6), &peers));
    }
    let ips = check.pod_ips.iter().chain(&placeholders).copied().collect();
    let pod = Pod {
        name: policy
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| "workload".into()),
        namespace,
        labels,
        ips,
        node: None,
        host_network: false,
        phase: Some("Running".into()),
        owners: Vec::new(),
        ports: Vec::new(),
    };
    (cluster, pod, placeholders)
}

/// `ip`, or the next address after it that is not in `taken`.
fn unused(ip: IpAddr, taken: &BTreeSet<IpAddr>) -> IpAddr {
    let mut ip = ip;
    while taken.contains(&ip) {
        ip = match ip {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4).wrapping_add(1))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6).wrapping_add(1))),
        };
    }
    ip
}

/// The probes for these recorded flows and pod addresses.
fn probes(recorded: &[(Connection, Verdict)], pod_ips: &[IpAddr]) -> Vec<(String, Connection)> {
    let own = |v4: bool| {
        *pod_ips
            .iter()
            .find(|ip| ip.is_ipv4() == v4)
            .expect("a pod address of each family")
    };
    let seen: BTreeSet<IpAddr> = recorded.iter().flat_map(|(c, _)| [c.from, c.to]).collect();
    let stranger = |v4: bool| match v4 {
        true => unused(IpAddr::V4(STRANGER_V4), &seen),
        false => unused(IpAddr::V6(STRANGER_V6), &seen),
    };
    let ingress: Vec<&Connection> = recorded
        .iter()
        .map(|(c, _)| c)
        .filter(|c| pod_ips.contains(&c.to))
        .collect();
    let egress: Vec<&Connection> = recorded
        .iter()
        .map(|(c, _)| c)
        .filter(|c| pod_ips.contains(&c.from))
        .collect();
    let mut out = Vec::new();

    let ports: BTreeSet<(bool, Protocol, u16)> = ingress
        .iter()
        .map(|c| (c.to.is_ipv4(), c.protocol, c.port))
        .collect();
    for (v4, protocol, port) in &ports {
        out.push((
            format!(
                "a stranger on port {port}/{}",
                super::protocol_name(*protocol)
            ),
            Connection {
                from: stranger(*v4),
                to: own(*v4),
                protocol: *protocol,
                port: *port,
            },
        ));
    }
    if ports.is_empty() {
        out.push((
            "a stranger on port 80/TCP (no ingress was recorded)".into(),
            Connection {
                from: stranger(true),
                to: own(true),
                protocol: Protocol::Tcp,
                port: 80,
            },
        ));
    }
    if let Some(client) = ingress.first() {
        let taken: BTreeSet<u16> = ports
            .iter()
            .filter(|(_, p, _)| *p == client.protocol)
            .map(|(_, _, port)| *port)
            .collect();
        let port = first_free(&OTHER_PORTS, &taken);
        out.push((
            format!("the recorded client {} on port {port}", client.from),
            Connection { port, ..**client },
        ));
    }
    let v4 = egress.first().is_none_or(|c| c.from.is_ipv4());
    let destinations: BTreeSet<IpAddr> = egress.iter().map(|c| c.to).collect();
    let elsewhere = match v4 {
        true => unused(IpAddr::V4(ELSEWHERE_V4), &destinations),
        false => unused(IpAddr::V6(ELSEWHERE_V6), &destinations),
    };
    let egress_ports: BTreeSet<u16> = egress.iter().map(|c| c.port).collect();
    out.push((
        "the workload connecting out to an unrecorded destination".into(),
        Connection {
            from: own(v4),
            to: elsewhere,
            protocol: Protocol::Tcp,
            port: first_free(&EGRESS_PORTS, &egress_ports),
        },
    ));
    out
}

fn first_free(candidates: &[u16], taken: &BTreeSet<u16>) -> u16 {
    candidates
        .iter()
        .copied()
        .find(|p| !taken.contains(p))
        .unwrap_or(candidates[0])
}

/// Whether some policy has a rule in `dir` that admits every peer: no peers listed, or an
/// `ipBlock` of a whole address family.
fn has_open_rule(policies: &[NetworkPolicy], dir: Direction) -> bool {
    let open = |peers: Option<&Vec<NetworkPolicyPeer>>| match peers {
        None => true,
        Some(peers) if peers.is_empty() => true,
        Some(peers) => peers.iter().any(|p| {
            p.ip_block.as_ref().is_some_and(|b| {
                b.except.as_ref().is_none_or(Vec::is_empty)
                    && Cidr::parse(&b.cidr).is_ok_and(|c| c.prefix_len() == 0)
            })
        }),
    };
    policies
        .iter()
        .filter_map(|p| p.spec.as_ref())
        .any(|spec| match dir {
            Direction::Ingress => spec.ingress.iter().flatten().any(|r| open(r.from.as_ref())),
            Direction::Egress => spec.egress.iter().flatten().any(|r| open(r.to.as_ref())),
        })
}

#[cfg(test)]
#[path = "prove_tests.rs"]
mod tests;

//! A NetworkPolicy evaluator: decides whether a connection is admitted by a set of
//! `networking.k8s.io/v1` NetworkPolicies in a cluster snapshot, following the API's
//! documented semantics. There is no CNI on the machines that prove our policies, so this is
//! what proves them: every recorded flow must be admitted, probes outside them refused.
//!
//! The semantics implemented:
//! * A pod is isolated for a direction iff some policy in its namespace selects it and has
//!   that direction in its effective `policyTypes` (when unset: `Ingress`, plus `Egress` if the
//!   policy has a non-empty `egress` list, as the API server defaults it).
//! * A connection needs both ends to agree: egress from the source (if it is an isolated pod)
//!   and ingress to the destination (if it is an isolated pod). Rules of all policies add up.
//! * Peers: `podSelector` alone (the policy's namespace), `namespaceSelector` alone (all pods
//!   of the selected namespaces), both in one peer (AND), `ipBlock` with `except`. A missing
//!   or empty `from`/`to` admits every peer; a missing or empty `ports` admits every port.
//! * Ports: protocol (default TCP), a number, a range with `endPort`, or a name resolved
//!   against the destination pod's container ports (of that protocol).
//!
//! Choices where the specification leaves it to the implementation are options
//! ([`EvalOptions`]). Traffic from a pod's own node is not modelled (the specification
//! always admits it; node addresses are not in the snapshot), nor host-network pods (their
//! address is their node's, so they count as outside the cluster).

mod cidr;
mod flows;
pub mod prove;
mod selector;

use std::{collections::BTreeMap, fmt, net::IpAddr};

use k8s_openapi::{
    api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort},
    apimachinery::pkg::util::intstr::IntOrString,
};

pub use cidr::Cidr;
pub use flows::recorded_connections;
pub use prove::{prove, NetpolCheck, NetpolProof};

use crate::{
    cluster::{parse_protocol, Cluster, Pod},
    model::Protocol,
};

/// A policy the API server would refuse, or that this evaluator cannot give a meaning to.
#[derive(Debug, thiserror::Error)]
#[error("invalid NetworkPolicy {place}: {message}")]
pub struct PolicyError {
    pub place: String,
    pub message: String,
}

impl PolicyError {
    fn new(place: &str, message: impl Into<String>) -> Self {
        Self {
            place: place.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("cannot parse NetworkPolicy YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
}

/// Reads NetworkPolicies from YAML (one or more documents; other kinds are an error).
pub fn parse_policies(yaml: &str) -> Result<Vec<NetworkPolicy>, ParseError> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let value = serde_norway::Value::deserialize(doc)?;
        if value.is_null() {
            continue;
        }
        out.push(serde_norway::from_value(value)?);
    }
    Ok(out)
}

/// Where the specification leaves the behaviour to the network plugin.
#[derive(Clone, Copy, Debug)]
pub struct EvalOptions {
    /// Whether an `ipBlock` matches the address of a pod. The specification says ipBlocks
    /// are meant for cluster-external addresses and leaves pod addresses undefined; Calico
    /// and kube-router match them, Cilium does not. Default: true.
    pub ip_blocks_match_pods: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            ip_blocks_match_pods: true,
        }
    }
}

/// One connection attempt: the initiator, the responder, and the responder's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    pub from: IpAddr,
    pub to: IpAddr,
    pub protocol: Protocol,
    pub port: u16,
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = protocol_name(self.protocol);
        match self.to {
            IpAddr::V6(to) => write!(f, "{} -> [{to}]:{} {proto}", self.from, self.port),
            IpAddr::V4(to) => write!(f, "{} -> {to}:{} {proto}", self.from, self.port),
        }
    }
}

/// What one end's policies say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Side {
    /// This end is not a pod of the snapshot: its policies are not ours to judge.
    NotAPod,
    /// A pod no policy isolates for this direction: everything is allowed.
    NotIsolated,
    /// Admitted by a rule of this policy (the first one found, by name).
    Allowed { policy: String },
    /// Isolated by these policies, none of which has a rule for the connection.
    Denied { isolated_by: Vec<String> },
}

impl Side {
    pub fn allows(&self) -> bool {
        !matches!(self, Side::Denied { .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The source's egress policies.
    pub egress: Side,
    /// The destination's ingress policies.
    pub ingress: Side,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.egress.allows() && self.ingress.allows()
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |s: &Side| match s {
            Side::NotAPod => "not a pod".to_owned(),
            Side::NotIsolated => "not isolated".to_owned(),
            Side::Allowed { policy } => format!("allowed by {policy}"),
            Side::Denied { isolated_by } => {
                format!("denied (isolated by {})", isolated_by.join(", "))
            }
        };
        write!(
            f,
            "{}: egress {}, ingress {}",
            if self.allowed() { "allowed" } else { "denied" },
            side(&self.egress),
            side(&self.ingress)
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Ingress,
    Egress,
}

/// Policies checked once, then evaluated against any number of connections.
pub struct Evaluator<'a> {
    policies: Vec<&'a NetworkPolicy>,
    cluster: &'a Cluster,
    options: EvalOptions,
}

impl<'a> Evaluator<'a> {
    pub fn new(policies: &'a [NetworkPolicy], cluster: &'a Cluster) -> Result<Self, PolicyError> {
        Self::with_options(policies, cluster, EvalOptions::default())
    }

    pub fn with_options(
        policies: &'a [NetworkPolicy],
        cluster: &'a Cluster,
        options: EvalOptions,
    ) -> Result<Self, PolicyError> {
        for policy in policies {
            validate(policy)?;
        }
        let mut policies: Vec<&NetworkPolicy> = policies.iter().collect();
        // Deterministic reports: the first admitting policy by namespace and name.
        policies.sort_by_key(|p| policy_name(p));
        Ok(Self {
            policies,
            cluster,
            options,
        })
    }

    pub fn check(&self, conn: &Connection) -> Verdict {
        let src = self.cluster.pod_by_ip(conn.from);
        let dst = self.cluster.pod_by_ip(conn.to);
        Verdict {
            egress: match src {
                None => Side::NotAPod,
                Some(pod) => self.side(Dir::Egress, pod, conn.to, dst, conn),
            },
            ingress: match dst {
                None => Side::NotAPod,
                Some(pod) => self.side(Dir::Ingress, pod, conn.from, src, conn),
            },
        }
    }

    pub fn allowed(&self, conn: &Connection) -> bool {
        self.check(conn).allowed()
    }

    /// The verdict of `subject`'s policies for `dir`; `peer` is the other end.
    fn side(
        &self,
        dir: Dir,
        subject: &Pod,
        peer_ip: IpAddr,
        peer: Option<&Pod>,
        conn: &Connection,
    ) -> Side {
        // The pod whose container ports name the port: the destination.
        let dst_pod = match dir {
            Dir::Ingress => Some(subject),
            Dir::Egress => peer,
        };
        let mut isolated_by = Vec::new();
        for policy in &self.policies {
            let ns = policy_namespace(policy);
            let spec = policy.spec.as_ref().expect("validated");
            let selects = ns == subject.namespace
                && spec
                    .pod_selector
                    .as_ref()
                    .is_none_or(|sel| selector::matches(sel, &subject.labels));
            if !selects || !has_type(policy, dir) {
                continue;
            }
            let admitted = match dir {
                Dir::Ingress => spec.ingress.iter().flatten().any(|rule| {
                    self.peers_match(rule.from.as_deref(), ns, peer_ip, peer)
                        && ports_match(rule.ports.as_deref(), conn, dst_pod)
                }),
                Dir::Egress => spec.egress.iter().flatten().any(|rule| {
                    self.peers_match(rule.to.as_deref(), ns, peer_ip, peer)
                        && ports_match(rule.ports.as_deref(), conn, dst_pod)
                }),
            };
            if admitted {
                return Side::Allowed {
                    policy: policy_name(policy),
                };
            }
            isolated_by.push(policy_name(policy));
        }
        if isolated_by.is_empty() {
            Side::NotIsolated
        } else {
            Side::Denied { isolated_by }
        }
    }

    fn peers_match(
        &self,
        peers: Option<&[NetworkPolicyPeer]>,
        policy_ns: &str,
        ip: IpAddr,
        pod: Option<&Pod>,
    ) -> bool {
        match peers {
            None | Some([]) => true,
            Some(peers) => peers
                .iter()
                .any(|p| self.peer_matches(p, policy_ns, ip, pod)),
        }
    }

    fn peer_matches(
        &self,
        peer: &NetworkPolicyPeer,
        policy_ns: &str,
        ip: IpAddr,
        pod: Option<&Pod>,
    ) -> bool {
        if let Some(block) = &peer.ip_block {
            if pod.is_some() && !self.options.ip_blocks_match_pods {
                return false;
            }
            let cidr = Cidr::parse(&block.cidr).expect("validated");
            return cidr.contains(ip)
                && !block
                    .except
                    .iter()
                    .flatten()
                    .any(|e| Cidr::parse(e).expect("validated").contains(ip));
        }
        // Selectors name pods only: an address outside the snapshot never matches them.
        let Some(pod) = pod else {
            return false;
        };
        let ns_ok = match &peer.namespace_selector {
            None => pod.namespace == policy_ns,
            Some(sel) => selector::matches(sel, &self.cluster.namespace_labels(&pod.namespace)),
        };
        let pod_ok = peer
            .pod_selector
            .as_ref()
            .is_none_or(|sel| selector::matches(sel, &pod.labels));
        ns_ok && pod_ok
    }
}

fn ports_match(ports: Option<&[NetworkPolicyPort]>, conn: &Connection, dst: Option<&Pod>) -> bool {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return true;
    };
    ports.iter().any(|p| {
        let protocol = parse_protocol(p.protocol.as_deref()).expect("validated");
        if protocol != conn.protocol {
            return false;
        }
        match &p.port {
            None => true,
            Some(IntOrString::Int(start)) => {
                let end = p.end_port.unwrap_or(*start);
                (*start..=end).contains(&i32::from(conn.port))
            }
            Some(IntOrString::String(name)) => dst.is_some_and(|pod| {
                pod.ports.iter().any(|cp| {
                    cp.name.as_deref() == Some(name)
                        && cp.protocol == protocol
                        && cp.port == conn.port
                })
            }),
        }
    })
}

fn has_type(policy: &NetworkPolicy, dir: Dir) -> bool {
    let spec = policy.spec.as_ref().expect("validated");
    match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => types.iter().any(|t| match dir {
            Dir::Ingress => t == "Ingress",
            Dir::Egress => t == "Egress",
        }),
        // The API server's default.
        _ => match dir {
            Dir::Ingress => true,
            Dir::Egress => spec.egress.as_ref().is_some_and(|e| !e.is_empty()),
        },
    }
}

fn policy_namespace(policy: &NetworkPolicy) -> &str {
    policy.metadata.namespace.as_deref().unwrap_or("default")
}

fn policy_name(policy: &NetworkPolicy) -> String {
    format!(
        "{}/{}",
        policy_namespace(policy),
        policy.metadata.name.as_deref().unwrap_or("")
    )
}

pub(crate) fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}

/// What the API server's validation refuses, checked so that nothing gets a guessed meaning.
pub fn validate(policy: &NetworkPolicy) -> Result<(), PolicyError> {
    let name = policy_name(policy);
    let spec = policy
        .spec
        .as_ref()
        .ok_or_else(|| PolicyError::new(&name, "no spec"))?;
    if let Some(sel) = &spec.pod_selector {
        selector::validate(sel, &format!("{name} podSelector"))?;
    }
    for t in spec.policy_types.iter().flatten() {
        if t != "Ingress" && t != "Egress" {
            return Err(PolicyError::new(&name, format!("unknown policyType {t:?}")));
        }
    }
    let ingress = spec.ingress.iter().flatten().enumerate().map(|(i, r)| {
        (
            format!("{name} ingress[{i}]"),
            r.from.as_deref(),
            r.ports.as_deref(),
        )
    });
    let egress = spec.egress.iter().flatten().enumerate().map(|(i, r)| {
        (
            format!("{name} egress[{i}]"),
            r.to.as_deref(),
            r.ports.as_deref(),
        )
    });
    for (place, peers, ports) in ingress.chain(egress) {
        for peer in peers.unwrap_or_default() {
            validate_peer(peer, &place)?;
        }
        for port in ports.unwrap_or_default() {
            validate_port(port, &place)?;
        }
    }
    Ok(())
}

fn validate_peer(peer: &NetworkPolicyPeer, place: &str) -> Result<(), PolicyError> {
    let selectors = peer.pod_selector.is_some() || peer.namespace_selector.is_some();
    match (&peer.ip_block, selectors) {
        (None, false) => Err(PolicyError::new(
            place,
            "a peer must set podSelector, namespaceSelector or ipBlock",
        )),
        (Some(_), true) => Err(PolicyError::new(
            place,
            "ipBlock cannot be combined with a selector in one peer",
        )),
        (Some(block), false) => {
            let cidr = Cidr::parse(&block.cidr).map_err(|m| PolicyError::new(place, m))?;
            for except in block.except.iter().flatten() {
                let e = Cidr::parse(except).map_err(|m| PolicyError::new(place, m))?;
                if !cidr.covers(&e) || e == cidr {
                    return Err(PolicyError::new(
                        place,
                        format!("except {except} is not strictly inside {}", block.cidr),
                    ));
                }
            }
            Ok(())
        }
        (None, true) => {
            for sel in [&peer.pod_selector, &peer.namespace_selector]
                .into_iter()
                .flatten()
            {
                selector::validate(sel, place)?;
            }
            Ok(())
        }
    }
}

fn validate_port(port: &NetworkPolicyPort, place: &str) -> Result<(), PolicyError> {
    parse_protocol(port.protocol.as_deref()).map_err(|m| PolicyError::new(place, m))?;
    match (&port.port, port.end_port) {
        (Some(IntOrString::Int(p)), end) => {
            if !(1..=65535).contains(p) {
                return Err(PolicyError::new(place, format!("port {p} out of range")));
            }
            if let Some(end) = end {
                if end < *p || end > 65535 {
                    return Err(PolicyError::new(
                        place,
                        format!("endPort {end} must be within {p}..=65535"),
                    ));
                }
            }
            Ok(())
        }
        (Some(IntOrString::String(name)), None) => {
            if name.is_empty() || name.len() > 15 || !name.chars().any(|c| c.is_ascii_lowercase()) {
                return Err(PolicyError::new(place, format!("bad port name {name:?}")));
            }
            Ok(())
        }
        (_, Some(_)) => Err(PolicyError::new(place, "endPort needs a numeric port")),
        (None, None) => Ok(()),
    }
}

/// Every connection denied, with the verdict: what a proof reports when it fails.
pub fn denied<'c>(
    eval: &Evaluator<'_>,
    conns: impl IntoIterator<Item = &'c Connection>,
) -> BTreeMap<String, Verdict> {
    conns
        .into_iter()
        .filter_map(|c| {
            let v = eval.check(c);
            (!v.allowed()).then(|| (c.to_string(), v))
        })
        .collect()
}

#[cfg(test)]
mod doc_examples;

//! NetworkPolicy synthesis: the least a workload needs on the network, from what it did.
//!
//! * `podSelector`: the workload's labels (given, or its pod's in a cluster snapshot), minus
//!   the labels a controller changes on every rollout.
//! * Ingress: one rule per set of ports reached by the same peers; ports are the pod's own
//!   (what the kernel saw), so never a Service port.
//! * Egress: the same for destinations; a peer that is a Service's cluster address becomes
//!   the Service's pods and its target port, since policies apply after the Service's
//!   address translation. Names resolved → an explicit DNS rule (UDP and TCP 53).
//! * Peers are `podSelector` + `namespaceSelector` when the snapshot knows the address,
//!   otherwise an `ipBlock` of exactly that address.
//! * `policyTypes: [Ingress, Egress]` always, with empty rule lists when nothing was seen,
//!   so that whatever was not recorded is denied.
//!
//! Widening is only ever explicit ([`NetpolOptions`] flags); whatever cannot be made exact
//! is either an error or a [`Synthesis::notes`] entry, never a silently wider rule.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use k8s_openapi::{
    api::networking::v1::{
        IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule,
        NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};

use crate::{
    cluster::{Cluster, TargetPort, NAMESPACE_NAME_LABEL},
    model::{Activity, Direction, Flow, Protocol},
    naming::{check_dns_label, check_label, check_subdomain},
};

/// Labels a controller sets per revision: selecting on them would stop matching after the
/// next rollout.
pub const VOLATILE_LABELS: &[&str] = &[
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
];

/// Where cluster DNS runs in kubeadm, kind, minikube, GKE and EKS clusters alike.
pub const CLUSTER_DNS_NAMESPACE: &str = "kube-system";
pub const CLUSTER_DNS_LABEL: (&str, &str) = ("k8s-app", "kube-dns");

#[derive(Debug, thiserror::Error)]
pub enum NetpolError {
    #[error("label {key:?}={value:?} is not a valid Kubernetes label: {reason}")]
    InvalidLabel {
        key: String,
        value: String,
        reason: String,
    },
    #[error("{what} {name:?} is not a valid Kubernetes name: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: String,
    },
    #[error(
        "no labels to select the workload by: give its labels (e.g. --label app=web) or its pod in a cluster snapshot; an empty podSelector would apply the policy to every pod of the namespace"
    )]
    NoLabels,
    #[error(
        "the cluster snapshot has no pod {namespace}/{name} and no labels were given: give the workload's labels, or a snapshot taken while the pod ran"
    )]
    WorkloadNotInSnapshot { namespace: String, name: String },
    #[error("a workload pod ({0}) was named but no cluster snapshot was given")]
    PodWithoutSnapshot(String),
    #[error("cannot serialize the NetworkPolicy: {0}")]
    Serialize(#[from] serde_norway::Error),
}

/// A pod by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Default)]
pub struct NetpolOptions<'a> {
    /// `metadata.name` of the policy.
    pub name: String,
    /// `metadata.namespace`; defaults to the workload pod's namespace, else left unset (the
    /// namespace `kubectl apply` is given).
    pub namespace: Option<String>,
    /// The workload's labels. Win over the snapshot's when both are there.
    pub labels: BTreeMap<String, String>,
    /// The workload's pod in `cluster`: its labels and namespace are used.
    pub pod: Option<PodRef>,
    /// Names peers by labels instead of addresses, and the cluster DNS.
    pub cluster: Option<&'a Cluster>,
    /// Widening: ingress on the reached ports from any source (a public service behind a
    /// load balancer or ingress controller whose addresses the recording did not see).
    pub ingress_from_anywhere: bool,
    /// Widening: DNS (UDP and TCP 53) to any destination, for clusters whose DNS is neither
    /// `k8s-app=kube-dns` in `kube-system` nor the resolver recorded.
    pub egress_dns_anywhere: bool,
}

/// The policy and what the reader should know about how it was made.
#[derive(Clone, Debug)]
pub struct Synthesis {
    pub policy: NetworkPolicy,
    /// Facts that were left out or guessed, one sentence each.
    pub notes: Vec<String>,
}

/// [`synthesize`], with its notes logged as warnings.
pub fn network_policy(
    activity: &Activity,
    opts: &NetpolOptions,
) -> Result<NetworkPolicy, NetpolError> {
    let s = synthesize(activity, opts)?;
    for note in &s.notes {
        log::warn!("networkpolicy: {note}");
    }
    Ok(s.policy)
}

/// The policy as YAML. Deterministic: every map is sorted and every list built in order.
pub fn to_yaml(policy: &NetworkPolicy) -> Result<String, NetpolError> {
    Ok(serde_norway::to_string(policy)?)
}

/// A peer of a rule, ordered so that rules come out the same way every time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    Pods {
        namespace: String,
        labels: BTreeMap<String, String>,
    },
    Address(IpAddr),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PortSpec {
    Number(u16),
    Name(String),
}

type Port = (Protocol, PortSpec);

pub fn synthesize(activity: &Activity, opts: &NetpolOptions) -> Result<Synthesis, NetpolError> {
    let mut notes = Vec::new();
    let (labels, pod_namespace) = workload_labels(opts, &mut notes)?;
    let namespace = opts.namespace.clone().or(pod_namespace);
    if let Some(ns) = &namespace {
        check_dns_label(ns).map_err(|reason| NetpolError::InvalidName {
            what: "namespace",
            name: ns.clone(),
            reason,
        })?;
    }
    check_subdomain(&opts.name).map_err(|reason| NetpolError::InvalidName {
        what: "policy name",
        name: opts.name.clone(),
        reason,
    })?;

    let mut ingress: BTreeMap<Port, BTreeSet<Peer>> = BTreeMap::new();
    let mut egress: BTreeMap<Peer, BTreeSet<Port>> = BTreeMap::new();
    let mut resolvers: BTreeSet<IpAddr> = BTreeSet::new();
    let mut loopback = 0usize;
    for flow in &activity.flows {
        let peer_ip = flow.peer.to_canonical();
        if is_dns(flow) {
            // Recorded even on loopback: the workload resolves names, wherever it runs.
            resolvers.insert(peer_ip);
            continue;
        }
        if peer_ip.is_loopback() {
            loopback += 1;
            continue;
        }
        let port = match flow.direction {
            Direction::Ingress => flow.local_port,
            Direction::Egress => flow.peer_port,
        };
        if port == 0 {
            // A policy cannot name port 0; allowing every port instead would be wider.
            notes.push(format!("flow without a port left out: {flow:?}"));
            continue;
        }
        match flow.direction {
            Direction::Ingress => {
                let port = (flow.protocol, PortSpec::Number(flow.local_port));
                let peer = peer_of(peer_ip, opts.cluster, &mut notes);
                ingress.entry(port).or_default().insert(peer);
            }
            Direction::Egress => {
                let (peer, port) = egress_target(flow, peer_ip, opts.cluster, &mut notes);
                egress.entry(peer).or_default().insert(port);
            }
        }
    }
    if loopback > 0 {
        notes.push(format!(
            "{loopback} loopback flow(s) left out: NetworkPolicy does not govern traffic inside a pod"
        ));
    }
    for listen in &activity.listens {
        let port = (listen.protocol, PortSpec::Number(listen.port));
        if !ingress.contains_key(&port) && !listen.addr.is_loopback() {
            notes.push(format!(
                "listened on {} {} but nothing reached it while recording: no rule for it",
                protocol_name(listen.protocol),
                listen.port
            ));
        }
    }

    let ingress_rules = if opts.ingress_from_anywhere {
        if ingress.is_empty() {
            Vec::new()
        } else {
            vec![NetworkPolicyIngressRule {
                from: None,
                ports: Some(ingress.keys().map(policy_port).collect()),
            }]
        }
    } else {
        group_by_peers(invert(ingress))
            .into_iter()
            .map(|(ports, peers)| NetworkPolicyIngressRule {
                from: Some(peers.iter().map(policy_peer).collect()),
                ports: Some(ports.iter().map(policy_port).collect()),
            })
            .collect()
    };

    let mut egress_rules = Vec::new();
    if !resolvers.is_empty() {
        egress_rules.push(dns_rule(&resolvers, opts, &mut notes));
    }
    egress_rules.extend(group_by_peers(egress).into_iter().map(|(ports, peers)| {
        NetworkPolicyEgressRule {
            to: Some(peers.iter().map(policy_peer).collect()),
            ports: Some(ports.iter().map(policy_port).collect()),
        }
    }));

    let policy = NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(opts.name.clone()),
            namespace,
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "profgen".to_owned(),
            )])),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels),
                match_expressions: None,
            }),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(ingress_rules),
            egress: Some(egress_rules),
        }),
    };
    Ok(Synthesis { policy, notes })
}

/// The labels to select the workload by, and its namespace when the snapshot gave it.
fn workload_labels(
    opts: &NetpolOptions,
    notes: &mut Vec<String>,
) -> Result<(BTreeMap<String, String>, Option<String>), NetpolError> {
    let mut labels = opts.labels.clone();
    let mut namespace = None;
    if let Some(pod_ref) = &opts.pod {
        let cluster = opts.cluster.ok_or_else(|| {
            NetpolError::PodWithoutSnapshot(format!("{}/{}", pod_ref.namespace, pod_ref.name))
        })?;
        match cluster.pod(&pod_ref.namespace, &pod_ref.name) {
            Some(pod) => {
                namespace = Some(pod.namespace.clone());
                if labels.is_empty() {
                    labels = pod.labels.clone();
                }
            }
            None if labels.is_empty() => {
                return Err(NetpolError::WorkloadNotInSnapshot {
                    namespace: pod_ref.namespace.clone(),
                    name: pod_ref.name.clone(),
                })
            }
            None => notes.push(format!(
                "the cluster snapshot has no pod {}/{}: selecting the workload by the labels given",
                pod_ref.namespace, pod_ref.name
            )),
        }
    }
    let dropped: Vec<String> = VOLATILE_LABELS
        .iter()
        .filter(|k| labels.remove(**k).is_some())
        .map(|k| k.to_string())
        .collect();
    if !dropped.is_empty() {
        notes.push(format!(
            "left out of the podSelector, as they change with every rollout: {}",
            dropped.join(", ")
        ));
    }
    for (key, value) in &labels {
        check_label(key, value).map_err(|reason| NetpolError::InvalidLabel {
            key: key.clone(),
            value: value.clone(),
            reason,
        })?;
    }
    if labels.is_empty() {
        return Err(NetpolError::NoLabels);
    }
    Ok((labels, namespace))
}

fn is_dns(flow: &Flow) -> bool {
    flow.direction == Direction::Egress
        && (flow.dns || (flow.peer_port == 53 && flow.protocol != Protocol::Sctp))
}

/// A pod of the snapshot by its labels, else the address itself.
fn peer_of(ip: IpAddr, cluster: Option<&Cluster>, notes: &mut Vec<String>) -> Peer {
    let Some(pod) = cluster.and_then(|c| c.pod_by_ip(ip)) else {
        return Peer::Address(ip);
    };
    let labels = stable(&pod.labels);
    let valid = labels.iter().all(|(k, v)| check_label(k, v).is_ok());
    if labels.is_empty() || !valid {
        // An empty selector would admit the whole namespace.
        notes.push(format!(
            "peer {ip} is pod {}/{}, which has no usable labels: named by its address",
            pod.namespace, pod.name
        ));
        return Peer::Address(ip);
    }
    Peer::Pods {
        namespace: pod.namespace.clone(),
        labels,
    }
}

/// Where an egress flow goes once a Service's address translation is undone.
fn egress_target(
    flow: &Flow,
    ip: IpAddr,
    cluster: Option<&Cluster>,
    notes: &mut Vec<String>,
) -> (Peer, Port) {
    let port = (flow.protocol, PortSpec::Number(flow.peer_port));
    let Some(cluster) = cluster else {
        return (Peer::Address(ip), port);
    };
    let Some(svc) = cluster.service_by_ip(ip) else {
        return (peer_of(ip, Some(cluster), notes), port);
    };
    let svc_port = svc
        .ports
        .iter()
        .find(|p| p.protocol == flow.protocol && p.port == flow.peer_port);
    match (&svc.selector, svc_port) {
        (Some(selector), Some(svc_port)) => {
            let target = match &svc_port.target_port {
                TargetPort::Number(n) => PortSpec::Number(*n),
                // A named target port means the same in a policy: the destination pod's
                // container port of that name.
                TargetPort::Name(name) => PortSpec::Name(name.clone()),
            };
            let peer = Peer::Pods {
                namespace: svc.namespace.clone(),
                labels: stable(selector),
            };
            (peer, (flow.protocol, target))
        }
        _ => {
            notes.push(format!(
                "{ip} is Service {}/{} but its pods or port {} cannot be named: kept as an address, which the policy may not match after address translation",
                svc.namespace, svc.name, flow.peer_port
            ));
            (Peer::Address(ip), port)
        }
    }
}

fn dns_rule(
    resolvers: &BTreeSet<IpAddr>,
    opts: &NetpolOptions,
    notes: &mut Vec<String>,
) -> NetworkPolicyEgressRule {
    let ports = Some(vec![
        policy_port(&(Protocol::Udp, PortSpec::Number(53))),
        policy_port(&(Protocol::Tcp, PortSpec::Number(53))),
    ]);
    if opts.egress_dns_anywhere {
        return NetworkPolicyEgressRule { to: None, ports };
    }
    let cluster_dns = Peer::Pods {
        namespace: CLUSTER_DNS_NAMESPACE.into(),
        labels: BTreeMap::from([(CLUSTER_DNS_LABEL.0.into(), CLUSTER_DNS_LABEL.1.into())]),
    };
    let is_cluster_dns = |ip: IpAddr| -> bool {
        let Some(c) = opts.cluster else { return false };
        let dns_pod = |p: &crate::cluster::Pod| {
            p.namespace == CLUSTER_DNS_NAMESPACE
                && p.labels.get(CLUSTER_DNS_LABEL.0).map(String::as_str)
                    == Some(CLUSTER_DNS_LABEL.1)
        };
        c.pod_by_ip(ip).is_some_and(dns_pod)
            || c.service_by_ip(ip)
                .is_some_and(|s| c.service_pods(s).any(dns_pod))
    };
    let cluster_has_dns = opts.cluster.is_some_and(|c| {
        c.pods.iter().any(|p| {
            p.namespace == CLUSTER_DNS_NAMESPACE
                && p.labels.get(CLUSTER_DNS_LABEL.0).map(String::as_str)
                    == Some(CLUSTER_DNS_LABEL.1)
        })
    });
    let mut peers = BTreeSet::new();
    if cluster_has_dns {
        peers.insert(cluster_dns.clone());
    }
    for ip in resolvers {
        if ip.is_loopback() || is_cluster_dns(*ip) {
            continue;
        }
        if cluster_has_dns {
            notes.push(format!(
                "resolver {ip} is not the cluster DNS: allowed by address as well"
            ));
        }
        peers.insert(Peer::Address(*ip));
    }
    if peers.is_empty() {
        // Only a loopback resolver (a host stub such as systemd-resolved) was seen; in a pod,
        // names are resolved by the cluster DNS.
        notes.push(format!(
            "names were resolved through a loopback resolver only: DNS allowed to the cluster DNS by convention ({}={} in {}); use egress_dns_anywhere if the cluster differs",
            CLUSTER_DNS_LABEL.0, CLUSTER_DNS_LABEL.1, CLUSTER_DNS_NAMESPACE
        ));
        peers.insert(cluster_dns);
    }
    NetworkPolicyEgressRule {
        to: Some(peers.iter().map(policy_peer).collect()),
        ports,
    }
}

fn stable(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| !VOLATILE_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn invert(by_port: BTreeMap<Port, BTreeSet<Peer>>) -> BTreeMap<Peer, BTreeSet<Port>> {
    let mut by_peer: BTreeMap<Peer, BTreeSet<Port>> = BTreeMap::new();
    for (port, peers) in by_port {
        for peer in peers {
            by_peer.entry(peer).or_default().insert(port.clone());
        }
    }
    by_peer
}

/// One rule per distinct set of ports, listing every peer that used exactly that set: as few
/// rules as possible without admitting a peer on a port it did not use.
fn group_by_peers(by_peer: BTreeMap<Peer, BTreeSet<Port>>) -> BTreeMap<BTreeSet<Port>, Vec<Peer>> {
    let mut rules: BTreeMap<BTreeSet<Port>, Vec<Peer>> = BTreeMap::new();
    for (peer, ports) in by_peer {
        rules.entry(ports).or_default().push(peer);
    }
    rules
}

fn policy_peer(peer: &Peer) -> NetworkPolicyPeer {
    match peer {
        Peer::Pods { namespace, labels } => NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    NAMESPACE_NAME_LABEL.to_owned(),
                    namespace.clone(),
                )])),
                match_expressions: None,
            }),
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels.clone()),
                match_expressions: None,
            }),
            ip_block: None,
        },
        Peer::Address(ip) => NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: match ip {
                    IpAddr::V4(v4) => format!("{v4}/32"),
                    IpAddr::V6(v6) => format!("{v6}/128"),
                },
                except: None,
            }),
            ..Default::default()
        },
    }
}

fn policy_port((protocol, port): &Port) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol_name(*protocol).into()),
        port: Some(match port {
            PortSpec::Number(n) => IntOrString::Int(i32::from(*n)),
            PortSpec::Name(s) => IntOrString::String(s.clone()),
        }),
        end_port: None,
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cluster::{ContainerPort, Pod, Service, ServicePort},
        model::{Listen, Protocol::*},
        verify::netpol::{recorded_connections, Connection, Evaluator},
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn inbound(protocol: Protocol, peer: &str, local_port: u16) -> Flow {
        Flow {
            direction: Direction::Ingress,
            protocol,
            peer: ip(peer),
            peer_port: 0,
            local_port,
            dns: false,
        }
    }

    fn outbound(protocol: Protocol, peer: &str, peer_port: u16) -> Flow {
        Flow {
            direction: Direction::Egress,
            protocol,
            peer: ip(peer),
            peer_port,
            local_port: 0,
            dns: peer_port == 53,
        }
    }

    fn activity(flows: Vec<Flow>, listens: &[(Protocol, &str, u16)]) -> Activity {
        Activity {
            flows: flows.into_iter().collect(),
            listens: listens
                .iter()
                .map(|(protocol, addr, port)| Listen {
                    protocol: *protocol,
                    addr: ip(addr),
                    port: *port,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn opts<'a>() -> NetpolOptions<'a> {
        NetpolOptions {
            name: "web".into(),
            namespace: Some("default".into()),
            labels: labels(&[("app", "web"), ("pod-template-hash", "5d4f8c9b7")]),
            ..Default::default()
        }
    }

    fn yaml(a: &Activity, o: &NetpolOptions) -> String {
        to_yaml(&network_policy(a, o).unwrap()).unwrap()
    }

    /// The demo: a static site that only ever answers on its one port.
    #[test]
    fn static_site_gets_one_ingress_port_and_no_egress() {
        let a = activity(
            vec![
                inbound(Tcp, "10.0.0.2", 8080),
                inbound(Tcp, "10.0.0.3", 8080),
                inbound(Tcp, "127.0.0.1", 8080),
            ],
            &[(Tcp, "0.0.0.0", 8080)],
        );
        let expected = "\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  labels:
    app.kubernetes.io/managed-by: profgen
  name: web
  namespace: default
spec:
  egress: []
  ingress:
  - from:
    - ipBlock:
        cidr: 10.0.0.2/32
    - ipBlock:
        cidr: 10.0.0.3/32
    ports:
    - port: 8080
      protocol: TCP
  podSelector:
    matchLabels:
      app: web
  policyTypes:
  - Ingress
  - Egress
";
        assert_eq!(yaml(&a, &opts()), expected);
        // Same input, same bytes.
        assert_eq!(yaml(&a, &opts()), yaml(&a.clone(), &opts()));
    }

    #[test]
    fn table() {
        struct Case {
            what: &'static str,
            flows: Vec<Flow>,
            ingress: &'static str,
            egress: &'static str,
        }
        let cases = [
            Case {
                what: "nothing seen: everything denied",
                flows: vec![],
                ingress: "[]",
                egress: "[]",
            },
            Case {
                what: "a protocol per port, peers grouped by the ports they used",
                flows: vec![
                    inbound(Tcp, "10.0.0.2", 80),
                    inbound(Tcp, "10.0.0.2", 443),
                    inbound(Udp, "10.0.0.3", 5353),
                    inbound(Sctp, "10.0.0.4", 9899),
                ],
                ingress: r#"[{"from":[{"ipBlock":{"cidr":"10.0.0.2/32"}}],"ports":[{"port":80,"protocol":"TCP"},{"port":443,"protocol":"TCP"}]},{"from":[{"ipBlock":{"cidr":"10.0.0.3/32"}}],"ports":[{"port":5353,"protocol":"UDP"}]},{"from":[{"ipBlock":{"cidr":"10.0.0.4/32"}}],"ports":[{"port":9899,"protocol":"SCTP"}]}]"#,
                egress: "[]",
            },
            Case {
                what: "IPv6 peers are /128, v4-mapped ones /32",
                flows: vec![
                    inbound(Tcp, "fd00::2", 80),
                    outbound(Tcp, "::ffff:10.1.2.3", 5432),
                ],
                ingress: r#"[{"from":[{"ipBlock":{"cidr":"fd00::2/128"}}],"ports":[{"port":80,"protocol":"TCP"}]}]"#,
                egress: r#"[{"ports":[{"port":5432,"protocol":"TCP"}],"to":[{"ipBlock":{"cidr":"10.1.2.3/32"}}]}]"#,
            },
            Case {
                what: "DNS comes first, UDP and TCP, to the resolver",
                flows: vec![
                    outbound(Udp, "10.0.0.53", 53),
                    outbound(Tcp, "10.2.0.9", 443),
                ],
                ingress: "[]",
                egress: r#"[{"ports":[{"port":53,"protocol":"UDP"},{"port":53,"protocol":"TCP"}],"to":[{"ipBlock":{"cidr":"10.0.0.53/32"}}]},{"ports":[{"port":443,"protocol":"TCP"}],"to":[{"ipBlock":{"cidr":"10.2.0.9/32"}}]}]"#,
            },
        ];
        for c in cases {
            let a = activity(c.flows, &[]);
            let spec = network_policy(&a, &opts()).unwrap().spec.unwrap();
            let ingress = serde_json::to_string(&spec.ingress.unwrap()).unwrap();
            let egress = serde_json::to_string(&spec.egress.unwrap()).unwrap();
            assert_eq!(ingress, c.ingress, "{}: ingress", c.what);
            assert_eq!(egress, c.egress, "{}: egress", c.what);
            assert_eq!(
                spec.policy_types.unwrap(),
                ["Ingress", "Egress"],
                "{}",
                c.what
            );
        }
    }

    #[test]
    fn unreached_listens_and_loopback_are_noted_not_allowed() {
        let a = activity(
            vec![inbound(Tcp, "127.0.0.1", 9000)],
            &[(Tcp, "0.0.0.0", 9000), (Udp, "0.0.0.0", 5000)],
        );
        let s = synthesize(&a, &opts()).unwrap();
        assert_eq!(s.policy.spec.unwrap().ingress.unwrap(), []);
        let notes = s.notes.join("\n");
        assert!(notes.contains("loopback"), "{notes}");
        assert!(notes.contains("UDP 5000"), "{notes}");
        assert!(notes.contains("pod-template-hash"), "{notes}");
    }

    #[test]
    fn a_flow_without_a_port_is_left_out() {
        let a = activity(
            vec![inbound(Tcp, "10.0.0.2", 0), outbound(Udp, "10.0.0.9", 0)],
            &[],
        );
        let s = synthesize(&a, &opts()).unwrap();
        let spec = s.policy.spec.unwrap();
        assert_eq!(spec.ingress.unwrap(), []);
        assert_eq!(spec.egress.unwrap(), []);
        assert_eq!(
            s.notes
                .iter()
                .filter(|n| n.contains("without a port"))
                .count(),
            2
        );
    }

    #[test]
    fn widening_flags() {
        let a = activity(
            vec![
                inbound(Tcp, "10.0.0.2", 8080),
                outbound(Udp, "10.0.0.53", 53),
            ],
            &[],
        );
        let o = NetpolOptions {
            ingress_from_anywhere: true,
            egress_dns_anywhere: true,
            ..opts()
        };
        let spec = network_policy(&a, &o).unwrap().spec.unwrap();
        assert_eq!(
            serde_json::to_string(&spec.ingress.unwrap()).unwrap(),
            r#"[{"ports":[{"port":8080,"protocol":"TCP"}]}]"#
        );
        assert_eq!(
            serde_json::to_string(&spec.egress.unwrap()).unwrap(),
            r#"[{"ports":[{"port":53,"protocol":"UDP"},{"port":53,"protocol":"TCP"}]}]"#
        );
    }

    #[test]
    fn bad_input_is_an_error_never_a_wider_policy() {
        let a = activity(vec![], &[]);
        // The label rules themselves are `naming`'s; a label they refuse is an error here.
        for (k, v) in [("app", "web app"), ("Example.com/app", "web")] {
            let o = NetpolOptions {
                labels: labels(&[(k, v)]),
                ..opts()
            };
            let err = synthesize(&a, &o).unwrap_err();
            assert!(
                matches!(err, NetpolError::InvalidLabel { .. }),
                "{k}={v}: {err}"
            );
        }
        let o = NetpolOptions {
            labels: labels(&[("app.kubernetes.io/name", "web"), ("tier", "")]),
            ..opts()
        };
        assert!(synthesize(&a, &o).is_ok());
        // Only volatile labels: nothing left to select by.
        let o = NetpolOptions {
            labels: labels(&[("pod-template-hash", "abc")]),
            ..opts()
        };
        assert!(matches!(synthesize(&a, &o), Err(NetpolError::NoLabels)));
        let o = NetpolOptions {
            name: "Web_Policy".into(),
            ..opts()
        };
        assert!(matches!(
            synthesize(&a, &o),
            Err(NetpolError::InvalidName { .. })
        ));
    }

    fn pod(ns: &str, name: &str, addr: &str, l: &[(&str, &str)]) -> Pod {
        Pod {
            name: name.into(),
            namespace: ns.into(),
            labels: labels(l),
            ips: vec![ip(addr)],
            node: None,
            host_network: false,
            phase: Some("Running".into()),
            owners: Vec::new(),
            ports: Vec::new(),
        }
    }

    fn cluster() -> Cluster {
        let mut api = pod(
            "shop",
            "api-6d9f-x2",
            "10.244.1.7",
            &[("app", "api"), ("pod-template-hash", "6d9f")],
        );
        api.ports = vec![ContainerPort {
            name: Some("http".into()),
            port: 8080,
            protocol: Tcp,
        }];
        Cluster {
            pods: vec![
                pod(
                    "shop",
                    "web-1",
                    "10.244.1.5",
                    &[("app", "web"), ("pod-template-hash", "77")],
                ),
                pod(
                    "shop",
                    "front-1",
                    "10.244.1.6",
                    &[("app", "front"), ("pod-template-hash", "12")],
                ),
                api,
                pod(
                    "kube-system",
                    "coredns-1",
                    "10.244.0.3",
                    &[("k8s-app", "kube-dns")],
                ),
                pod("shop", "bare", "10.244.1.9", &[]),
            ],
            services: vec![
                Service {
                    name: "api".into(),
                    namespace: "shop".into(),
                    selector: Some(labels(&[("app", "api")])),
                    cluster_ips: vec![ip("10.96.0.50")],
                    ports: vec![ServicePort {
                        name: None,
                        protocol: Tcp,
                        port: 80,
                        target_port: TargetPort::Name("http".into()),
                    }],
                },
                Service {
                    name: "kube-dns".into(),
                    namespace: "kube-system".into(),
                    selector: Some(labels(&[("k8s-app", "kube-dns")])),
                    cluster_ips: vec![ip("10.96.0.10")],
                    ports: vec![ServicePort {
                        name: Some("dns".into()),
                        protocol: Udp,
                        port: 53,
                        target_port: TargetPort::Number(53),
                    }],
                },
            ],
            namespaces: Vec::new(),
        }
    }

    #[test]
    fn snapshot_names_peers_services_and_cluster_dns() {
        let c = cluster();
        let a = activity(
            vec![
                inbound(Tcp, "10.244.1.6", 8080),
                inbound(Tcp, "10.244.1.9", 8080),
                outbound(Tcp, "10.96.0.50", 80),
                outbound(Udp, "10.96.0.10", 53),
            ],
            &[],
        );
        let o = NetpolOptions {
            name: "web".into(),
            pod: Some(PodRef {
                namespace: "shop".into(),
                name: "web-1".into(),
            }),
            cluster: Some(&c),
            ..Default::default()
        };
        let s = synthesize(&a, &o).unwrap();
        let p = &s.policy;
        assert_eq!(p.metadata.namespace.as_deref(), Some("shop"));
        let spec = p.spec.clone().unwrap();
        assert_eq!(
            spec.pod_selector.unwrap().match_labels.unwrap(),
            labels(&[("app", "web")])
        );
        assert_eq!(
            serde_json::to_string(&spec.ingress.unwrap()).unwrap(),
            r#"[{"from":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"shop"}},"podSelector":{"matchLabels":{"app":"front"}}},{"ipBlock":{"cidr":"10.244.1.9/32"}}],"ports":[{"port":8080,"protocol":"TCP"}]}]"#
        );
        assert_eq!(
            serde_json::to_string(&spec.egress.unwrap()).unwrap(),
            r#"[{"ports":[{"port":53,"protocol":"UDP"},{"port":53,"protocol":"TCP"}],"to":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}},"podSelector":{"matchLabels":{"k8s-app":"kube-dns"}}}]},{"ports":[{"port":"http","protocol":"TCP"}],"to":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"shop"}},"podSelector":{"matchLabels":{"app":"api"}}}]}]"#
        );
        assert!(
            s.notes.iter().any(|n| n.contains("shop/bare")),
            "{:?}",
            s.notes
        );

        // The proof in miniature: the frontend reaches web, a stranger does not, and web's
        // traffic to the api pod (after the Service's translation) and to DNS is admitted.
        let policies = [s.policy.clone()];
        let eval = Evaluator::new(&policies, &c).unwrap();
        let web = ip("10.244.1.5");
        let conn = |from: &str, to: &str, protocol, port| Connection {
            from: ip(from),
            to: ip(to),
            protocol,
            port,
        };
        assert!(eval.allowed(&conn("10.244.1.6", "10.244.1.5", Tcp, 8080)));
        assert!(!eval.allowed(&conn("10.244.1.7", "10.244.1.5", Tcp, 8080)));
        assert!(!eval.allowed(&conn("10.244.1.6", "10.244.1.5", Tcp, 22)));
        assert!(eval.allowed(&conn("10.244.1.5", "10.244.1.7", Tcp, 8080)));
        assert!(eval.allowed(&conn("10.244.1.5", "10.244.0.3", Udp, 53)));
        assert!(eval.allowed(&conn("10.244.1.5", "10.244.0.3", Tcp, 53)));
        assert!(!eval.allowed(&conn("10.244.1.5", "10.244.0.3", Tcp, 9153)));
        assert!(!eval.allowed(&conn("10.244.1.5", "192.0.2.1", Tcp, 443)));
        let _ = web;
    }

    #[test]
    fn a_snapshot_without_the_workload() {
        let c = cluster();
        let a = activity(vec![], &[]);
        let missing = Some(PodRef {
            namespace: "shop".into(),
            name: "gone".into(),
        });
        let o = NetpolOptions {
            name: "web".into(),
            pod: missing.clone(),
            cluster: Some(&c),
            ..Default::default()
        };
        let err = synthesize(&a, &o).unwrap_err();
        assert!(
            matches!(err, NetpolError::WorkloadNotInSnapshot { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("shop/gone"));
        // With labels given it falls back to them, and says so.
        let o = NetpolOptions {
            labels: labels(&[("app", "web")]),
            ..o
        };
        let s = synthesize(&a, &o).unwrap();
        assert!(
            s.notes.iter().any(|n| n.contains("no pod shop/gone")),
            "{:?}",
            s.notes
        );
        let o = NetpolOptions {
            name: "web".into(),
            pod: missing,
            ..Default::default()
        };
        assert!(matches!(
            synthesize(&a, &o),
            Err(NetpolError::PodWithoutSnapshot(_))
        ));
    }

    #[test]
    fn loopback_resolver_means_cluster_dns_by_convention() {
        let a = activity(vec![outbound(Udp, "127.0.0.53", 53)], &[]);
        let s = synthesize(&a, &opts()).unwrap();
        assert_eq!(
            serde_json::to_string(&s.policy.spec.unwrap().egress.unwrap()).unwrap(),
            r#"[{"ports":[{"port":53,"protocol":"UDP"},{"port":53,"protocol":"TCP"}],"to":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}},"podSelector":{"matchLabels":{"k8s-app":"kube-dns"}}}]}]"#
        );
        assert!(s.notes.iter().any(|n| n.contains("loopback resolver")));
    }

    #[test]
    fn every_recorded_flow_is_admitted() {
        let a = activity(
            vec![
                inbound(Tcp, "10.0.0.2", 8080),
                inbound(Udp, "fd00::2", 5353),
                outbound(Udp, "10.0.0.53", 53),
                outbound(Tcp, "10.0.0.9", 5432),
                outbound(Tcp, "fd00::9", 443),
            ],
            &[],
        );
        let policy = network_policy(&a, &opts()).unwrap();
        let me = [ip("10.0.0.1"), ip("fd00::1")];
        let c = Cluster {
            pods: vec![Pod {
                ips: me.to_vec(),
                ..pod("default", "web", "10.0.0.1", &[("app", "web")])
            }],
            ..Default::default()
        };
        let policies = [policy];
        let eval = Evaluator::new(&policies, &c).unwrap();
        let (conns, unmatched) = recorded_connections(&a, &me);
        assert!(unmatched.is_empty());
        assert_eq!(conns.len(), 5);
        for conn in &conns {
            assert!(eval.allowed(conn), "{conn}: {}", eval.check(conn));
        }
        let denied = [
            Connection {
                from: ip("10.0.0.3"),
                to: me[0],
                protocol: Tcp,
                port: 8080,
            },
            Connection {
                from: ip("10.0.0.2"),
                to: me[0],
                protocol: Tcp,
                port: 8081,
            },
            Connection {
                from: ip("10.0.0.2"),
                to: me[0],
                protocol: Udp,
                port: 8080,
            },
            Connection {
                from: me[0],
                to: ip("10.0.0.9"),
                protocol: Tcp,
                port: 5433,
            },
            Connection {
                from: me[0],
                to: ip("10.0.0.54"),
                protocol: Udp,
                port: 53,
            },
            Connection {
                from: me[1],
                to: ip("fd00::2"),
                protocol: Tcp,
                port: 443,
            },
        ];
        for conn in &denied {
            assert!(!eval.allowed(conn), "{conn} should be denied");
        }
    }
}

//! NetworkPolicy: per direction, the (peer, port) pairs the rules admit. A pair of NEW is
//! added unless OLD's pairs whose peer covers it also cover its port (ranges add up). Peers
//! cover conservatively: "anywhere" covers all, an ipBlock a narrower ipBlock (minding
//! `except`), a selector one with a superset of its requirements. A direction OLD isolated
//! and NEW does not (`policyTypes` losing Egress) is added as a whole.

use std::collections::BTreeSet;

use k8s_openapi::{
    api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort},
    apimachinery::pkg::{apis::meta::v1::LabelSelector, util::intstr::IntOrString},
};

use super::{Change, Diff, Item};
use crate::{
    cluster::parse_protocol, model::Protocol, profile_set::Artifact, verify::netpol::Cidr,
};

const A: Artifact = Artifact::NetworkPolicy;
const PROTOCOLS: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Ingress,
    Egress,
}

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::Ingress => "ingress",
            Dir::Egress => "egress",
        }
    }
}

/// A selector's requirements: `key=value` for matchLabels, `key op [values]` for
/// expressions. A selector with a superset of another's requirements selects a subset.
type Requirements = BTreeSet<String>;

fn requirements(sel: &LabelSelector) -> Requirements {
    let labels = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"));
    let exprs = sel.match_expressions.iter().flatten().map(|e| {
        let mut values = e.values.clone().unwrap_or_default();
        values.sort();
        match e.operator.as_str() {
            "In" if values.len() == 1 => format!("{}={}", e.key, values[0]),
            op => format!("{} {op} ({})", e.key, values.join(",")),
        }
    });
    labels.chain(exprs).collect()
}

fn show_selector(sel: &Option<LabelSelector>) -> String {
    match sel {
        None => "-".into(),
        Some(s) => {
            let r = requirements(s);
            if r.is_empty() {
                "{}".into()
            } else {
                format!("{{{}}}", r.into_iter().collect::<Vec<_>>().join(", "))
            }
        }
    }
}

/// Each policy's namespace and podSelector: what identifies the workload.
pub(super) fn selected(policies: &[NetworkPolicy]) -> Vec<String> {
    let mut out: Vec<String> = policies
        .iter()
        .map(|p| {
            let ns = p.metadata.namespace.as_deref().unwrap_or("default");
            let sel = p
                .spec
                .as_ref()
                .map(|s| s.pod_selector.clone())
                .unwrap_or_default();
            format!("{ns}/{}", show_selector(&sel))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Peer {
    Anywhere,
    Block {
        cidr: Cidr,
        text: String,
        except: Vec<Cidr>,
    },
    /// `namespaces`: `None` is the policy's own namespace.
    Pods {
        namespaces: Option<Requirements>,
        pods: Requirements,
    },
}

impl Peer {
    fn of(p: &NetworkPolicyPeer) -> Option<Peer> {
        if let Some(b) = &p.ip_block {
            let except: Option<Vec<Cidr>> = b
                .except
                .iter()
                .flatten()
                .map(|e| Cidr::parse(e).ok())
                .collect();
            return Some(Peer::Block {
                cidr: Cidr::parse(&b.cidr).ok()?,
                text: match b.except.as_deref() {
                    Some(e) if !e.is_empty() => format!("{} except {}", b.cidr, e.join(", ")),
                    _ => b.cidr.clone(),
                },
                except: except?,
            });
        }
        Some(Peer::Pods {
            namespaces: p.namespace_selector.as_ref().map(requirements),
            pods: p
                .pod_selector
                .as_ref()
                .map(requirements)
                .unwrap_or_default(),
        })
    }

    fn covers(&self, o: &Peer) -> bool {
        match (self, o) {
            (Peer::Anywhere, _) => true,
            (_, Peer::Anywhere) => false,
            (
                Peer::Block { cidr, except, .. },
                Peer::Block {
                    cidr: c2,
                    except: e2,
                    ..
                },
            ) => {
                // Every hole of ours must miss the other block or lie in one of its holes.
                cidr.covers(c2)
                    && except.iter().all(|e| {
                        let disjoint = !e.covers(c2) && !c2.covers(e);
                        disjoint || e2.iter().any(|h| h.covers(e))
                    })
            }
            (
                Peer::Pods { namespaces, pods },
                Peer::Pods {
                    namespaces: n2,
                    pods: p2,
                },
            ) => {
                let ns_ok = match (namespaces, n2) {
                    (None, None) => true,
                    (Some(a), Some(b)) => a.is_subset(b),
                    // Every namespace, the policy's own included.
                    (Some(a), None) => a.is_empty(),
                    (None, Some(_)) => false,
                };
                ns_ok && pods.is_subset(p2)
            }
            _ => false,
        }
    }

    fn show(&self) -> String {
        match self {
            Peer::Anywhere => "anywhere".into(),
            Peer::Block { text, .. } => text.clone(),
            Peer::Pods { namespaces, pods } => {
                let set = |r: &Requirements| {
                    format!("{{{}}}", r.iter().cloned().collect::<Vec<_>>().join(", "))
                };
                match namespaces {
                    None => format!("pods {} (own namespace)", set(pods)),
                    Some(n) => format!("pods {} in namespaces {}", set(pods), set(n)),
                }
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Port {
    Any,
    Range(Protocol, u16, u16),
    Named(Protocol, String),
}

impl Port {
    fn of(p: &NetworkPolicyPort) -> Option<Port> {
        let proto = parse_protocol(p.protocol.as_deref()).ok()?;
        Some(match &p.port {
            None => Port::Range(proto, 1, 65535),
            Some(IntOrString::Int(n)) => {
                let lo = u16::try_from(*n).ok()?;
                let hi = u16::try_from(p.end_port.unwrap_or(*n)).ok()?;
                Port::Range(proto, lo, hi)
            }
            Some(IntOrString::String(name)) => Port::Named(proto, name.clone()),
        })
    }

    fn show(&self) -> String {
        let proto = |p: &Protocol| crate::verify::netpol::protocol_name(*p);
        match self {
            Port::Any => "any port".into(),
            Port::Range(p, 1, 65535) => format!("{} any port", proto(p)),
            Port::Range(p, lo, hi) if lo == hi => format!("{} {lo}", proto(p)),
            Port::Range(p, lo, hi) => format!("{} {lo}-{hi}", proto(p)),
            Port::Named(p, n) => format!("{} {n}", proto(p)),
        }
    }
}

/// Whether the union of `ports` holds every port of `want`.
fn ports_cover(ports: &[&Port], want: &Port) -> bool {
    let ranges = |proto: Protocol| -> Vec<(u16, u16)> {
        let mut r: Vec<(u16, u16)> = ports
            .iter()
            .filter_map(|p| match p {
                Port::Any => Some((1, 65535)),
                Port::Range(pr, lo, hi) if *pr == proto => Some((*lo, *hi)),
                _ => None,
            })
            .collect();
        r.sort();
        r
    };
    let span = |proto: Protocol, lo: u16, hi: u16| {
        let mut next = u32::from(lo);
        for (a, b) in ranges(proto) {
            if u32::from(a) > next {
                break;
            }
            next = next.max(u32::from(b) + 1);
        }
        next > u32::from(hi)
    };
    match want {
        Port::Any => PROTOCOLS.iter().all(|p| span(*p, 1, 65535)),
        Port::Range(p, lo, hi) => span(*p, *lo, *hi),
        Port::Named(p, name) => {
            span(*p, 1, 65535)
                || ports
                    .iter()
                    .any(|o| matches!(o, Port::Named(q, n) if q == p && n == name))
        }
    }
}

/// One ingress or egress rule: its peers and its ports.
type Rule<'a> = (
    Option<&'a Vec<NetworkPolicyPeer>>,
    Option<&'a Vec<NetworkPolicyPort>>,
);

/// What one direction admits, or `None` when no policy isolates it (everything admitted).
fn admitted(
    policies: &[NetworkPolicy],
    dir: Dir,
    notes: &mut Vec<String>,
) -> Option<Vec<(Peer, Port)>> {
    let mut isolated = false;
    let mut pairs = Vec::new();
    for policy in policies {
        let Some(spec) = &policy.spec else { continue };
        let types = spec.policy_types.as_deref().unwrap_or_default();
        let has = if types.is_empty() {
            dir == Dir::Ingress || spec.egress.as_ref().is_some_and(|e| !e.is_empty())
        } else {
            types.iter().any(|t| {
                t == if dir == Dir::Ingress {
                    "Ingress"
                } else {
                    "Egress"
                }
            })
        };
        if !has {
            continue;
        }
        isolated = true;
        let rules: Vec<Rule> = match dir {
            Dir::Ingress => spec
                .ingress
                .iter()
                .flatten()
                .map(|r| (r.from.as_ref(), r.ports.as_ref()))
                .collect(),
            Dir::Egress => spec
                .egress
                .iter()
                .flatten()
                .map(|r| (r.to.as_ref(), r.ports.as_ref()))
                .collect(),
        };
        for (peers, ports) in rules {
            let peers: Vec<Peer> = match peers.filter(|p| !p.is_empty()) {
                None => vec![Peer::Anywhere],
                Some(ps) => ps
                    .iter()
                    .filter_map(|p| {
                        Peer::of(p).or_else(|| {
                            notes.push(format!(
                                "networkpolicy: a {} peer could not be read; treated as anywhere",
                                dir.name()
                            ));
                            Some(Peer::Anywhere)
                        })
                    })
                    .collect(),
            };
            let ports: Vec<Port> = match ports.filter(|p| !p.is_empty()) {
                None => vec![Port::Any],
                Some(ps) => ps
                    .iter()
                    .map(|p| Port::of(p).unwrap_or(Port::Any))
                    .collect(),
            };
            for peer in &peers {
                for port in &ports {
                    pairs.push((peer.clone(), port.clone()));
                }
            }
        }
    }
    isolated.then_some(pairs)
}

pub(super) fn diff(old: &[NetworkPolicy], new: &[NetworkPolicy], diff: &mut Diff) {
    for dir in [Dir::Ingress, Dir::Egress] {
        let section = dir.name();
        let o = admitted(old, dir, &mut diff.notes);
        let n = admitted(new, dir, &mut diff.notes);
        match (o, n) {
            (Some(_), None) => diff.items.push(Item::new(
                A,
                section,
                Change::Added,
                format!("NEW does not isolate {section}: all {section} traffic is allowed"),
            )),
            (None, Some(_)) => diff.items.push(Item::new(
                A,
                section,
                Change::Removed,
                format!("NEW isolates {section}"),
            )),
            (None, None) => {}
            (Some(o), Some(n)) => {
                uncovered(&o, &n, section, Change::Added, &mut diff.items);
                uncovered(&n, &o, section, Change::Removed, &mut diff.items);
            }
        }
    }
}

/// Pairs of `new` that `old` does not admit, as `change`.
fn uncovered(
    old: &[(Peer, Port)],
    new: &[(Peer, Port)],
    section: &str,
    change: Change,
    out: &mut Vec<Item>,
) {
    let word = if section == "ingress" { "from" } else { "to" };
    for (peer, port) in new {
        let ports: Vec<&Port> = old
            .iter()
            .filter(|(p, _)| p.covers(peer))
            .map(|(_, q)| q)
            .collect();
        if !ports_cover(&ports, port) {
            out.push(Item::new(
                A,
                section,
                change,
                format!("{word} {} on {}", peer.show(), port.show()),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(yaml: &str) -> Peer {
        Peer::of(&serde_norway::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn peer_coverage() {
        // (old, new, old covers new)
        let cases: &[(&str, &str, bool)] = &[
            ("ipBlock: {cidr: 10.0.0.0/8}", "ipBlock: {cidr: 10.1.0.0/16}", true),
            ("ipBlock: {cidr: 10.1.0.0/16}", "ipBlock: {cidr: 10.0.0.0/8}", false),
            ("ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}", "ipBlock: {cidr: 10.1.2.0/24}", false),
            ("ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}", "ipBlock: {cidr: 10.2.0.0/16}", true),
            ("ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}", "ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}", true),
            ("ipBlock: {cidr: 10.0.0.0/8}", "podSelector: {}", false),
            ("podSelector: {matchLabels: {app: db}}", "podSelector: {matchLabels: {app: db, tier: x}}", true),
            ("podSelector: {matchLabels: {app: db, tier: x}}", "podSelector: {matchLabels: {app: db}}", false),
            ("podSelector: {}", "podSelector: {matchLabels: {app: db}}", true),
            // Own namespace vs selected namespaces.
            ("podSelector: {}", "{namespaceSelector: {}, podSelector: {}}", false),
            ("{namespaceSelector: {}, podSelector: {}}", "podSelector: {matchLabels: {app: db}}", true),
            (
                "namespaceSelector: {matchLabels: {team: a}}",
                "{namespaceSelector: {matchLabels: {team: a}}, podSelector: {matchLabels: {app: db}}}",
                true,
            ),
        ];
        for (old, new, want) in cases {
            assert_eq!(peer(old).covers(&peer(new)), *want, "{old} ⊇ {new}");
        }
        assert!(Peer::Anywhere.covers(&peer("podSelector: {}")));
        assert!(!peer("ipBlock: {cidr: 0.0.0.0/0}").covers(&Peer::Anywhere));
    }

    #[test]
    fn ports_add_up() {
        use Protocol::*;
        let old = [
            Port::Range(Tcp, 80, 90),
            Port::Range(Tcp, 91, 100),
            Port::Named(Udp, "dns".into()),
        ];
        let old: Vec<&Port> = old.iter().collect();
        for (want, covered) in [
            (Port::Range(Tcp, 85, 95), true),
            (Port::Range(Tcp, 85, 101), false),
            (Port::Range(Udp, 85, 85), false),
            (Port::Named(Udp, "dns".into()), true),
            (Port::Named(Tcp, "dns".into()), false),
            (Port::Any, false),
        ] {
            assert_eq!(ports_cover(&old, &want), covered, "{want:?}");
        }
        let all = [Port::Any];
        let all: Vec<&Port> = all.iter().collect();
        assert!(ports_cover(&all, &Port::Any) && ports_cover(&all, &Port::Named(Sctp, "x".into())));
    }
}

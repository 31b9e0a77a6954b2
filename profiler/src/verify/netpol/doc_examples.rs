//! The examples of the Kubernetes NetworkPolicy documentation
//! (concepts/services-networking/network-policies), each with the verdicts the documentation
//! states for it, written out as connections in a small cluster.

use std::collections::BTreeMap;

use super::*;
use crate::cluster::{ContainerPort, Namespace, Pod};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pod(ns: &str, name: &str, ip: &str, l: &[(&str, &str)]) -> Pod {
    Pod {
        name: name.into(),
        namespace: ns.into(),
        labels: labels(l),
        ips: vec![ip.parse().unwrap()],
        node: Some("node-1".into()),
        host_network: false,
        phase: Some("Running".into()),
        owners: Vec::new(),
        ports: Vec::new(),
    }
}

// Addresses of the pods below.
const DB: &str = "10.244.0.10";
const FRONTEND: &str = "10.244.0.11";
const BACKEND: &str = "10.244.0.12";
const OTHER_FRONTEND: &str = "10.244.1.11";
const PROJECT_POD: &str = "10.244.2.5";
const ALICE_CLIENT: &str = "10.244.3.5";
const ALICE_SERVER: &str = "10.244.3.6";

/// `default`: db, frontend, backend; `other`: a frontend; `myproject`: any pod; `alice`
/// (labelled `user: alice`): a client and a server.
fn world() -> Cluster {
    let mut db = pod("default", "db", DB, &[("role", "db")]);
    db.ports = vec![ContainerPort {
        name: Some("redis".into()),
        port: 6379,
        protocol: Protocol::Tcp,
    }];
    Cluster {
        pods: vec![
            db,
            pod("default", "frontend", FRONTEND, &[("role", "frontend")]),
            pod("default", "backend", BACKEND, &[("role", "backend")]),
            pod("other", "frontend", OTHER_FRONTEND, &[("role", "frontend")]),
            pod("myproject", "worker", PROJECT_POD, &[("app", "worker")]),
            pod("alice", "client", ALICE_CLIENT, &[("role", "client")]),
            pod("alice", "server", ALICE_SERVER, &[("role", "server")]),
        ],
        services: Vec::new(),
        namespaces: vec![
            Namespace {
                name: "myproject".into(),
                labels: labels(&[
                    ("kubernetes.io/metadata.name", "myproject"),
                    ("project", "myproject"),
                ]),
            },
            Namespace {
                name: "alice".into(),
                labels: labels(&[("kubernetes.io/metadata.name", "alice"), ("user", "alice")]),
            },
        ],
    }
}

fn tcp(from: &str, to: &str, port: u16) -> Connection {
    conn(from, to, Protocol::Tcp, port)
}

fn conn(from: &str, to: &str, protocol: Protocol, port: u16) -> Connection {
    Connection {
        from: from.parse().unwrap(),
        to: to.parse().unwrap(),
        protocol,
        port,
    }
}

/// Evaluates each `(connection, expected)` under `yaml` and reports every mismatch at once.
fn expect(yaml: &str, cases: &[(Connection, bool)]) {
    let policies = parse_policies(yaml).unwrap();
    let cluster = world();
    let eval = Evaluator::new(&policies, &cluster).unwrap();
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(c, want)| {
            let v = eval.check(c);
            (v.allowed() != *want).then(|| format!("{c}: expected allowed={want}, got {v}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

const TEST_NETWORK_POLICY: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
"#;

#[test]
fn test_network_policy_ingress() {
    expect(
        TEST_NETWORK_POLICY,
        &[
            // "any pod in the default namespace with the label role=frontend"
            (tcp(FRONTEND, DB, 6379), true),
            // "any pod in a namespace with the label project=myproject"
            (tcp(PROJECT_POD, DB, 6379), true),
            // "IP addresses in the ranges 172.17.0.0–172.17.0.255 and 172.17.2.0–172.17.255.255"
            (tcp("172.17.0.7", DB, 6379), true),
            (tcp("172.17.2.1", DB, 6379), true),
            (tcp("172.17.255.255", DB, 6379), true),
            // The `except` block, and outside the block.
            (tcp("172.17.1.9", DB, 6379), false),
            (tcp("172.18.0.1", DB, 6379), false),
            // role=frontend, but in another namespace: the podSelector is the policy's own.
            (tcp(OTHER_FRONTEND, DB, 6379), false),
            (tcp(BACKEND, DB, 6379), false),
            // Only TCP 6379.
            (tcp(FRONTEND, DB, 6380), false),
            (conn(FRONTEND, DB, Protocol::Udp, 6379), false),
            // Pods the policy does not select are not isolated.
            (tcp(BACKEND, FRONTEND, 80), true),
            (tcp("172.18.0.1", BACKEND, 22), true),
        ],
    );
}

#[test]
fn test_network_policy_egress() {
    expect(
        TEST_NETWORK_POLICY,
        &[
            // "connections from any pod in the default namespace with the label role=db to
            // CIDR 10.0.0.0/24 on TCP port 5978"
            (tcp(DB, "10.0.0.1", 5978), true),
            (tcp(DB, "10.0.0.255", 5978), true),
            (tcp(DB, "10.0.1.1", 5978), false),
            (tcp(DB, "10.0.0.1", 5979), false),
            (conn(DB, "10.0.0.1", Protocol::Udp, 5978), false),
            // Egress isolation covers pods too: db may not reach the frontend.
            (tcp(DB, FRONTEND, 80), false),
            (tcp(FRONTEND, "10.0.1.1", 443), true),
        ],
    );
}

#[test]
fn default_deny_ingress() {
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
spec:
  podSelector: {}
  policyTypes:
  - Ingress
"#;
    expect(
        yaml,
        &[
            (tcp(FRONTEND, DB, 6379), false),
            (tcp("192.0.2.1", BACKEND, 80), false),
            // "does not change the egress isolation behavior"
            (tcp(FRONTEND, "192.0.2.1", 443), true),
            // Only namespace `default` (the policy's namespace) is isolated.
            (tcp(FRONTEND, OTHER_FRONTEND, 80), true),
        ],
    );
}

#[test]
fn allow_all_ingress() {
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all-ingress
spec:
  podSelector: {}
  ingress:
  - {}
  policyTypes:
  - Ingress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
spec:
  podSelector: {}
  policyTypes:
  - Ingress
"#;
    // "no additional policy or policies can cause any incoming connection to those pods to be
    // denied"
    expect(
        yaml,
        &[
            (tcp(FRONTEND, DB, 6379), true),
            (tcp("192.0.2.1", BACKEND, 80), true),
            (conn(OTHER_FRONTEND, DB, Protocol::Sctp, 9), true),
        ],
    );
}

#[test]
fn default_deny_egress() {
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-egress
spec:
  podSelector: {}
  policyTypes:
  - Egress
"#;
    expect(
        yaml,
        &[
            (tcp(FRONTEND, DB, 6379), false),
            (conn(BACKEND, "10.96.0.10", Protocol::Udp, 53), false),
            // "will not change the ingress isolation behavior of any pod"
            (tcp(OTHER_FRONTEND, DB, 6379), true),
            (tcp("192.0.2.1", DB, 6379), true),
        ],
    );
}

#[test]
fn allow_all_egress() {
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all-egress
spec:
  podSelector: {}
  egress:
  - {}
  policyTypes:
  - Egress
"#;
    expect(
        yaml,
        &[
            (tcp(FRONTEND, DB, 6379), true),
            (conn(BACKEND, "192.0.2.1", Protocol::Udp, 53), true),
        ],
    );
}

#[test]
fn default_deny_all() {
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-all
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  - Egress
"#;
    expect(
        yaml,
        &[
            (tcp(FRONTEND, DB, 6379), false),
            (tcp(FRONTEND, "192.0.2.1", 443), false),
            (tcp("192.0.2.1", BACKEND, 80), false),
            (tcp(OTHER_FRONTEND, PROJECT_POD, 80), true),
        ],
    );
}

#[test]
fn namespace_and_pod_selector_in_one_peer_is_and() {
    // "contains a single from element allowing connections from Pods with the label
    // role=client in namespaces with the label user=alice"
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: and
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          user: alice
      podSelector:
        matchLabels:
          role: client
"#;
    expect(
        yaml,
        &[
            (tcp(ALICE_CLIENT, DB, 6379), true),
            (tcp(ALICE_SERVER, DB, 6379), false),
            (tcp(FRONTEND, DB, 6379), false),
            (tcp(PROJECT_POD, DB, 6379), false),
        ],
    );
}

#[test]
fn namespace_and_pod_selector_in_two_peers_is_or() {
    // "contains two elements in the from array, and allows connections from Pods in the local
    // Namespace with the label role=client, or from any Pod in any namespace with the label
    // user=alice"
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: or
  namespace: alice
spec:
  podSelector:
    matchLabels:
      role: server
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          user: alice
    - podSelector:
        matchLabels:
          role: client
"#;
    let mut cases = vec![
        (tcp(ALICE_CLIENT, ALICE_SERVER, 80), true),
        (tcp(FRONTEND, ALICE_SERVER, 80), false),
        (tcp("192.0.2.1", ALICE_SERVER, 80), false),
    ];
    // A role=client pod in the policy's own namespace matches the second peer alone: put one
    // in a namespace without the user=alice label to tell OR from AND.
    expect(yaml, &cases);
    let policies = parse_policies(yaml).unwrap();
    let mut cluster = world();
    cluster.namespaces.retain(|n| n.name != "alice");
    let eval = Evaluator::new(&policies, &cluster).unwrap();
    // Without the namespace label, only the podSelector peer can admit the client.
    cases = vec![(tcp(ALICE_CLIENT, ALICE_SERVER, 80), true)];
    for (c, want) in cases {
        assert_eq!(eval.allowed(&c), want, "{c}");
    }
    // And an unlabelled pod in the namespace is refused once the namespace label is gone.
    let mut cluster = world();
    cluster.namespaces.retain(|n| n.name != "alice");
    cluster
        .pods
        .push(pod("alice", "stranger", "10.244.3.9", &[("role", "other")]));
    let eval = Evaluator::new(&policies, &cluster).unwrap();
    assert!(!eval.allowed(&tcp("10.244.3.9", ALICE_SERVER, 80)));
    // With the label it is admitted by the namespaceSelector peer.
    let mut cluster = world();
    cluster
        .pods
        .push(pod("alice", "stranger", "10.244.3.9", &[("role", "other")]));
    let eval = Evaluator::new(&policies, &cluster).unwrap();
    assert!(eval.allowed(&tcp("10.244.3.9", ALICE_SERVER, 80)));
}

#[test]
fn namespace_by_name() {
    // "Targeting a Namespace by its name": the immutable kubernetes.io/metadata.name label.
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: by-name
  namespace: default
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: other
"#;
    // `other` is not in the snapshot's namespace list: the label is implied.
    expect(
        yaml,
        &[
            (tcp(OTHER_FRONTEND, DB, 6379), true),
            (tcp(PROJECT_POD, DB, 6379), false),
            (tcp(FRONTEND, DB, 6379), false),
        ],
    );
}

#[test]
fn end_port_range() {
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: multi-port-egress
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
    - Egress
  egress:
    - to:
        - ipBlock:
            cidr: 10.0.0.0/24
      ports:
        - protocol: TCP
          port: 32000
          endPort: 32768
"#;
    // "allow communication from ... to any IP within the range 10.0.0.0/24 over TCP, provided
    // that the target port is between the range 32000 and 32768"
    expect(
        yaml,
        &[
            (tcp(DB, "10.0.0.3", 32000), true),
            (tcp(DB, "10.0.0.3", 32400), true),
            (tcp(DB, "10.0.0.3", 32768), true),
            (tcp(DB, "10.0.0.3", 31999), false),
            (tcp(DB, "10.0.0.3", 32769), false),
            (tcp(DB, "10.0.1.3", 32400), false),
            (conn(DB, "10.0.0.3", Protocol::Udp, 32400), false),
        ],
    );
}

#[test]
fn named_ports_resolve_against_the_destination_pod() {
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: named
  namespace: default
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress:
  - ports:
    - port: redis
  egress:
  - ports:
    - port: redis
"#;
    expect(
        yaml,
        &[
            // db names 6379/TCP `redis`.
            (tcp(FRONTEND, DB, 6379), true),
            (tcp(FRONTEND, DB, 6380), false),
            (conn(FRONTEND, DB, Protocol::Udp, 6379), false),
            // backend names no port: nothing resolves.
            (tcp(FRONTEND, BACKEND, 6379), false),
            // An address outside the cluster has no named ports.
            (tcp(FRONTEND, "192.0.2.1", 6379), false),
        ],
    );
}

#[test]
fn policy_types_default_from_rules() {
    // No policyTypes: Ingress always, Egress because there is an egress section.
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: implied
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: frontend
  egress:
  - to:
    - podSelector:
        matchLabels:
          role: db
"#;
    expect(
        yaml,
        &[
            (tcp(FRONTEND, DB, 6379), true),
            (tcp(FRONTEND, BACKEND, 80), false),
            (tcp(BACKEND, FRONTEND, 80), false),
        ],
    );
    // An empty egress list does not make the policy an egress policy.
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: implied
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: frontend
  egress: []
"#;
    expect(
        yaml,
        &[
            (tcp(FRONTEND, BACKEND, 80), true),
            (tcp(BACKEND, FRONTEND, 80), false),
        ],
    );
}

#[test]
fn match_expressions_select_pods() {
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: exprs
  namespace: default
spec:
  podSelector:
    matchExpressions:
    - {key: role, operator: In, values: [db, backend]}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchExpressions:
        - {key: role, operator: NotIn, values: [backend]}
"#;
    expect(
        yaml,
        &[
            (tcp(FRONTEND, DB, 6379), true),
            (tcp(BACKEND, DB, 6379), false),
            (tcp(FRONTEND, BACKEND, 80), true),
            (tcp(DB, BACKEND, 80), true),
            // frontend is not selected, so not isolated.
            (tcp(BACKEND, FRONTEND, 80), true),
        ],
    );
}

#[test]
fn ipv6_blocks() {
    let yaml = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: v6
  namespace: default
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock:
        cidr: fd00::/64
        except: [fd00::bad/128]
"#;
    expect(
        yaml,
        &[
            (tcp(DB, "fd00::1", 443), true),
            (tcp(DB, "fd00::bad", 443), false),
            (tcp(DB, "fd01::1", 443), false),
            (tcp(DB, "10.0.0.1", 443), false),
        ],
    );
}

#[test]
fn invalid_policies_are_refused() {
    let bad = [
        // A peer with nothing in it.
        "spec: {podSelector: {}, ingress: [{from: [{}]}]}",
        // ipBlock and a selector in one peer.
        "spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]}",
        // except outside the block.
        "spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/8]}}]}]}",
        "spec: {podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0}}]}]}",
        "spec: {podSelector: {}, ingress: [{ports: [{port: 80, protocol: ICMP}]}]}",
        "spec: {podSelector: {}, ingress: [{ports: [{port: 90, endPort: 80}]}]}",
        "spec: {podSelector: {}, ingress: [{ports: [{port: http, endPort: 80}]}]}",
        "spec: {podSelector: {}, policyTypes: [Both]}",
        "spec: {podSelector: {matchExpressions: [{key: a, operator: In}]}}",
    ];
    for spec in bad {
        let yaml = format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: bad}}\n{spec}\n");
        let policies = parse_policies(&yaml).unwrap();
        let cluster = world();
        assert!(Evaluator::new(&policies, &cluster).is_err(), "{spec}");
    }
}

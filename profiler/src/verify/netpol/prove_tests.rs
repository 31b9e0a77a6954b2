use super::*;
use crate::{
    cluster::Cluster,
    model::{Activity, Flow},
    verify::netpol::parse_policies,
};

/// The demo's committed policy: ingress on 8080 from the node's end of the veth, no egress.
const DEMO: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: demo-nginx, namespace: default}
spec:
  egress: []
  ingress:
  - from: [{ipBlock: {cidr: 198.51.100.1/32}}]
    ports: [{port: 8080, protocol: TCP}]
  podSelector: {matchLabels: {app: demo-nginx}}
  policyTypes: [Ingress, Egress]
";

fn demo_activity() -> Activity {
    Activity {
        flows: [Flow {
            direction: Direction::Ingress,
            protocol: Protocol::Tcp,
            peer: "198.51.100.1".parse().unwrap(),
            peer_port: 0,
            local_port: 8080,
            dns: false,
        }]
        .into(),
        ..Default::default()
    }
}

fn proof(yaml: &str, pod_ips: Vec<IpAddr>, cluster: Option<&Cluster>) -> NetpolProof {
    let policies = parse_policies(yaml).unwrap();
    prove(&NetpolCheck {
        policies: &policies,
        activity: &demo_activity(),
        pod_ips,
        cluster,
    })
    .unwrap()
}

#[test]
fn the_demo_policy_admits_its_flow_and_denies_every_probe() {
    let p = proof(DEMO, Vec::new(), None);
    assert!(p.failures().is_empty(), "{p}");
    assert_eq!(p.placeholders.len(), 2);
    assert_eq!(p.pod.namespace, "default");
    assert_eq!(
        p.pod.labels.get("app").map(String::as_str),
        Some("demo-nginx")
    );
    assert_eq!(p.recorded.len(), 1);
    let whats: Vec<&str> = p.probes.iter().map(|p| p.what.as_str()).collect();
    assert_eq!(
        whats,
        [
            "a stranger on port 8080/TCP",
            "the recorded client 198.51.100.1 on port 8443",
            "the workload connecting out to an unrecorded destination",
        ]
    );
    assert_eq!(p.short_reason(), None);
    assert_eq!(
        p.passed_phrase(),
        "1 recorded flow(s) admitted, 3 probe(s) denied"
    );
    let text = p.to_string();
    assert!(
        text.contains("ok   recorded 198.51.100.1 -> 192.0.2.10:8080 TCP: allowed"),
        "{text}"
    );
}

#[test]
fn each_broken_policy_fails_for_its_own_reason() {
    let cases = [
        // The recorded ingress is missing.
        (DEMO.replace("  ingress:\n  - from: [{ipBlock: {cidr: 198.51.100.1/32}}]\n    ports: [{port: 8080, protocol: TCP}]\n", "  ingress: []\n"),
         "1 recorded flow(s) refused"),
        // Every port from the client: the client on another port gets through.
        (DEMO.replace("    ports: [{port: 8080, protocol: TCP}]\n", ""), "1 probe(s) admitted"),
        // No Egress type and no egress rules: the pod is not isolated for egress.
        (DEMO.replace("policyTypes: [Ingress, Egress]", "policyTypes: [Ingress]").replace("  egress: []\n", ""),
         "1 probe(s) admitted"),
        // A selector that does not select the pod: nothing is isolated.
        (DEMO.replace("app: demo-nginx", "app: other").replace("matchLabels: {app: other}", "matchExpressions: [{key: app, operator: In, values: [other]}]"),
         "3 probe(s) admitted"),
    ];
    for (yaml, reason) in cases {
        let p = proof(&yaml, Vec::new(), None);
        assert!(!p.failures().is_empty(), "{yaml}\n{p}");
        assert_eq!(p.short_reason().as_deref(), Some(reason), "{yaml}\n{p}");
    }
}

#[test]
fn widening_on_request_is_a_note_not_a_failure() {
    // `--ingress-from-anywhere`: the rule has no `from`.
    let yaml = DEMO.replace(
        "  - from: [{ipBlock: {cidr: 198.51.100.1/32}}]\n    ports:",
        "  - ports:",
    );
    let p = proof(&yaml, Vec::new(), None);
    assert!(p.failures().is_empty(), "{p}");
    let stranger = &p.probes[0];
    assert!(stranger.verdict.allowed() && stranger.widened, "{p}");
    assert!(
        p.to_string()
            .contains("note probe a stranger on port 8080/TCP"),
        "{p}"
    );
    // A /0 block counts as open too; an ordinary block does not.
    let yaml = DEMO.replace("198.51.100.1/32", "0.0.0.0/0");
    assert!(proof(&yaml, Vec::new(), None).failures().is_empty());
    let yaml = DEMO.replace("198.51.100.1/32", "198.51.100.0/24");
    let p = proof(&yaml, Vec::new(), None);
    assert!(
        p.failures().is_empty(),
        "a /24 of the client's does not hold the stranger: {p}"
    );
}

#[test]
fn the_pod_address_comes_from_the_caller_or_the_snapshot() {
    let given: IpAddr = "198.51.100.2".parse().unwrap();
    let p = proof(DEMO, vec![given], None);
    // The other family keeps its placeholder.
    assert_eq!(p.placeholders, [IpAddr::V6(PLACEHOLDER_V6)]);
    assert!(
        p.to_string()
            .contains("at 198.51.100.2, 2001:db8::10 (a placeholder)"),
        "{p}"
    );
    assert_eq!(p.pod.ips[0], given);
    assert!(p.failures().is_empty(), "{p}");

    let snapshot = r#"{"kind":"List","items":[
      {"kind":"Pod","metadata":{"name":"demo-nginx-7d9","namespace":"default","labels":{"app":"demo-nginx","pod-template-hash":"7d9"}},
       "spec":{"containers":[{"name":"nginx"}]},"status":{"phase":"Running","podIP":"10.1.2.3"}}]}"#;
    let cluster = Cluster::parse(snapshot).unwrap();
    let p = proof(DEMO, Vec::new(), Some(&cluster));
    assert!(p.placeholders.is_empty());
    assert_eq!(p.pod.name, "demo-nginx-7d9");
    assert_eq!(p.pod.ips, ["10.1.2.3".parse::<IpAddr>().unwrap()]);
    assert!(p.failures().is_empty(), "{p}");
}

#[test]
fn placeholders_and_probes_avoid_recorded_addresses() {
    let taken: BTreeSet<IpAddr> = ["192.0.2.10", "192.0.2.11"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        unused(IpAddr::V4(PLACEHOLDER_V4), &taken),
        "192.0.2.12".parse::<IpAddr>().unwrap()
    );
    assert_eq!(first_free(&OTHER_PORTS, &[8443].into()), 8444);
}

#[test]
fn a_file_without_a_policy_is_an_error() {
    let activity = Activity::default();
    let got = prove(&NetpolCheck {
        policies: &[],
        activity: &activity,
        pod_ips: Vec::new(),
        cluster: None,
    });
    assert!(matches!(got, Err(ProveError::NoPolicy)));
}

//! Recorded flows as connections to judge: what the proof replays against a policy.

use std::net::IpAddr;

use super::Connection;
use crate::model::{Activity, Direction};

/// Every recorded flow of `activity` as a connection from or to the workload, whose
/// addresses are `workload` (the one of the peer's family is used). Loopback flows are left
/// out: NetworkPolicy does not govern traffic inside a pod. A flow whose family the workload
/// has no address of is returned in the second list.
pub fn recorded_connections(
    activity: &Activity,
    workload: &[IpAddr],
) -> (Vec<Connection>, Vec<String>) {
    let mut conns = Vec::new();
    let mut unmatched = Vec::new();
    for flow in &activity.flows {
        let peer = flow.peer.to_canonical();
        if peer.is_loopback() {
            continue;
        }
        let Some(own) = workload
            .iter()
            .map(|ip| ip.to_canonical())
            .find(|ip| ip.is_ipv4() == peer.is_ipv4())
        else {
            unmatched.push(format!("{flow:?}"));
            continue;
        };
        conns.push(match flow.direction {
            Direction::Ingress => Connection {
                from: peer,
                to: own,
                protocol: flow.protocol,
                port: flow.local_port,
            },
            Direction::Egress => Connection {
                from: own,
                to: peer,
                protocol: flow.protocol,
                port: flow.peer_port,
            },
        });
    }
    (conns, unmatched)
}

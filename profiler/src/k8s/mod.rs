//! Kubernetes: which pod and container a cgroup belongs to, the cluster's view of pods and
//! their owners, and the agent that records the pods of one node.

pub mod agent;
pub mod agent_run;
pub mod cgroup_path;
pub mod client;
pub mod engine;
pub mod error;
pub mod http;
pub mod owner;
pub mod pod;
pub mod profiles;
pub mod pull;

pub use client::{ensure_on_node, this_node_name, Cluster, PodEvent, PodSelector};
pub use error::K8sError;
pub use owner::Workload;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod replay;
#[cfg(test)]
pub(crate) mod test_fixtures;

//! Kubernetes: which pod and container a cgroup belongs to, the cluster's view of pods and
//! their owners, and the agent that records the pods of one node.

pub mod cgroup_path;

#[cfg(test)]
pub(crate) mod test_fixtures;

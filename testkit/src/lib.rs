//! What profgen's tests and its bench share: a stand-in for the Kubernetes API server (the
//! one part of a cluster that cannot run here), answering over plain HTTP in its wire format
//! with bodies the caller gives (captured responses, or pods built from them), and the
//! busybox containers under runc that the agent records.

pub mod busybox;
pub mod fake_api;

//! What profgen's tests and its bench both stand in for: a Kubernetes API server (the one
//! part of a cluster that cannot run here), answering over plain HTTP in its wire format
//! with bodies the caller gives (captured responses, or pods built from them).

pub mod fake_api;

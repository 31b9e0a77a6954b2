//! profgen: watch a workload with eBPF, turn what it did into least-privilege confinement,
//! and prove the result by enforcing it.
//!
//! Data flows one way: [`record`] (the only module that touches the kernel) produces a
//! [`model::Recording`]; [`synth`] turns a recording into profiles with pure functions;
//! [`verify`] enforces a profile and re-runs the workload's tests.

pub mod cgroup;
pub mod check;
pub mod cluster;
pub mod diff;
pub mod k8s;
pub mod memory;
pub mod model;
pub mod naming;
pub mod output;
pub mod paths;
pub mod profile_set;
pub mod record;
pub mod synth;
pub mod syscalls;
pub mod verify;

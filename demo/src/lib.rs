//! The built-in demo workload.

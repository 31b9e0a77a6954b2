//! profgen's demo workload: a static single-page app served by the host's nginx in a runc
//! container, and the HTTP test suite that exercises it.
//!
//! * [`bundle::build_bundle`] makes the OCI bundle (root filesystem from host binaries,
//!   `config.json` from [`config::spec`]), with a seccomp probe inside.
//! * [`seccomp::recording`] is the permissive filter to record under.
//! * [`suite::run`] is the test suite (also the `demo-suite` binary).

pub mod bundle;
pub mod config;
pub mod http;
pub mod rootfs;
pub mod seccomp;
pub mod site;
pub mod suite;

pub use bundle::{build_bundle, Bundle, BundleError, BundleOptions, PROBE_PATH};

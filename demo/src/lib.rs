//! profgen's demo workload: a static single-page app served by the host's nginx in a runc
//! container, and the HTTP test suite that exercises it.
//!
//! * [`bundle::build_bundle`] makes the OCI bundle (root filesystem from host binaries,
//!   `config.json` from [`config::spec`]), with a seccomp probe inside.
//! * [`seccomp::recording`] is the permissive filter to record under.
//! * [`suite::run`] is the test suite (also the `demo-suite` binary).
//! * [`image::write_agent_image`] makes the agent's container image (`cargo xtask image`).

pub mod bundle;
pub mod config;
pub mod http;
pub mod image;
pub mod netns;
pub mod rootfs;
pub mod seccomp;
pub mod site;
pub mod suite;

pub use bundle::{build_bundle, Bundle, BundleError, BundleOptions, PROBE_PATH};

/// The demo's profile set is named for a pretend pod: the AppArmor profile, the
/// NetworkPolicy and the workload are `demo-nginx` in namespace `default`, labelled
/// `app=demo-nginx`.
pub const NAME: &str = "demo-nginx";
pub const NAMESPACE: &str = "default";
pub const LABELS: &str = "app=demo-nginx";

/// How `cargo xtask demo` calls `profgen synth … --out DIR`; the test that re-synthesizes
/// the committed recording uses the same.
pub fn synth_args() -> Vec<String> {
    let workload = format!("Deployment/{NAME}");
    [
        "--name",
        NAME,
        "--labels",
        LABELS,
        "--namespace",
        NAMESPACE,
        "--workload",
        &workload,
        "--container",
        "nginx",
        // The container's tmpfs mounts (config.rs): a pod would have emptyDirs.
        "--volumes",
        "/run,/tmp,/var/lib/nginx,/var/log/nginx",
    ]
    .map(str::to_owned)
    .to_vec()
}

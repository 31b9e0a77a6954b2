//! `cargo xtask image`: the agent's OCI image layout from the release build, written by the
//! demo crate's `agent-image` (the image code is profgen's; xtask only runs it).

use anyhow::Result;

use crate::{run_built, step, target_dir};

/// Writes `<target>/image/profgen-agent` from `<target>/release/profgen`. No daemon, no
/// network: push it with any OCI tool (`skopeo copy oci:DIR:TAG docker://…`).
pub fn run() -> Result<()> {
    let target = target_dir();
    let profgen = target.join("release/profgen");
    let out = target.join("image/profgen-agent");
    step(&format!("writing the agent image to {}", out.display()));
    run_built(
        "agent-image",
        &[
            "--profgen",
            &profgen.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ],
    )
}

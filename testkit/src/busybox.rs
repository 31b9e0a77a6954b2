//! Containers as the agent's tests and the bench run them: runc bundles whose rootfs is a
//! static busybox, with `runc spec`'s defaults, a read-only root and the agent's learning
//! seccomp profile (so a recording starts at the container's filter, as for a pod).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};
use profgen::model::Recording;

/// The system's busybox, when it is statically linked (a rootfs holds nothing else).
pub fn static_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            p.is_file()
                && Command::new("file")
                    .arg(p)
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains("statically linked"))
                    .unwrap_or(true)
        })
}

/// Makes the bundle in `dir`: its container runs `busybox sh -c script`.
pub fn bundle(dir: &Path, busybox: &Path, script: &str) -> Result<PathBuf> {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        fs::create_dir_all(rootfs.join(d))?;
    }
    fs::copy(busybox, rootfs.join("bin/busybox"))?;
    let out = Command::new("runc")
        .arg("spec")
        .current_dir(dir)
        .output()
        .context("running runc spec")?;
    if !out.status.success() {
        bail!("runc spec failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    edit_spec(dir, |spec| {
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = serde_json::json!(["/bin/busybox", "sh", "-c", script]);
        spec["root"]["readonly"] = true.into();
        spec["linux"]["seccomp"] = serde_json::from_str(profgen::k8s::agent::LEARNING_PROFILE)?;
        Ok(())
    })?;
    Ok(dir.to_owned())
}

/// Puts the bundle's next container in `cgroups_path` (as runc's `linux.cgroupsPath`).
pub fn set_cgroups_path(bundle: &Path, cgroups_path: &str) -> Result<()> {
    edit_spec(bundle, |spec| {
        spec["linux"]["cgroupsPath"] = cgroups_path.into();
        Ok(())
    })
}

fn edit_spec(
    bundle: &Path,
    edit: impl FnOnce(&mut serde_json::Value) -> serde_json::Result<()>,
) -> Result<()> {
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&fs::read(&path)?)?;
    edit(&mut spec)?;
    fs::write(&path, serde_json::to_vec_pretty(&spec)?)?;
    Ok(())
}

/// How many of the recording's cgroups executed /bin/busybox (the containers' entrypoint):
/// the containers it caught.
pub fn busybox_cgroups(rec: &Recording) -> usize {
    rec.cgroups
        .iter()
        .filter(|c| {
            c.activity
                .processes
                .iter()
                .any(|p| p.exe.as_bytes() == b"/bin/busybox")
        })
        .count()
}

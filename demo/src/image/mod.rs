//! profgen's agent as an OCI image, made offline from the host's files (no daemon, no
//! registry, no base image): the `profgen` binary, exactly the shared libraries `ldd` names for
//! it (copied the way the demo's nginx bundle is, [`crate::rootfs`]), and the empty
//! directories the DaemonSet mounts over. Reproducible: the same binary on the same host
//! gives the same digest.
//!
//! Both `cargo xtask image` (through the `agent-image` binary, since xtask itself depends on
//! nothing of profgen's) and `tests/agent_image.rs` call [`write_agent_image`].

pub mod layer;
pub mod layout;

use std::{
    fs, io,
    path::{Path, PathBuf},
    process::Command,
};

use crate::rootfs::{self, RootfsError};

/// The image's name; `deploy/daemonset.yaml` runs `REPOSITORY:TAG`.
pub const REPOSITORY: &str = "ghcr.io/profgen/profgen";
/// The tag: the crate's version, so a release names its own image.
pub const TAG: &str = env!("CARGO_PKG_VERSION");
pub const ENTRYPOINT: &str = "/usr/bin/profgen";
/// Where the DaemonSet mounts its volumes (`tests/agent_image.rs` compares this with
/// `deploy/daemonset.yaml`): present in the image, so no runtime has to make them in a
/// read-only root.
pub const MOUNT_POINTS: [&str; 5] = [
    "/host/sys/fs/cgroup",
    "/sys/kernel/tracing",
    "/tmp",
    "/var/lib/kubelet/seccomp",
    "/var/lib/profgen",
];
/// What every runtime mounts: proc, sysfs, /dev, and the files of /etc it bind-mounts.
const RUNTIME_MOUNT_POINTS: [&str; 4] = ["/dev", "/etc", "/proc", "/sys"];

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("`objcopy --strip-debug {binary}` failed: {message} (objcopy is in binutils)")]
    Strip { binary: PathBuf, message: String },
    #[error("not an image layout: {0}")]
    Layout(String),
}

/// An image [`write_agent_image`] wrote.
#[derive(Debug, Clone)]
pub struct AgentImage {
    /// The OCI image layout directory.
    pub dir: PathBuf,
    pub written: layout::Written,
}

impl AgentImage {
    /// `REPOSITORY:TAG`.
    pub fn reference(&self) -> String {
        format!("{REPOSITORY}:{TAG}")
    }

    /// `REPOSITORY:TAG@sha256:…`, what a manifest pins once the image is pushed (a push
    /// that keeps the manifest as it is keeps this digest).
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.reference(), self.written.manifest.digest)
    }
}

/// Writes the agent's image for the binary `profgen` as an OCI image layout at `out`, which
/// is replaced only once the new layout is complete.
pub fn write_agent_image(profgen: &Path, out: &Path) -> Result<AgentImage, ImageError> {
    let parent = out.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_at(parent))?;
    let work = tempfile::Builder::new()
        .prefix(".agent-image-")
        .tempdir_in(parent)
        .map_err(io_at(parent))?;
    let rootfs = work.path().join("rootfs");
    stage_rootfs(profgen, &rootfs)?;
    let new = work.path().join("layout");
    let written = layout::write(&new, &rootfs, &run_config(), REPOSITORY, TAG)?;
    if out.exists() {
        fs::remove_dir_all(out).map_err(io_at(out))?;
    }
    fs::rename(&new, out).map_err(io_at(out))?;
    Ok(AgentImage {
        dir: out.to_owned(),
        written,
    })
}

/// The image's root: the binary at [`ENTRYPOINT`] without its debug info (a quarter of the
/// size; symbols stay, so backtraces still name functions), its libraries at their host
/// paths, and the mount points.
fn stage_rootfs(profgen: &Path, rootfs: &Path) -> Result<(), ImageError> {
    let dest = rootfs.join(ENTRYPOINT.trim_start_matches('/'));
    rootfs::create_dirs(dest.parent().expect("under /usr/bin"))?;
    strip_debug(profgen, &dest)?;
    for lib in rootfs::shared_libraries(profgen)? {
        rootfs::mirror(rootfs, &lib)?;
    }
    for dir in MOUNT_POINTS.iter().chain(&RUNTIME_MOUNT_POINTS) {
        rootfs::create_dirs(&rootfs.join(dir.trim_start_matches('/')))?;
    }
    Ok(())
}

fn strip_debug(binary: &Path, dest: &Path) -> Result<(), ImageError> {
    let out = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(binary)
        .arg(dest)
        .output()
        .map_err(|e| ImageError::Strip {
            binary: binary.to_owned(),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(ImageError::Strip {
            binary: binary.to_owned(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

fn run_config() -> layout::RunConfig {
    let label = |k: &str, v: &str| (format!("org.opencontainers.image.{k}"), v.to_owned());
    layout::RunConfig {
        entrypoint: vec![ENTRYPOINT.to_owned()],
        env: vec!["PATH=/usr/bin".to_owned()],
        labels: vec![
            label("title", "profgen"),
            label("version", TAG),
            label("source", env!("CARGO_PKG_REPOSITORY")),
            label("licenses", env!("CARGO_PKG_LICENSE")),
        ],
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small dynamically linked host binary stands in for profgen: what goes in, where,
    /// and that a second build has the same digest.
    #[test]
    fn an_image_of_a_host_binary_holds_it_its_libraries_and_the_mount_points() {
        let dir = tempfile::tempdir().unwrap();
        let binary = Path::new("/bin/true");
        let a = write_agent_image(binary, &dir.path().join("a")).unwrap();
        let b = write_agent_image(binary, &dir.path().join("b")).unwrap();
        assert_eq!(a.written.manifest.digest, b.written.manifest.digest);
        assert_eq!(a.written.layer.digest, b.written.layer.digest);
        // Written again in place: replaced, same digest.
        let again = write_agent_image(binary, &a.dir).unwrap();
        assert_eq!(again.written.manifest.digest, a.written.manifest.digest);

        let rootfs = dir.path().join("rootfs");
        let unpacked = layout::unpack(&a.dir, TAG, &rootfs).unwrap();
        assert_eq!(unpacked.manifest_digest, a.written.manifest.digest);
        assert_eq!(unpacked.config["config"]["Entrypoint"][0], ENTRYPOINT);
        assert!(rootfs.join("usr/bin/profgen").is_file());
        for lib in rootfs::shared_libraries(binary).unwrap() {
            let inside = rootfs.join(lib.strip_prefix("/").unwrap());
            assert!(inside.exists(), "{} missing", lib.display());
        }
        for d in MOUNT_POINTS {
            assert!(rootfs.join(d.trim_start_matches('/')).is_dir(), "{d}");
        }
        assert!(a
            .pinned()
            .starts_with(&format!("{REPOSITORY}:{TAG}@sha256:")));
        // Nothing of the work directory is left beside the layouts.
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b", "rootfs"]);
    }
}

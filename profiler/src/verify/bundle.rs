//! A temporary copy of a bundle's `config.json` with a seccomp profile in place. The user's
//! bundle is never written: the copy lives in a directory of its own and points back at the
//! original root filesystem.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use oci_spec::runtime::{LinuxBuilder, LinuxSeccomp, Spec};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not an OCI runtime config")]
    Spec {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    SecurityContext {
        path: PathBuf,
        #[source]
        source: super::security_context::SecurityContextError,
    },
    #[error("{path}: not an OCI seccomp profile (`linux.seccomp` JSON)")]
    Profile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads a bundle's `config.json`.
pub fn load_spec(path: &Path) -> Result<Spec, BundleError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|source| BundleError::Spec {
        path: path.to_owned(),
        source,
    })
}

/// Reads a seccomp profile: the JSON object that goes into `linux.seccomp`.
pub fn load_profile(path: &Path) -> Result<LinuxSeccomp, BundleError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|source| BundleError::Profile {
        path: path.to_owned(),
        source,
    })
}

/// The patched copy; removed when dropped.
#[derive(Debug)]
pub struct PatchedBundle {
    dir: tempfile::TempDir,
}

impl PatchedBundle {
    /// The directory to hand to runc as the bundle.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Copies `bundle/config.json` with `profile` as `linux.seccomp`.
pub fn with_seccomp(bundle: &Path, profile: &LinuxSeccomp) -> Result<PatchedBundle, BundleError> {
    with_confinement(bundle, Some(profile), |_| Ok(()))
}

/// Copies `bundle/config.json` with `profile` as `linux.seccomp` (`None`: the bundle's own
/// filter, if any, stays) and whatever `more` changes.
pub fn with_confinement(
    bundle: &Path,
    profile: Option<&LinuxSeccomp>,
    more: impl FnOnce(&mut Spec) -> Result<(), BundleError>,
) -> Result<PatchedBundle, BundleError> {
    let mut spec = load_spec(&bundle.join("config.json"))?;
    let bundle = fs::canonicalize(bundle).map_err(io_err(bundle))?;
    patch(&mut spec, &bundle, profile);
    more(&mut spec)?;
    let dir = tempfile::Builder::new()
        .prefix("profgen-verify-")
        .tempdir()
        .map_err(io_err(&std::env::temp_dir()))?;
    let out = dir.path().join("config.json");
    let json = serde_json::to_string_pretty(&spec).expect("a spec serializes");
    fs::write(&out, json).map_err(io_err(&out))?;
    Ok(PatchedBundle { dir })
}

/// The pure part of [`with_seccomp`]: `bundle` is the original bundle's absolute path.
fn patch(spec: &mut Spec, bundle: &Path, profile: Option<&LinuxSeccomp>) {
    // runc resolves relative paths against the bundle directory, which is now elsewhere.
    if let Some(root) = spec.root_mut() {
        if root.path().is_relative() {
            let abs = bundle.join(root.path());
            root.set_path(abs);
        }
    }
    if let Some(mounts) = spec.mounts_mut() {
        for mount in mounts.iter_mut() {
            let is_bind = mount.typ().as_deref() == Some("bind")
                || mount
                    .options()
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
            if let Some(source) = mount.source().clone() {
                if is_bind && source.is_relative() {
                    mount.set_source(Some(bundle.join(source)));
                }
            }
        }
    }
    // Detached containers get files as stdio; a terminal would need a console socket.
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(false));
    }
    let linux = spec.linux_mut().get_or_insert_with(|| {
        LinuxBuilder::default()
            .build()
            .expect("an empty linux section is valid")
    });
    if let Some(profile) = profile {
        linux.set_seccomp(Some(profile.clone()));
    }
    // A cgroup of its own (runc's default, named after the container id): a verification never
    // collides with a recording or another verification of the same bundle.
    linux.set_cgroups_path(None);
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompBuilder, MountBuilder};

    use super::*;

    fn profile() -> LinuxSeccomp {
        LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActErrno)
            .build()
            .unwrap()
    }

    #[test]
    fn patches_profile_paths_terminal_and_cgroup() {
        let mut spec = Spec::default();
        spec.linux_mut()
            .as_mut()
            .unwrap()
            .set_cgroups_path(Some("/profgen/demo".into()));
        spec.process_mut()
            .as_mut()
            .unwrap()
            .set_terminal(Some(true));
        let mut mounts = spec.mounts().clone().unwrap();
        mounts.push(
            MountBuilder::default()
                .destination("/data")
                .typ("bind")
                .source("data")
                .options(vec!["rbind".to_string(), "ro".to_string()])
                .build()
                .unwrap(),
        );
        spec.set_mounts(Some(mounts));

        patch(&mut spec, Path::new("/srv/bundle"), Some(&profile()));

        assert_eq!(
            spec.root().as_ref().unwrap().path(),
            Path::new("/srv/bundle/rootfs")
        );
        let mounts = spec.mounts().as_ref().unwrap();
        let data = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/data"));
        assert_eq!(
            data.unwrap().source().as_deref(),
            Some(Path::new("/srv/bundle/data"))
        );
        // Not a bind mount: "proc" is a file system name, not a path.
        let proc = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/proc"));
        assert_eq!(proc.unwrap().source().as_deref(), Some(Path::new("proc")));
        assert_eq!(spec.process().as_ref().unwrap().terminal(), Some(false));
        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(linux.seccomp().as_ref(), Some(&profile()));
        assert_eq!(linux.cgroups_path(), &None);
    }

    #[test]
    fn copies_without_touching_the_original() {
        let bundle = tempfile::tempdir().unwrap();
        let config = bundle.path().join("config.json");
        Spec::default().save(&config).unwrap();
        let before = fs::read(&config).unwrap();

        let patched = with_seccomp(bundle.path(), &profile()).unwrap();

        assert_eq!(fs::read(&config).unwrap(), before);
        let copy = Spec::load(patched.path().join("config.json")).unwrap();
        assert!(copy.linux().as_ref().unwrap().seccomp().is_some());
        assert!(copy.root().as_ref().unwrap().path().is_absolute());
    }

    #[test]
    fn reads_a_profile_and_rejects_other_json() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        fs::write(
            &good,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let got = load_profile(&good).unwrap();
        assert_eq!(got.default_action(), LinuxSeccompAction::ScmpActErrno);
        let bad = dir.path().join("bad.json");
        fs::write(&bad, r#"{"syscalls":"read"}"#).unwrap();
        assert!(matches!(
            load_profile(&bad),
            Err(BundleError::Profile { .. })
        ));
    }
}

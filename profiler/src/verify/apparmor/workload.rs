//! What the guest runs, read from an OCI bundle: its root filesystem becomes the guest's `/`,
//! `process` (args, env, cwd, user) is started confined, the spec's tmpfs mounts are mounted,
//! and the capability bounding set is what the VM's profile may use (see
//! [`super::for_the_vm`]).

use std::{
    ffi::OsString,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{model::CAPABILITY_NAMES, verify::BundleError};

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("{0}: the config has no process.args: nothing to run")]
    NoProcess(PathBuf),
    #[error("{0}: the config has no root.path")]
    NoRoot(PathBuf),
}

/// The workload and how to exercise it in the guest.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The guest's `/`.
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Where the spec mounts a tmpfs, with its `mode=`/`size=` options (`/dev` excepted: the
    /// guest has devtmpfs there).
    pub tmpfs: Vec<(String, Vec<String>)>,
    /// The container's capability bounding set, as AppArmor names capabilities.
    pub capabilities: Vec<&'static str>,
    /// Wait until something listens on this port before the suite; its address is added to
    /// the guest's loopback interface when it is not a loopback one.
    pub wait_tcp: Option<SocketAddr>,
    /// A host program and its arguments, copied into the guest and run there once the
    /// workload is up; must exit 0. Empty: no suite.
    pub suite: Vec<OsString>,
    pub suite_timeout: Duration,
}

impl Workload {
    /// The workload of `bundle/config.json`.
    pub fn from_bundle(bundle: &Path) -> Result<Self, WorkloadError> {
        let config = bundle.join("config.json");
        let spec = crate::verify::load_spec(&config)?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| WorkloadError::NoRoot(config.clone()))?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            bundle.join(root.path())
        };
        let process = spec
            .process()
            .as_ref()
            .filter(|p| p.args().as_ref().is_some_and(|a| !a.is_empty()))
            .ok_or_else(|| WorkloadError::NoProcess(config.clone()))?;
        let bounding: Vec<String> = process
            .capabilities()
            .as_ref()
            .and_then(|c| c.bounding().as_ref())
            .into_iter()
            .flatten()
            .filter_map(|c| Some(serde_json::to_value(c).ok()?.as_str()?.to_ascii_lowercase()))
            .collect();
        let tmpfs = spec
            .mounts()
            .iter()
            .flatten()
            .filter(|m| m.typ().as_deref() == Some("tmpfs") && m.destination() != Path::new("/dev"))
            .map(|m| {
                let options = m
                    .options()
                    .iter()
                    .flatten()
                    .filter(|o| o.starts_with("mode=") || o.starts_with("size="))
                    .cloned()
                    .collect();
                (m.destination().to_string_lossy().into_owned(), options)
            })
            .collect();
        Ok(Self {
            rootfs,
            args: process.args().clone().unwrap_or_default(),
            env: process.env().clone().unwrap_or_default(),
            cwd: process.cwd().to_string_lossy().into_owned(),
            uid: process.user().uid(),
            gid: process.user().gid(),
            additional_gids: process.user().additional_gids().clone().unwrap_or_default(),
            tmpfs,
            capabilities: CAPABILITY_NAMES
                .iter()
                .copied()
                .filter(|c| bounding.iter().any(|b| b.trim_start_matches("cap_") == *c))
                .collect(),
            wait_tcp: None,
            suite: Vec::new(),
            suite_timeout: Duration::from_secs(300),
        })
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::Spec;

    use super::*;

    #[test]
    fn reads_process_mounts_and_capabilities_of_a_runc_spec() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = Spec::default();
        let mut process = spec.process().clone().unwrap();
        process.set_args(Some(vec![
            "/usr/bin/redis-server".into(),
            "--port".into(),
            "6390".into(),
        ]));
        spec.set_process(Some(process));
        let mut mounts = spec.mounts().clone().unwrap();
        mounts.push(
            oci_spec::runtime::MountBuilder::default()
                .destination("/run")
                .typ("tmpfs")
                .source("tmpfs")
                .options(vec!["nosuid".to_string(), "mode=755".to_string()])
                .build()
                .unwrap(),
        );
        spec.set_mounts(Some(mounts));
        spec.save(dir.path().join("config.json")).unwrap();

        let w = Workload::from_bundle(dir.path()).unwrap();
        assert_eq!(w.rootfs, dir.path().join("rootfs"));
        assert_eq!(w.args, ["/usr/bin/redis-server", "--port", "6390"]);
        assert_eq!(w.cwd, "/");
        assert_eq!((w.uid, w.gid), (0, 0));
        assert!(w.env.iter().any(|e| e.starts_with("PATH=")));
        // runc spec's /dev tmpfs and /dev/shm are there; /dev itself is the guest's devtmpfs.
        assert!(w.tmpfs.iter().all(|(d, _)| d != "/dev"), "{:?}", w.tmpfs);
        assert!(w.tmpfs.contains(&("/run".into(), vec!["mode=755".into()])));
        // oci-spec's default bounding set: runc spec's three.
        assert_eq!(w.capabilities, ["kill", "net_bind_service", "audit_write"]);
    }

    #[test]
    fn a_config_without_a_process_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = Spec::default();
        spec.set_process(None);
        spec.save(dir.path().join("config.json")).unwrap();
        assert!(matches!(
            Workload::from_bundle(dir.path()),
            Err(WorkloadError::NoProcess(_))
        ));
        assert!(matches!(
            Workload::from_bundle(&dir.path().join("missing")),
            Err(WorkloadError::Bundle(_))
        ));
    }
}

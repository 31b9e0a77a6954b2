//! Building the demo's OCI bundle: `rootfs/` from the host's own nginx and libraries, and
//! `config.json`.

use std::{
    fs,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
};

use oci_spec::runtime::LinuxSeccomp;

use crate::{
    config::{self, ConfigOptions},
    rootfs::{self, io_err, RootfsError},
    site,
};

const NGINX_CONF_TEMPLATE: &str = include_str!("../nginx.conf");

/// The probe's path inside the container: profgen's own (`profgen verify` brings it into any
/// container; the demo's bundle also holds a copy, for running it by hand).
pub const PROBE_PATH: &str = "/probe";

const PASSWD: &str = "\
root:x:0:0:root:/root:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";
const GROUP: &str = "\
root:x:0:
www-data:x:33:
nogroup:x:65534:
";
/// glibc's built-in default would also do, but an explicit file keeps lookups to /etc.
const NSSWITCH: &str = "passwd: files\ngroup: files\nhosts: files\n";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0} already exists; build the bundle into a new or empty directory")]
    Exists(PathBuf),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("profgen was built without its seccomp probe (no C compiler at build time): install gcc and rebuild")]
    NoProbe,
}

/// What to build.
#[derive(Clone, Debug)]
pub struct BundleOptions {
    /// nginx listens on 127.0.0.1 on this port (the container shares the host network).
    pub port: u16,
    /// `linux.cgroupsPath`, e.g. `/profgen/demo-1234`: runc creates the container's cgroup at
    /// this path in every hierarchy, the v2 one at `<cgroup2 mount>/<path>`. `None`: runc
    /// names it after the container id.
    pub cgroups_path: Option<String>,
    /// `linux.seccomp`; see [`crate::seccomp::recording`] for recording.
    pub seccomp: Option<LinuxSeccomp>,
    /// The host's nginx, copied with its libraries.
    pub nginx: PathBuf,
    /// The host's mime.types, copied as /etc/nginx/mime.types.
    pub mime_types: PathBuf,
}

impl BundleOptions {
    pub fn new(port: u16) -> Self {
        Self {
            port,
            cgroups_path: None,
            seccomp: None,
            nginx: PathBuf::from(config::NGINX_BIN),
            mime_types: PathBuf::from("/etc/nginx/mime.types"),
        }
    }
}

/// A built bundle.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The bundle directory (what `runc --bundle` takes).
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub config: PathBuf,
    /// Where nginx listens.
    pub addr: SocketAddr,
    /// The probe binary inside the container.
    pub probe_path: &'static str,
}

impl Bundle {
    /// `http://127.0.0.1:PORT`, what `demo-suite --url` takes.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Rewrites `config.json`, e.g. to record or to enforce a different profile.
    pub fn write_config(&self, opts: &ConfigOptions) -> Result<(), BundleError> {
        let json = serde_json::to_string_pretty(&config::spec(opts)).expect("a spec serializes");
        fs::write(&self.config, json).map_err(io_err(&self.config))?;
        Ok(())
    }
}

/// nginx.conf with the port filled in.
pub fn nginx_conf(port: u16) -> String {
    NGINX_CONF_TEMPLATE.replace("@PORT@", &port.to_string())
}

/// Builds `dir/rootfs` and `dir/config.json`. `dir` may exist but must not hold a rootfs.
pub fn build_bundle(dir: &Path, opts: &BundleOptions) -> Result<Bundle, BundleError> {
    let rootfs_dir = dir.join("rootfs");
    if rootfs_dir.exists() {
        return Err(BundleError::Exists(rootfs_dir));
    }
    rootfs::create_dirs(&rootfs_dir)?;
    // runc resolves the root relative to the bundle, and we hand out absolute paths.
    let dir = fs::canonicalize(dir).map_err(io_err(dir))?;
    let rootfs_dir = dir.join("rootfs");

    rootfs::install_binary(&rootfs_dir, &opts.nginx)?;
    let mime = fs::read(&opts.mime_types).map_err(io_err(&opts.mime_types))?;
    rootfs::write_file(&rootfs_dir, "/etc/nginx/mime.types", &mime, 0o644)?;
    rootfs::write_file(
        &rootfs_dir,
        config::NGINX_CONF,
        nginx_conf(opts.port).as_bytes(),
        0o644,
    )?;
    for asset in site::ASSETS {
        let path = format!("{}{}", site::ROOT_IN_CONTAINER, asset.path);
        rootfs::write_file(&rootfs_dir, &path, asset.body, 0o644)?;
    }
    rootfs::write_file(&rootfs_dir, "/etc/passwd", PASSWD.as_bytes(), 0o644)?;
    rootfs::write_file(&rootfs_dir, "/etc/group", GROUP.as_bytes(), 0o644)?;
    rootfs::write_file(
        &rootfs_dir,
        "/etc/nsswitch.conf",
        NSSWITCH.as_bytes(),
        0o644,
    )?;
    for dir in config::mount_points() {
        rootfs::create_dirs(&rootfs_dir.join(dir.trim_start_matches('/')))?;
    }
    let probe = profgen::verify::shipped_probe::binary().ok_or(BundleError::NoProbe)?;
    rootfs::write_file(&rootfs_dir, PROBE_PATH, probe, 0o755)?;

    let bundle = Bundle {
        config: dir.join("config.json"),
        rootfs: rootfs_dir,
        dir,
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, opts.port)),
        probe_path: PROBE_PATH,
    };
    bundle.write_config(&ConfigOptions {
        cgroups_path: opts.cgroups_path.clone(),
        seccomp: opts.seccomp.clone(),
    })?;
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_goes_into_the_listen_directive() {
        let conf = nginx_conf(18080);
        assert!(conf.contains("listen 127.0.0.1:18080;"));
        assert!(!conf.contains("@PORT@"));
        assert!(conf.contains("daemon off;"));
        assert!(conf.contains("user www-data www-data;"));
        assert!(conf.contains(&format!("root {};", site::ROOT_IN_CONTAINER)));
    }

    #[test]
    fn users_for_nginx_exist() {
        assert!(PASSWD.lines().any(|l| l.starts_with("www-data:x:33:33:")));
        assert!(GROUP.lines().any(|l| l.starts_with("www-data:x:33:")));
    }
}

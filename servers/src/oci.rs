//! A server container's `config.json`: the demo's shape (read-only root, host network, runc's
//! default masked paths) with the server's own process, user, capabilities and mounts.

use std::path::PathBuf;

use profgen_demo::config::{self, mount, runc_spec_mounts};

use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxSeccomp, Mount,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

/// A host directory mounted read-write into the container: the server's data, kept from one
/// container to the next (and from run A to run B).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub destination: String,
}

/// What differs between servers.
#[derive(Clone, Debug, Default)]
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    /// Bounding, effective and permitted sets (none inheritable or ambient).
    pub capabilities: Vec<Capability>,
}

/// Everything `config.json` says.
#[derive(Clone, Debug, Default)]
pub struct ContainerConfig {
    pub process: Process,
    pub hostname: String,
    /// tmpfs mounts: destination and mode (`mode=1777`).
    pub tmpfs: Vec<(String, String)>,
    pub binds: Vec<Bind>,
    pub cgroups_path: Option<String>,
    pub seccomp: Option<LinuxSeccomp>,
}

fn capability_sets(caps: &[Capability]) -> LinuxCapabilities {
    let caps: Capabilities = caps.iter().copied().collect();
    let mut sets = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .expect("valid capabilities");
    // The builder starts from oci-spec's defaults, which fill these two.
    sets.set_inheritable(None);
    sets.set_ambient(None);
    sets
}

/// The spec for `cfg` with the root filesystem at `rootfs` (relative to the bundle).
pub fn spec(cfg: &ContainerConfig) -> Spec {
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(cfg.process.uid)
                .gid(cfg.process.gid)
                .build()
                .expect("valid user"),
        )
        .args(cfg.process.args.clone())
        .env(
            [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
                "LANG=C".to_string(),
                "TZ=UTC".to_string(),
            ]
            .into_iter()
            .chain(cfg.process.env.iter().cloned())
            .collect::<Vec<_>>(),
        )
        .cwd("/")
        .capabilities(capability_sets(&cfg.process.capabilities))
        .rlimits(vec![config::nofile_rlimit()])
        .no_new_privileges(true)
        .build()
        .expect("valid process");

    // Host network: suites reach the servers on loopback, as the demo's tests do.
    let linux = config::host_network_linux(cfg.cgroups_path.as_deref(), cfg.seccomp.clone());

    SpecBuilder::default()
        .version("1.0.2-dev")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(true)
                .build()
                .expect("valid root"),
        )
        .hostname(cfg.hostname.clone())
        .process(process)
        .mounts(mounts(cfg))
        .linux(linux)
        .build()
        .expect("valid spec")
}

fn mounts(cfg: &ContainerConfig) -> Vec<Mount> {
    let mut mounts = runc_spec_mounts();
    mounts.extend([
        // As `runc spec` and Docker give it: servers read sysfs at start (redis its
        // transparent huge page setting and clock source), and what failed in the recording
        // for want of it would be refused on a real node.
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
    ]);
    for (dir, mode) in &cfg.tmpfs {
        mounts.push(mount(
            dir,
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "noexec", mode, "size=64m"],
        ));
    }
    for bind in &cfg.binds {
        mounts.push(mount(
            &bind.destination,
            "bind",
            &bind.source.to_string_lossy(),
            &["rbind", "rw", "nosuid", "nodev"],
        ));
    }
    mounts
}

/// Directories that must exist in the root filesystem for the mounts: runc cannot create
/// them once the root is read-only.
pub fn mount_points(cfg: &ContainerConfig) -> Vec<String> {
    let mut dirs: Vec<String> = ["/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"]
        .map(String::from)
        .to_vec();
    dirs.extend(cfg.tmpfs.iter().map(|(d, _)| d.clone()));
    dirs.extend(cfg.binds.iter().map(|b| b.destination.clone()));
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ContainerConfig {
        ContainerConfig {
            process: Process {
                args: vec!["/usr/bin/redis-server".into(), "/etc/redis.conf".into()],
                env: vec!["X=1".into()],
                uid: 999,
                gid: 998,
                capabilities: vec![Capability::Setuid],
            },
            hostname: "redis".into(),
            tmpfs: vec![("/tmp".into(), "mode=1777".into())],
            binds: vec![Bind {
                source: "/srv/state/data".into(),
                destination: "/var/lib/redis".into(),
            }],
            cgroups_path: Some("/p/redis-1".into()),
            seccomp: None,
        }
    }

    #[test]
    fn the_process_is_the_servers() {
        let j = serde_json::to_value(spec(&config())).unwrap();
        assert_eq!(
            j["process"]["user"],
            serde_json::json!({"uid": 999, "gid": 998})
        );
        assert_eq!(j["process"]["args"][0], "/usr/bin/redis-server");
        assert!(j["process"]["env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("X=1")));
        assert_eq!(
            j["process"]["capabilities"]["bounding"],
            serde_json::json!(["CAP_SETUID"])
        );
        assert!(j["process"]["capabilities"].get("ambient").is_none());
        assert_eq!(j["linux"]["cgroupsPath"], "/p/redis-1");
        assert_eq!(
            j["root"],
            serde_json::json!({"path": "rootfs", "readonly": true})
        );
    }

    #[test]
    fn data_is_bind_mounted_and_needs_a_mount_point() {
        let cfg = config();
        let j = serde_json::to_value(spec(&cfg)).unwrap();
        let bind = j["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/var/lib/redis")
            .unwrap();
        assert_eq!(bind["type"], "bind");
        assert_eq!(bind["source"], "/srv/state/data");
        assert!(mount_points(&cfg).contains(&"/var/lib/redis".to_string()));
        assert!(mount_points(&cfg).contains(&"/tmp".to_string()));
    }

    #[test]
    fn round_trips_through_json() {
        let original = spec(&config());
        let back: Spec = serde_json::from_str(&serde_json::to_string(&original).unwrap()).unwrap();
        assert_eq!(back, original);
    }
}

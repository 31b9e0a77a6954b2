//! The demo container's `config.json`, built with the `oci-spec` types.

use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder,
    LinuxDeviceCgroupBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder,
    LinuxSeccomp, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

/// nginx's config file inside the container.
pub const NGINX_CONF: &str = "/etc/nginx/nginx.conf";
pub const NGINX_BIN: &str = "/usr/sbin/nginx";

/// runc's default set (`runc spec`) plus what nginx's master needs to run its workers as
/// www-data: setgid/setgroups and setuid to switch, chown for the temp directories it creates
/// under /var/lib/nginx. Without them the workers die with EPERM right after the fork.
pub fn capabilities() -> Vec<Capability> {
    vec![
        // runc's defaults.
        Capability::AuditWrite,
        Capability::Kill,
        Capability::NetBindService,
        // nginx's master.
        Capability::Chown,
        Capability::Setgid,
        Capability::Setuid,
    ]
}

/// Bounding, effective and permitted sets. No inheritable set (as `runc spec` since 1.1.5) and
/// no ambient one: the workload runs as root and nothing it executes needs inherited
/// capabilities.
fn capability_sets() -> LinuxCapabilities {
    let caps: Capabilities = capabilities().into_iter().collect();
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

/// Where the container writes: tmpfs, since the root filesystem is read-only.
pub const TMPFS_DIRS: &[(&str, &str)] = &[
    ("/run", "mode=755"),
    ("/tmp", "mode=1777"),
    ("/var/lib/nginx", "mode=755"),
    ("/var/log/nginx", "mode=755"),
];

/// What varies between bundles.
#[derive(Clone, Debug, Default)]
pub struct ConfigOptions {
    /// `linux.cgroupsPath`, e.g. `/profgen/demo-1234`; runc names one after the container
    /// when absent.
    pub cgroups_path: Option<String>,
    pub seccomp: Option<LinuxSeccomp>,
}

/// The spec for nginx serving the demo site from `rootfs` (relative to the bundle).
pub fn spec(opts: &ConfigOptions) -> Spec {
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .build()
                .expect("valid user"),
        )
        .args(
            [NGINX_BIN, "-c", NGINX_CONF, "-e", "stderr"]
                .map(String::from)
                .to_vec(),
        )
        .env(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ])
        .cwd("/")
        .capabilities(capability_sets())
        .rlimits(vec![nofile_rlimit()])
        .no_new_privileges(true)
        .build()
        .expect("valid process");

    // Host network: tests reach nginx on loopback, and there is no CNI to wire up.
    let linux = host_network_linux(opts.cgroups_path.as_deref(), opts.seccomp.clone());

    SpecBuilder::default()
        .version("1.0.2-dev")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(true)
                .build()
                .expect("valid root"),
        )
        .hostname("profgen-demo")
        .process(process)
        .mounts(mounts())
        .linux(linux)
        .build()
        .expect("valid spec")
}

/// The mounts `runc spec` gives every container: /proc, /dev, /dev/pts, /dev/shm.
pub fn runc_spec_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
    ]
}

/// One mount; no `options` field when there are none.
pub fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut builder = MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source);
    if !options.is_empty() {
        builder = builder.options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>());
    }
    builder.build().expect("valid mount")
}

fn mounts() -> Vec<Mount> {
    let mut mounts = runc_spec_mounts();
    for (dir, mode) in TMPFS_DIRS {
        mounts.push(mount(
            dir,
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "noexec", mode, "size=16m"],
        ));
    }
    mounts
}

/// Directories that must exist in the root filesystem for the mounts above: runc cannot create
/// them once the root is read-only.
pub fn mount_points() -> Vec<&'static str> {
    let mut dirs = vec!["/proc", "/dev", "/dev/pts", "/dev/shm"];
    dirs.extend(TMPFS_DIRS.iter().map(|(dir, _)| *dir));
    dirs
}

/// RLIMIT_NOFILE 1024, as `runc spec` sets it.
pub fn nofile_rlimit() -> PosixRlimit {
    PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(1024u64)
        .soft(1024u64)
        .build()
        .expect("valid rlimit")
}

/// The `linux` section of a container on the host's network: its own pid, ipc, uts and mount
/// namespaces, no device access, runc's masked and read-only paths, the cgroup and the
/// seccomp profile given.
pub fn host_network_linux(cgroups_path: Option<&str>, seccomp: Option<LinuxSeccomp>) -> Linux {
    let namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ]
    .into_iter()
    .map(|typ| {
        LinuxNamespaceBuilder::default()
            .typ(typ)
            .build()
            .expect("valid namespace")
    })
    .collect::<Vec<_>>();

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(
            LinuxResourcesBuilder::default()
                .devices(vec![LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .expect("valid device rule")])
                .build()
                .expect("valid resources"),
        )
        .masked_paths(oci_spec::runtime::get_default_maskedpaths())
        .readonly_paths(oci_spec::runtime::get_default_readonly_paths())
        .build()
        .expect("valid linux section");
    linux.set_cgroups_path(cgroups_path.map(PathBuf::from));
    linux.set_seccomp(seccomp);
    linux
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp;

    fn json(opts: &ConfigOptions) -> serde_json::Value {
        serde_json::to_value(spec(opts)).unwrap()
    }

    #[test]
    fn runs_nginx_as_root_with_a_read_only_root() {
        let j = json(&ConfigOptions::default());
        assert_eq!(
            j["process"]["user"],
            serde_json::json!({"uid": 0, "gid": 0})
        );
        assert_eq!(
            j["process"]["args"],
            serde_json::json!([
                "/usr/sbin/nginx",
                "-c",
                "/etc/nginx/nginx.conf",
                "-e",
                "stderr"
            ])
        );
        assert_eq!(j["process"]["terminal"], false);
        assert_eq!(j["process"]["noNewPrivileges"], true);
        assert_eq!(
            j["root"],
            serde_json::json!({"path": "rootfs", "readonly": true})
        );
    }

    #[test]
    fn capabilities_are_runcs_defaults_plus_nginx_master() {
        let j = json(&ConfigOptions::default());
        let mut bounding: Vec<String> =
            serde_json::from_value(j["process"]["capabilities"]["bounding"].clone()).unwrap();
        bounding.sort();
        assert_eq!(
            bounding,
            [
                "CAP_AUDIT_WRITE",
                "CAP_CHOWN",
                "CAP_KILL",
                "CAP_NET_BIND_SERVICE",
                "CAP_SETGID",
                "CAP_SETUID"
            ]
        );
        let caps = &j["process"]["capabilities"];
        assert_eq!(caps["effective"].as_array().unwrap().len(), 6);
        assert_eq!(caps["permitted"].as_array().unwrap().len(), 6);
        assert!(caps.get("ambient").is_none() && caps.get("inheritable").is_none());
    }

    #[test]
    fn shares_the_host_network() {
        let j = json(&ConfigOptions::default());
        let types: Vec<&str> = j["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["pid", "ipc", "uts", "mount"]);
    }

    #[test]
    fn mounts_tmpfs_where_nginx_writes() {
        let j = json(&ConfigOptions::default());
        let mounts = j["mounts"].as_array().unwrap();
        let dests: Vec<&str> = mounts
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/run",
                "/tmp",
                "/var/lib/nginx",
                "/var/log/nginx"
            ]
        );
        for m in &mounts[4..] {
            assert_eq!(m["type"], "tmpfs");
        }
        assert_eq!(mount_points(), dests);
    }

    #[test]
    fn cgroup_and_seccomp_come_from_the_options() {
        let plain = json(&ConfigOptions::default());
        assert!(plain["linux"].get("cgroupsPath").is_none());
        assert!(plain["linux"].get("seccomp").is_none());

        let j = json(&ConfigOptions {
            cgroups_path: Some("/profgen/demo-1".into()),
            seccomp: Some(seccomp::recording()),
        });
        assert_eq!(j["linux"]["cgroupsPath"], "/profgen/demo-1");
        assert_eq!(j["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
    }

    #[test]
    fn round_trips_through_json() {
        let original = spec(&ConfigOptions {
            cgroups_path: Some("/x".into()),
            seccomp: Some(seccomp::recording_refusing(&["unshare"])),
        });
        let text = serde_json::to_string(&original).unwrap();
        let back: Spec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, original);
    }
}

//! Building a server's OCI bundle from a [`Recipe`]: the host's Debian binaries with their
//! `ldd` libraries (`profgen_demo::rootfs`), the server's config, users, and its state
//! directories on the host, bind-mounted so that data outlives the container.

use std::{
    fs,
    os::unix::fs::{chown, PermissionsExt},
    path::{Path, PathBuf},
};

use oci_spec::runtime::LinuxSeccomp;
use profgen_demo::rootfs::{self, RootfsError};

use crate::oci::{self, Bind, ContainerConfig, Process};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0} already exists; build the bundle into a new or empty directory")]
    Exists(PathBuf),
    #[error("{0} is missing: install the server's Debian package ({1})")]
    Missing(PathBuf, &'static str),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A user of the container's `/etc/passwd` and its primary group.
#[derive(Clone, Debug)]
pub struct User {
    pub name: &'static str,
    pub uid: u32,
    pub gid: u32,
    pub home: &'static str,
}

/// A directory of the server's state: `<state>/<name>` on the host, `destination` inside.
#[derive(Clone, Debug)]
pub struct StateDir {
    pub name: &'static str,
    pub destination: &'static str,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// What goes into a server's bundle.
#[derive(Clone, Debug)]
pub struct Recipe {
    /// The container's hostname; also names the server in messages.
    pub name: &'static str,
    /// The Debian package that ships the binaries, for the error when one is missing.
    pub package: &'static str,
    /// Programs and shared objects, each copied with what `ldd` lists for it.
    pub binaries: Vec<PathBuf>,
    /// Host directories copied whole (data files the server reads at run time).
    pub trees: Vec<PathBuf>,
    /// Files written into the root filesystem: path, contents, mode.
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// Empty directories in the (read-only) root filesystem.
    pub dirs: Vec<&'static str>,
    pub users: Vec<User>,
    pub process: Process,
    pub tmpfs: Vec<(&'static str, &'static str)>,
    pub state: Vec<StateDir>,
}

/// A built bundle and where its state lives.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The bundle directory (what `runc --bundle` takes).
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub config_path: PathBuf,
    /// The host directory holding the state directories.
    pub state: PathBuf,
    /// `config.json` without a cgroup path or seccomp filter.
    pub config: ContainerConfig,
}

impl Bundle {
    /// Rewrites `config.json` with `cgroups_path` and `seccomp`: each container of a recorded
    /// run gets a cgroup of its own below the recorder's.
    pub fn write_config(
        &self,
        cgroups_path: Option<String>,
        seccomp: Option<LinuxSeccomp>,
    ) -> Result<(), BundleError> {
        let cfg = ContainerConfig {
            cgroups_path,
            seccomp,
            ..self.config.clone()
        };
        write_spec(&self.config_path, &cfg)
    }

    /// A second bundle at `dir` on the same root filesystem and state running `args` instead
    /// of the server (a one-off set-up step such as `initdb`).
    pub fn with_args(&self, dir: &Path, args: Vec<String>) -> Result<PathBuf, BundleError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut cfg = self.config.clone();
        cfg.process.args = args;
        let mut spec = oci::spec(&cfg);
        let mut root = spec.root().clone().expect("spec has a root");
        root.set_path(self.rootfs.clone());
        spec.set_root(Some(root));
        let path = dir.join("config.json");
        let json = serde_json::to_string_pretty(&spec).expect("a spec serializes");
        fs::write(&path, json).map_err(io_err(&path))?;
        Ok(dir.to_owned())
    }
}

impl Bundle {
    /// A copy of the bundle at `dir` for a VM that has no bind mounts: the root filesystem
    /// with the state directories' current contents at their destinations (owners and modes
    /// kept), and a `config.json` without the binds. The guest works on the copy; the host's
    /// state is not touched.
    pub fn vm_copy(&self, dir: &Path) -> Result<PathBuf, BundleError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let rootfs_dir = dir.join("rootfs");
        copy_all(&self.rootfs, &rootfs_dir)?;
        for bind in &self.config.binds {
            let dest = rootfs_dir.join(bind.destination.trim_start_matches('/'));
            copy_all(&bind.source, &dest)?;
        }
        let cfg = ContainerConfig {
            binds: Vec::new(),
            ..self.config.clone()
        };
        write_spec(&dir.join("config.json"), &cfg)?;
        Ok(dir.to_owned())
    }
}

/// `cp -a SRC/. DEST`: contents, owners, modes, symlinks as they are.
fn copy_all(src: &Path, dest: &Path) -> Result<(), BundleError> {
    fs::create_dir_all(dest).map_err(io_err(dest))?;
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(src.join("."))
        .arg(dest)
        .output()
        .map_err(io_err(Path::new("cp")))?;
    if !out.status.success() {
        return Err(BundleError::Io {
            path: src.to_owned(),
            source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        });
    }
    Ok(())
}

fn write_spec(path: &Path, cfg: &ContainerConfig) -> Result<(), BundleError> {
    let json = serde_json::to_string_pretty(&oci::spec(cfg)).expect("a spec serializes");
    fs::write(path, json).map_err(io_err(path))
}

/// `/etc/passwd` and `/etc/group` for `users` (root always first).
pub fn passwd_and_group(users: &[User]) -> (String, String) {
    let mut passwd = String::from("root:x:0:0:root:/root:/usr/sbin/nologin\n");
    let mut group = String::from("root:x:0:\n");
    for u in users {
        passwd.push_str(&format!(
            "{}:x:{}:{}:{}:{}:/usr/sbin/nologin\n",
            u.name, u.uid, u.gid, u.name, u.home
        ));
        group.push_str(&format!("{}:x:{}:\n", u.name, u.gid));
    }
    (passwd, group)
}

/// Builds `dir/rootfs` and `dir/config.json`; the state directories are made below `state`
/// (kept when they exist: a later run starts on the data of an earlier one).
pub fn build(dir: &Path, state: &Path, recipe: &Recipe) -> Result<Bundle, BundleError> {
    for bin in &recipe.binaries {
        if !bin.exists() {
            return Err(BundleError::Missing(bin.clone(), recipe.package));
        }
    }
    let rootfs_dir = dir.join("rootfs");
    if rootfs_dir.exists() {
        return Err(BundleError::Exists(rootfs_dir));
    }
    rootfs::create_dirs(&rootfs_dir)?;
    let dir = fs::canonicalize(dir).map_err(io_err(dir))?;
    let rootfs_dir = dir.join("rootfs");

    for bin in &recipe.binaries {
        rootfs::install_binary(&rootfs_dir, bin)?;
    }
    for tree in &recipe.trees {
        copy_tree(&rootfs_dir, tree)?;
    }
    let (passwd, group) = passwd_and_group(&recipe.users);
    rootfs::write_file(&rootfs_dir, "/etc/passwd", passwd.as_bytes(), 0o644)?;
    rootfs::write_file(&rootfs_dir, "/etc/group", group.as_bytes(), 0o644)?;
    rootfs::write_file(
        &rootfs_dir,
        "/etc/nsswitch.conf",
        b"passwd: files\ngroup: files\nhosts: files\n",
        0o644,
    )?;
    rootfs::write_file(
        &rootfs_dir,
        "/etc/hosts",
        b"127.0.0.1 localhost\n::1 localhost\n",
        0o644,
    )?;
    for (path, contents, mode) in &recipe.files {
        rootfs::write_file(&rootfs_dir, path, contents, *mode)?;
    }
    for d in &recipe.dirs {
        rootfs::create_dirs(&rootfs_dir.join(d.trim_start_matches('/')))?;
    }

    fs::create_dir_all(state).map_err(io_err(state))?;
    let state = fs::canonicalize(state).map_err(io_err(state))?;
    let mut binds = Vec::new();
    for s in &recipe.state {
        let host = state.join(s.name);
        if !host.exists() {
            fs::create_dir(&host).map_err(io_err(&host))?;
            fs::set_permissions(&host, fs::Permissions::from_mode(s.mode))
                .map_err(io_err(&host))?;
            chown(&host, Some(s.uid), Some(s.gid)).map_err(io_err(&host))?;
        }
        binds.push(Bind {
            source: host,
            destination: s.destination.to_owned(),
        });
    }
    let config = ContainerConfig {
        process: recipe.process.clone(),
        hostname: recipe.name.to_owned(),
        tmpfs: recipe
            .tmpfs
            .iter()
            .map(|(d, m)| (d.to_string(), m.to_string()))
            .collect(),
        binds,
        cgroups_path: None,
        seccomp: None,
    };
    for d in oci::mount_points(&config) {
        rootfs::create_dirs(&rootfs_dir.join(d.trim_start_matches('/')))?;
    }
    let bundle = Bundle {
        config_path: dir.join("config.json"),
        rootfs: rootfs_dir,
        dir,
        state,
        config,
    };
    write_spec(&bundle.config_path, &bundle.config)?;
    Ok(bundle)
}

/// Copies every file below the host directory `tree` (symlinks as symlinks) into `rootfs`.
pub fn copy_tree(rootfs_dir: &Path, tree: &Path) -> Result<(), BundleError> {
    let mut entries: Vec<_> = fs::read_dir(tree)
        .map_err(io_err(tree))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    if entries.is_empty() {
        rootfs::create_dirs(&rootfs_dir.join(tree.strip_prefix("/").unwrap_or(tree)))?;
    }
    for path in entries {
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            copy_tree(rootfs_dir, &path)?;
        } else {
            rootfs::mirror(rootfs_dir, &path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lists_root_then_the_servers_users() {
        let (passwd, group) = passwd_and_group(&[User {
            name: "redis",
            uid: 999,
            gid: 999,
            home: "/var/lib/redis",
        }]);
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/usr/sbin/nologin\nredis:x:999:999:redis:/var/lib/redis:/usr/sbin/nologin\n"
        );
        assert_eq!(group, "root:x:0:\nredis:x:999:\n");
    }

    #[test]
    fn a_missing_binary_names_its_package() {
        let dir = tempfile::tempdir().unwrap();
        let recipe = Recipe {
            name: "x",
            package: "no-such-package",
            binaries: vec!["/nonexistent/server".into()],
            trees: vec![],
            files: vec![],
            dirs: vec![],
            users: vec![],
            process: Process::default(),
            tmpfs: vec![],
            state: vec![],
        };
        let err = build(dir.path(), &dir.path().join("state"), &recipe).unwrap_err();
        assert!(err.to_string().contains("no-such-package"), "{err}");
    }

    #[test]
    fn builds_a_root_with_state_kept_between_builds() {
        let dir = tempfile::tempdir().unwrap();
        let recipe = Recipe {
            name: "sh",
            package: "dash",
            binaries: vec!["/bin/sh".into()],
            trees: vec![],
            files: vec![("/etc/app.conf".into(), b"x".to_vec(), 0o644)],
            dirs: vec!["/var/empty"],
            users: vec![],
            process: Process {
                args: vec!["/bin/sh".into()],
                ..Process::default()
            },
            tmpfs: vec![("/tmp", "mode=1777")],
            state: vec![StateDir {
                name: "data",
                destination: "/var/lib/app",
                uid: 0,
                gid: 0,
                mode: 0o700,
            }],
        };
        let state = dir.path().join("state");
        let a = build(&dir.path().join("a"), &state, &recipe).unwrap();
        assert!(a.rootfs.join("bin/sh").exists());
        assert!(a.rootfs.join("var/lib/app").is_dir());
        assert!(a.rootfs.join("var/empty").is_dir());
        assert_eq!(
            fs::read(a.rootfs.join("etc/app.conf")).unwrap(),
            b"x".to_vec()
        );
        fs::write(state.join("data/kept"), b"1").unwrap();
        let b = build(&dir.path().join("b"), &state, &recipe).unwrap();
        assert!(b.state.join("data/kept").exists());
        let spec: serde_json::Value =
            serde_json::from_slice(&fs::read(&b.config_path).unwrap()).unwrap();
        assert!(spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["source"] == serde_json::json!(state.join("data"))));
        assert!(build(&dir.path().join("a"), &state, &recipe).is_err());

        // The VM's copy holds the state at its destination, and mounts no host directory.
        let vm = b.vm_copy(&dir.path().join("vm")).unwrap();
        assert_eq!(fs::read(vm.join("rootfs/var/lib/app/kept")).unwrap(), b"1");
        assert!(vm.join("rootfs/bin/sh").exists());
        let spec: serde_json::Value =
            serde_json::from_slice(&fs::read(vm.join("config.json")).unwrap()).unwrap();
        assert!(!spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "bind"));
    }
}

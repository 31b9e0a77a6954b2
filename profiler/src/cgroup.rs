//! cgroup v2 paths and ids. A cgroup's id (what `bpf_get_current_cgroup_id` returns) is the
//! inode number of its directory in the cgroup2 filesystem.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 filesystem is mounted (looked in /proc/self/mountinfo); mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified`")]
    NoCgroup2,
    #[error("cgroup {0} does not exist (give a directory of the cgroup2 filesystem, e.g. /sys/fs/cgroup/unified/…)")]
    Missing(PathBuf),
    #[error("{0} is not inside the cgroup2 filesystem mounted at {1}")]
    NotCgroup2(PathBuf, PathBuf),
    #[error("process {0} does not exist")]
    NoSuchPid(u32),
    /// The cause follows in the error chain.
    #[error("{}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the cgroup2 filesystem is mounted (`/sys/fs/cgroup` on a pure v2 host,
/// `/sys/fs/cgroup/unified` on a hybrid one).
pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(io(Path::new("/proc/self/mountinfo")))?;
    mount_from_mountinfo(&mountinfo).ok_or(CgroupError::NoCgroup2)
}

/// Environment variable naming where the host's cgroup2 tree is visible, for an agent that
/// sees it through a hostPath mount (`/host/sys/fs/cgroup`) rather than at its own
/// `/proc/self/mountinfo` mount point.
pub const CGROUP_ROOT_ENV: &str = "PROFGEN_CGROUP_ROOT";

/// The cgroup2 tree to work in: `explicit` if given, else `$PROFGEN_CGROUP_ROOT`, else this
/// process's cgroup2 mount. A cgroup's id is its directory's inode, the same through any
/// mount of the hierarchy, so ids read below an override match what the kernel reports.
pub fn cgroup2_root(explicit: Option<&Path>) -> Result<PathBuf, CgroupError> {
    let chosen = explicit
        .map(Path::to_owned)
        .or_else(|| std::env::var_os(CGROUP_ROOT_ENV).map(PathBuf::from));
    match chosen {
        Some(root) if root.is_dir() => Ok(root),
        Some(root) => Err(CgroupError::Missing(root)),
        None => cgroup2_mount(),
    }
}

/// Parses mountinfo: fields are `id parent major:minor root mountpoint opts… - fstype …`.
fn mount_from_mountinfo(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        if fstype != "cgroup2" {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// A cgroup of the v2 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    /// The cgroup2 mount point.
    pub mount: PathBuf,
    /// Path below the mount, starting with `/` (`/` is the root).
    pub rel: String,
}

impl Cgroup {
    /// The root of the cgroup2 hierarchy.
    pub fn root() -> Result<Self, CgroupError> {
        Ok(Self {
            mount: cgroup2_mount()?,
            rel: "/".into(),
        })
    }

    /// The cgroup `rel` (below the root, starting with `/`) of the tree at `mount`, which
    /// must exist.
    pub fn at(mount: &Path, rel: &str) -> Result<Self, CgroupError> {
        let cg = Self {
            mount: mount.to_owned(),
            rel: format!("/{}", rel.trim_start_matches('/')),
        };
        if !cg.path().is_dir() {
            return Err(CgroupError::Missing(cg.path()));
        }
        Ok(cg)
    }

    /// The cgroup at `path`, which may be absolute on the host or relative to the cgroup2
    /// mount (`/profgen/demo`).
    pub fn resolve(path: &Path) -> Result<Self, CgroupError> {
        let mount = cgroup2_mount()?;
        let abs = if path.starts_with(&mount) {
            path.to_owned()
        } else if path.is_absolute() && path.exists() {
            // An existing host directory outside the cgroup2 mount (a v1 hierarchy, say).
            return Err(CgroupError::NotCgroup2(path.to_owned(), mount));
        } else {
            mount.join(path.strip_prefix("/").unwrap_or(path))
        };
        if !abs.is_dir() {
            return Err(CgroupError::Missing(abs));
        }
        let rel = abs.strip_prefix(&mount).unwrap_or(Path::new(""));
        Ok(Self {
            rel: format!("/{}", rel.display()),
            mount,
        })
    }

    /// The cgroup process `pid` belongs to.
    pub fn of_pid(pid: u32) -> Result<Self, CgroupError> {
        let path = PathBuf::from(format!("/proc/{pid}/cgroup"));
        let text = fs::read_to_string(&path).map_err(|_| CgroupError::NoSuchPid(pid))?;
        // The v2 entry is the one with hierarchy id 0: `0::/path`.
        let rel = text
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or(CgroupError::NoCgroup2)?;
        Ok(Self {
            mount: cgroup2_mount()?,
            rel: rel.to_owned(),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.mount.join(self.rel.trim_start_matches('/'))
    }

    /// The cgroup id.
    pub fn id(&self) -> Result<u64, CgroupError> {
        let path = self.path();
        Ok(fs::metadata(&path).map_err(io(&path))?.ino())
    }

    /// Depth below the root (the root is level 0), as `bpf_get_current_ancestor_cgroup_id`
    /// counts it.
    pub fn level(&self) -> u32 {
        self.rel.split('/').filter(|c| !c.is_empty()).count() as u32
    }

    /// Creates a fresh child cgroup `name` of this one.
    pub fn create_child(&self, name: &str) -> Result<Self, CgroupError> {
        let child = Self {
            mount: self.mount.clone(),
            rel: format!("{}/{name}", self.rel.trim_end_matches('/')),
        };
        let path = child.path();
        fs::create_dir(&path).map_err(io(&path))?;
        Ok(child)
    }

    /// Ids and paths of this cgroup and every cgroup below it that exists now.
    pub fn walk(&self) -> BTreeMap<u64, String> {
        let mut found = BTreeMap::new();
        let mut stack = vec![(self.path(), self.rel.clone())];
        while let Some((dir, rel)) = stack.pop() {
            let Ok(meta) = fs::metadata(&dir) else {
                continue;
            };
            found.insert(meta.ino(), rel.clone());
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let child_rel = format!("{}/{name}", rel.trim_end_matches('/'));
                    stack.push((entry.path(), child_rel));
                }
            }
        }
        found
    }

    /// Removes this cgroup and every cgroup below it, deepest first. Only empty cgroups can
    /// be removed; a cgroup that still has processes is left and reported.
    pub fn remove_tree(&self) -> Result<(), CgroupError> {
        let mut dirs: Vec<PathBuf> = self
            .walk()
            .values()
            .map(|rel| self.mount.join(rel.trim_start_matches('/')))
            .collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            match fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&dir)(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup2_in_hybrid_and_pure_layouts() {
        let hybrid = "\
30 22 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd";
        assert_eq!(
            mount_from_mountinfo(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let pure = "35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw";
        assert_eq!(
            mount_from_mountinfo(pure),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            mount_from_mountinfo("1 0 0:1 / / rw - ext4 /dev/vda rw"),
            None
        );
    }

    #[test]
    fn level_counts_components() {
        let cg = |rel: &str| Cgroup {
            mount: PathBuf::from("/sys/fs/cgroup"),
            rel: rel.into(),
        };
        assert_eq!(cg("/").level(), 0);
        assert_eq!(cg("/profgen").level(), 1);
        assert_eq!(cg("/kubepods/burstable/pod1/ctr").level(), 4);
    }
}

//! Parent cgroups that runc creates and leaves behind.
//!
//! With the cgroupfs driver runc creates `cgroupsPath` in every hierarchy (each v1 controller
//! and the v2 tree), including missing parents, but `runc delete` removes only the leaf. We
//! note which parents did not exist before the container was created and remove them again
//! afterwards; `rmdir` refuses a cgroup that still has children, so a parent that someone
//! else started using in the meantime survives.

use std::{
    fs,
    path::{Path, PathBuf},
};

/// Mount points of every cgroup hierarchy, v1 and v2, from `/proc/self/mountinfo`.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|text| mounts_from_mountinfo(&text))
        .unwrap_or_default()
}

fn mounts_from_mountinfo(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            left.split_whitespace().nth(4).map(PathBuf::from)
        })
        .collect()
}

/// Proper ancestors of `cgroups_path` (relative to a hierarchy's root), deepest first:
/// `/a/b/c` gives `a/b`, `a`.
fn parents(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = Path::new(cgroups_path.trim_start_matches('/'));
    rel.ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .collect()
}

/// The parent directories of `cgroups_path` that do not exist yet in any hierarchy, deepest
/// first: the ones runc is about to create.
pub fn missing_parents(mounts: &[PathBuf], cgroups_path: &str) -> Vec<PathBuf> {
    let parents = parents(cgroups_path);
    mounts
        .iter()
        .flat_map(|mount| parents.iter().map(move |p| mount.join(p)))
        .filter(|dir| !dir.exists())
        .collect()
}

/// Removes what [`missing_parents`] listed, ignoring cgroups that are gone or still in use.
pub fn remove(dirs: &[PathBuf]) {
    for dir in dirs {
        if let Err(err) = fs::remove_dir(dir) {
            log::debug!("leaving cgroup {}: {err}", dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_v1_and_v2_mounts() {
        let info = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
22 1 0:21 / /proc rw - proc proc rw";
        assert_eq!(
            mounts_from_mountinfo(info),
            [
                PathBuf::from("/sys/fs/cgroup/cpu"),
                PathBuf::from("/sys/fs/cgroup/unified")
            ]
        );
    }

    #[test]
    fn parents_are_deepest_first_without_leaf_or_root() {
        assert_eq!(
            parents("/a/b/c"),
            [PathBuf::from("a/b"), PathBuf::from("a")]
        );
        assert!(parents("/leaf").is_empty());
        assert!(parents("").is_empty());
    }

    #[test]
    fn only_missing_parents_are_listed() {
        let root = tempfile::tempdir().unwrap();
        let v1 = root.path().join("pids");
        let v2 = root.path().join("unified");
        fs::create_dir_all(v1.join("a")).unwrap();
        fs::create_dir_all(&v2).unwrap();
        let missing = missing_parents(&[v1.clone(), v2.clone()], "/a/b/leaf");
        assert_eq!(missing, [v1.join("a/b"), v2.join("a/b"), v2.join("a")]);
        fs::create_dir_all(v2.join("a/b")).unwrap();
        remove(&missing);
        assert!(!v2.join("a").exists() && v1.join("a").exists());
    }
}

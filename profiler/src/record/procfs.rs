//! What the recorder reads of a process through `/proc/<pid>` (its root, cwd, fds and
//! mappings) to resolve the names in its events, and what it remembers of processes that
//! have exited before their events were read.

use std::{
    collections::{HashMap, HashSet},
    ffi::OsStr,
    fs::File,
    os::unix::{
        ffi::OsStrExt,
        fs::{MetadataExt, OpenOptionsExt},
        io::AsRawFd,
    },
    path::{Path, PathBuf},
    rc::Rc,
};

use super::facts::AT_FDCWD;
use crate::paths::{self, Base, Last};

/// What `/proc` showed of each recent process when its events were drained: events are read
/// in batches, and a process that exits while earlier ones are resolved (PostgreSQL's
/// startup process walks the data directory after a crash, then exits) leaves relative
/// names that its `/proc` entries can no longer resolve. Refreshed for every process of
/// each batch, so a remembered cwd is never older than the batch its event came in.
#[derive(Default)]
pub(super) struct LastSeen {
    procs: HashMap<u32, Remembered>,
    /// Open roots by (device, inode): one per container, not one per process.
    roots: HashMap<(u64, u64), Rc<Root>>,
    batch: u64,
}

struct Remembered {
    root: Rc<Root>,
    root_seen: PathBuf,
    cwd: Option<PathBuf>,
    batch: u64,
}

/// A process's root directory held open (`O_PATH`): `/proc/self/fd/<fd>` enters it after the
/// process is gone, as `/proc/<pid>/root` did while it lived.
struct Root {
    _file: File,
    path: PathBuf,
}

/// Batches a process's events can still arrive in after the batch it was last seen alive in:
/// the ring holds what it did before it exited, which the next drain takes.
const KEEP_BATCHES: u64 = 2;

impl LastSeen {
    /// Remembers the processes `tgids` (those of the events about to be resolved).
    pub(super) fn note(&mut self, tgids: impl IntoIterator<Item = u32>) {
        self.batch += 1;
        let mut done = HashSet::new();
        for tgid in tgids {
            if done.insert(tgid) {
                self.refresh(tgid);
            }
        }
        let batch = self.batch;
        self.procs.retain(|_, r| r.batch + KEEP_BATCHES >= batch);
        self.roots.retain(|_, root| Rc::strong_count(root) > 1);
    }

    fn refresh(&mut self, tgid: u32) {
        let link = format!("/proc/{tgid}/root");
        let (Ok(root_seen), Ok(file)) = (
            std::fs::read_link(&link),
            File::options()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(&link),
        ) else {
            return;
        };
        let Ok(meta) = file.metadata() else {
            return;
        };
        let root = self
            .roots
            .entry((meta.dev(), meta.ino()))
            .or_insert_with(|| {
                Rc::new(Root {
                    path: PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())),
                    _file: file,
                })
            })
            .clone();
        let cwd = std::fs::read_link(format!("/proc/{tgid}/cwd")).ok();
        self.procs.insert(
            tgid,
            Remembered {
                root,
                root_seen,
                cwd,
                batch: self.batch,
            },
        );
    }
}

/// A process's view of the filesystem: read from `/proc`, and from what [`LastSeen`] noted
/// once `/proc` can no longer say.
pub(super) struct ProcView {
    tgid: u32,
    /// The process's root directory, entered through a magic link (`/proc/self/fd/<n>` of
    /// the noted root, or `/proc/<tgid>/root`): a container's root is often not reachable by
    /// any path of ours (runc bind-mounts the rootfs in the container's own mount namespace).
    root: Option<PathBuf>,
    /// What that link reads as: a host path when the root is reachable from ours (a chroot),
    /// `/` when it is not (then `/proc` links already show paths as the process sees them).
    root_seen: Option<PathBuf>,
    /// The working directory as noted with the root, for when the `cwd` link can no longer
    /// be read (the process exited).
    cwd_seen: Option<PathBuf>,
}

impl ProcView {
    /// The view of `tgid`: its root as noted when its batch was drained (held open, so it
    /// stays usable if the process exits while the batch is resolved), else as `/proc` shows
    /// it now; its cwd is read when needed, with the noted one as the fallback.
    pub(super) fn of(tgid: u32, last: &LastSeen) -> Self {
        let noted = last.procs.get(&tgid);
        let (root, root_seen) = match noted {
            Some(r) => (Some(r.root.path.clone()), Some(r.root_seen.clone())),
            None => {
                let link = PathBuf::from(format!("/proc/{tgid}/root"));
                let seen = std::fs::read_link(&link).ok();
                (seen.is_some().then_some(link), seen)
            }
        };
        Self {
            tgid,
            root,
            root_seen,
            cwd_seen: noted.and_then(|r| r.cwd.clone()),
        }
    }

    /// A path as the process's `/proc` links show it, turned into the process's own view.
    fn inside(&self, seen: &Path) -> Option<Vec<u8>> {
        let root = self.root_seen.as_deref()?;
        let rel = seen.strip_prefix(root).ok()?;
        let mut out = b"/".to_vec();
        out.extend_from_slice(rel.as_os_str().as_bytes());
        Some(out)
    }

    /// The absolute path, in the process's mount namespace and with symlinks resolved inside
    /// its root, that `path` (relative to `dirfd`) names; directories end with `/`. Relative
    /// paths need the cwd or the dirfd: read from `/proc` while the process lives, else the
    /// cwd as last seen or `dirfd_path`, the file the recording saw that fd opened as.
    pub(super) fn resolve(
        &self,
        path: &[u8],
        dirfd: i64,
        dirfd_path: Option<&[u8]>,
        last: Last,
    ) -> Option<Vec<u8>> {
        let base = if path.first() == Some(&b'/') {
            b"/".to_vec()
        } else if dirfd == AT_FDCWD {
            let live = std::fs::read_link(format!("/proc/{}/cwd", self.tgid));
            self.inside(&live.ok().or_else(|| self.cwd_seen.clone())?)?
        } else {
            match std::fs::read_link(format!("/proc/{}/fd/{dirfd}", self.tgid)) {
                Ok(seen) => self.inside(&seen)?,
                Err(_) => dirfd_path?.to_vec(),
            }
        };
        match self.root.as_deref() {
            Some(root) => {
                let base = if dirfd == AT_FDCWD {
                    Base::Cwd(&base)
                } else {
                    Base::Dirfd(&base)
                };
                paths::resolve(root, base, path, last)
                    .ok()
                    .map(|r| r.apparmor_path().0)
            }
            None => {
                let mut joined = base;
                joined.push(b'/');
                joined.extend_from_slice(path);
                Some(normalize(&joined))
            }
        }
    }

    fn host(&self, path: &[u8]) -> Option<PathBuf> {
        let root = self.root.as_deref()?;
        Some(root.join(OsStr::from_bytes(path.strip_prefix(b"/").unwrap_or(path))))
    }

    pub(super) fn owner(&self, path: &[u8]) -> Option<u32> {
        std::fs::metadata(self.host(path)?).ok().map(|m| m.uid())
    }

    pub(super) fn is_setid(&self, path: &[u8]) -> bool {
        self.host(path)
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.mode() & 0o6000 != 0)
    }

    /// The file mapped at `start` (`/proc/<tgid>/maps`), while the process and the mapping
    /// exist.
    pub(super) fn mapping_path(&self, start: u64) -> Option<Vec<u8>> {
        let maps = std::fs::read(format!("/proc/{}/maps", self.tgid)).ok()?;
        let path = mapping_at(&maps, start)?;
        self.inside(Path::new(OsStr::from_bytes(path)))
    }

    pub(super) fn fd_path(&self, fd: i64) -> Option<Vec<u8>> {
        let target = std::fs::read_link(format!("/proc/{}/fd/{fd}", self.tgid)).ok()?;
        self.inside(&target)
    }
}

/// In the text of a `/proc/<pid>/maps`, the path of the file mapping that starts at `start`
/// (`None` for anonymous mappings and deleted files).
fn mapping_at(maps: &[u8], start: u64) -> Option<&[u8]> {
    maps.split(|&b| b == b'\n').find_map(|line| {
        let (range, rest) = split_field(line)?;
        let (from, _) = std::str::from_utf8(range).ok()?.split_once('-')?;
        if u64::from_str_radix(from, 16).ok()? != start {
            return None;
        }
        // perms offset dev inode, then the path (which may hold spaces).
        let mut rest = rest;
        for _ in 0..4 {
            rest = split_field(rest)?.1;
        }
        let path = rest.trim_ascii_start();
        (path.first() == Some(&b'/') && !path.ends_with(b" (deleted)")).then_some(path)
    })
}

fn split_field(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let text = text.trim_ascii_start();
    let end = text.iter().position(|&b| b == b' ')?;
    Some((&text[..end], &text[end..]))
}

/// Lexical normalisation: drops `.` and empty components, applies `..` (never above `/`).
pub fn normalize(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_is_found_by_its_start() {
        let maps = b"\
55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1183       /usr/bin/cat
7f3a10028000-7f3a101bd000 r-xp 00028000 fd:01 2095       /usr/lib/x86_64-linux-gnu/libc.so.6
7f3a10200000-7f3a10201000 rw-p 00000000 00:00 0
7f3a10300000-7f3a10301000 r-xp 00000000 fd:01 77         /srv/my app/lib.so
7f3a10400000-7f3a10401000 r-xp 00000000 fd:01 78         /tmp/gone.so (deleted)
";
        let at =
            |start: u64| mapping_at(maps, start).map(|p| String::from_utf8_lossy(p).into_owned());
        let cases: [(u64, Option<&str>); 6] = [
            (0x7f3a10028000, Some("/usr/lib/x86_64-linux-gnu/libc.so.6")),
            (0x55d0c0a00000, Some("/usr/bin/cat")),
            (0x7f3a10300000, Some("/srv/my app/lib.so")),
            // Anonymous, deleted, and an address inside a mapping rather than at its start.
            (0x7f3a10200000, None),
            (0x7f3a10400000, None),
            (0x7f3a10029000, None),
        ];
        for (start, want) in cases {
            assert_eq!(at(start).as_deref(), want, "{start:#x}");
        }
    }

    #[test]
    fn normalizes_lexically() {
        let cases: &[(&str, &str)] = &[
            ("/a/b/../c", "/a/c"),
            ("/../../etc", "/etc"),
            ("/a/./b//c/", "/a/b/c"),
            ("/", "/"),
            ("/..", "/"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input.as_bytes()), want.as_bytes(), "{input}");
        }
    }
}

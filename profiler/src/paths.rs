//! Turning what a syscall named into the path AppArmor mediates.
//!
//! The kernel hands the recorder a path as the program wrote it: relative to the cwd or to a
//! dirfd, with `..`, through symlinks. AppArmor matches the *resolved* absolute path in the
//! workload's mount namespace, so a profile built from raw strings would both miss rules and
//! allow the wrong files. [`resolve`] walks the path component by component inside a root
//! directory (the container's root as seen from the host, e.g. `/proc/<pid>/root`), reading
//! symlinks from the real filesystem and interpreting absolute targets inside that root. Like
//! `openat2(RESOLVE_IN_ROOT)`, nothing can climb out: `..` at the root stays at the root.
//!
//! Components that do not exist (a file about to be created, a failed lookup) are kept
//! lexically: there is nothing to follow, and the workload asked for exactly that name.
//!
//! Symlinks below `/proc` are not followed: `/proc/self` and `/proc/<pid>/fd/N` would be read
//! in the resolver's own process, not the workload's. They stay as named; the synthesizer
//! generalises `/proc/self/` to `/proc/@{pid}/`.

use std::{
    ffi::OsStr,
    io,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use crate::model::activity::FsPath;

/// Linux gives up after this many symlinks in one lookup (`MAXSYMLINKS`), with `ELOOP`.
pub const MAX_SYMLINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("too many levels of symbolic links resolving {path:?} (more than {MAX_SYMLINKS})")]
    Loop { path: String },
    #[error("the base directory {base:?} is not absolute")]
    RelativeBase { base: String },
    #[error("path {path:?} contains a NUL byte")]
    Nul { path: String },
    #[error("cannot inspect {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What the syscall resolved against when the path is relative.
#[derive(Clone, Copy, Debug)]
pub enum Base<'a> {
    /// The process's cwd, absolute inside the root.
    Cwd(&'a [u8]),
    /// The directory a dirfd refers to (`openat(dirfd, …)`), absolute inside the root.
    Dirfd(&'a [u8]),
}

impl Base<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Base::Cwd(b) | Base::Dirfd(b) => b,
        }
    }
}

/// Whether a symlink in the last component is followed (`open` without `O_NOFOLLOW`, `exec`,
/// `stat`) or names the link itself (`lstat`, `unlink`, `rename`, `symlink`, `O_NOFOLLOW`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Last {
    Follow,
    NoFollow,
}

/// A resolved path and whether it is a directory (AppArmor writes directory rules with a
/// trailing `/`). `path` never ends with `/` except for the root itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub path: FsPath,
    pub is_dir: bool,
}

impl Resolved {
    /// The path as AppArmor names it: directories with a trailing slash.
    pub fn apparmor_path(&self) -> FsPath {
        if self.is_dir && self.path.0 != b"/" {
            let mut p = self.path.0.clone();
            p.push(b'/');
            FsPath(p)
        } else {
            self.path.clone()
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn components(p: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    p.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

fn host_path(root: &Path, stack: &[Vec<u8>]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in stack {
        p.push(OsStr::from_bytes(c));
    }
    p
}

/// Resolves `path` (absolute, or relative to `base`) inside `root`. The result is absolute in
/// the root's namespace.
pub fn resolve(
    root: &Path,
    base: Base<'_>,
    path: &[u8],
    last: Last,
) -> Result<Resolved, PathError> {
    if path.contains(&0) {
        return Err(PathError::Nul { path: lossy(path) });
    }
    let mut pending: Vec<Vec<u8>> = Vec::new();
    if !path.starts_with(b"/") {
        let b = base.bytes();
        if !b.starts_with(b"/") {
            return Err(PathError::RelativeBase { base: lossy(b) });
        }
        pending.extend(components(b).map(<[u8]>::to_vec));
    }
    pending.extend(components(path).map(<[u8]>::to_vec));
    // Processed front to back; kept reversed so expanding a symlink is a cheap push.
    pending.reverse();

    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut links = 0usize;
    // Once a component is missing, nothing below it can be a symlink: the stack depth at
    // which that happened, until `..` climbs back above it.
    let mut missing_at: Option<usize> = None;
    let mut is_dir = false;
    while let Some(c) = pending.pop() {
        match c.as_slice() {
            b"." => continue,
            b".." => {
                stack.pop();
                if missing_at.is_some_and(|d| stack.len() < d) {
                    missing_at = None;
                }
                is_dir = true;
                continue;
            }
            _ => {}
        }
        stack.push(c);
        is_dir = false;
        let is_last = pending.is_empty();
        if missing_at.is_some() || (stack.len() > 1 && stack[0] == b"proc") {
            continue;
        }
        let host = host_path(root, &stack);
        let meta = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if is_missing(&e) => {
                missing_at = Some(stack.len());
                continue;
            }
            Err(source) => return Err(PathError::Io { path: host, source }),
        };
        if meta.file_type().is_symlink() && (!is_last || last == Last::Follow) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(PathError::Loop { path: lossy(path) });
            }
            let target = std::fs::read_link(&host).map_err(|source| PathError::Io {
                path: host.clone(),
                source,
            })?;
            let target = target.as_os_str().as_bytes();
            stack.pop();
            if target.starts_with(b"/") {
                stack.clear();
            }
            pending.extend(components(target).rev().map(<[u8]>::to_vec));
            continue;
        }
        is_dir = meta.is_dir();
    }
    if stack.is_empty() {
        is_dir = true;
    } else if missing_at.is_none() && is_dir {
        // `..` popped back onto an existing directory; confirm for the caller.
        is_dir = std::fs::metadata(host_path(root, &stack))
            .map(|m| m.is_dir())
            .unwrap_or(true);
    }
    let mut out = Vec::new();
    for c in &stack {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Ok(Resolved {
        path: FsPath(out),
        is_dir,
    })
}

fn is_missing(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
        || e.kind() == io::ErrorKind::NotFound
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in [
            "etc/nginx/conf.d",
            "usr/sbin",
            "usr/lib",
            "srv/site/assets",
            "var/log",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("etc/nginx/nginx.conf"), "x").unwrap();
        std::fs::write(r.join("usr/sbin/nginx"), "x").unwrap();
        std::fs::write(r.join("srv/site/index.html"), "x").unwrap();
        // Debian's merged /usr: /lib -> usr/lib (relative), /sbin -> /usr/sbin (absolute).
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("/usr/sbin", r.join("sbin")).unwrap();
        t
    }

    fn res(root: &Path, base: &str, path: &[u8]) -> Result<Resolved, PathError> {
        resolve(root, Base::Cwd(base.as_bytes()), path, Last::Follow)
    }

    fn s(r: Result<Resolved, PathError>) -> String {
        let r = r.unwrap();
        String::from_utf8(r.apparmor_path().0).unwrap()
    }

    #[test]
    fn table() {
        let t = tree();
        let r = t.path();
        let cases: &[(&str, &str, &str)] = &[
            // (cwd, path, resolved)
            ("/", "/etc/nginx/nginx.conf", "/etc/nginx/nginx.conf"),
            ("/etc", "nginx/nginx.conf", "/etc/nginx/nginx.conf"),
            ("/etc/nginx", "./nginx.conf", "/etc/nginx/nginx.conf"),
            (
                "/etc/nginx/conf.d",
                "../nginx.conf",
                "/etc/nginx/nginx.conf",
            ),
            ("/", "//etc///nginx/./nginx.conf", "/etc/nginx/nginx.conf"),
            ("/etc", "nginx", "/etc/nginx/"),
            ("/", "/", "/"),
            // `..` at the root stays at the root.
            (
                "/",
                "../../../etc/nginx/nginx.conf",
                "/etc/nginx/nginx.conf",
            ),
            ("/etc", "../../..", "/"),
            // Relative and absolute symlinks, the absolute one interpreted inside the root.
            ("/", "/lib/x.so", "/usr/lib/x.so"),
            ("/", "/sbin/nginx", "/usr/sbin/nginx"),
            ("/", "/sbin/../lib", "/usr/lib/"),
            // Missing components are kept as named (a file being created).
            ("/var/log", "nginx/access.log", "/var/log/nginx/access.log"),
            ("/", "/nope/../etc", "/etc/"),
        ];
        for (cwd, path, want) in cases {
            assert_eq!(&s(res(r, cwd, path.as_bytes())), want, "{cwd} + {path}");
        }
    }

    #[test]
    fn dirfd_base() {
        let t = tree();
        let got = resolve(
            t.path(),
            Base::Dirfd(b"/srv/site"),
            b"assets/../index.html",
            Last::Follow,
        );
        assert_eq!(s(got), "/srv/site/index.html");
    }

    #[test]
    fn symlink_chain_and_nofollow() {
        let t = tree();
        let r = t.path();
        symlink("b", r.join("etc/a")).unwrap();
        symlink("c", r.join("etc/b")).unwrap();
        symlink("/etc/nginx/nginx.conf", r.join("etc/c")).unwrap();
        assert_eq!(s(res(r, "/", b"/etc/a")), "/etc/nginx/nginx.conf");
        let nofollow = resolve(r, Base::Cwd(b"/"), b"/etc/a", Last::NoFollow);
        assert_eq!(s(nofollow), "/etc/a");
        // Intermediate components are always followed.
        symlink("/etc/nginx", r.join("etc/n")).unwrap();
        let mid = resolve(r, Base::Cwd(b"/"), b"/etc/n/nginx.conf", Last::NoFollow);
        assert_eq!(s(mid), "/etc/nginx/nginx.conf");
    }

    #[test]
    fn loops_are_errors() {
        let t = tree();
        let r = t.path();
        symlink("loop2", r.join("etc/loop1")).unwrap();
        symlink("loop1", r.join("etc/loop2")).unwrap();
        symlink("self", r.join("etc/self")).unwrap();
        for p in ["/etc/loop1", "/etc/self/x"] {
            let e = res(r, "/", p.as_bytes()).unwrap_err();
            assert!(matches!(e, PathError::Loop { .. }), "{p}: {e}");
        }
    }

    #[test]
    fn never_escapes_the_root() {
        let t = tree();
        let r = t.path();
        // A real file beside the root that an escape would find.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        let abs_out = outside.path().join("secret");
        symlink(&abs_out, r.join("etc/out-abs")).unwrap();
        symlink("../../../../../../../../../../tmp", r.join("etc/out-rel")).unwrap();
        let abs = s(res(r, "/", b"/etc/out-abs"));
        assert_eq!(
            abs,
            abs_out.to_str().unwrap(),
            "read inside the root, not the host"
        );
        assert!(!std::path::Path::new(&r.join(abs.trim_start_matches('/'))).exists());
        assert_eq!(s(res(r, "/", b"/etc/out-rel/x")), "/tmp/x");
    }

    #[test]
    fn non_utf8_names() {
        let t = tree();
        let r = t.path();
        let name = OsStr::from_bytes(b"caf\xe9");
        std::fs::create_dir(r.join("srv").join(name)).unwrap();
        symlink(OsStr::from_bytes(b"/srv/caf\xe9"), r.join("srv/link")).unwrap();
        let got = res(r, "/srv", b"link/x\xff").unwrap();
        assert_eq!(got.path.0, b"/srv/caf\xe9/x\xff");
    }

    #[test]
    fn proc_symlinks_stay_as_named() {
        let t = tree();
        let r = t.path();
        std::fs::create_dir_all(r.join("proc")).unwrap();
        symlink("/etc", r.join("proc/self")).unwrap();
        assert_eq!(s(res(r, "/", b"/proc/self/status")), "/proc/self/status");
    }

    #[test]
    fn bad_input() {
        let t = tree();
        assert!(matches!(
            resolve(t.path(), Base::Cwd(b"etc"), b"x", Last::Follow),
            Err(PathError::RelativeBase { .. })
        ));
        assert!(matches!(
            res(t.path(), "/", b"/a\0b"),
            Err(PathError::Nul { .. })
        ));
    }
}

//! Copying host binaries and their shared libraries into a root filesystem.
//!
//! Files keep their host paths, and symlinks on the way are recreated as symlinks (Debian's
//! `/lib -> usr/lib`, `/lib64/ld-linux-x86-64.so.2 -> …`), so the dynamic loader finds
//! libraries exactly where the binary's `ldd` output says they are.

use std::{
    fs, io,
    os::unix::fs::{symlink, PermissionsExt},
    path::{Component, Path, PathBuf},
    process::Command,
};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`ldd {binary}` failed: {message}")]
    Ldd { binary: PathBuf, message: String },
    #[error("{0}: too many levels of symbolic links")]
    SymlinkLoop(PathBuf),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Copies the host file `path` to the same path below `rootfs`, recreating every symlink met
/// on the way (in directories and in the file itself).
pub fn mirror(rootfs: &Path, path: &Path) -> Result<(), RootfsError> {
    mirror_depth(rootfs, path, 0)
}

fn mirror_depth(rootfs: &Path, path: &Path, depth: u32) -> Result<(), RootfsError> {
    if depth > 40 {
        return Err(RootfsError::SymlinkLoop(path.to_owned()));
    }
    let mut host = PathBuf::from("/");
    let components: Vec<Component> = path.components().collect();
    for (i, component) in components.iter().enumerate() {
        let Component::Normal(name) = component else {
            continue;
        };
        host.push(name);
        let inside = rootfs.join(host.strip_prefix("/").expect("absolute"));
        let meta = fs::symlink_metadata(&host).map_err(io_err(&host))?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&host).map_err(io_err(&host))?;
            if fs::symlink_metadata(&inside).is_err() {
                symlink(&target, &inside).map_err(io_err(&inside))?;
            }
            // Continue with the link resolved, plus whatever followed it in `path`.
            let mut resolved = host.parent().expect("has a parent").join(&target);
            resolved.extend(&components[i + 1..]);
            return mirror_depth(rootfs, &normalize(&resolved), depth + 1);
        }
        if meta.is_dir() {
            if !inside.is_dir() {
                fs::create_dir(&inside).map_err(io_err(&inside))?;
                fs::set_permissions(&inside, fs::Permissions::from_mode(0o755))
                    .map_err(io_err(&inside))?;
            }
        } else if !inside.exists() {
            fs::copy(&host, &inside).map_err(io_err(&host))?;
            // Readable by the unprivileged workers; executable bits as on the host.
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            fs::set_permissions(&inside, fs::Permissions::from_mode(mode))
                .map_err(io_err(&inside))?;
        }
    }
    Ok(())
}

/// Resolves `.` and `..` lexically (symlinks are handled by the caller, one at a time).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The shared libraries `binary` loads, the dynamic loader included, from `ldd`.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, RootfsError> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(io_err(Path::new("ldd")))?;
    if !out.status.success() {
        return Err(RootfsError::Ldd {
            binary: binary.to_owned(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` gives the path after `=>`; the loader's
/// line (`/lib64/ld-linux-x86-64.so.2 (0x…)`) has no arrow; the vDSO has no file.
fn parse_ldd(output: &str) -> Vec<PathBuf> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// Copies `binary` and everything it links to.
pub fn install_binary(rootfs: &Path, binary: &Path) -> Result<(), RootfsError> {
    mirror(rootfs, binary)?;
    for lib in shared_libraries(binary)? {
        mirror(rootfs, &lib)?;
    }
    Ok(())
}

/// Writes `contents` at `path` inside `rootfs` with `mode`, creating parent directories.
pub fn write_file(
    rootfs: &Path,
    path: &str,
    contents: &[u8],
    mode: u32,
) -> Result<(), RootfsError> {
    let dest = rootfs.join(path.trim_start_matches('/'));
    if let Some(parent) = dest.parent() {
        create_dirs(parent)?;
    }
    fs::write(&dest, contents).map_err(io_err(&dest))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(mode)).map_err(io_err(&dest))
}

/// `mkdir -p` with mode 0755 whatever the umask.
pub fn create_dirs(dir: &Path) -> Result<(), RootfsError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    fs::create_dir(dir).map_err(io_err(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd_output() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f35)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f36)\n\
                   \tlibmissing.so => not found\n";
        assert_eq!(
            parse_ldd(out),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }

    #[test]
    fn normalizes_dot_dot() {
        assert_eq!(
            normalize(Path::new("/lib64/../lib/x86_64-linux-gnu/./ld.so")),
            PathBuf::from("/lib/x86_64-linux-gnu/ld.so")
        );
    }

    #[test]
    fn mirrors_symlinked_directories_and_files() {
        let root = tempfile::tempdir().unwrap();
        // The loader: a symlink in /lib64 pointing into /lib, itself a symlink on usr-merged
        // systems. Whatever the host layout, the copy must resolve the same way.
        let loader = shared_libraries(Path::new("/bin/sh"))
            .unwrap()
            .into_iter()
            .find(|p| p.to_string_lossy().contains("ld-linux"))
            .expect("/bin/sh is dynamically linked");
        mirror(root.path(), &loader).unwrap();
        // Symlinks may be absolute, so resolve on the host and look at the same path inside.
        let real = fs::canonicalize(&loader).unwrap();
        let copied = root.path().join(real.strip_prefix("/").unwrap());
        assert!(fs::symlink_metadata(&copied).unwrap().is_file());
        assert_eq!(fs::read(&copied).unwrap(), fs::read(&loader).unwrap());
        let link = root.path().join(loader.strip_prefix("/").unwrap());
        assert_eq!(
            fs::symlink_metadata(link).unwrap().file_type().is_symlink(),
            fs::symlink_metadata(&loader)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::symlink_metadata(root.path().join("lib"))
                .unwrap()
                .file_type()
                .is_symlink(),
            fs::symlink_metadata("/lib")
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn writes_files_with_their_modes() {
        let root = tempfile::tempdir().unwrap();
        write_file(root.path(), "/etc/nginx/nginx.conf", b"x", 0o644).unwrap();
        let meta = fs::metadata(root.path().join("etc/nginx/nginx.conf")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        let dir = fs::metadata(root.path().join("etc/nginx")).unwrap();
        assert_eq!(dir.permissions().mode() & 0o777, 0o755);
    }
}

//! Writing result files atomically. Profiles are read by other programs (runc, the kubelet,
//! `git add`) at any moment, and a half-written profile is worse than none: a reader must
//! see the old file or the new one, and a failed write must leave nothing behind.

use std::{
    fs::{self, File, Permissions},
    io::{self, Write as _},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {}: it names no file", path.display())]
    NoFileName { path: PathBuf },

    #[error("cannot write {}: directory {} does not exist", path.display(), dir.display())]
    DirMissing { path: PathBuf, dir: PathBuf },

    #[error("cannot write {}: {} is not a directory", path.display(), dir.display())]
    NotADirectory { path: PathBuf, dir: PathBuf },

    #[error("cannot write {}: directory {} is not writable ({source})", path.display(), dir.display())]
    NotWritable {
        path: PathBuf,
        dir: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot write {}: {step}: {source}", path.display())]
    Io {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Result files are profiles and recordings: nothing secret, and other users (the kubelet,
/// a reviewer) read them.
const MODE: u32 = 0o644;

/// Replaces `path` with `bytes`: write a temporary file in the same directory, fsync it,
/// rename it over `path`, fsync the directory so the rename survives a crash. On error the
/// temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`], with the contents written by `fill` as they are made (through a
/// buffer), so that a large file is never whole in memory.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
) -> Result<(), OutputError> {
    let name = path
        .file_name()
        .ok_or_else(|| OutputError::NoFileName { path: path.into() })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(OutputError::NotADirectory {
                path: path.into(),
                dir: dir.into(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(OutputError::DirMissing {
                path: path.into(),
                dir: dir.into(),
            })
        }
        Err(source) => return Err(io_err(path, "inspecting its directory", source)),
    }

    // Hidden and suffixed so a crash between create and rename leaves an obvious leftover,
    // never a file that looks like a profile. Dropping `tmp` deletes it.
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|source| match source.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                OutputError::NotWritable {
                    path: path.into(),
                    dir: dir.into(),
                    source,
                }
            }
            _ => io_err(path, "creating a temporary file", source),
        })?;
    let mut buffered = io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
    fill(&mut buffered)
        .and_then(|()| buffered.flush())
        .map_err(|e| io_err(path, "writing", e))?;
    drop(buffered);
    tmp.as_file()
        .set_permissions(Permissions::from_mode(MODE))
        .map_err(|e| io_err(path, "setting permissions", e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| io_err(path, "syncing", e))?;
    tmp.persist(path)
        .map_err(|e| io_err(path, "renaming into place", e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(path, "syncing its directory", e))
}

fn io_err(path: &Path, step: &'static str, source: io::Error) -> OutputError {
    OutputError::Io {
        path: path.into(),
        step,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names in `dir`, sorted.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seccomp.json");
        write_atomic(&path, b"one").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(entries(dir.path()), ["seccomp.json"]);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, MODE);
    }

    #[test]
    fn missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope/seccomp.json");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert!(matches!(err, OutputError::DirMissing { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("does not exist"), "{msg}");
    }

    #[test]
    fn parent_that_is_a_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, b"").unwrap();
        let err = write_atomic(&file.join("seccomp.json"), b"x").unwrap_err();
        assert!(matches!(err, OutputError::NotADirectory { .. }), "{err:?}");
        assert!(err.to_string().contains("is not a directory"), "{err}");
    }

    #[test]
    fn unwritable_directory_is_named() {
        // Root ignores directory permissions; a read-only bind mount would need privileges.
        if nix::unistd::geteuid().is_root() {
            eprintln!("skipped: running as root, which may write to a mode 0555 directory");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        fs::create_dir(&ro).unwrap();
        fs::set_permissions(&ro, Permissions::from_mode(0o555)).unwrap();
        let err = write_atomic(&ro.join("seccomp.json"), b"x").unwrap_err();
        fs::set_permissions(&ro, Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(err, OutputError::NotWritable { .. }), "{err:?}");
        assert!(err.to_string().contains("not writable"), "{err}");
        assert!(entries(&ro).is_empty());
    }

    #[test]
    fn failed_rename_leaves_nothing_behind() {
        // A non-empty directory where the file should go makes the rename fail after the
        // temporary file was written.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seccomp.json");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), b"").unwrap();
        let err = write_atomic(&path, b"x").unwrap_err();
        assert!(
            matches!(
                err,
                OutputError::Io {
                    step: "renaming into place",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(entries(dir.path()), ["seccomp.json"]);
        assert_eq!(entries(&path), ["keep"]);
    }

    #[test]
    fn a_writer_that_fails_part_way_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recording.json");
        write_atomic(&path, b"old").unwrap();
        // More than the buffer holds is written before the failure, so part of it reached
        // the temporary file.
        let err = write_atomic_with(&path, |w| {
            w.write_all(&vec![b'x'; 3 << 20])?;
            Err(io::Error::other("serializing failed"))
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("writing: serializing failed"),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(entries(dir.path()), ["recording.json"]);

        write_atomic_with(&path, |w| {
            for chunk in [b"{".as_slice(), b"\"a\": 1", b"}"] {
                w.write_all(chunk)?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(fs::read(&path).unwrap(), br#"{"a": 1}"#);
    }

    #[test]
    fn empty_path_is_refused() {
        let err = write_atomic(Path::new(""), b"x").unwrap_err();
        assert!(matches!(err, OutputError::NoFileName { .. }), "{err:?}");
    }
}

//! A root filesystem as one reproducible image layer: a tar stream whose bytes depend on the
//! files' contents, paths and modes alone (sorted entries, owner 0:0, mtime 0, no user or
//! group names), gzip'd with a fixed header, so two builds of the same files have one digest.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use flate2::{write::GzEncoder, Compression, GzBuilder};

/// One entry of the layer, its path relative to the root (no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        source: PathBuf,
    },
    Symlink {
        path: String,
        target: PathBuf,
    },
}

impl Entry {
    pub fn path(&self) -> &str {
        match self {
            Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => {
                path
            }
        }
    }
}

/// Every entry below `root`, sorted by path: a directory comes before what it holds, and the
/// order never depends on the order `readdir` returns.
pub fn entries(root: &Path) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let host = entry.path();
        let path = host
            .strip_prefix(root)
            .expect("below the root")
            .to_str()
            .ok_or_else(|| io::Error::other(format!("{}: not UTF-8", host.display())))?
            .to_owned();
        let meta = fs::symlink_metadata(&host)?;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&host)?;
            out.push(Entry::Symlink { path, target });
        } else if meta.is_dir() {
            out.push(Entry::Dir { path, mode });
            walk(root, &host, out)?;
        } else if meta.is_file() {
            out.push(Entry::File {
                path,
                mode,
                source: host,
            });
        } else {
            return Err(io::Error::other(format!(
                "{}: only files, directories and symlinks go into a layer",
                host.display()
            )));
        }
    }
    Ok(())
}

/// A header with everything that is not the file's own fixed: owner 0:0, mtime 0.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// Writes `entries` as a tar stream into `out` and returns `out`.
pub fn write_tar<W: Write>(entries: &[Entry], out: W) -> io::Result<W> {
    let mut tar = tar::Builder::new(out);
    for entry in entries {
        match entry {
            Entry::Dir { path, mode } => {
                let mut h = header(tar::EntryType::Directory, *mode, 0);
                tar.append_data(&mut h, format!("{path}/"), io::empty())?;
            }
            Entry::File { path, mode, source } => {
                let file = fs::File::open(source)?;
                let mut h = header(tar::EntryType::Regular, *mode, file.metadata()?.len());
                tar.append_data(&mut h, path, file)?;
            }
            Entry::Symlink { path, target } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                tar.append_link(&mut h, path, target)?;
            }
        }
    }
    tar.into_inner()
}

/// A gzip stream whose header holds no time, no file name and no build host's system.
pub fn gzip<W: Write>(out: W) -> GzEncoder<W> {
    GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(out, Compression::default())
}

/// Writes `entries` as a gzip'd tar stream.
pub fn write_tar_gz<W: Write>(entries: &[Entry], out: W) -> io::Result<W> {
    write_tar(entries, gzip(out))?.finish()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn tree(root: &Path) {
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::create_dir_all(root.join("var/lib/profgen")).unwrap();
        fs::write(root.join("usr/bin/tool"), b"#!binary").unwrap();
        fs::set_permissions(root.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("usr/bin", root.join("bin")).unwrap();
    }

    #[test]
    fn entries_are_sorted_with_each_directory_before_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path());
        let paths: Vec<String> = entries(dir.path())
            .unwrap()
            .iter()
            .map(|e| e.path().to_owned())
            .collect();
        assert_eq!(
            paths,
            [
                "bin",
                "usr",
                "usr/bin",
                "usr/bin/tool",
                "var",
                "var/lib",
                "var/lib/profgen"
            ]
        );
    }

    #[test]
    fn same_files_make_the_same_bytes_whatever_their_times() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        tree(a.path());
        std::thread::sleep(std::time::Duration::from_millis(1100));
        tree(b.path());
        let bytes = |root: &Path| write_tar_gz(&entries(root).unwrap(), Vec::new()).unwrap();
        assert_eq!(bytes(a.path()), bytes(b.path()));
        // A changed byte of content is a changed layer.
        fs::write(b.path().join("usr/bin/tool"), b"#!binarz").unwrap();
        assert_ne!(bytes(a.path()), bytes(b.path()));
    }

    #[test]
    fn headers_carry_no_owner_or_time_of_the_build() {
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path());
        let tar = write_tar(&entries(dir.path()).unwrap(), Vec::new()).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.mtime().unwrap(), 0);
            assert_eq!(h.username().unwrap(), Some(""));
            seen.push((
                entry.path().unwrap().to_string_lossy().into_owned(),
                h.mode().unwrap(),
            ));
        }
        assert!(
            seen.contains(&("usr/bin/tool".to_owned(), 0o755)),
            "{seen:?}"
        );
        assert!(seen.contains(&("usr/bin/".to_owned(), 0o755)), "{seen:?}");
    }
}

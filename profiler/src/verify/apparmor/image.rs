//! Collecting host files into the guest image at the same paths, symlinks and all.
//!
//! Debian's merged `/usr` makes `/lib64/ld-linux-x86-64.so.2` a path through two symlinks;
//! copying only the final file would leave the loader unreachable. So each path is added
//! component by component: directories as directories, symlinks as the same symlinks (and
//! their targets added too), files with their contents and permission bits.

use std::{
    collections::BTreeSet,
    ffi::OsStr,
    io,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
};

use super::cpio::Archive;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`ldd {path}` failed: {detail}")]
    Ldd { path: PathBuf, detail: String },
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Default)]
pub struct Image {
    archive: Archive,
    /// Guest paths already in the archive (no leading `/`).
    seen: BTreeSet<Vec<u8>>,
}

fn rel(p: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = p.to_vec();
    while v.first() == Some(&b'/') {
        v.remove(0);
    }
    v
}

impl Image {
    /// A directory (and its parents) in the guest.
    pub fn mkdir(&mut self, guest: &str, perm: u32) {
        let mut acc = Vec::new();
        for c in guest.split('/').filter(|c| !c.is_empty()) {
            if !acc.is_empty() {
                acc.push(b'/');
            }
            acc.extend_from_slice(c.as_bytes());
            if self.seen.insert(acc.clone()) {
                self.archive.dir(&acc, perm);
            }
        }
    }

    /// Generated content at `guest` (parents created).
    pub fn write(&mut self, guest: &str, perm: u32, data: &[u8]) {
        if let Some((parent, _)) = guest.rsplit_once('/') {
            self.mkdir(parent, 0o755);
        }
        let r = rel(guest.as_bytes());
        if self.seen.insert(r.clone()) {
            self.archive.file(&r, perm, data);
        }
    }

    /// A host file, directory (recursively) or symlink at the same path in the guest.
    pub fn host(&mut self, path: &Path) -> Result<(), ImageError> {
        self.host_depth(path, 0)
    }

    fn host_depth(&mut self, path: &Path, depth: usize) -> Result<(), ImageError> {
        if depth > 40 {
            return Err(ImageError::Read {
                path: path.into(),
                source: io::Error::other("symlink loop"),
            });
        }
        let mut acc = PathBuf::from("/");
        let comps: Vec<&OsStr> = path
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        for (i, c) in comps.iter().enumerate() {
            acc.push(c);
            let meta = std::fs::symlink_metadata(&acc).map_err(read_err(&acc))?;
            let r = rel(acc.as_os_str().as_bytes());
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&acc).map_err(read_err(&acc))?;
                if self.seen.insert(r.clone()) {
                    self.archive.symlink(&r, target.as_os_str().as_bytes());
                }
                let mut resolved = if target.is_absolute() {
                    target
                } else {
                    acc.parent().unwrap_or(Path::new("/")).join(target)
                };
                for rest in &comps[i + 1..] {
                    resolved.push(rest);
                }
                return self.host_depth(&normalize(&resolved), depth + 1);
            }
            let perm = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                if self.seen.insert(r.clone()) {
                    self.archive.dir(&r, perm);
                }
                if i + 1 == comps.len() {
                    let mut entries: Vec<PathBuf> = std::fs::read_dir(&acc)
                        .map_err(read_err(&acc))?
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .collect();
                    entries.sort();
                    for e in entries {
                        self.host_depth(&e, depth)?;
                    }
                }
            } else if self.seen.insert(r.clone()) {
                let data = std::fs::read(&acc).map_err(read_err(&acc))?;
                self.archive.file(&r, perm, &data);
            }
        }
        Ok(())
    }

    /// A dynamically linked program, its libraries and loader, as `ldd` lists them.
    pub fn program(&mut self, path: &Path) -> Result<(), ImageError> {
        self.host(path)?;
        for lib in ldd(path)? {
            self.host(&lib)?;
        }
        Ok(())
    }

    /// Host file `src` copied to a different guest path.
    pub fn copy_to(&mut self, src: &Path, guest: &str, perm: u32) -> Result<(), ImageError> {
        let data = std::fs::read(src).map_err(read_err(src))?;
        self.write(guest, perm, &data);
        Ok(())
    }

    /// Host directory `src` copied recursively below `guest`.
    pub fn copy_dir_to(&mut self, src: &Path, guest: &str) -> Result<(), ImageError> {
        self.mkdir(guest, 0o755);
        let mut entries: Vec<_> = std::fs::read_dir(src)
            .map_err(read_err(src))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let g = format!("{guest}/{}", name.to_string_lossy());
            if e.path().is_dir() {
                self.copy_dir_to(&e.path(), &g)?;
            } else {
                self.copy_to(&e.path(), &g, 0o644)?;
            }
        }
        Ok(())
    }

    pub fn finish(self, out: &mut impl io::Write) -> io::Result<()> {
        self.archive.finish_gz(out)
    }
}

/// Lexical `..` removal (the path is absolute and built from real symlink targets).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// The absolute paths `ldd` names (libraries and the loader). Static binaries have none.
pub fn ldd(path: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let out = Command::new("ldd")
        .arg(path)
        .output()
        .map_err(|e| ImageError::Ldd {
            path: path.into(),
            detail: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if text.contains("not a dynamic executable") || out.stderr.starts_with(b"\tnot a dynamic") {
            return Ok(Vec::new());
        }
        return Err(ImageError::Ldd {
            path: path.into(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(parse_ldd(&text))
}

fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let candidate = match l.split_once("=>") {
                Some((_, rhs)) => rhs.trim(),
                None => l,
            };
            let p = candidate.split_whitespace().next()?;
            p.starts_with('/').then(|| PathBuf::from(p))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd() {
        let text = "\tlinux-vdso.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        assert_eq!(
            parse_ldd(text),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }
}

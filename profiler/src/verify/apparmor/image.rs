//! The guest's root filesystem as an initramfs: the bundle's root filesystem as it is, and
//! profgen's own tools beside it under [`PRIVATE`], never mixed into the bundle's paths.
//!
//! The tools (`apparmor_parser`, `aa-exec`, the suite) are host programs with host libraries;
//! the bundle may hold other versions of the same libraries at the same paths. So each tool
//! and its libraries are copied below `PRIVATE` and run through the copied dynamic loader
//! with `--library-path` ([`Image::private_program`]), which never looks at the bundle's.

use std::{
    collections::BTreeSet,
    io,
    os::unix::{
        ffi::OsStrExt,
        fs::{MetadataExt, PermissionsExt},
    },
    path::{Path, PathBuf},
    process::Command,
};

use super::cpio::{Archive, Owner};

/// profgen's directory in the guest.
pub const PRIVATE: &str = "/.profgen";
/// The tools' libraries and loader.
pub const PRIVATE_LIB: &str = "/.profgen/lib";

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
    /// Guest paths already in the archive (no leading `/`): the first writer of a path wins.
    seen: BTreeSet<Vec<u8>>,
    /// Entries of the root filesystem that cannot go into an initramfs (devices, sockets).
    pub skipped: Vec<String>,
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

    /// Generated content at `guest` (parents created), unless something is there already.
    pub fn write(&mut self, guest: &str, perm: u32, data: &[u8]) {
        if let Some((parent, _)) = guest.rsplit_once('/') {
            self.mkdir(parent, 0o755);
        }
        let r = rel(guest.as_bytes());
        if self.seen.insert(r.clone()) {
            self.archive.file(&r, perm, data);
        }
    }

    /// Whether the guest has something at `guest` already.
    #[cfg(test)]
    pub fn has(&self, guest: &str) -> bool {
        self.seen.contains(&rel(guest.as_bytes()))
    }

    /// Bytes so far: what the guest needs in memory, twice (the image and its unpacked files).
    pub fn size(&self) -> usize {
        self.archive.size()
    }

    /// `root`, a directory on the host, as the guest's `/`: every entry at the same path
    /// below `/`, with its permissions and owner; symlinks as they are (an absolute target
    /// means the guest's path, as in a container).
    pub fn tree(&mut self, root: &Path) -> Result<(), ImageError> {
        self.tree_below(root, root, b"")
    }

    /// `root` below the guest directory `at` instead of at `/`.
    pub fn tree_at(&mut self, root: &Path, at: &str) -> Result<(), ImageError> {
        self.mkdir(at, 0o755);
        let mut prefix = rel(at.as_bytes());
        prefix.push(b'/');
        self.tree_below(root, root, &prefix)
    }

    fn tree_below(&mut self, root: &Path, dir: &Path, prefix: &[u8]) -> Result<(), ImageError> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err(dir))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(read_err(dir))?;
        entries.sort();
        for path in entries {
            let meta = std::fs::symlink_metadata(&path).map_err(read_err(&path))?;
            let mut guest = prefix.to_vec();
            guest.extend(rel(path
                .strip_prefix(root)
                .expect("below the root")
                .as_os_str()
                .as_bytes()));
            if !self.seen.insert(guest.clone()) {
                continue;
            }
            self.archive.set_owner(Owner {
                uid: meta.uid(),
                gid: meta.gid(),
            });
            let perm = meta.permissions().mode() & 0o7777;
            let kind = meta.file_type();
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).map_err(read_err(&path))?;
                self.archive.symlink(&guest, target.as_os_str().as_bytes());
            } else if kind.is_dir() {
                self.archive.dir(&guest, perm);
                self.tree_below(root, &path, prefix)?;
            } else if kind.is_file() {
                let data = std::fs::read(&path).map_err(read_err(&path))?;
                self.archive.file(&guest, perm, &data);
            } else {
                self.seen.remove(&guest);
                self.skipped.push(path.display().to_string());
            }
        }
        self.archive.set_owner(Owner::default());
        Ok(())
    }

    /// Host program `host` at `guest`, its libraries and loader below [`PRIVATE_LIB`]. Returns
    /// the command that runs it in the guest: through the copied loader when it has one.
    pub fn private_program(&mut self, host: &Path, guest: &str) -> Result<String, ImageError> {
        self.copy_to(host, guest, 0o755)?;
        let (libs, loader) = ldd(host)?;
        for lib in libs.iter().chain(&loader) {
            let name = lib.file_name().expect("a library file").to_string_lossy();
            self.copy_to(lib, &format!("{PRIVATE_LIB}/{name}"), 0o755)?;
        }
        Ok(match loader {
            None => guest.to_owned(),
            Some(loader) => format!(
                "{PRIVATE_LIB}/{} --library-path {PRIVATE_LIB} {guest}",
                loader.file_name().expect("a loader file").to_string_lossy()
            ),
        })
    }

    /// Host program `host` at `guest`, its libraries in the guest's `/lib/x86_64-linux-gnu`
    /// and its loader at the host's path: for a guest whose `/` is profgen's own (no bundle's
    /// libraries to keep apart), where a program that re-executes `/proc/self/exe` (crun) must
    /// run without a loader in front of it.
    pub fn system_program(&mut self, host: &Path, guest: &str) -> Result<(), ImageError> {
        self.copy_to(host, guest, 0o755)?;
        let (libs, loader) = ldd(host)?;
        for lib in &libs {
            let name = lib.file_name().expect("a library file").to_string_lossy();
            self.copy_to(lib, &format!("/lib/x86_64-linux-gnu/{name}"), 0o755)?;
        }
        if let Some(loader) = loader {
            self.copy_to(&loader, &loader.to_string_lossy(), 0o755)?;
        }
        Ok(())
    }

    /// Host file `src` (symlinks followed) copied to a guest path.
    pub fn copy_to(&mut self, src: &Path, guest: &str, perm: u32) -> Result<(), ImageError> {
        let data = std::fs::read(src).map_err(read_err(src))?;
        self.write(guest, perm, &data);
        Ok(())
    }

    /// Host directory `src` copied recursively below `guest` (symlinks followed).
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

/// The libraries `ldd` names, and the dynamic loader apart. A static program has neither.
pub fn ldd(path: &Path) -> Result<(Vec<PathBuf>, Option<PathBuf>), ImageError> {
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
            return Ok((Vec::new(), None));
        }
        return Err(ImageError::Ldd {
            path: path.into(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    if let Some(missing) = text.lines().find(|l| l.contains("=> not found")) {
        return Err(ImageError::Ldd {
            path: path.into(),
            detail: format!(
                "{}: install the package that has it, or name its directory in LD_LIBRARY_PATH",
                missing.trim()
            ),
        });
    }
    Ok(parse_ldd(&text))
}

/// `libc.so.6 => /lib/…/libc.so.6 (0x…)` is a library; the line without an arrow that names
/// a file is the loader; the vDSO names none.
fn parse_ldd(text: &str) -> (Vec<PathBuf>, Option<PathBuf>) {
    let mut libs = Vec::new();
    let mut loader = None;
    for l in text.lines().map(str::trim) {
        let (candidate, is_loader) = match l.split_once("=>") {
            Some((_, rhs)) => (rhs.trim(), false),
            None => (l, true),
        };
        let Some(p) = candidate.split_whitespace().next() else {
            continue;
        };
        if !p.starts_with('/') {
            continue;
        }
        if is_loader {
            loader = Some(PathBuf::from(p));
        } else {
            libs.push(PathBuf::from(p));
        }
    }
    (libs, loader)
}

/// Whether `path` is an ELF file: what runs in the guest without an interpreter.
pub fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd() {
        let text = "\tlinux-vdso.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        assert_eq!(
            parse_ldd(text),
            (
                vec![PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6")],
                Some(PathBuf::from("/lib64/ld-linux-x86-64.so.2"))
            )
        );
        assert_eq!(parse_ldd("\tstatically linked\n"), (Vec::new(), None));
    }

    #[test]
    fn a_tree_keeps_symlinks_owners_and_the_first_writer() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/bin/app"), b"app").unwrap();
        std::os::unix::fs::symlink("/usr/bin/app", root.join("app")).unwrap();
        let mut img = Image::default();
        img.tree(root).unwrap();
        assert!(img.has("/usr/bin/app") && img.has("/app") && img.has("/usr"));
        // Generated files never replace the bundle's.
        let before = img.size();
        img.write("/usr/bin/app", 0o644, b"other");
        assert_eq!(img.size(), before);
        img.write("/etc/shadow", 0o640, b"x");
        assert!(img.has("/etc") && img.has("/etc/shadow"));
    }

    #[test]
    fn a_private_program_runs_through_its_own_loader() {
        let sh = Path::new("/bin/sh");
        if !sh.exists() {
            return;
        }
        let mut img = Image::default();
        let cmd = img.private_program(sh, "/.profgen/bin/sh").unwrap();
        let (libs, loader) = ldd(sh).unwrap();
        match loader {
            Some(l) => {
                let name = l.file_name().unwrap().to_string_lossy().into_owned();
                assert_eq!(
                    cmd,
                    format!("/.profgen/lib/{name} --library-path /.profgen/lib /.profgen/bin/sh")
                );
                assert!(img.has(&format!("/.profgen/lib/{name}")));
            }
            None => assert_eq!(cmd, "/.profgen/bin/sh"),
        }
        for lib in libs {
            let name = lib.file_name().unwrap().to_string_lossy().into_owned();
            assert!(img.has(&format!("/.profgen/lib/{name}")), "{name}");
        }
        assert!(is_elf(sh));
        assert!(!is_elf(Path::new("/etc/passwd")));
    }
}

//! An initramfs: a cpio archive in the `newc` format, gzip-wrapped.
//!
//! Written here rather than by `cpio`/`gzip` so building the image needs no tools and no
//! root. The gzip member uses stored (uncompressed) deflate blocks: the kernel inflates them
//! like any other, and the image is built in milliseconds; it only lives in a temp dir.

use std::io::{self, Write};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// An entry's owner; root unless said otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Entries in archive order; parents must come before children.
#[derive(Default)]
pub struct Archive {
    buf: Vec<u8>,
    ino: u32,
    /// The owner of the entries added next.
    owner: Owner,
}

impl Archive {
    /// Entries added from now on belong to `owner`.
    pub fn set_owner(&mut self, owner: Owner) {
        self.owner = owner;
    }

    /// Bytes written so far.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    fn header(&mut self, name: &[u8], mode: u32, size: usize) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            self.owner.uid,
            self.owner.gid,
            1,
            0,
            size as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name);
        self.buf.push(0);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// `name` without a leading `/` (the archive is extracted at `/`).
    pub fn dir(&mut self, name: &[u8], perm: u32) {
        self.header(name, S_IFDIR | perm, 0);
    }

    pub fn file(&mut self, name: &[u8], perm: u32, data: &[u8]) {
        self.header(name, S_IFREG | perm, data.len());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    pub fn symlink(&mut self, name: &[u8], target: &[u8]) {
        self.header(name, S_IFLNK | 0o777, target.len());
        self.buf.extend_from_slice(target);
        self.pad();
    }

    /// The archive with its trailer, gzip-wrapped.
    pub fn finish_gz(mut self, out: &mut impl Write) -> io::Result<()> {
        self.ino = 0;
        self.owner = Owner::default();
        self.header(b"TRAILER!!!", 0, 0);
        gzip_stored(&self.buf, out)
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// RFC 1952 member with RFC 1951 stored blocks (at most 65535 bytes each).
fn gzip_stored(data: &[u8], out: &mut impl Write) -> io::Result<()> {
    out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])?;
    let mut chunks = data.chunks(65535).peekable();
    if chunks.peek().is_none() {
        out.write_all(&[1, 0, 0, 0xff, 0xff])?;
    }
    while let Some(chunk) = chunks.next() {
        let last = u8::from(chunks.peek().is_none());
        let len = chunk.len() as u16;
        out.write_all(&[last])?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(&(!len).to_le_bytes())?;
        out.write_all(chunk)?;
    }
    out.write_all(&crc32(data).to_le_bytes())?;
    out.write_all(&(data.len() as u32).to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_a_known_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    /// The host's own `gzip` and `cpio` read what we write.
    #[test]
    fn host_tools_read_it() {
        let mut a = Archive::default();
        a.dir(b"etc", 0o755);
        a.file(b"etc/hello", 0o644, &vec![b'x'; 70_000]);
        a.symlink(b"etc/link", b"hello");
        a.set_owner(Owner { uid: 33, gid: 34 });
        a.file(b"etc/owned", 0o600, b"x");
        let mut gz = Vec::new();
        a.finish_gz(&mut gz).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img.gz");
        std::fs::write(&img, &gz).unwrap();
        let ok = std::process::Command::new("sh")
            .arg("-c")
            .arg("gzip -dc img.gz | cpio -idm --quiet")
            .current_dir(dir.path())
            .status();
        match ok {
            Ok(s) if s.success() => {
                assert_eq!(
                    std::fs::read(dir.path().join("etc/hello")).unwrap().len(),
                    70_000
                );
                let l = std::fs::read_link(dir.path().join("etc/link")).unwrap();
                assert_eq!(l.to_str(), Some("hello"));
                let listing = std::process::Command::new("sh")
                    .arg("-c")
                    .arg("gzip -dc img.gz | cpio -itv --quiet --numeric-uid-gid")
                    .current_dir(dir.path())
                    .output()
                    .unwrap();
                let listing = String::from_utf8_lossy(&listing.stdout);
                let owned = listing.lines().find(|l| l.ends_with("etc/owned")).unwrap();
                assert!(owned.contains(" 33 ") && owned.contains(" 34 "), "{owned}");
            }
            other => println!("skipped: gzip/cpio unavailable ({other:?})"),
        }
    }
}

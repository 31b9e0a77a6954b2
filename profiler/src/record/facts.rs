//! Decoding kernel events into facts: pure functions over the raw `Event`, tested on the host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use profiler_common::event::{kind, nr, Event};

use crate::model::{FileOp, CAPABILITY_NAMES};

/// `AT_FDCWD`: the path is relative to the working directory.
pub const AT_FDCWD: i64 = -100;

/// A dirfd argument as the kernel reads it: the low 32 bits, signed.
pub fn dirfd(register: u64) -> i64 {
    i64::from(register as u32 as i32)
}

/// One thing a recorded cgroup did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    /// A path-based file operation. `dirfd` is `AT_FDCWD` or the directory a relative path
    /// starts from.
    File {
        path: Vec<u8>,
        dirfd: i64,
        ops: Vec<FileOp>,
    },
    Exec {
        path: Vec<u8>,
        dirfd: i64,
    },
    /// An fd-based file operation (mmap with PROT_EXEC, flock).
    FdFile {
        fd: i64,
        op: FileOp,
        /// Where a successful mmap put the mapping: it names the file for as long as the
        /// mapping exists, unlike the fd, which the process may have closed and reused.
        mapped_at: Option<u64>,
    },
    Socket {
        fd: i64,
        family: u16,
        kind: u32,
        protocol: u32,
    },
    Bind {
        fd: i64,
        addr: SockAddr,
    },
    Listen {
        fd: i64,
    },
    Connect {
        fd: i64,
        addr: SockAddr,
    },
    Send {
        fd: i64,
        addr: SockAddr,
    },
    Accept {
        listen_fd: i64,
        peer: SockAddr,
    },
    Capability {
        cap: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    Inet(IpAddr, u16),
    /// A path, or `@name` for the abstract namespace.
    Unix(Vec<u8>),
    Other(u16),
}

pub const AF_UNIX: u16 = 1;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Parses a `struct sockaddr`. v4-mapped IPv6 addresses become IPv4.
pub fn sockaddr(bytes: &[u8]) -> Option<SockAddr> {
    let family = u16::from_ne_bytes(bytes.get(0..2)?.try_into().ok()?);
    let port = || bytes.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
    match family {
        AF_INET => {
            let a: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
            Some(SockAddr::Inet(IpAddr::V4(Ipv4Addr::from(a)), port()?))
        }
        AF_INET6 => {
            let a: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
            let v6 = Ipv6Addr::from(a);
            let ip = v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6));
            Some(SockAddr::Inet(ip, port()?))
        }
        AF_UNIX => {
            let path = bytes.get(2..).unwrap_or_default();
            if path.is_empty() {
                return Some(SockAddr::Unix(Vec::new()));
            }
            if path[0] == 0 {
                // Abstract: the name is every byte after the NUL, as long as the caller said.
                let mut name = b"@".to_vec();
                name.extend_from_slice(&path[1..]);
                Some(SockAddr::Unix(name))
            } else {
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                Some(SockAddr::Unix(path[..end].to_vec()))
            }
        }
        other => Some(SockAddr::Other(other)),
    }
}

const O_ACCMODE: u64 = 0o3;
const O_WRONLY: u64 = 0o1;
const O_RDWR: u64 = 0o2;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;
const O_APPEND: u64 = 0o2000;
const O_PATH: u64 = 0o10000000;
const AT_REMOVEDIR: u64 = 0x200;

/// What `open(2)` flags ask for. `O_PATH` opens touch no content: no operation.
pub fn open_ops(flags: u64) -> Vec<FileOp> {
    if flags & O_PATH != 0 {
        return Vec::new();
    }
    let mut ops = Vec::new();
    let write = if flags & O_APPEND != 0 {
        FileOp::Append
    } else {
        FileOp::Write
    };
    match flags & O_ACCMODE {
        O_WRONLY => ops.push(write),
        O_RDWR => ops.extend([FileOp::Read, write]),
        _ => ops.push(FileOp::Read),
    }
    if flags & O_CREAT != 0 {
        ops.push(FileOp::Create);
    }
    if flags & O_TRUNC != 0 {
        ops.push(FileOp::Truncate);
    }
    ops
}

fn bytes(buf: &[u8], len: u32) -> Vec<u8> {
    buf[..(len as usize).min(buf.len())].to_vec()
}

/// The facts of one event: one, or two for calls naming two paths (rename, link, symlink),
/// or none for a failed call (failures are reported apart by [`failed`]).
pub fn decode(ev: &Event) -> Vec<Fact> {
    if ev.kind == kind::CAPABILITY {
        return if ev.ret == 0 {
            vec![Fact::Capability {
                cap: ev.args[0] as u32,
            }]
        } else {
            Vec::new()
        };
    }
    let a = ev.args;
    let path = bytes(&ev.path, ev.path_len);
    let path2 = bytes(&ev.path2, ev.path2_len);
    let addr = || sockaddr(&ev.addr[..(ev.addr_len as usize).min(ev.addr.len())]);
    let file = |path: Vec<u8>, dirfd: i64, ops: Vec<FileOp>| Fact::File { path, dirfd, ops };
    // Fds are `int`s to the kernel: glibc loads AT_FDCWD as 0xffffff9c into a 64-bit
    // register, which is -100 only once truncated to 32 bits.
    let fd = dirfd;
    match ev.nr {
        nr::OPEN => vec![file(path, AT_FDCWD, open_ops(a[1]))],
        nr::OPENAT | nr::OPENAT2 => vec![file(path, fd(a[0]), open_ops(a[2]))],
        nr::CREAT => vec![file(
            path,
            AT_FDCWD,
            vec![FileOp::Write, FileOp::Create, FileOp::Truncate],
        )],
        nr::TRUNCATE => vec![file(path, AT_FDCWD, vec![FileOp::Write, FileOp::Truncate])],
        nr::MKDIR => vec![file(path, AT_FDCWD, vec![FileOp::Mkdir])],
        nr::MKDIRAT => vec![file(path, fd(a[0]), vec![FileOp::Mkdir])],
        nr::RMDIR => vec![file(path, AT_FDCWD, vec![FileOp::Rmdir])],
        nr::UNLINK => vec![file(path, AT_FDCWD, vec![FileOp::Unlink])],
        nr::UNLINKAT => {
            let op = if a[2] & AT_REMOVEDIR != 0 {
                FileOp::Rmdir
            } else {
                FileOp::Unlink
            };
            vec![file(path, fd(a[0]), vec![op])]
        }
        nr::CHMOD => vec![file(path, AT_FDCWD, vec![FileOp::Chmod])],
        nr::FCHMODAT => vec![file(path, fd(a[0]), vec![FileOp::Chmod])],
        nr::CHOWN | nr::LCHOWN => vec![file(path, AT_FDCWD, vec![FileOp::Chown])],
        nr::FCHOWNAT => vec![file(path, fd(a[0]), vec![FileOp::Chown])],
        nr::RENAME => vec![
            file(path, AT_FDCWD, vec![FileOp::Rename]),
            file(path2, AT_FDCWD, vec![FileOp::Rename]),
        ],
        nr::RENAMEAT | nr::RENAMEAT2 => vec![
            file(path, fd(a[0]), vec![FileOp::Rename]),
            file(path2, fd(a[2]), vec![FileOp::Rename]),
        ],
        nr::LINK => vec![file(path2, AT_FDCWD, vec![FileOp::Link])],
        nr::LINKAT => vec![file(path2, fd(a[2]), vec![FileOp::Link])],
        nr::SYMLINK => vec![file(path2, AT_FDCWD, vec![FileOp::Symlink])],
        nr::SYMLINKAT => vec![file(path2, fd(a[1]), vec![FileOp::Symlink])],
        nr::EXECVE => vec![Fact::Exec {
            path,
            dirfd: AT_FDCWD,
        }],
        nr::EXECVEAT => vec![Fact::Exec {
            path,
            dirfd: fd(a[0]),
        }],
        nr::MMAP => vec![Fact::FdFile {
            fd: fd(a[0]),
            op: FileOp::MmapExec,
            mapped_at: (ev.ret >= 0).then_some(ev.ret as u64),
        }],
        nr::FLOCK => vec![Fact::FdFile {
            fd: fd(a[0]),
            op: FileOp::Lock,
            mapped_at: None,
        }],
        nr::SOCKET => vec![Fact::Socket {
            fd: ev.ret,
            family: a[0] as u16,
            // SOCK_NONBLOCK and SOCK_CLOEXEC share the type argument.
            kind: (a[1] & 0xf) as u32,
            protocol: a[2] as u32,
        }],
        nr::BIND => addr()
            .map(|addr| Fact::Bind { fd: fd(a[0]), addr })
            .into_iter()
            .collect(),
        nr::LISTEN => vec![Fact::Listen { fd: fd(a[0]) }],
        nr::CONNECT => addr()
            .map(|addr| Fact::Connect { fd: fd(a[0]), addr })
            .into_iter()
            .collect(),
        nr::SENDTO | nr::SENDMSG => addr()
            .map(|addr| Fact::Send { fd: fd(a[0]), addr })
            .into_iter()
            .collect(),
        nr::ACCEPT | nr::ACCEPT4 => addr()
            .map(|peer| Fact::Accept {
                listen_fd: fd(a[0]),
                peer,
            })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// `EINPROGRESS`: a non-blocking connect that is under way counts as made.
const EINPROGRESS: i64 = 115;

/// Whether the call failed. A failed call's facts are kept apart (files) or dropped
/// (network): the workload did without them.
pub fn failed(ev: &Event) -> bool {
    ev.kind == kind::SYSCALL && ev.ret < 0 && !(ev.nr == nr::CONNECT && ev.ret == -EINPROGRESS)
}

/// Capability names, by number (`linux/capability.h`).
pub fn capability_name(cap: u32) -> String {
    CAPABILITY_NAMES
        .get(cap as usize)
        .map(|n| (*n).to_owned())
        .unwrap_or_else(|| format!("cap_{cap}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_arguments_are_32_bit() {
        // `mov $0xffffff9c,%edi` (glibc's openat(AT_FDCWD, …)) and a sign-extended -100.
        assert_eq!(dirfd(0xffff_ff9c), AT_FDCWD);
        assert_eq!(dirfd(u64::MAX - 99), AT_FDCWD);
        assert_eq!(dirfd(7), 7);
        assert_eq!(dirfd(0xdead_0000_0003), 3);
    }

    #[test]
    fn open_flags_to_ops() {
        use FileOp::*;
        let cases: &[(u64, &[FileOp])] = &[
            (0, &[Read]),
            (O_WRONLY, &[Write]),
            (O_RDWR, &[Read, Write]),
            (O_WRONLY | O_APPEND | O_CREAT, &[Append, Create]),
            (O_WRONLY | O_CREAT | O_TRUNC, &[Write, Create, Truncate]),
            (O_PATH, &[]),
            (0o2000000 /* O_CLOEXEC */, &[Read]),
        ];
        for (flags, want) in cases {
            assert_eq!(open_ops(*flags), *want, "flags {flags:o}");
        }
    }

    #[test]
    fn parses_sockaddrs() {
        let mut v4 = vec![0u8; 16];
        v4[0..2].copy_from_slice(&AF_INET.to_ne_bytes());
        v4[2..4].copy_from_slice(&8080u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[10, 0, 0, 7]);
        assert_eq!(
            sockaddr(&v4),
            Some(SockAddr::Inet("10.0.0.7".parse().unwrap(), 8080))
        );

        let mut mapped = vec![0u8; 28];
        mapped[0..2].copy_from_slice(&AF_INET6.to_ne_bytes());
        mapped[2..4].copy_from_slice(&53u16.to_be_bytes());
        mapped[8..24].copy_from_slice(&"::ffff:192.0.2.1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(
            sockaddr(&mapped),
            Some(SockAddr::Inet("192.0.2.1".parse().unwrap(), 53))
        );

        let mut v6 = vec![0u8; 28];
        v6[0..2].copy_from_slice(&AF_INET6.to_ne_bytes());
        v6[2..4].copy_from_slice(&443u16.to_be_bytes());
        v6[8..24].copy_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(
            sockaddr(&v6),
            Some(SockAddr::Inet("fd00::1".parse().unwrap(), 443))
        );

        let mut unix = AF_UNIX.to_ne_bytes().to_vec();
        unix.extend_from_slice(b"/run/app.sock\0junk");
        assert_eq!(
            sockaddr(&unix),
            Some(SockAddr::Unix(b"/run/app.sock".to_vec()))
        );

        let mut abstract_ = AF_UNIX.to_ne_bytes().to_vec();
        abstract_.extend_from_slice(b"\0name");
        assert_eq!(
            sockaddr(&abstract_),
            Some(SockAddr::Unix(b"@name".to_vec()))
        );

        assert_eq!(sockaddr(&[1]), None);
    }

    #[test]
    fn capability_names() {
        assert_eq!(capability_name(0), "chown");
        assert_eq!(capability_name(10), "net_bind_service");
        assert_eq!(capability_name(40), "checkpoint_restore");
        assert_eq!(capability_name(99), "cap_99");
    }

    #[test]
    fn failure_rules() {
        let mut ev = Event::ZERO;
        ev.kind = kind::SYSCALL;
        ev.nr = nr::CONNECT;
        ev.ret = -EINPROGRESS;
        assert!(!failed(&ev));
        ev.ret = -111;
        assert!(failed(&ev));
        ev.nr = nr::OPENAT;
        ev.ret = -2;
        assert!(failed(&ev));
        ev.ret = 3;
        assert!(!failed(&ev));
    }
}

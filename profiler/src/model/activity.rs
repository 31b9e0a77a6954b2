//! What a cgroup did besides syscalls: files, network, capabilities, processes. Recorded from
//! deduplicated kernel events; each synthesizer (AppArmor, NetworkPolicy, securityContext)
//! reads the part it needs.

use std::{collections::BTreeSet, net::IpAddr};

use serde::{Deserialize, Serialize};

/// A path as the kernel saw it: bytes, not necessarily UTF-8. Serialized as a JSON string
/// when it is UTF-8, otherwise as `{"hex": "…"}`, so nothing is lost or mangled.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FsPath(pub Vec<u8>);

impl FsPath {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl From<&str> for FsPath {
    fn from(s: &str) -> Self {
        FsPath(s.as_bytes().to_vec())
    }
}

impl Serialize for FsPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                use serde::ser::SerializeStruct;
                let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
                let mut st = s.serialize_struct("FsPath", 1)?;
                st.serialize_field("hex", &hex)?;
                st.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for FsPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor rather than an untagged enum: serde buffers every value of an untagged
        // enum before trying its variants, a copy of every path of a million-file recording.
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = FsPath;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#"a path: a string, or {"hex": "…"}"#)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FsPath, E> {
                Ok(FsPath(v.as_bytes().to_vec()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<FsPath, E> {
                Ok(FsPath(v.into_bytes()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FsPath, A::Error> {
                let mut hex: Option<String> = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "hex" || hex.is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "unexpected field {key:?} in a hex path"
                        )));
                    }
                    hex = Some(map.next_value()?);
                }
                let hex = hex.ok_or_else(|| serde::de::Error::missing_field("hex"))?;
                if hex.len() % 2 != 0 {
                    return Err(serde::de::Error::custom("odd-length hex path"));
                }
                (0..hex.len())
                    .step_by(2)
                    .map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                            .ok_or_else(|| serde::de::Error::custom("invalid hex path"))
                    })
                    .collect::<Result<Vec<u8>, _>>()
                    .map(FsPath)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Capability names by number (`linux/capability.h`, without `CAP_`), as recordings, AppArmor
/// and Kubernetes spell them.
pub const CAPABILITY_NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// What was done to a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOp {
    Read,
    Write,
    Append,
    Create,
    Truncate,
    /// Executed (execve/execveat): the binary.
    Exec,
    /// Mapped with PROT_EXEC (shared libraries): AppArmor `m`.
    MmapExec,
    /// Made a hard link to it (`link`/`linkat`, as the new name).
    Link,
    /// Created a symlink at this path.
    Symlink,
    /// Renamed from or to this path.
    Rename,
    Unlink,
    Mkdir,
    Rmdir,
    Chmod,
    Chown,
    /// flock(2): AppArmor `k`.
    Lock,
}

/// One file (or directory) and everything done to it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAccess {
    /// Absolute, in the workload's mount namespace, symlinks resolved (what AppArmor
    /// mediates).
    pub path: FsPath,
    pub ops: BTreeSet<FileOp>,
    /// The call failed (ENOENT, EACCES, …). Kept apart: a profile should not have to allow
    /// what the workload tried and did without.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// uid of the process when it was the file's owner at the time (AppArmor `owner`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub owned: bool,
}

/// A digit run in a recorded path that was, when the access was made, the pid or tid of the
/// accessing task as its own pid namespace numbers it: the name was most likely made from it
/// (`temp-<pid>.rdb`), and a next run makes it with another number. Kept beside
/// [`Activity::files`] rather than in [`FileAccess`], whose literal is written out in code
/// outside this crate.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PidInName {
    pub path: FsPath,
    /// Byte offsets of the digits in `path`, `end` exclusive.
    pub start: u32,
    pub end: u32,
}

/// A directory where the workload made more distinct names with one operation than the
/// kernel side sends one by one (`DIR_AGGREGATE_AFTER`, 64): its first names are in
/// [`Activity::files`], the rest only here. What was done to every name directly in `dir`,
/// successfully (failures are always recorded per name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatedDir {
    /// Absolute, in the workload's mount namespace, symlinks resolved, without a trailing
    /// `/`.
    pub dir: FsPath,
    pub ops: BTreeSet<FileOp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// A socket the workload created: family and type (`inet`/`stream`), for AppArmor `network`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketKind {
    /// `inet`, `inet6`, `unix`, `netlink`, `packet`, or `af_N`.
    pub family: String,
    /// `stream`, `dgram`, `seqpacket`, `raw`, or `type_N`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A port the workload listened on (TCP/SCTP `listen`, or a bound UDP socket).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub protocol: Protocol,
    /// The bound address (`0.0.0.0` / `::` for any). v4-mapped v6 addresses are normalised
    /// to v4.
    pub addr: IpAddr,
    pub port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A peer connected to (or sent a datagram to) the workload.
    Ingress,
    /// The workload connected to (or sent a datagram to) a peer.
    Egress,
}

/// One network conversation, deduplicated by its endpoints (not by the ephemeral port of the
/// side that initiated it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub direction: Direction,
    pub protocol: Protocol,
    pub peer: IpAddr,
    /// Egress: the peer's port. Ingress: 0 (the peer's ephemeral port is irrelevant).
    pub peer_port: u16,
    /// Ingress: the workload's own port that was reached. Egress: 0.
    pub local_port: u16,
    /// A DNS query (egress to port 53).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dns: bool,
}

/// A unix socket the workload bound or connected to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnixSocket {
    /// The path, or `@name` for an abstract socket.
    pub address: FsPath,
    /// `bind` or `connect`.
    pub op: String,
}

/// A program the workload ran, and as whom.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    pub exe: FsPath,
    pub uid: u32,
    pub gid: u32,
}

/// Everything besides syscalls that one cgroup did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activity {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileAccess>,
    /// Where a path of `files` held its accessor's own pid or tid (per-process names).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub pid_in_names: BTreeSet<PidInName>,
    /// Directories whose names were too many to record one by one.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub aggregated_dirs: BTreeSet<AggregatedDir>,
    /// Capabilities the workload used (`chown`, `net_bind_service`, …). `None` when the
    /// kernel could not report them (no `capability:cap_capable` tracepoint before 6.14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<BTreeSet<String>>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sockets: BTreeSet<SocketKind>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub listens: BTreeSet<Listen>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub flows: BTreeSet<Flow>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub unix_sockets: BTreeSet<UnixSocket>,
    /// Every uid/gid a task of the cgroup ran as, from exec and from each recorded event.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub uids: BTreeSet<u32>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub gids: BTreeSet<u32>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub processes: BTreeSet<Process>,
    /// A setuid/setgid binary was executed, or a task gained a capability it did not have.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privilege_gained: bool,
}

impl Activity {
    pub fn is_empty(&self) -> bool {
        self == &Activity::default()
    }
}

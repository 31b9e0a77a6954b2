use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Version of the recording format. Readers refuse other versions.
pub const SCHEMA_VERSION: u32 = 1;

/// A syscall ABI of the host, as named in recordings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Abi {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "i386")]
    I386,
    #[serde(rename = "x32")]
    X32,
}

impl Abi {
    pub const ALL: [Abi; 3] = [Abi::X86_64, Abi::I386, Abi::X32];

    /// The name recordings use (`uname -m` style for the native ABI).
    pub const fn as_str(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::I386 => "i386",
            Abi::X32 => "x32",
        }
    }
}

impl std::fmt::Display for Abi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Syscall names per ABI. ABIs with no syscall are left out.
pub type SyscallSet = BTreeMap<Abi, BTreeSet<String>>;

/// What the recording watched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// `profgen record -- CMD`: the command, run in a fresh cgroup.
    Command { argv: Vec<String>, cgroup: String },
    /// `profgen record --cgroup PATH`: a cgroup v2 subtree.
    Cgroup { cgroup: String },
    /// `profgen record --pid PID`: the cgroup of a running process.
    Pid { pid: u32, cgroup: String },
}

/// The machine the recording was made on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -m`.
    pub machine: String,
    /// How file, exec and socket events were completed at their syscall's exit; absent in
    /// recordings made before it was recorded, and when merged recordings disagree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_exits: Option<EventExits>,
}

/// The kernel hook that completes file, exec and socket events at their syscall's exit. Each
/// gives the same facts; they differ in cost and in what the kernel must allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventExits {
    /// `fexit` programs on the syscall handlers (BPF trampolines), reading the arguments from
    /// the registers the handler was given.
    Fexit,
    /// `syscalls:sys_exit_*` tracepoints reading the arguments from the task's saved
    /// registers (Linux 5.15+).
    Tracepoint,
    /// The tracepoints completing what the entry program staged for every event syscall.
    Staged,
}

impl EventExits {
    /// The name `PROFGEN_EXITS` takes and the recording shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fexit => "fexit",
            Self::Tracepoint => "tracepoint",
            Self::Staged => "staged",
        }
    }

    pub const ALL: [Self; 3] = [Self::Fexit, Self::Tracepoint, Self::Staged];
}

impl std::fmt::Display for EventExits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The container runtime seen installing a seccomp filter, if it could be named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What one cgroup below the target did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupRecord {
    /// cgroup v2 id (the inode number of its directory).
    pub id: u64,
    /// Path below the cgroup v2 root, `None` when the cgroup was gone before it could be
    /// named.
    pub path: Option<String>,
    /// Whether a task of this cgroup installed a seccomp filter (the runtime loading the
    /// container's profile). When true, `syscalls` holds only what came after it.
    pub seccomp_filter_seen: bool,
    /// Whether, after the filter, a task executed the container's entrypoint. When true,
    /// `activity` holds only what came after that exec (the runtime's last steps before it
    /// are not the workload's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub entrypoint_seen: bool,
    /// A process moved into the cgroup after the runtime's hand-over (`runc exec`,
    /// `kubectl exec`) could not be followed on its own (too many at once): its set-up before
    /// its filter counts here as the workload's. Followed ones leave their set-up in
    /// `excluded_before_filter` like the runtime's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub joined_after_handover: bool,
    /// The syscalls the profile must allow.
    pub syscalls: SyscallSet,
    /// Syscalls seen only before the seccomp filter was installed: the runtime's own
    /// set-up, which the profile must not allow.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub excluded_before_filter: SyscallSet,
    /// Syscall numbers the name tables do not know, per ABI. Reported, never dropped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unknown_numbers: BTreeMap<Abi, BTreeSet<u32>>,
    /// The values of watched flag and enumeration arguments (`socket`'s family, `clone`'s
    /// flags, `ioctl`'s request, …) the syscalls above were made with, per ABI and name (see
    /// [`super::args`]). A syscall made without an entry here had unknown arguments.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: super::ArgSet,
    /// Files, execs, sockets, network, capabilities and credentials (AppArmor,
    /// NetworkPolicy and securityContext read these).
    #[serde(default, skip_serializing_if = "super::Activity::is_empty")]
    pub activity: super::Activity,
}

/// A recording, as written by `profgen record` and read by `profgen synth`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recording {
    pub schema_version: u32,
    /// Version of profgen that wrote it.
    pub profgen_version: String,
    pub host: Host,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC.
    pub ended_at: String,
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// Events the kernel side could not record, by reason (every reason listed, zeros
    /// included). Non-zero means the profile may be missing something.
    pub events_lost: BTreeMap<String, u64>,
    /// Only syscalls were recorded (`record --syscalls-only`): no files, network,
    /// capabilities or credentials, so no AppArmor profile, NetworkPolicy or securityContext
    /// can be made from it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub syscalls_only: bool,
    /// Runs merged into this recording and the rules only some of them saw (absent for one
    /// run).
    #[serde(default, skip_serializing_if = "super::Coverage::is_single_run")]
    pub coverage: super::Coverage,
    /// One entry per cgroup that made a syscall, sorted by path then id.
    pub cgroups: Vec<CgroupRecord>,
}

//! Turns decoded facts into each cgroup's [`Activity`]: resolves paths in the workload's own
//! mount namespace (through `/proc/<pid>/root`, `cwd` and `fd`), remembers which fd is which
//! file or socket, and pairs accepts with the port they were listening on.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use profiler_common::{
    bitmap::phase,
    event::{status, Event},
};

use super::facts::{self, Fact, SockAddr, AF_INET, AF_INET6, AF_UNIX, AT_FDCWD};
use super::procfs::{LastSeen, ProcView};
use crate::model::{
    Activity, AggregatedDir, Direction, FileAccess, FileOp, Flow, FsPath, Listen, PidInName,
    Process, Protocol, SocketKind, UnixSocket,
};
use crate::paths::Last;

const SOCK_STREAM: u32 = 1;
const SOCK_DGRAM: u32 = 2;
const IPPROTO_SCTP: u32 = 132;

#[derive(Clone, Debug)]
enum Fd {
    File(Vec<u8>),
    Socket {
        kind: u32,
        protocol: u32,
        bound: Option<(IpAddr, u16)>,
    },
}

#[derive(Clone, Default)]
struct PerCgroup {
    files: BTreeMap<(Vec<u8>, bool), BTreeSet<FileOp>>,
    /// Directories the kernel side aggregated (`status::DIR_AGGREGATED`), resolved.
    aggregated: BTreeMap<Vec<u8>, BTreeSet<FileOp>>,
    owned: BTreeSet<Vec<u8>>,
    activity: Activity,
    caps: BTreeSet<String>,
    /// Listening fd number → (protocol, port), for accepts made by other processes that
    /// inherited the fd (nginx workers accept on the master's sockets).
    listening: HashMap<i64, (Protocol, u16)>,
}

/// Accumulates facts while the recording runs.
#[derive(Default)]
pub struct Collector {
    /// Keyed by cgroup id and the phase of the runtime's hand-over the fact came in
    /// ([`phase`]): what came before the entrypoint belongs to the runtime, not the
    /// container.
    cgroups: BTreeMap<(u64, u32), PerCgroup>,
    /// The runtime seen setting up each cgroup (`runc:[2:INIT]` → runc), from the command
    /// name of the first task that made an event there before the filter.
    pub runtimes: BTreeMap<u64, String>,
    fds: HashMap<(u32, i64), Fd>,
    /// Each task's (pid, tid) in its own pid namespace, by host `pid_tgid`. Host pids are not
    /// reused within a recording in practice (pid_max is 4194304 on systemd hosts); a stale
    /// entry could only claim a digit run that is not the pid.
    ns_ids: HashMap<u64, (u32, u32)>,
    /// What `/proc` showed of the processes of recent batches, for those gone since.
    last_seen: LastSeen,
    /// Facts whose path or fd could not be resolved (the process was gone).
    pub unresolved: u64,
}

impl Collector {
    /// Call with each batch of events before adding them: remembers what `/proc` shows of
    /// the processes that made them, while they still exist.
    pub fn note_processes(&mut self, events: &[Event]) {
        self.last_seen
            .note(events.iter().map(|ev| (ev.pid_tgid >> 32) as u32));
    }

    pub fn add(&mut self, ev: &Event) {
        let tgid = (ev.pid_tgid >> 32) as u32;
        let uid = ev.uid_gid as u32;
        let gid = (ev.uid_gid >> 32) as u32;
        if debug_events() {
            eprintln!(
                "event kind={} nr={} cgroup={} tgid={} ret={} args0={} status={}",
                ev.kind, ev.nr, ev.cgroup, tgid, ev.ret, ev.args[0], ev.status
            );
        }
        let failed = facts::failed(ev);
        let phase = phase_of(ev.status);
        if phase == phase::SETUP && !self.runtimes.contains_key(&ev.cgroup) {
            if let Some(runtime) = runtime_of(tgid) {
                self.runtimes.insert(ev.cgroup, runtime);
            }
        }
        let proc_view = ProcView::of(tgid, &self.last_seen);
        let cg = self.cgroups.entry((ev.cgroup, phase)).or_default();
        cg.activity.uids.insert(uid);
        cg.activity.gids.insert(gid);
        for fact in facts::decode(ev) {
            match fact {
                Fact::File { path, dirfd, ops } => {
                    if unreadable_name(&path, ev.status) {
                        // "" resolves to the working directory (or the dirfd's file): a
                        // name the kernel side could not read is no fact about `/`.
                        self.unresolved += 1;
                        continue;
                    }
                    let names_link = ops.iter().any(|op| {
                        matches!(
                            op,
                            FileOp::Unlink
                                | FileOp::Rmdir
                                | FileOp::Rename
                                | FileOp::Symlink
                                | FileOp::Link
                        )
                    });
                    let last = if names_link {
                        Last::NoFollow
                    } else {
                        Last::Follow
                    };
                    let dirfd_path = file_fd(&self.fds, tgid, dirfd);
                    if ev.status & status::DIR_AGGREGATED != 0 && !failed && !ops.is_empty() {
                        match proc_view.resolve(dir_part(&path), dirfd, dirfd_path, Last::Follow) {
                            Some(dir) => cg
                                .aggregated
                                .entry(trim_dir(dir))
                                .or_default()
                                .extend(ops.iter().copied()),
                            None => self.unresolved += 1,
                        }
                    }
                    let Some(mut path) = proc_view.resolve(&path, dirfd, dirfd_path, last) else {
                        self.unresolved += 1;
                        continue;
                    };
                    if !failed && names_a_directory(&ops) && !path.ends_with(b"/") {
                        // Resolution marks directories that still exist; one removed (or
                        // made and removed) before its event was read is one all the same,
                        // and AppArmor matches directories by their trailing `/`.
                        path.push(b'/');
                    }
                    if !failed && !ops.is_empty() {
                        // Open-like calls return the new fd.
                        self.fds.insert((tgid, ev.ret), Fd::File(path.clone()));
                        if proc_view.owner(&path) == Some(uid) {
                            cg.owned.insert(path.clone());
                        }
                    }
                    if makes_names(&path, &ops) {
                        let ids = ns_ids_cached(&mut self.ns_ids, ev.pid_tgid, &path);
                        note_pid_in_name(&mut cg.activity, &path, ids);
                    }
                    if !ops.is_empty() {
                        cg.files.entry((path, failed)).or_default().extend(ops);
                    }
                }
                Fact::Exec { path, dirfd } => {
                    let dirfd_path = file_fd(&self.fds, tgid, dirfd);
                    let Some(path) = proc_view.resolve(&path, dirfd, dirfd_path, Last::Follow)
                    else {
                        self.unresolved += 1;
                        continue;
                    };
                    cg.files
                        .entry((path.clone(), failed))
                        .or_default()
                        .insert(FileOp::Exec);
                    if !failed {
                        // Credentials after the exec, as the kernel side read them at exit.
                        let after = ev.args[3];
                        cg.activity.processes.insert(Process {
                            exe: FsPath(path.clone()),
                            uid: after as u32,
                            gid: (after >> 32) as u32,
                        });
                        if proc_view.is_setid(&path) || after as u32 != uid {
                            cg.activity.privilege_gained = true;
                        }
                    }
                }
                Fact::FdFile { fd, op, mapped_at } => {
                    if failed {
                        continue;
                    }
                    // The mapping first: the fd may have been closed and reused by the time
                    // the event is read (a library mapped through fd 3, then a data file
                    // opened as fd 3).
                    let path = match (
                        mapped_at.and_then(|at| proc_view.mapping_path(at)),
                        self.fds.get(&(tgid, fd)),
                    ) {
                        (Some(p), _) => Some(p),
                        (None, Some(Fd::File(p))) => Some(p.clone()),
                        (None, _) => proc_view.fd_path(fd),
                    };
                    match path {
                        Some(p) => {
                            cg.files.entry((p, false)).or_default().insert(op);
                        }
                        None => self.unresolved += 1,
                    }
                }
                Fact::Socket {
                    fd,
                    family,
                    kind,
                    protocol,
                } => {
                    if failed {
                        continue;
                    }
                    cg.activity.sockets.insert(SocketKind {
                        family: family_name(family),
                        kind: type_name(kind),
                    });
                    self.fds.insert(
                        (tgid, fd),
                        Fd::Socket {
                            kind,
                            protocol,
                            bound: None,
                        },
                    );
                }
                Fact::Bind { fd, addr } => {
                    if failed {
                        continue;
                    }
                    match addr {
                        SockAddr::Unix(path) => {
                            cg.activity.unix_sockets.insert(UnixSocket {
                                address: FsPath(path),
                                op: "bind".into(),
                            });
                        }
                        SockAddr::Inet(ip, port) => {
                            let entry = self.fds.entry((tgid, fd)).or_insert(Fd::Socket {
                                kind: 0,
                                protocol: 0,
                                bound: None,
                            });
                            if let Fd::Socket { kind, bound, .. } = entry {
                                *bound = Some((ip, port));
                                if *kind == SOCK_DGRAM {
                                    cg.activity.listens.insert(Listen {
                                        protocol: Protocol::Udp,
                                        addr: ip,
                                        port,
                                    });
                                }
                            }
                        }
                        SockAddr::Other(_) => {}
                    }
                }
                Fact::Listen { fd } => {
                    if failed {
                        continue;
                    }
                    if let Some(Fd::Socket {
                        protocol,
                        bound: Some((ip, port)),
                        ..
                    }) = self.fds.get(&(tgid, fd))
                    {
                        let proto = if *protocol == IPPROTO_SCTP {
                            Protocol::Sctp
                        } else {
                            Protocol::Tcp
                        };
                        cg.activity.listens.insert(Listen {
                            protocol: proto,
                            addr: *ip,
                            port: *port,
                        });
                        cg.listening.insert(fd, (proto, *port));
                    } else {
                        self.unresolved += 1;
                    }
                }
                Fact::Connect { fd, addr } | Fact::Send { fd, addr } => {
                    if failed {
                        continue;
                    }
                    let is_send = ev.nr != profiler_common::event::nr::CONNECT;
                    match addr {
                        SockAddr::Unix(path) => {
                            cg.activity.unix_sockets.insert(UnixSocket {
                                address: FsPath(path),
                                op: "connect".into(),
                            });
                        }
                        SockAddr::Inet(peer, peer_port) => {
                            let protocol = match self.fds.get(&(tgid, fd)) {
                                Some(Fd::Socket { kind, protocol, .. }) => {
                                    socket_protocol(*kind, *protocol, is_send)
                                }
                                _ if is_send => Protocol::Udp,
                                _ => Protocol::Tcp,
                            };
                            cg.activity.flows.insert(Flow {
                                direction: Direction::Egress,
                                protocol,
                                peer,
                                peer_port,
                                local_port: 0,
                                dns: peer_port == 53,
                            });
                        }
                        SockAddr::Other(_) => {}
                    }
                }
                Fact::Accept { listen_fd, peer } => {
                    if failed {
                        continue;
                    }
                    let SockAddr::Inet(peer, _) = peer else {
                        continue;
                    };
                    let local = match self.fds.get(&(tgid, listen_fd)) {
                        Some(Fd::Socket {
                            bound: Some((_, port)),
                            protocol,
                            ..
                        }) => Some((socket_protocol(SOCK_STREAM, *protocol, false), *port)),
                        _ => cg.listening.get(&listen_fd).copied(),
                    };
                    match local {
                        Some((protocol, port)) => {
                            cg.activity.flows.insert(Flow {
                                direction: Direction::Ingress,
                                protocol,
                                peer,
                                peer_port: 0,
                                local_port: port,
                                dns: false,
                            });
                        }
                        None => self.unresolved += 1,
                    }
                }
                Fact::Capability { cap } => {
                    cg.caps.insert(facts::capability_name(cap));
                }
            }
        }
    }

    /// Each cgroup's activity. `phases` holds each cgroup's last phase (cgroups not in it
    /// stayed in [`phase::SETUP`]): a cgroup whose runtime handed over to the entrypoint
    /// counts only what came after that exec; one with a filter but no exec seen, what came
    /// after the filter; the others everything. `include_runtime_setup` counts everything
    /// everywhere. `capabilities_recorded` is false on kernels that cannot report
    /// capabilities, which leaves `capabilities` unset rather than empty.
    pub fn finish_with(
        self,
        capabilities_recorded: bool,
        phases: &BTreeMap<u64, u32>,
        include_runtime_setup: bool,
    ) -> BTreeMap<u64, Activity> {
        Self::activities(
            self.cgroups,
            capabilities_recorded,
            phases,
            include_runtime_setup,
        )
    }

    /// Each cgroup's activity so far, as [`Self::finish_with`] would give it, while the
    /// recording goes on (the per-fd state that pairs later accepts with earlier listens
    /// stays).
    pub fn so_far(
        &self,
        capabilities_recorded: bool,
        phases: &BTreeMap<u64, u32>,
        include_runtime_setup: bool,
    ) -> BTreeMap<u64, Activity> {
        Self::activities(
            self.cgroups.clone(),
            capabilities_recorded,
            phases,
            include_runtime_setup,
        )
    }

    fn activities(
        cgroups: BTreeMap<(u64, u32), PerCgroup>,
        capabilities_recorded: bool,
        phases: &BTreeMap<u64, u32>,
        include_runtime_setup: bool,
    ) -> BTreeMap<u64, Activity> {
        let mut merged: BTreeMap<u64, PerCgroup> = BTreeMap::new();
        for ((id, phase), cg) in cgroups {
            let reached = phases.get(&id).copied().unwrap_or(phase::SETUP);
            if phase < reached && !include_runtime_setup {
                // The runtime's steps: its files, sockets and capabilities are not the
                // workload's.
                merged.entry(id).or_default();
                continue;
            }
            let into = merged.entry(id).or_default();
            for (key, ops) in cg.files {
                into.files.entry(key).or_default().extend(ops);
            }
            for (dir, ops) in cg.aggregated {
                into.aggregated.entry(dir).or_default().extend(ops);
            }
            into.owned.extend(cg.owned);
            into.caps.extend(cg.caps);
            let (a, b) = (&mut into.activity, cg.activity);
            a.pid_in_names.extend(b.pid_in_names);
            a.sockets.extend(b.sockets);
            a.listens.extend(b.listens);
            a.flows.extend(b.flows);
            a.unix_sockets.extend(b.unix_sockets);
            a.uids.extend(b.uids);
            a.gids.extend(b.gids);
            a.processes.extend(b.processes);
            a.privilege_gained |= b.privilege_gained;
        }
        merged
            .into_iter()
            .map(|(id, mut cg)| {
                cg.activity.files = cg
                    .files
                    .into_iter()
                    .map(|((path, failed), ops)| FileAccess {
                        // A file whose owner changed during the recording (nginx's master
                        // chowns the temp directories it made) was owned at some moments and
                        // not at others: no `owner` qualifier, the broader rule.
                        owned: !failed && cg.owned.contains(&path) && !ops.contains(&FileOp::Chown),
                        path: FsPath(path),
                        ops,
                        failed,
                    })
                    .collect();
                cg.activity.aggregated_dirs = cg
                    .aggregated
                    .into_iter()
                    .map(|(dir, ops)| AggregatedDir {
                        dir: FsPath(dir),
                        ops,
                    })
                    .collect();
                cg.activity.capabilities = capabilities_recorded.then_some(cg.caps);
                (id, cg.activity)
            })
            .collect()
    }
}

/// The directory part of a path as the call named it: up to its last `/` (`.` for a bare
/// name, the directory fd or cwd itself).
fn dir_part(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => b"/",
        Some(end) => &path[..end],
        None => b".",
    }
}

/// Whether a successful call with `ops` shows its path is a directory.
fn names_a_directory(ops: &[FileOp]) -> bool {
    ops.iter()
        .any(|op| matches!(op, FileOp::Mkdir | FileOp::Rmdir))
}

/// The file the recording saw `tgid` open as `fd` (a directory fd of an `*at` call), for
/// when the process is gone and `/proc` cannot say.
fn file_fd(fds: &HashMap<(u32, i64), Fd>, tgid: u32, fd: i64) -> Option<&[u8]> {
    if fd == AT_FDCWD {
        return None;
    }
    match fds.get(&(tgid, fd))? {
        Fd::File(path) => Some(path),
        Fd::Socket { .. } => None,
    }
}

/// A file fact whose name is missing because user memory could not be read. An empty name
/// is otherwise meaningful (`fchownat(fd, "", AT_EMPTY_PATH)` acts on `fd`).
fn unreadable_name(path: &[u8], status_bits: u32) -> bool {
    path.is_empty() && status_bits & status::UNREADABLE != 0
}

/// A resolved directory without its trailing `/` (`/` stays).
fn trim_dir(mut dir: Vec<u8>) -> Vec<u8> {
    while dir.len() > 1 && dir.ends_with(b"/") {
        dir.pop();
    }
    dir
}

/// Whether this access could have made the name: it wrote, created, renamed, linked or
/// removed it. A read of `libz.so.1` by pid 1 says nothing about where the name came from,
/// and `/proc/<pid>` has its own rule.
fn makes_names(path: &[u8], ops: &[FileOp]) -> bool {
    !path.starts_with(b"/proc/")
        && ops.iter().any(|op| {
            !matches!(
                op,
                FileOp::Read | FileOp::Exec | FileOp::MmapExec | FileOp::Lock
            )
        })
}

/// The task's (pid, tid) in its own pid namespace, read once per task and only for paths
/// that hold a digit. `None` when the task is gone (then nothing is claimed).
fn ns_ids_cached(
    cache: &mut HashMap<u64, (u32, u32)>,
    pid_tgid: u64,
    path: &[u8],
) -> Option<(u32, u32)> {
    if !path.iter().any(u8::is_ascii_digit) {
        return None;
    }
    if let Some(ids) = cache.get(&pid_tgid) {
        return Some(*ids);
    }
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    let status = std::fs::read_to_string(format!("/proc/{tgid}/task/{tid}/status")).ok()?;
    let ids = ns_ids(&status)?;
    cache.insert(pid_tgid, ids);
    Some(ids)
}

/// (pid, tid) as the innermost pid namespace numbers them: the last fields of `NStgid:` and
/// `NSpid:` in a task's `status` (one field each outside a pid namespace).
fn ns_ids(status: &str) -> Option<(u32, u32)> {
    let last = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_ascii_whitespace().last())
            .and_then(|n| n.parse::<u32>().ok())
    };
    let tid = last("NSpid:")?;
    // NStgid is missing before Linux 4.1: the pid is then unknown, the tid is still good.
    let pid = last("NStgid:").unwrap_or(tid);
    Some((pid, tid))
}

/// Records each digit run of `path` (bounded by non-digits) that is the accessing task's
/// pid or tid.
fn note_pid_in_name(activity: &mut Activity, path: &[u8], ids: Option<(u32, u32)>) {
    let Some((pid, tid)) = ids else {
        return;
    };
    for (start, end) in pid_runs(path, pid, tid) {
        activity.pid_in_names.insert(PidInName {
            path: FsPath(path.to_vec()),
            start,
            end,
        });
    }
}

/// The byte ranges of the digit runs of `path` whose value is `pid` or `tid`. A run with a
/// leading zero is not a pid as `%d` writes it.
fn pid_runs(path: &[u8], pid: u32, tid: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < path.len() {
        if !path[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < path.len() && path[i].is_ascii_digit() {
            i += 1;
        }
        let run = &path[start..i];
        let value = std::str::from_utf8(run)
            .ok()
            .and_then(|s| s.parse::<u32>().ok());
        let is_id = value.is_some_and(|v| v == pid || v == tid);
        if is_id && (run[0] != b'0' || run.len() == 1) {
            if let (Ok(s), Ok(e)) = (u32::try_from(start), u32::try_from(i)) {
                out.push((s, e));
            }
        }
    }
    out
}

/// `PROFGEN_DEBUG_EVENTS` set: print every event as it arrives. Read once; `add` runs for
/// every event.
fn debug_events() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PROFGEN_DEBUG_EVENTS").is_some())
}

fn phase_of(status_bits: u32) -> u32 {
    if status_bits & status::WORKLOAD != 0 {
        phase::WORKLOAD
    } else if status_bits & status::AFTER_FILTER != 0 {
        phase::FILTERED
    } else {
        phase::SETUP
    }
}

/// `runc`, `crun` or `youki` when the task's command name says it is that runtime's init. A
/// label for the recording only; nothing depends on it.
fn runtime_of(tgid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{tgid}/comm")).ok()?;
    ["runc", "crun", "youki"]
        .into_iter()
        .find(|rt| comm.trim().starts_with(rt))
        .map(str::to_owned)
}

fn socket_protocol(kind: u32, protocol: u32, datagram_default: bool) -> Protocol {
    match (kind, protocol) {
        (_, IPPROTO_SCTP) => Protocol::Sctp,
        (SOCK_STREAM, _) => Protocol::Tcp,
        (SOCK_DGRAM, _) => Protocol::Udp,
        _ if datagram_default => Protocol::Udp,
        _ => Protocol::Tcp,
    }
}

fn family_name(family: u16) -> String {
    match family {
        AF_UNIX => "unix".into(),
        AF_INET => "inet".into(),
        AF_INET6 => "inet6".into(),
        16 => "netlink".into(),
        17 => "packet".into(),
        other => format!("af_{other}"),
    }
}

fn type_name(kind: u32) -> String {
    match kind {
        SOCK_STREAM => "stream".into(),
        SOCK_DGRAM => "dgram".into(),
        3 => "raw".into(),
        5 => "seqpacket".into(),
        other => format!("type_{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use profiler_common::event::kind;
    use std::os::unix::ffi::OsStrExt;

    fn capability(cgroup: u64, cap: u64, phase: u32) -> Event {
        Event {
            kind: kind::CAPABILITY,
            cgroup,
            args: [cap, 0, 0, 0],
            status: status::of_phase(phase),
            ..Event::ZERO
        }
    }

    /// runc's init checks mknod and sys_admin while it sets the container up, and setpcap
    /// after the filter while it drops the bounding set; nginx checks setuid after its exec.
    /// Only nginx's belong to the container, unless asked.
    #[test]
    fn capabilities_before_the_entrypoint_are_the_runtimes() {
        use phase::*;
        const CAP_MKNOD: u64 = 27;
        const CAP_SYS_ADMIN: u64 = 21;
        const CAP_SETUID: u64 = 7;
        const CAP_SETPCAP: u64 = 8;
        let events = [
            capability(9, CAP_MKNOD, SETUP),
            capability(9, CAP_SYS_ADMIN, SETUP),
            capability(9, CAP_SETUID, SETUP),
            capability(9, CAP_SETPCAP, FILTERED),
            capability(9, CAP_SETUID, WORKLOAD),
            capability(10, CAP_MKNOD, SETUP),
            capability(11, CAP_SYS_ADMIN, SETUP),
            capability(11, CAP_SETPCAP, FILTERED),
        ];
        let caps = |phases: &[(u64, u32)], include_setup: bool| {
            let mut c = Collector::default();
            events.iter().for_each(|ev| c.add(ev));
            let phases = phases.iter().copied().collect();
            c.finish_with(true, &phases, include_setup)
                .into_iter()
                .map(|(id, a)| (id, a.capabilities.unwrap().into_iter().collect::<Vec<_>>()))
                .collect::<BTreeMap<_, _>>()
        };
        let mut c = Collector::default();
        events.iter().for_each(|ev| c.add(ev));
        let phases: BTreeMap<u64, u32> = [(9, WORKLOAD)].into_iter().collect();
        let so_far = c.so_far(true, &phases, false);
        assert_eq!(
            so_far,
            c.finish_with(true, &phases, false),
            "a snapshot is the end"
        );
        let handed_over = caps(&[(9, WORKLOAD), (11, FILTERED)], false);
        assert_eq!(handed_over[&9], ["setuid"]);
        // No runtime: everything is the workload's.
        assert_eq!(handed_over[&10], ["mknod"]);
        // A filter but no exec after it: from the filter on.
        assert_eq!(handed_over[&11], ["setpcap"]);
        assert_eq!(
            caps(&[(9, WORKLOAD)], true)[&9],
            ["mknod", "setpcap", "setuid", "sys_admin"]
        );
    }

    #[test]
    fn a_file_chowned_during_the_recording_is_not_owned() {
        let mut cg = PerCgroup::default();
        for (path, ops) in [
            ("/var/lib/nginx/body", vec![FileOp::Mkdir, FileOp::Chown]),
            ("/run/nginx.pid", vec![FileOp::Read, FileOp::Write]),
        ] {
            cg.files
                .insert((path.as_bytes().to_vec(), false), ops.into_iter().collect());
            cg.owned.insert(path.as_bytes().to_vec());
        }
        let cgroups = [((1, phase::SETUP), cg)].into_iter().collect();
        let act = &Collector::activities(cgroups, true, &BTreeMap::new(), false)[&1];
        let owned: Vec<(&[u8], bool)> = act
            .files
            .iter()
            .map(|f| (f.path.as_bytes(), f.owned))
            .collect();
        assert_eq!(
            owned,
            [
                (&b"/run/nginx.pid"[..], true),
                (&b"/var/lib/nginx/body"[..], false)
            ]
        );
    }

    #[test]
    fn pid_digit_runs() {
        // (path, pid, tid, runs)
        type Case<'a> = (&'a str, u32, u32, &'a [(u32, u32)]);
        let cases: &[Case] = &[
            ("/var/lib/redis/temp-23.rdb", 23, 23, &[(20, 22)]),
            ("/var/lib/redis/temp-123.rdb", 23, 23, &[]),
            ("/var/lib/redis/temp-230.rdb", 23, 23, &[]),
            ("/pg_wal/xlogtemp.31", 31, 31, &[(17, 19)]),
            (
                "/x/pgsql_tmp31.0.fileset/31.0",
                31,
                40,
                &[(12, 14), (25, 27)],
            ),
            ("/x/t.40", 31, 40, &[(5, 7)]),
            ("/x/7", 7, 7, &[(3, 4)]),
            ("/x/07", 7, 7, &[]),
            ("/x/nothing", 7, 7, &[]),
            ("/x/99999999999999999999", 7, 7, &[]),
        ];
        for (path, pid, tid, want) in cases {
            assert_eq!(pid_runs(path.as_bytes(), *pid, *tid), *want, "{path}");
        }
    }

    #[test]
    fn only_accesses_that_make_names_are_asked() {
        use FileOp::*;
        let cases: &[(&str, &[FileOp], bool)] = &[
            (
                "/var/lib/redis/temp-23.rdb",
                &[Write, Create, Truncate],
                true,
            ),
            ("/var/lib/redis/temp-23.rdb", &[Rename], true),
            ("/srv/db/pgsql_tmp31.0.fileset/", &[Mkdir], true),
            ("/usr/lib/x86_64-linux-gnu/libz.so.1", &[Read], false),
            ("/usr/bin/redis-server", &[Exec], false),
            ("/proc/31/oom_score_adj", &[Write], false),
        ];
        for (path, ops, want) in cases {
            assert_eq!(makes_names(path.as_bytes(), ops), *want, "{path} {ops:?}");
        }
    }

    #[test]
    fn namespace_ids_from_status() {
        let status =
            "Name:\tredis-server\nTgid:\t4242\nPid:\t4250\nNStgid:\t4242\t1\nNSpid:\t4250\t9\n";
        assert_eq!(ns_ids(status), Some((1, 9)));
        assert_eq!(ns_ids("NSpid:\t4250\n"), Some((4250, 4250)));
        assert_eq!(ns_ids("Name:\tx\n"), None);
    }

    #[test]
    fn a_path_holding_the_pid_is_noted() {
        let mut a = Activity::default();
        note_pid_in_name(&mut a, b"/var/lib/redis/temp-11.rdb", Some((11, 12)));
        note_pid_in_name(&mut a, b"/var/lib/redis/temp-11.rdb", None);
        note_pid_in_name(&mut a, b"/var/lib/redis/dump.rdb", Some((11, 11)));
        let noted: Vec<_> = a
            .pid_in_names
            .iter()
            .map(|p| (p.path.to_str().unwrap(), p.start, p.end))
            .collect();
        assert_eq!(noted, [("/var/lib/redis/temp-11.rdb", 20, 22)]);
    }

    /// The kernel side's directory fact becomes the directory, resolved, with the call's
    /// operations; the name it came with is recorded as any other.
    #[test]
    fn an_aggregated_directory_is_recorded_resolved() {
        use profiler_common::event::nr;
        let tmp = tempfile::tempdir().unwrap();
        let spool = std::fs::canonicalize(tmp.path()).unwrap().join("spool");
        std::fs::create_dir(&spool).unwrap();
        let name = spool.join("f64");
        let path = name.as_os_str().as_bytes();
        let mut ev = Event {
            kind: kind::SYSCALL,
            nr: nr::OPENAT,
            pid_tgid: u64::from(std::process::id()) << 32 | u64::from(std::process::id()),
            ret: 3,
            // openat(AT_FDCWD, path, O_WRONLY|O_CREAT)
            args: [AT_FDCWD as u64, 0, 0o101, 0],
            status: status::of_phase(phase::WORKLOAD) | status::DIR_AGGREGATED,
            path_len: path.len() as u32,
            ..Event::ZERO
        };
        ev.path[..path.len()].copy_from_slice(path);
        let mut c = Collector::default();
        c.add(&ev);
        let act = c
            .finish_with(true, &BTreeMap::new(), false)
            .remove(&0)
            .unwrap();
        let dirs: Vec<(&[u8], Vec<FileOp>)> = act
            .aggregated_dirs
            .iter()
            .map(|d| (d.dir.as_bytes(), d.ops.iter().copied().collect()))
            .collect();
        assert_eq!(
            dirs,
            [(
                spool.as_os_str().as_bytes(),
                vec![FileOp::Write, FileOp::Create]
            )]
        );
        assert_eq!(act.files.len(), 1, "{:?}", act.files);
        assert_eq!(act.files[0].path.as_bytes(), path);
    }

    /// A workload's file event of syscall `nr` by process `tgid`, naming `name`.
    fn path_event(nr: u32, tgid: u32, name: &[u8], ret: i64, args: [u64; 4]) -> Event {
        let mut path = [0u8; profiler_common::event::PATH_LEN];
        path[..name.len()].copy_from_slice(name);
        let tgid = u64::from(tgid);
        Event {
            kind: kind::SYSCALL,
            nr,
            pid_tgid: tgid << 32 | tgid,
            ret,
            args,
            status: status::of_phase(phase::WORKLOAD),
            path_len: name.len() as u32,
            path,
            ..Event::ZERO
        }
    }

    /// A directory made and removed before its events are read is still named as one:
    /// AppArmor matches `rmdir` of a directory against `dir/`.
    #[test]
    fn a_removed_directory_keeps_its_trailing_slash() {
        use profiler_common::event::nr;
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().canonicalize().unwrap().join("gone");
        let name = gone.as_os_str().as_bytes();
        let event = |nr| path_event(nr, std::process::id(), name, 0, [0, 0o755, 0, 0]);
        let mut c = Collector::default();
        c.add(&event(nr::MKDIR));
        c.add(&event(nr::RMDIR));
        let act = c
            .finish_with(true, &BTreeMap::new(), false)
            .remove(&0)
            .unwrap();
        let names: Vec<&[u8]> = act.files.iter().map(|f| f.path.as_bytes()).collect();
        let mut want = name.to_vec();
        want.push(b'/');
        assert_eq!(names, [want.as_slice()], "{:?}", act.files);
        assert!(
            act.files[0].ops.contains(&FileOp::Mkdir) && act.files[0].ops.contains(&FileOp::Rmdir)
        );
    }

    /// A process that exits before its events are resolved (PostgreSQL's startup process
    /// after crash recovery opens every file of the data directory by a relative name, then
    /// exits): its relative names resolve against the cwd `/proc` showed when its batch was
    /// drained. Without that note they cannot be resolved.
    #[test]
    fn relative_names_of_a_process_gone_since_its_batch_resolve() {
        use profiler_common::event::nr;
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&dir)
            .spawn()
            .unwrap();
        // openat(AT_FDCWD, "base/1/1259", O_RDWR)
        let ev = path_event(
            nr::OPENAT,
            child.id(),
            b"base/1/1259",
            7,
            [AT_FDCWD as u64, 0, 0o2, 0],
        );
        let mut noted = Collector::default();
        noted.note_processes(std::slice::from_ref(&ev));
        child.kill().unwrap();
        child.wait().unwrap();
        let mut unnoted = Collector::default();
        for c in [&mut noted, &mut unnoted] {
            c.add(&ev);
        }
        assert_eq!(unnoted.unresolved, 1);
        assert_eq!(noted.unresolved, 0);
        let act = noted
            .finish_with(true, &BTreeMap::new(), false)
            .remove(&0)
            .unwrap();
        let want = dir.join("base/1/1259");
        let file = act
            .files
            .iter()
            .find(|f| f.path.as_bytes() == want.as_os_str().as_encoded_bytes())
            .unwrap_or_else(|| panic!("{want:?} not in {:?}", act.files));
        assert!(file.ops.contains(&FileOp::Write), "{file:?}");
    }

    /// An open whose name the kernel side could not read (a page not yet faulted in) names
    /// nothing: not the working directory, `/` in a container.
    #[test]
    fn an_unreadable_name_is_not_the_working_directory() {
        use profiler_common::event::nr;
        // openat(AT_FDCWD, <unreadable>, O_RDONLY|O_CLOEXEC)
        let mut ev = path_event(
            nr::OPENAT,
            std::process::id(),
            b"",
            9,
            [AT_FDCWD as u64, 0, 0o2000000, 0],
        );
        ev.status |= status::UNREADABLE;
        let mut c = Collector::default();
        c.add(&ev);
        assert_eq!(c.unresolved, 1);
        let act = c
            .finish_with(true, &BTreeMap::new(), false)
            .remove(&0)
            .unwrap_or_default();
        assert!(act.files.is_empty(), "{:?}", act.files);
    }

    #[test]
    fn unreadable_names() {
        let cases: &[(&[u8], u32, bool)] = &[
            (b"", status::UNREADABLE, true),
            (b"", 0, false),
            (b"/etc/passwd", status::UNREADABLE, false),
            (b"/etc/passwd", 0, false),
        ];
        for (path, bits, want) in cases {
            assert_eq!(unreadable_name(path, *bits), *want, "{path:?} {bits}");
        }
    }

    #[test]
    fn directory_parts() {
        let cases: &[(&str, &str)] = &[
            ("/var/lib/app/f1", "/var/lib/app"),
            ("/f1", "/"),
            ("f1", "."),
            ("sub/f1", "sub"),
            ("../up/f1", "../up"),
        ];
        for (path, want) in cases {
            assert_eq!(dir_part(path.as_bytes()), want.as_bytes(), "{path}");
        }
        assert_eq!(trim_dir(b"/var/lib/app/".to_vec()), b"/var/lib/app");
        assert_eq!(trim_dir(b"/".to_vec()), b"/");
    }
}

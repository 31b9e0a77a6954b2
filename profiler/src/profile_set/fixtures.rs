//! Profile sets for tests, made the way `profgen synth` makes them: a recording built here,
//! synthesized in memory, written under a temporary directory.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use super::{build, Artifact, BuildOptions, Mode};
use crate::{
    model::{
        fixtures::{cgroup, recording},
        Abi, Activity, Direction, FileAccess, FileOp, Flow, Listen, Process, Protocol, Recording,
        SocketKind,
    },
    naming::SetNames,
    synth,
};

pub(crate) fn access(path: &str, ops: &[FileOp], owned: bool) -> FileAccess {
    FileAccess {
        path: path.into(),
        ops: ops.iter().copied().collect(),
        failed: false,
        owned,
    }
}

pub(crate) fn flow(direction: Direction, peer: &str, port: u16) -> Flow {
    let ingress = direction == Direction::Ingress;
    Flow {
        direction,
        protocol: Protocol::Tcp,
        peer: peer.parse().unwrap(),
        peer_port: if ingress { 0 } else { port },
        local_port: if ingress { port } else { 0 },
        dns: false,
    }
}

/// A small web app: reads its config and site, writes its pid file, runs one binary, binds
/// 8080 (reached from 10.0.0.2), talks to a database at 10.0.0.9:5432.
pub(crate) fn web_activity() -> Activity {
    use FileOp::*;
    Activity {
        files: vec![
            access("/etc/app.conf", &[Read], false),
            access("/srv/site/index.html", &[Read], false),
            access("/run/app.pid", &[Write, Create], true),
            access("/usr/sbin/app", &[Exec, Read, MmapExec], false),
            // abstractions/base grants this one: the profile leaves it out.
            access(
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                &[Read, MmapExec],
                false,
            ),
            access("/proc/self/fd/1", &[Write], false),
            access("/var/lib/app/cache", &[Mkdir], false),
        ],
        capabilities: Some(BTreeSet::from([
            "chown".to_owned(),
            "net_bind_service".to_owned(),
        ])),
        sockets: BTreeSet::from([SocketKind {
            family: "inet".into(),
            kind: "stream".into(),
        }]),
        listens: BTreeSet::from([Listen {
            protocol: Protocol::Tcp,
            addr: "0.0.0.0".parse().unwrap(),
            port: 8080,
        }]),
        flows: BTreeSet::from([
            flow(Direction::Ingress, "10.0.0.2", 8080),
            flow(Direction::Egress, "10.0.0.9", 5432),
        ]),
        processes: BTreeSet::from([Process {
            exe: "/usr/sbin/app".into(),
            uid: 101,
            gid: 101,
        }]),
        uids: BTreeSet::from([101]),
        gids: BTreeSet::from([101]),
        ..Default::default()
    }
}

pub(crate) const WEB_SYSCALLS: &[&str] = &["read", "write", "openat", "close", "accept4", "execve"];

/// A recording of one cgroup that made `syscalls` and did `activity`.
pub(crate) fn web_recording(syscalls: &[&str], activity: Activity) -> Recording {
    let mut cg = cgroup(1, "/kubepods/web/c1", &[(Abi::X86_64, syscalls)]);
    cg.activity = activity;
    recording(vec![cg])
}

/// Writes the set `profgen synth --exact --name NAME --namespace default --labels app=NAME`
/// makes from `rec` into `dir`, the recording beside it.
pub(crate) fn write_set(dir: &Path, name: &str, rec: &Recording) -> PathBuf {
    let names = SetNames::for_workload(name, Some("default"), None, None).unwrap();
    let opts = BuildOptions {
        labels: BTreeMap::from([("app".to_owned(), name.to_owned())]),
        seccomp: synth::SeccompOptions::exact(),
        ..BuildOptions::new(names, Mode::Strict)
    };
    super::write(dir, &build(rec, &opts).unwrap()).unwrap();
    dir.to_owned()
}

/// Replaces `from` by `to` in an artifact of the set in `dir` (a hand edit).
pub(crate) fn edit(dir: &Path, a: Artifact, from: &str, to: &str) {
    let path = dir.join(a.file_name());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{a} holds no {from:?}:\n{text}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

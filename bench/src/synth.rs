//! What synthesis costs on a recording that really holds many files: not one flooded
//! directory (the kernel side aggregates those), but a workload touching N distinct files
//! spread over directories of varied sizes, or the merge of such recordings. Writes the
//! recording, runs `profgen synth` on it, and reports wall time and peak RSS; then the same
//! files split into two recordings, merged by `profgen synth A B`.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result};
use profgen::model::{
    Abi, Activity, CgroupRecord, Coverage, Direction, FileAccess, FileOp, Flow, FsPath, Host,
    Listen, Process, Protocol, Recording, Runtime, SocketKind, Target, SCHEMA_VERSION,
};

use crate::{
    child::{data_dir, measure, Measured},
    profgen_bin,
    report::SynthRow,
};

/// What nginx-like workloads call (the demo recording's set), plus the calls of the file
/// operations generated here.
const SYSCALLS: &[&str] = &[
    "accept4",
    "access",
    "arch_prctl",
    "bind",
    "brk",
    "chown",
    "clone",
    "close",
    "connect",
    "epoll_create",
    "epoll_ctl",
    "epoll_wait",
    "eventfd2",
    "execve",
    "exit_group",
    "fcntl",
    "fstatfs",
    "futex",
    "getdents64",
    "geteuid",
    "getpid",
    "getppid",
    "getrandom",
    "gettid",
    "ioctl",
    "listen",
    "lseek",
    "mkdir",
    "mmap",
    "mprotect",
    "nanosleep",
    "newfstatat",
    "openat",
    "prctl",
    "pread64",
    "prlimit64",
    "pwrite64",
    "read",
    "recvfrom",
    "recvmsg",
    "rename",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigsuspend",
    "sendfile",
    "sendmsg",
    "set_robust_list",
    "set_tid_address",
    "setgid",
    "setgroups",
    "setitimer",
    "setsockopt",
    "setuid",
    "socket",
    "socketpair",
    "sysinfo",
    "uname",
    "unlink",
    "unlinkat",
    "wait4",
    "write",
    "writev",
];

/// Top-level trees the files are spread over, as a service's data, cache and logs are: where
/// each kind of directory may be.
fn roots(kind: DirKind) -> &'static [&'static str] {
    match kind {
        DirKind::Assets => &["/srv/www/static", "/usr/share/app/assets"],
        DirKind::Cache => &["/var/cache/app", "/var/lib/app/data"],
        DirKind::Logs => &["/var/log/app"],
        DirKind::Spool => &["/tmp/app-uploads"],
        DirKind::Mixed => &["/var/lib/app/data", "/etc/app", "/srv/www/static"],
    }
}

/// Directory sizes cycled through: many small directories, a few large ones.
const DIR_SIZES: &[usize] = &[1, 3, 7, 2, 12, 40, 5, 150, 9, 600, 4, 25, 2000, 60];

/// A small deterministic generator (xorshift), so that every run writes the same recording.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a directory's files saw: most directories are used one way (assets read, cache
/// entries created and written, logs appended, uploads created then removed), some mixed.
#[derive(Clone, Copy)]
enum DirKind {
    Assets,
    Cache,
    Logs,
    Spool,
    Mixed,
}

const KINDS: &[DirKind] = &[
    DirKind::Assets,
    DirKind::Cache,
    DirKind::Assets,
    DirKind::Spool,
    DirKind::Mixed,
    DirKind::Cache,
    DirKind::Logs,
    DirKind::Assets,
    DirKind::Mixed,
];

/// The operations one file saw, and whether the access failed or the file was the
/// accessor's own.
fn file_access(path: String, kind: DirKind, rng: &mut Rng) -> FileAccess {
    use FileOp::*;
    let ops: &[FileOp] = match kind {
        DirKind::Assets => &[Read],
        DirKind::Cache => &[Create, Write],
        DirKind::Logs => &[Create, Append],
        DirKind::Spool => &[Create, Write, Read, Unlink],
        DirKind::Mixed => match rng.below(100) {
            0..=44 => &[Read],
            45..=59 => &[Write],
            60..=71 => &[Create, Write],
            72..=79 => &[Create, Truncate, Write],
            80..=86 => &[Read, Unlink],
            87..=91 => &[Read, Write],
            92..=94 => &[Append],
            95..=96 => &[Rename],
            97 => &[Chmod],
            _ => &[Lock, Read],
        },
    };
    let failed = matches!(kind, DirKind::Mixed) && rng.below(50) == 0;
    // What the workload made is its own; what it found may or may not be.
    let owned = match kind {
        DirKind::Assets => false,
        DirKind::Cache | DirKind::Logs | DirKind::Spool => true,
        DirKind::Mixed => rng.below(2) == 0,
    };
    FileAccess {
        path: FsPath(path.into_bytes()),
        ops: ops.iter().copied().collect(),
        failed,
        owned: !failed && owned,
    }
}

/// `n` distinct files, sorted as the recorder writes them.
fn files(n: usize) -> Vec<FileAccess> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(n);
    let mut dir = 0usize;
    while out.len() < n {
        let size = DIR_SIZES[dir % DIR_SIZES.len()].min(n - out.len());
        // Small directories (configuration, state) are the ones used in several ways.
        let kind = match KINDS[dir % KINDS.len()] {
            DirKind::Mixed if size > 40 => DirKind::Assets,
            kind => kind,
        };
        let roots = roots(kind);
        let root = roots[dir / KINDS.len() % roots.len()];
        // Two levels below the root, as sharded stores and dated logs are.
        let base = format!("{root}/{:02x}/d{dir}", dir % 256);
        for i in 0..size {
            let ext = ["json", "log", "bin", "html", "tmp"][i % 5];
            out.push(file_access(format!("{base}/f{i}.{ext}"), kind, &mut rng));
        }
        dir += 1;
    }
    out.sort();
    out
}

/// A one-cgroup recording, as `profgen record` writes it, whose activity holds `files`.
fn recording(files: Vec<FileAccess>) -> Recording {
    let names: BTreeSet<String> = SYSCALLS.iter().map(|s| s.to_string()).collect();
    let activity = Activity {
        files,
        capabilities: Some(["chown", "setgid", "setuid"].map(String::from).into()),
        sockets: [("inet", "stream"), ("unix", "stream")]
            .map(|(family, kind)| SocketKind {
                family: family.into(),
                kind: kind.into(),
            })
            .into(),
        listens: [Listen {
            protocol: Protocol::Tcp,
            addr: [198, 51, 100, 2].into(),
            port: 8080,
        }]
        .into(),
        flows: [Flow {
            direction: Direction::Ingress,
            protocol: Protocol::Tcp,
            peer: [198, 51, 100, 1].into(),
            peer_port: 0,
            local_port: 8080,
            dns: false,
        }]
        .into(),
        uids: [0, 33].into(),
        gids: [0, 33].into(),
        processes: [Process {
            exe: FsPath::from("/usr/sbin/app"),
            uid: 0,
            gid: 0,
        }]
        .into(),
        ..Activity::default()
    };
    Recording {
        schema_version: SCHEMA_VERSION,
        profgen_version: env!("CARGO_PKG_VERSION").into(),
        host: Host {
            kernel_release: "6.18.0".into(),
            machine: "x86_64".into(),
            event_exits: None,
        },
        started_at: "2026-01-01T00:00:00Z".into(),
        ended_at: "2026-01-01T00:10:00Z".into(),
        target: Target::Cgroup {
            cgroup: "/bench-synth".into(),
        },
        runtime: Some(Runtime {
            name: "runc".into(),
            version: None,
        }),
        events_lost: ["ring_buffer_full", "cgroup_map_full"]
            .map(|r| (r.to_string(), 0))
            .into(),
        syscalls_only: false,
        coverage: Coverage::default(),
        cgroups: vec![CgroupRecord {
            id: 4242,
            path: Some("/bench-synth/app".into()),
            seccomp_filter_seen: true,
            entrypoint_seen: true,
            joined_after_handover: false,
            syscalls: BTreeMap::from([(Abi::X86_64, names)]),
            excluded_before_filter: BTreeMap::new(),
            unknown_numbers: BTreeMap::new(),
            args: BTreeMap::new(),
            activity,
        }],
    }
}

/// Writes the recording of `n` files to `out` (and, with `halves`, the two recordings that
/// each hold every other file, beside it as `*.a.json` and `*.b.json`).
pub fn write_recordings(n: usize, out: &Path, halves: bool) -> Result<()> {
    let all = files(n);
    if halves {
        let (a, b): (Vec<_>, Vec<_>) = all
            .iter()
            .cloned()
            .enumerate()
            .partition(|(i, _)| i % 2 == 0);
        for (part, suffix) in [(a, "a"), (b, "b")] {
            let rec = recording(part.into_iter().map(|(_, f)| f).collect());
            rec.save(out.with_extension(format!("{suffix}.json")))?;
        }
    }
    recording(all).save(out)?;
    Ok(())
}

/// `profgen-bench --synth N,…`: prints the table, returns the rows of BENCHMARKS.md.
pub fn bench(sizes: &[usize]) -> Result<Vec<SynthRow>> {
    let profgen = profgen_bin()?;
    let work = tempfile::Builder::new()
        .prefix("profgen-synth-")
        .tempdir_in(data_dir())
        .context("creating a scratch directory")?;
    println!("synth: one cgroup, N distinct files over directories of varied sizes");
    println!("  (parser s: apparmor_parser -Q -K alone on the profile made, which synth runs too)");
    println!(
        "  {:>9}  {:>9}  {:>9}  {:>10}  {:>10}  {:>10}  {:>9}",
        "files", "MB", "synth s", "synth MB", "merge s", "merge MB", "parser s"
    );
    let mut rows = Vec::new();
    for &n in sizes {
        let rec = work.path().join(format!("rec-{n}.json"));
        // In a child: a process forked from this one would report this one's resident memory
        // as its own peak (Linux counts the peak of the copy an exec replaces), and a million
        // files made here would stay resident after they are written.
        let made = Command::new(std::env::current_exe()?)
            .arg("synth-recording")
            .arg(n.to_string())
            .arg(&rec)
            .status()
            .context("writing the synthesis recordings")?;
        anyhow::ensure!(made.success(), "writing the synthesis recordings: {made}");
        let size = fs::metadata(&rec)?.len();
        let out = work.path().join(format!("out-{n}"));
        let synth = run_synth(&profgen, std::slice::from_ref(&rec), &out)?;
        let parser = measure(
            Command::new("apparmor_parser")
                .args(["-Q", "-K", "--quiet"])
                .arg(out.join("apparmor.profile"))
                .stderr(std::process::Stdio::null()),
        )
        .ok()
        .map(|m| m.wall.as_secs_f64());
        let merge = run_synth(
            &profgen,
            &[rec.with_extension("a.json"), rec.with_extension("b.json")],
            &work.path().join(format!("merged-{n}")),
        )?;
        println!(
            "  {n:>9}  {:>9.1}  {:>9.2}  {:>10.1}  {:>10.2}  {:>10.1}  {:>9}",
            size as f64 / 1e6,
            synth.wall.as_secs_f64(),
            synth.max_rss_kb as f64 / 1024.0,
            merge.wall.as_secs_f64(),
            merge.max_rss_kb as f64 / 1024.0,
            parser.map_or_else(|| "-".into(), |p| format!("{p:.2}")),
        );
        rows.push(SynthRow {
            events: n as u64,
            wall_s: synth.wall.as_secs_f64(),
            peak_rss_mb: synth.max_rss_kb as f64 / 1024.0,
            merge_wall_s: merge.wall.as_secs_f64(),
            merge_rss_mb: merge.max_rss_kb as f64 / 1024.0,
            parser_wall_s: parser,
        });
        for f in fs::read_dir(work.path())? {
            let f = f?.path();
            if f.is_file() {
                fs::remove_file(f)?;
            }
        }
    }
    Ok(rows)
}

fn run_synth(profgen: &Path, recordings: &[PathBuf], out: &Path) -> Result<Measured> {
    measure(
        Command::new(profgen)
            .arg("synth")
            .args(recordings)
            .arg("--out")
            .arg(out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_distinct_sorted_and_spread_over_directories() {
        for n in [0, 1, 13, 5000] {
            let f = files(n);
            assert_eq!(f.len(), n);
            let paths: BTreeSet<&[u8]> = f.iter().map(|f| f.path.as_bytes()).collect();
            assert_eq!(paths.len(), n, "distinct");
            assert!(f.windows(2).all(|w| w[0] < w[1]), "sorted");
        }
        let f = files(50_000);
        let dirs: BTreeSet<&[u8]> = f
            .iter()
            .map(|f| {
                let p = f.path.as_bytes();
                &p[..p.iter().rposition(|b| *b == b'/').unwrap()]
            })
            .collect();
        assert!(dirs.len() > 200, "{}", dirs.len());
        assert!(f.iter().any(|f| f.owned) && f.iter().any(|f| f.failed));
        assert!(f.iter().any(|f| f.ops.contains(&FileOp::Unlink)));
        assert_eq!(files(300), files(300), "deterministic");
    }
}

//! One recording session: choose the target cgroup, attach, run or wait, stop, and build the
//! recording.

use std::{
    collections::{BTreeMap, BTreeSet},
    ffi::CString,
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::ExitStatus,
    time::{Duration, SystemTime},
};

use profiler_common::bitmap::{phase, Abi as KernelAbi, CgroupSyscalls};
use tokio::{
    signal::unix::{signal, SignalKind},
    time::{interval, sleep_until, Instant, MissedTickBehavior},
};

use super::{
    activity::Collector,
    kernel::{kernel_release, Hook, Kernel},
    progress::{Counts, Progress},
    Error,
};
use crate::{
    cgroup::Cgroup,
    model::{Abi, CgroupRecord, Host, Recording, Runtime, SyscallSet, Target, SCHEMA_VERSION},
    syscalls,
};

/// What to record.
#[derive(Clone, Debug)]
pub enum TargetSpec {
    /// Run this command in a fresh cgroup and record it until it exits.
    Command(Vec<String>),
    /// A cgroup v2 subtree (absolute, or relative to the cgroup2 mount).
    Cgroup(PathBuf),
    /// The cgroup of a running process.
    Pid(u32),
}

#[derive(Clone, Debug)]
pub struct Options {
    pub target: TargetSpec,
    /// Stop after this long (the command, if any, keeps running).
    pub duration: Option<Duration>,
    /// Keep what tasks did before the runtime installed its seccomp filter in the profile.
    pub include_runtime_setup: bool,
    /// Record only syscalls (for seccomp): no file, network or capability facts, and less
    /// overhead for every process on the machine.
    pub syscalls_only: bool,
    /// Written (empty) once the programs are attached, so a caller knows when to start the
    /// workload.
    pub ready_file: Option<PathBuf>,
}

/// Why the session stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    CommandExited(ExitStatus),
    Duration,
    Signal(&'static str),
}

pub struct Outcome {
    pub recording: Recording,
    pub stop: Stop,
    /// What this kernel could not record, and facts that could not be resolved; to be
    /// printed.
    pub warnings: Vec<String>,
}

/// Records until the command exits, the duration elapses, or SIGINT/SIGTERM arrives.
pub fn record(opts: &Options) -> Result<Outcome, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            context: "starting the event loop".into(),
            source,
        })?;
    runtime.block_on(run(opts))
}

async fn run(opts: &Options) -> Result<Outcome, Error> {
    // Fail on a missing command before touching the kernel or the cgroup tree.
    if let TargetSpec::Command(argv) = &opts.target {
        let program = argv
            .first()
            .ok_or_else(|| Error::Target("no command given".into()))?;
        find_program(program)?;
    }
    super::kernel::check_privilege()?;
    let (cgroup, fresh) = match &opts.target {
        TargetSpec::Command(_) => {
            let root = Cgroup::root()?;
            let name = format!("profgen-record-{}", std::process::id());
            (root.create_child(&name)?, true)
        }
        TargetSpec::Cgroup(path) => (Cgroup::resolve(path)?, false),
        TargetSpec::Pid(pid) => (Cgroup::of_pid(*pid)?, false),
    };
    let guard = FreshCgroup(fresh.then(|| cgroup.clone()));

    let mut kernel = Kernel::load(if opts.syscalls_only {
        Hook::SyscallsOnly
    } else {
        Hook::Record
    })?;
    kernel.add_target(cgroup.id()?, cgroup.level())?;
    let started_at = SystemTime::now();
    if let Some(ready) = &opts.ready_file {
        std::fs::write(ready, b"").map_err(|source| Error::Io {
            context: format!("writing {}", ready.display()),
            source,
        })?;
    }

    let mut child = match &opts.target {
        TargetSpec::Command(argv) => Some(spawn_in(&cgroup, argv)?),
        _ => None,
    };

    let mut names = Names::default();
    names.scan(&cgroup);
    let mut collector = Collector::default();
    let mut progress = Progress::new();
    let mut events: u64 = 0;
    let mut tick = interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let mut sigint = signal(SignalKind::interrupt()).map_err(io("installing a SIGINT handler"))?;
    let mut sigterm =
        signal(SignalKind::terminate()).map_err(io("installing a SIGTERM handler"))?;

    let events_fd = match kernel.events_fd() {
        // SAFETY: the fd stays open while `kernel` lives, and `events_fd` is dropped first.
        Some(fd) => Some(
            unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(
                    RawFd(fd),
                    tokio::io::Interest::READABLE,
                )
            }
            .map_err(|e| io("watching the event ring buffer")(e.into()))?,
        ),
        None => None,
    };
    let stop = loop {
        tokio::select! {
            ready = async { events_fd.as_ref().unwrap().readable().await }, if events_fd.is_some() => {
                if let Ok(mut guard) = ready {
                    guard.clear_ready();
                }
                for ev in kernel.drain_events() {
                    events += 1;
                    collector.add(&ev);
                }
            }
            status = async { child.as_mut().unwrap().wait().await }, if child.is_some() => {
                break Stop::CommandExited(status.map_err(io("waiting for the command"))?);
            }
            _ = async { sleep_until(deadline.unwrap()).await }, if deadline.is_some() => break Stop::Duration,
            _ = sigint.recv() => break Stop::Signal("SIGINT"),
            _ = sigterm.recv() => break Stop::Signal("SIGTERM"),
            _ = tick.tick() => {
                names.scan(&cgroup);
                if progress.due() {
                    let lost = kernel.events_lost()?.values().sum();
                    progress.show(&Counts::of_bitmaps(&kernel.cgroups()?, events, lost));
                }
            }
        }
    };
    progress.finish();
    names.scan(&cgroup);
    let ended_at = SystemTime::now();

    for ev in kernel.drain_events() {
        collector.add(&ev);
    }
    let mut bitmaps = kernel.cgroups()?;
    if fresh {
        // The cgroup profgen made for CMD has no runtime: a filter CMD installs itself (a
        // self-sandboxing program) does not make what it did before someone else's set-up.
        // Runtimes that CMD starts put their containers in cgroups of their own.
        if let Some(own) = bitmaps.get_mut(&cgroup.id()?) {
            own.phase = phase::SETUP;
        }
    }
    let events_lost = kernel.events_lost()?;
    let limits = kernel.limits.clone();
    drop(events_fd);
    drop(kernel);
    let mut warnings = Vec::new();
    warnings.extend(
        limits
            .capabilities
            .iter()
            .chain(&limits.late_joins)
            .cloned(),
    );
    if !limits.missing_exits.is_empty() {
        warnings.push(format!(
            "no events for syscalls without exit tracepoints here: {}",
            limits.missing_exits.join(", ")
        ));
    }
    if collector.unresolved > 0 {
        warnings.push(format!(
            "{} file or socket fact(s) could not be resolved (the process exited before its path or fd could be read)",
            collector.unresolved
        ));
    }
    let runtime_label = collector.runtimes.values().next().cloned();
    let mut activities = collector.finish_with(
        limits.capabilities.is_none(),
        &phases(&bitmaps),
        opts.include_runtime_setup,
    );

    if let (Some(child), Stop::Signal(_)) = (child.as_mut(), &stop) {
        // The command shares our terminal and got SIGINT itself; SIGTERM needs forwarding.
        if let Some(pid) = child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    }
    drop(guard);

    let target = match &opts.target {
        TargetSpec::Command(argv) => Target::Command {
            argv: argv.clone(),
            cgroup: cgroup.rel.clone(),
        },
        TargetSpec::Cgroup(_) => Target::Cgroup {
            cgroup: cgroup.rel.clone(),
        },
        TargetSpec::Pid(pid) => Target::Pid {
            pid: *pid,
            cgroup: cgroup.rel.clone(),
        },
    };
    let mut cgroups: Vec<CgroupRecord> = bitmaps
        .iter()
        .map(|(&id, value)| {
            let mut record = cgroup_record(
                id,
                names.paths.get(&id).cloned(),
                value,
                opts.include_runtime_setup,
            );
            record.activity = activities.remove(&id).unwrap_or_default();
            record
        })
        .collect();
    cgroups.sort_by(|a, b| (&a.path, a.id).cmp(&(&b.path, b.id)));
    let recording = Recording {
        schema_version: SCHEMA_VERSION,
        profgen_version: env!("CARGO_PKG_VERSION").to_owned(),
        host: host(),
        started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
        ended_at: humantime::format_rfc3339_seconds(ended_at).to_string(),
        target,
        runtime: runtime_label.map(runtime_with_version),
        events_lost,
        syscalls_only: opts.syscalls_only,
        coverage: Default::default(),
        cgroups,
    };
    warnings.extend(recording.late_join_warnings());
    Ok(Outcome {
        recording,
        stop,
        warnings,
    })
}

/// Each cgroup's phase in its runtime's hand-over.
pub fn phases(bitmaps: &BTreeMap<u64, CgroupSyscalls>) -> BTreeMap<u64, u32> {
    bitmaps.iter().map(|(&id, v)| (id, v.phase)).collect()
}

/// Turns one cgroup's bitmaps into names. After the runtime installed its seccomp filter
/// only the `after` half counts; what only happened before is kept apart as runtime set-up.
pub fn cgroup_record(
    id: u64,
    path: Option<String>,
    value: &CgroupSyscalls,
    include_runtime_setup: bool,
) -> CgroupRecord {
    let armed = value.phase != phase::SETUP;
    let mut syscalls = SyscallSet::new();
    let mut excluded = SyscallSet::new();
    let mut unknown = BTreeMap::new();
    for kabi in KernelAbi::ALL {
        let abi = model_abi(kabi);
        let (before, unknown_before) = syscalls::decode(abi, &value.before[kabi as usize]);
        let (after, unknown_after) = syscalls::decode(abi, &value.after[kabi as usize]);
        let (kept, dropped): (BTreeSet<String>, BTreeSet<String>) =
            if armed && !include_runtime_setup {
                let dropped = before.difference(&after).cloned().collect();
                (after, dropped)
            } else {
                (before.union(&after).cloned().collect(), BTreeSet::new())
            };
        let unknown_kept: BTreeSet<u32> = if armed && !include_runtime_setup {
            unknown_after
        } else {
            unknown_before.union(&unknown_after).copied().collect()
        };
        if !kept.is_empty() {
            syscalls.insert(abi, kept);
        }
        if !dropped.is_empty() {
            excluded.insert(abi, dropped);
        }
        if !unknown_kept.is_empty() {
            unknown.insert(abi, unknown_kept);
        }
    }
    CgroupRecord {
        id,
        path,
        seccomp_filter_seen: armed,
        entrypoint_seen: value.phase == phase::WORKLOAD,
        joined_after_handover: value.joined_late != 0,
        syscalls,
        excluded_before_filter: excluded,
        unknown_numbers: unknown,
        activity: Default::default(),
    }
}

fn model_abi(abi: KernelAbi) -> Abi {
    match abi {
        KernelAbi::X86_64 => Abi::X86_64,
        KernelAbi::I386 => Abi::I386,
        KernelAbi::X32 => Abi::X32,
    }
}

fn host() -> Host {
    let uts = nix::sys::utsname::uname().ok();
    Host {
        kernel_release: kernel_release(),
        machine: uts
            .map(|u| u.machine().to_string_lossy().into_owned())
            .unwrap_or_else(|| std::env::consts::ARCH.to_owned()),
    }
}

/// cgroup ids to paths, learnt while the cgroups exist (a container's cgroup is removed when
/// it stops, before the recording ends).
#[derive(Default)]
struct Names {
    paths: BTreeMap<u64, String>,
}

impl Names {
    fn scan(&mut self, root: &Cgroup) {
        for (id, rel) in root.walk() {
            self.paths.entry(id).or_insert(rel);
        }
    }
}

/// The runtime's version as its `--version` prints it, when it is on `PATH`.
fn runtime_with_version(name: String) -> Runtime {
    let version = std::process::Command::new(&name)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines()
                .next()?
                .split_whitespace()
                .last()
                .map(str::to_owned)
        });
    Runtime { name, version }
}

/// The ring buffer's fd, borrowed for readiness only (the kernel handle owns it).
struct RawFd(std::os::fd::RawFd);

impl std::os::fd::AsRawFd for RawFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0
    }
}

/// Removes the cgroup made for `record -- CMD` when the session ends.
struct FreshCgroup(Option<Cgroup>);

impl Drop for FreshCgroup {
    fn drop(&mut self) {
        if let Some(cgroup) = &self.0 {
            if let Err(e) = cgroup.remove_tree() {
                eprintln!(
                    "profgen: warning: could not remove cgroup {}: {e}",
                    cgroup.rel
                );
            }
        }
    }
}

/// Starts `argv` inside `cgroup`: the child moves itself there before it execs, so its very
/// first syscall is recorded.
fn spawn_in(cgroup: &Cgroup, argv: &[String]) -> Result<tokio::process::Child, Error> {
    let procs = CString::new(
        cgroup
            .path()
            .join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .map_err(|_| Error::Target("cgroup path contains a NUL byte".into()))?;
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    // SAFETY: only async-signal-safe calls (open, write, close) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // "0" moves the writing process.
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            if written != 1 {
                return Err(err);
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::CommandNotFound(argv[0].clone()),
        _ => Error::Io {
            context: format!("starting {}", argv[0]),
            source,
        },
    })
}

/// Finds `program` the way exec does (a path, or a name on `PATH`).
fn find_program(program: &str) -> Result<PathBuf, Error> {
    let not_found = || Error::CommandNotFound(program.to_owned());
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path).ok_or_else(not_found);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .ok_or_else(not_found)
}

fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io {
        context: context.into(),
        source,
    }
}

/// The command's exit code, or 128 + signal, as a shell reports it.
pub fn exit_code(status: &ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

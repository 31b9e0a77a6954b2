//! `profgen record -- CMD | --cgroup | --pid`: choose the target cgroup, start the live
//! recorder on it, run or wait, stop, and make the recording.

use std::{
    ffi::CString, os::unix::process::ExitStatusExt, path::PathBuf, process::ExitStatus,
    time::Duration,
};

use tokio::{
    signal::unix::{signal, SignalKind},
    time::{interval, sleep_until, Instant, MissedTickBehavior},
};

use super::{
    live::{LiveOptions, LiveRecorder, TICK},
    progress::Progress,
    Error,
};
use crate::{
    cgroup::Cgroup,
    model::{Recording, Target},
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

    let mut live = LiveRecorder::start(
        &cgroup.mount,
        LiveOptions {
            include_runtime_setup: opts.include_runtime_setup,
            syscalls_only: opts.syscalls_only,
        },
    )?;
    live.add_target(&cgroup.rel)?;
    if fresh {
        live.without_runtime(cgroup.id()?);
    }
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

    let mut progress = Progress::new();
    let mut tick = interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let mut sigint = signal(SignalKind::interrupt()).map_err(io("installing a SIGINT handler"))?;
    let mut sigterm =
        signal(SignalKind::terminate()).map_err(io("installing a SIGTERM handler"))?;
    let stop = loop {
        tokio::select! {
            _ = live.readable() => live.drain(),
            status = async { child.as_mut().unwrap().wait().await }, if child.is_some() => {
                break Stop::CommandExited(status.map_err(io("waiting for the command"))?);
            }
            _ = async { sleep_until(deadline.unwrap()).await }, if deadline.is_some() => break Stop::Duration,
            _ = sigint.recv() => break Stop::Signal("SIGINT"),
            _ = sigterm.recv() => break Stop::Signal("SIGTERM"),
            _ = tick.tick() => live.tick(&mut progress)?,
        }
    };
    progress.finish();
    // Detached before the command gets SIGTERM: its dying is not the workload's.
    let snap = live.finish()?;

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
    let recording = snap.recording(target, snap.cgroups.values().cloned().collect());
    Ok(Outcome {
        recording,
        stop,
        warnings: snap.warnings,
    })
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

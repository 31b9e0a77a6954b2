//! `profgen record`: watch a workload and write what it did as a recording.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use profgen::record::{self, session::Stop, Options, TargetSpec};

/// Record what a workload does (syscalls per cgroup, from its first syscall).
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["cgroup", "pid", "command"]))]
pub struct RecordArgs {
    /// Record a cgroup v2 subtree, including cgroups created below it later (how a container
    /// started after the recording is caught from its first syscall). Absolute, or relative
    /// to the cgroup2 mount.
    #[arg(long, value_name = "PATH")]
    cgroup: Option<PathBuf>,
    /// Record the cgroup of a running process.
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// Stop after this long, e.g. `30s`, `5m` (default: when the command exits, or on
    /// Ctrl-C / SIGTERM).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Where to write the recording.
    #[arg(long, short, default_value = "recording.json")]
    out: PathBuf,
    /// Keep what happened before the container runtime installed its seccomp filter (the
    /// runtime's own set-up). Off by default: the profile would allow mount, pivot_root, ….
    #[arg(long)]
    include_runtime_setup: bool,
    /// Create this (empty) file once recording has started.
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Run this command in a fresh cgroup and record it and everything it starts.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

pub fn run(args: RecordArgs) -> anyhow::Result<()> {
    let target = if let Some(path) = args.cgroup {
        TargetSpec::Cgroup(path)
    } else if let Some(pid) = args.pid {
        TargetSpec::Pid(pid)
    } else {
        TargetSpec::Command(args.command)
    };
    let opts = Options {
        target,
        duration: args.duration,
        include_runtime_setup: args.include_runtime_setup,
        ready_file: args.ready_file,
    };
    eprintln!("profgen: recording {}", describe(&opts.target));
    let outcome = record::record(&opts)?;
    let rec = &outcome.recording;
    rec.save(&args.out)
        .with_context(|| format!("writing the recording to {}", args.out.display()))?;

    let allowed = rec.allowed_syscalls();
    let total: usize = allowed.values().map(|s| s.len()).sum();
    eprintln!(
        "profgen: {} cgroup(s), {total} syscall name(s) across {} ABI(s); stopped: {}; wrote {}",
        rec.cgroups.len(),
        allowed.len(),
        describe_stop(&outcome.stop),
        args.out.display()
    );
    for warning in &outcome.warnings {
        eprintln!("profgen: warning: {warning}");
    }
    let lost = rec.events_lost_total();
    if lost > 0 {
        eprintln!(
            "profgen: WARNING: {lost} event(s) lost ({}); the profile may miss what they were",
            rec.events_lost
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k}={n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    } else {
        eprintln!("profgen: no events lost");
    }
    if let Stop::CommandExited(status) = outcome.stop {
        if !status.success() {
            anyhow::bail!(
                "the command exited with status {} (the recording was written; a failing workload may have skipped code paths)",
                record::session::exit_code(&status)
            );
        }
    }
    Ok(())
}

fn describe(target: &TargetSpec) -> String {
    match target {
        TargetSpec::Command(argv) => format!("command `{}`", argv.join(" ")),
        TargetSpec::Cgroup(path) => format!("cgroup {}", path.display()),
        TargetSpec::Pid(pid) => format!("the cgroup of process {pid}"),
    }
}

fn describe_stop(stop: &Stop) -> String {
    match stop {
        Stop::CommandExited(status) => {
            format!("command exited ({})", record::session::exit_code(status))
        }
        Stop::Duration => "duration elapsed".into(),
        Stop::Signal(name) => format!("{name} received"),
    }
}

//! `cargo xtask bench`: what recording costs, measured against baselines in the same run.
//!
//! * syscall cost: a `getppid` loop untraced, under an empty raw tracepoint on `sys_enter`
//!   (the floor any syscall-entry hook pays), recorded by profgen, and running outside a
//!   cgroup profgen records (what every other workload on the node pays); then an `fcntl`
//!   loop, whose argument the recording keeps, untraced, under the floor and recorded;
//! * nginx requests/s under wrk, with and without recording;
//! * `--loss N`: N distinct files created in one directory under `profgen record` (events
//!   lost, the recorder's peak RSS, the recording's size, `profgen synth` time and peak RSS).
//! * `--synth N,…`: `profgen synth` of a recording holding N distinct files, and of its two
//!   halves merged (time and peak RSS; no root needed).
//!
//! Configurations are interleaved over several rounds and the median is kept, so drift on a
//! shared machine hits them alike.

use std::{path::PathBuf, process::Command};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

mod loss;
mod nginx;
mod synth;
mod syscall;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Calls per measurement.
    #[arg(long, default_value_t = 10_000_000)]
    calls: u64,
    /// Rounds per configuration.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds of load per nginx measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Skip the nginx benchmark.
    #[arg(long, conflicts_with = "nginx_only")]
    syscalls_only: bool,
    /// Skip the getppid benchmark.
    #[arg(long)]
    nginx_only: bool,
    /// Only the loss benchmark: N distinct files created in one directory as fast as
    /// possible under `profgen record`.
    #[arg(long, value_name = "N")]
    loss: Option<u64>,
    /// Only the synthesis benchmark: `profgen synth` of recordings of N distinct files.
    #[arg(long, value_name = "N,…", value_delimiter = ',')]
    synth: Vec<usize>,
}

#[derive(Subcommand)]
enum Mode {
    /// (internal) The measured loop: N calls, ns per call written to FILE.
    #[command(hide = true)]
    Loop {
        call: syscall::Call,
        calls: u64,
        out: PathBuf,
    },
    /// (internal) The loss workload: creates DIR/f<FIRST> … DIR/f<FIRST+N-1>.
    #[command(hide = true)]
    CreateFiles { n: u64, first: u64, dir: PathBuf },
    /// (internal) Writes the synthesis benchmark's recording of N files to OUT (and its
    /// halves beside it).
    #[command(hide = true)]
    SynthRecording { n: usize, out: PathBuf },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.mode {
        Some(Mode::Loop { call, calls, out }) => return syscall::run_loop(call, calls, &out),
        Some(Mode::CreateFiles { n, first, dir }) => return loss::create_files(n, first, &dir),
        Some(Mode::SynthRecording { n, out }) => return synth::write_recordings(n, &out, true),
        None => {}
    }
    if !cli.synth.is_empty() {
        return synth::bench(&cli.synth);
    }
    if !is_root() {
        bail!("the benchmark loads eBPF programs and starts containers: run it as root");
    }
    if let Some(n) = cli.loss {
        return loss::bench(n);
    }
    if !cli.nginx_only {
        syscall::bench(cli.calls, cli.rounds)?;
    }
    if !cli.syscalls_only {
        nginx::bench(cli.seconds, cli.rounds)?;
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The `profgen` binary built beside this one.
pub fn profgen_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let bin = exe.with_file_name("profgen");
    if !bin.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p profiler`",
            bin.display()
        );
    }
    Ok(bin)
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs a command to completion, failing with its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

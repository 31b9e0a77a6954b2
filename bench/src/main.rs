//! `cargo xtask bench`: what recording costs, measured against baselines in the same run, and
//! written to BENCHMARKS.md.
//!
//! * a) per-call cost of a `getppid`, an `fcntl` and an `openat`+`close` loop: untraced, under
//!   an empty raw tracepoint (the floor any syscall-entry hook pays), under empty programs on
//!   both the entry and the exit hooks (what a recorder of syscall exits pays on every
//!   syscall, whichever process makes it), recorded by profgen
//!   (everything, `--syscalls-only`), outside the recorded cgroup, and under the peers a user
//!   would pick instead (bpftrace, strace, perf trace) — `cost`, `peers`, `syscall`;
//! * b) nginx requests/s under wrk, and the CPU nginx spends per request, with and without
//!   recording — `nginx`, `nginx_cpu`;
//! * c) N distinct files created in one directory, untraced and recorded (events lost, the
//!   recorder's peak RSS, the recording's size, `profgen synth` time and peak RSS) — `loss`;
//! * d) `profgen synth` time and peak RSS on recordings of 10k / 100k / 1M distinct files, and
//!   of their two halves merged (no root needed; `--synth N,…` alone) — `synth`;
//! * e) `profgen agent`'s CPU and RSS while its pods' short containers come and go —
//!   `containers`, over replicas of a captured pod (`pods`) sent by a stand-in API server
//!   (`profgen_testkit::fake_api`).
//!
//! Configurations are interleaved over several rounds and each figure is reported as median
//! and min–max, with ratios taken within each round, so drift on a shared machine hits a
//! configuration and its baseline alike. `report` renders the markdown (pure).

use std::{path::PathBuf, process::Command, time::Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

mod child;
mod containers;
mod cost;
mod loss;
mod machine;
mod nginx;
mod nginx_cpu;
mod peers;
mod pods;
mod report;
mod stats;
mod synth;
mod syscall;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Loop iterations per measurement.
    #[arg(long, default_value_t = 2_000_000)]
    calls: u64,
    /// Loop iterations per measurement under tracers that stop the process at every call
    /// (strace, perf trace).
    #[arg(long, default_value_t = 50_000)]
    slow_calls: u64,
    /// Rounds of the per-call cost benchmark.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Rounds of the nginx benchmark.
    #[arg(long, default_value_t = 7)]
    nginx_rounds: usize,
    /// Seconds of load per nginx requests/s measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// One-second runs per nginx CPU-per-request measurement (the cheapest counts).
    #[arg(long, default_value_t = 10)]
    cost_runs: u32,
    /// Files of the loss test in the full run (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    loss_files: u64,
    /// Pods (one short container each) per batch of the agent CPU/RSS benchmark (0 skips it).
    #[arg(long, default_value_t = 20)]
    containers: usize,
    /// Rounds of the container benchmark.
    #[arg(long, default_value_t = 3)]
    container_rounds: usize,
    /// Loops of the per-call cost part (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "CALLS",
        default_value = "getppid,fcntl,open"
    )]
    loops: Vec<syscall::Call>,
    /// The per-call cost part without the peers (bpftrace, strace, perf trace).
    #[arg(long)]
    no_peers: bool,
    /// Only these parts (comma-separated), e.g. `--only nginx,containers`.
    #[arg(long, value_delimiter = ',', value_name = "PARTS")]
    only: Vec<Part>,
    /// Only the per-call cost benchmark (`--only cost`).
    #[arg(long, conflicts_with_all = ["nginx_only", "only"])]
    syscalls_only: bool,
    /// Only the nginx benchmark (`--only nginx`).
    #[arg(long, conflicts_with = "only")]
    nginx_only: bool,
    /// Only the loss benchmark: N distinct files created in one directory as fast as
    /// possible under `profgen record`.
    #[arg(long, value_name = "N")]
    loss: Option<u64>,
    /// Only the synthesis benchmark: `profgen synth` of recordings of N distinct files.
    #[arg(long, value_name = "N,…", value_delimiter = ',')]
    synth: Vec<usize>,
    /// Write the report here (markdown); without it the report goes to stdout.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// The command to name in the report as the one that produced it.
    #[arg(long, default_value = "cargo xtask bench", hide = true)]
    command_line: String,
}

/// Recording sizes of the synthesis part of a full run.
const SYNTH_SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];

/// The parts of a full run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// a) per-call cost against the floor and the peers
    Cost,
    /// b) nginx requests/s
    Nginx,
    /// c) the loss test (--loss-files)
    Loss,
    /// d) synthesis by recording size
    Synth,
    /// e) `profgen agent` over short-lived containers
    Containers,
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
        synth::bench(&cli.synth)?;
        return Ok(());
    }
    if !is_root() {
        bail!("the benchmark loads eBPF programs and starts containers: run it as root");
    }
    if cli.rounds == 0 || cli.nginx_rounds == 0 || cli.container_rounds == 0 || cli.cost_runs == 0 {
        bail!(
            "rounds must be at least 1 (--rounds, --nginx-rounds, --container-rounds, --cost-runs)"
        );
    }
    let start = Instant::now();
    let mut report = report::Report {
        machine: machine::describe(),
        command: cli.command_line.clone(),
        ..report::Report::default()
    };
    let parts = parts(&cli);
    if parts.contains(&Part::Cost) {
        let scope = cost::Scope {
            calls: cli.loops.clone(),
            peers: !cli.no_peers,
        };
        report.syscalls = Some(cost::bench(cli.calls, cli.slow_calls, cli.rounds, &scope)?);
    }
    if parts.contains(&Part::Nginx) {
        report.nginx = Some(nginx::bench(cli.seconds, cli.cost_runs, cli.nginx_rounds)?);
    }
    if let Some(n) = cli
        .loss
        .or(parts.contains(&Part::Loss).then_some(cli.loss_files))
    {
        if n > 0 {
            report.loss = Some(loss::bench(n)?);
        }
    }
    if parts.contains(&Part::Synth) {
        report.synth = synth::bench(&SYNTH_SIZES)?;
    }
    if parts.contains(&Part::Containers) && cli.containers > 0 {
        report.containers = Some(containers::bench(cli.containers, cli.container_rounds)?);
    }
    containers::remove_v1_leftovers("/profgen-bench");
    report.machine.load_after = machine::load();
    report.machine.wall_minutes = start.elapsed().as_secs_f64() / 60.0;
    let md = report::render(&report);
    match &cli.markdown {
        Some(path) => {
            std::fs::write(path, &md).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("==> wrote {}", path.display());
        }
        None => print!("{md}"),
    }
    Ok(())
}

/// The parts this invocation runs: all of them unless narrowed.
fn parts(cli: &Cli) -> Vec<Part> {
    if cli.loss.is_some() {
        Vec::new()
    } else if cli.syscalls_only {
        vec![Part::Cost]
    } else if cli.nginx_only {
        vec![Part::Nginx]
    } else if !cli.only.is_empty() {
        cli.only.clone()
    } else {
        vec![
            Part::Cost,
            Part::Nginx,
            Part::Loss,
            Part::Synth,
            Part::Containers,
        ]
    }
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

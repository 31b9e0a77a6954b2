//! Developer tasks. `cargo xtask demo` and `cargo xtask test` are the README's two commands;
//! both start with `setup`, which installs what a fresh machine lacks.
//!
//! xtask itself depends on nothing of profgen's, so it builds before the eBPF toolchain
//! exists; everything it runs after `setup` is built with `PROFGEN_REQUIRE_EBPF=1`.

use std::process::Command;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

mod image;
mod setup;

#[derive(Parser)]
#[command(about = "profgen developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what profgen needs: Debian packages, nightly rust-src, bpf-linker.
    Setup,
    /// The main job on the built-in demo: record nginx in a runc container while its test
    /// suite runs, synthesize the profile, prove it under runc.
    Demo,
    /// Every test: unit tests and end-to-end tests (root, real kernel, real runc).
    Test,
    /// Overhead benchmarks against baselines and peers (bpftrace, strace, perf trace) from the
    /// same run, written to BENCHMARKS.md. Arguments go to the benchmark (`cargo xtask bench
    /// --rounds 7`; `-- --help` lists them); with any, the report goes to stdout instead.
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The agent's container image, offline: an OCI image layout in target/image/profgen-agent
    /// (profgen and its shared libraries, tagged with the crate version); prints its digest.
    Image,
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::run(),
        Task::Demo => {
            setup::run()?;
            build()?;
            step("running the demo");
            run_built("demo", &[])
        }
        Task::Test => {
            setup::run()?;
            step("running every test (unit and end-to-end)");
            cargo(&["test", "--release", "--no-fail-fast"])
        }
        Task::Bench { args } => {
            setup::run()?;
            setup::bench()?;
            build()?;
            step("running the benchmarks");
            let markdown = workspace().join("BENCHMARKS.md");
            let mut argv: Vec<String> = args.clone();
            // The committed report comes from the full run with the documented defaults.
            if args.is_empty() {
                argv.extend(["--markdown".into(), markdown.display().to_string()]);
            }
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            run_built("profgen-bench", &argv)
        }
        Task::Image => {
            build()?;
            image::run()
        }
    }
}

/// Builds every binary of the default members at once. `cargo run -p X` would resolve the
/// features of X's dependencies alone, differently from `cargo test` over the workspace, and
/// each command would rebuild kube and rustls for the other; one build of the whole set
/// shares them.
fn build() -> Result<()> {
    step("building profgen, the demo, its suite and the benchmarks (release)");
    cargo(&["build", "--release"])
}

/// Runs a binary [`build`] made.
fn run_built(bin: &str, args: &[&str]) -> Result<()> {
    let path = target_dir().join("release").join(bin);
    let status = Command::new(&path)
        .args(args)
        .status()
        .with_context(|| format!("running {}", path.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", path.display());
    }
    Ok(())
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else the workspace's `target/`.
fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// The workspace root (xtask's parent directory).
fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// Prints what is about to happen.
pub fn step(what: &str) {
    eprintln!("==> {what}");
}

/// Runs cargo with the eBPF programs required (no silent fallback to a build without them).
fn cargo(args: &[&str]) -> Result<()> {
    let status = Command::new(env!("CARGO"))
        .args(args)
        .env("PROFGEN_REQUIRE_EBPF", "1")
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

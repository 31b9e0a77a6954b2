//! Subcommands. Each module holds its clap arguments and a `run` function; the work itself
//! lives in the library modules.

use clap::{Parser, Subcommand};

mod agent;
mod check;
mod diff;
mod pull;
mod record;
mod synth;
mod verify;

/// Exit codes, documented in `--help`.
pub mod exit {
    /// Bad input or an operation that failed.
    pub const ERROR: u8 = 1;
    /// The profile was enforced and the workload failed under it, or a probe outside the
    /// profile was not refused.
    pub const VERIFY_FAILED: u8 = 3;
    /// Missing privilege or kernel feature (not root, no BPF permission, old kernel).
    pub const NO_PERMISSION: u8 = 4;
    /// `diff`: NEW allows more than OLD; `check`: a recording did something outside the set.
    pub const ALLOWS_MORE: u8 = 5;
}

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  error: bad input (corrupt recording, unknown syscall, missing target) or a failed operation
  2  usage error
  3  verification failed: the workload failed under the profile, or a probe was not refused
  4  missing privilege or kernel feature (run as root, with BPF available)
  5  diff: the new profile set allows more than the old one; check: a recording did
     something outside the profile set";

/// Record a workload with eBPF and turn what it did into least-privilege confinement:
/// a seccomp profile, proven by enforcing it.
#[derive(Debug, Parser)]
#[command(name = "profgen", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Record(record::RecordArgs),
    Synth(synth::SynthArgs),
    Verify(verify::VerifyArgs),
    Agent(agent::AgentArgs),
    Pull(pull::PullArgs),
    Diff(diff::DiffArgs),
    Check(check::CheckArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Record(args) => record::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Pull(args) => pull::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Check(args) => check::run(args),
    }
}

/// Maps an error to its documented exit code.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<profgen::diff::AllowsMore>()) {
        return exit::ALLOWS_MORE;
    }
    if err
        .chain()
        .any(|e| e.downcast_ref::<profgen::verify::VerifyFailed>().is_some())
    {
        return exit::VERIFY_FAILED;
    }
    if err.chain().any(|e| {
        e.downcast_ref::<profgen::record::Error>()
            .is_some_and(profgen::record::Error::is_permission)
    }) || err.chain().any(|e| {
        e.downcast_ref::<profgen::k8s::agent_run::RunError>()
            .is_some_and(profgen::k8s::agent_run::RunError::is_permission)
    }) {
        return exit::NO_PERMISSION;
    }
    exit::ERROR
}

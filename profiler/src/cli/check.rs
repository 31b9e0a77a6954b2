//! `profgen check`: would a committed profile set allow everything recordings did?

use std::path::PathBuf;

use anyhow::Context as _;
use profgen::{check, cluster::Cluster, diff::AllowsMore, model::Recording, profile_set};

use super::diff::Format;

const HELP: &str = "\
Judges every syscall (per ABI, against seccomp.json), file access and exec (the letters it
needs, against apparmor.profile and abstractions/base), socket, capability (apparmor.profile
and the securityContext's capabilities) and flow (networkpolicy.yaml) of the recordings, and
names the cgroup and programs that did each one. Failed accesses are skipped. A syscall only
argument-conditioned rules allow is judged by the argument values the recording holds: a
value no rule allows fails; without complete values it is listed but does not fail.

Exit codes:
  0  the set allows everything the recordings did
  5  a recording did something outside the set
  1  bad input: a directory without a profile set, a corrupt artifact, a recording newer
     than this profgen";

/// Check that a committed profile set allows everything recordings did.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct CheckArgs {
    /// The profile set: a directory `profgen synth --out` wrote.
    #[arg(long, value_name = "DIR")]
    profiles: PathBuf,
    /// Recordings to check; several are merged.
    #[arg(value_name = "RECORDING", required = true, num_args = 1..)]
    recordings: Vec<PathBuf>,
    /// `table` for the terminal, `markdown` to paste into a pull request.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// The cluster snapshot synth used (`--cluster`), so NetworkPolicy selector peers resolve
    /// to pods.
    #[arg(long, value_name = "FILE")]
    cluster: Option<PathBuf>,
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let set = profile_set::load(&args.profiles)?;
    let recordings = args
        .recordings
        .iter()
        .map(Recording::load)
        .collect::<Result<Vec<_>, _>>()?;
    let rec = Recording::merge(&recordings).context("merging the recordings")?;
    let cluster = match &args.cluster {
        Some(path) => Some(Cluster::from_file(path)?),
        None => None,
    };
    let report = check::check(&set, &rec, cluster.as_ref())?;
    match args.format {
        Format::Table => print!("{}", check::table(&report)),
        Format::Markdown => {
            let title = format!("profgen check --profiles {}", args.profiles.display());
            print!("{}", check::markdown(&report, &title));
        }
    }
    if !report.passes() {
        return Err(AllowsMore(format!(
            "the recordings did {} thing(s) outside {}",
            report.outside.len(),
            args.profiles.display()
        ))
        .into());
    }
    Ok(())
}

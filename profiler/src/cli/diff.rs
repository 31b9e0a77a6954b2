//! `profgen diff`: what a new profile set (or recording) allows that the committed one did
//! not.

use std::path::{Path, PathBuf};

use anyhow::bail;
use profgen::{
    diff::{self, render, AllowsMore, Change},
    model::Recording,
    profile_set,
};

/// How a report is printed.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// A table for the terminal.
    Table,
    /// Markdown, to paste into a pull request.
    Markdown,
}

const HELP: &str = "\
OLD and NEW are both profile-set directories (what `profgen synth --out` wrote) or both
recordings. \"added\": allowed by NEW and not by OLD (a syscall, a file rule not covered by
OLD's rules, a capability, a NetworkPolicy peer or port, a securityContext field that
confines less); \"removed\": the reverse. Coverage is decided conservatively: what cannot be
proven covered is reported as added.

Exit codes:
  0  nothing added (removals and changes alone give 0 unless --strict)
  5  NEW allows more than OLD (with --strict: any difference)
  1  bad input: a directory without a profile set, a corrupt artifact, sets of different
     workloads (without --force), a recording newer than this profgen";

/// Compare two profile sets, or two recordings: what NEW allows that OLD did not.
#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct DiffArgs {
    /// The committed profile set (directory) or recording.
    #[arg(value_name = "OLD")]
    old: PathBuf,
    /// The new profile set (directory) or recording.
    #[arg(value_name = "NEW")]
    new: PathBuf,
    /// `table` for the terminal, `markdown` to paste into a pull request.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Exit 5 on any difference, removals and changes included.
    #[arg(long)]
    strict: bool,
    /// Compare sets of different workloads (different AppArmor profile names or
    /// NetworkPolicy podSelectors).
    #[arg(long)]
    force: bool,
}

fn is_dir(path: &Path) -> anyhow::Result<bool> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.is_dir()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "{}: no such file or directory (give a profile-set directory or a recording)",
                path.display()
            )
        }
        Err(e) => bail!("{}: {e}", path.display()),
    }
}

pub fn run(args: DiffArgs) -> anyhow::Result<()> {
    let d = match (is_dir(&args.old)?, is_dir(&args.new)?) {
        (true, true) => {
            let old = profile_set::load(&args.old)?;
            let new = profile_set::load(&args.new)?;
            diff::diff_sets(&old, &new, args.force)?
        }
        (false, false) => {
            diff::diff_recordings(&Recording::load(&args.old)?, &Recording::load(&args.new)?)
        }
        _ => bail!(
            "{} and {}: give two profile-set directories or two recordings, not one of each",
            args.old.display(),
            args.new.display()
        ),
    };
    match args.format {
        Format::Table => print!("{}", render::diff_table(&d)),
        Format::Markdown => {
            let title = format!(
                "profgen diff {} → {}",
                args.old.display(),
                args.new.display()
            );
            print!("{}", render::diff_markdown(&d, &title));
        }
    }
    if d.widens() {
        let verb = if d.of_recordings { "did" } else { "allows" };
        return Err(AllowsMore(format!(
            "{} {verb} more than {}: {}",
            args.new.display(),
            args.old.display(),
            render::summary(&d)
        ))
        .into());
    }
    if args.strict && !d.items.is_empty() {
        return Err(AllowsMore(format!(
            "{} differs from {} (--strict): {} removed, {} changed",
            args.new.display(),
            args.old.display(),
            d.count(Change::Removed),
            d.count(Change::Changed)
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{exit, exit_code, Cli};

    #[test]
    fn a_widening_exits_5_and_bad_input_1() {
        let widened = anyhow::Error::from(AllowsMore("NEW allows more".into()));
        assert_eq!(exit_code(&widened.context("diff")), exit::ALLOWS_MORE);
        let bad = anyhow::Error::from(profile_set::SetError::NoSet { path: "x".into() });
        assert_eq!(exit_code(&bad), exit::ERROR);
    }

    #[test]
    fn arguments_parse() {
        for argv in [
            &[
                "profgen", "diff", "old", "new", "--format", "markdown", "--strict", "--force",
            ][..],
            &["profgen", "check", "--profiles", "dir", "a.json", "b.json"],
        ] {
            Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
        assert!(Cli::try_parse_from(["profgen", "check", "--profiles", "dir"]).is_err());
        assert!(Cli::try_parse_from(["profgen", "diff", "old"]).is_err());
    }
}

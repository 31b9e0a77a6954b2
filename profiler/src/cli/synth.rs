//! `profgen synth`: turn a recording into profiles.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use profgen::{
    model::{Abi, Recording},
    output::write_atomic,
    synth::{self, SeccompSummary},
};
use tabled::{settings::Style, Table, Tabled};

/// Turn a recording into a least-privilege seccomp profile (DIR/seccomp.json).
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// The recording, as written by `profgen record`.
    #[arg(value_name = "RECORDING")]
    recording: PathBuf,
    /// Where to write the profiles (created if missing). Default: the recording's
    /// directory, so the recording stays beside what was made from it.
    #[arg(long, short, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let rec = Recording::load(&args.recording)?;
    let profile = synth::seccomp(&rec).with_context(|| {
        format!(
            "synthesizing a seccomp profile from {}",
            args.recording.display()
        )
    })?;

    let dir = args.out.unwrap_or_else(|| match args.recording.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    });
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the output directory {}", dir.display()))?;
    let path = dir.join("seccomp.json");
    write_atomic(&path, &synth::seccomp::to_json(&profile)?)?;

    let summary = SeccompSummary::of(&rec);
    println!("{}", summary_table(&summary));
    eprintln!("profgen: wrote {}", path.display());
    if summary.events_lost > 0 {
        eprintln!("{}", lost_warning(&rec, &args.recording));
    }
    Ok(())
}

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "seccomp")]
    what: String,
    #[tabled(rename = "syscalls")]
    count: String,
}

fn row(what: impl Into<String>, count: impl ToString) -> Row {
    Row {
        what: what.into(),
        count: count.to_string(),
    }
}

fn summary_table(s: &SeccompSummary) -> String {
    let mut rows: Vec<Row> = Abi::ALL
        .iter()
        .filter_map(|abi| {
            s.per_abi
                .get(abi)
                .map(|n| row(format!("allowed, {abi}"), n))
        })
        .collect();
    rows.push(row("allowed, total (distinct names)", s.total));
    rows.push(row(
        "Docker default profile, x86_64",
        s.docker_default_x86_64,
    ));
    if let Some(ratio) = s.x86_64_vs_docker() {
        rows.push(row(
            "x86_64 allowed vs Docker default",
            format!("{:.0}%", ratio * 100.0),
        ));
    }
    Table::new(rows).with(Style::sharp()).to_string()
}

/// One loud line: a profile from a lossy recording may refuse something the workload does.
fn lost_warning(rec: &Recording, path: &Path) -> String {
    let reasons: Vec<String> = rec
        .events_lost
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| format!("{reason}={n}"))
        .collect();
    format!(
        "profgen: WARNING: {} lost {} event(s) while recording ({}); the profile may miss syscalls: verify it, or record again",
        path.display(),
        rec.events_lost_total(),
        reasons.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn table_shows_each_abi_total_and_docker() {
        let s = SeccompSummary {
            per_abi: BTreeMap::from([(Abi::X86_64, 62), (Abi::I386, 3)]),
            total: 63,
            events_lost: 0,
            docker_default_x86_64: 309,
        };
        let table = summary_table(&s);
        for line in ["allowed, x86_64", "allowed, i386", "63", "309", "20%"] {
            assert!(table.contains(line), "{line} missing from:\n{table}");
        }
        assert!(!table.contains("x32"));
    }
}

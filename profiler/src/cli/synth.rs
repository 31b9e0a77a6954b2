//! `profgen synth`: turn a recording into profiles.

use std::path::PathBuf;

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
    /// The recording, as written by `profgen record`. Several (replicas of a workload, or
    /// runs of its tests) are merged: what any of them did is allowed.
    #[arg(value_name = "RECORDING", required = true, num_args = 1..)]
    recordings: Vec<PathBuf>,
    /// Where to write the profiles (created if missing). Default: the directory of the
    /// (single) recording, so it stays beside what was made from it.
    #[arg(long, short, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let dir = match (&args.out, args.recordings.as_slice()) {
        (Some(dir), _) => dir.clone(),
        (None, [one]) => match one.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        },
        (None, _) => anyhow::bail!("several recordings: say where the profiles go with --out DIR"),
    };
    let recordings = args
        .recordings
        .iter()
        .map(Recording::load)
        .collect::<Result<Vec<_>, _>>()?;
    let rec = Recording::merge(&recordings).context("merging the recordings")?;
    let source = describe(&args.recordings);
    let profile = synth::seccomp(&rec)
        .with_context(|| format!("synthesizing a seccomp profile from {source}"))?;

    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the output directory {}", dir.display()))?;
    let path = dir.join("seccomp.json");
    write_atomic(&path, &synth::seccomp::to_json(&profile)?)?;

    let summary = SeccompSummary::of(&rec);
    println!("{}", summary_table(&summary));
    eprintln!("profgen: wrote {} from {source}", path.display());
    if summary.events_lost > 0 {
        eprintln!("{}", lost_warning(&rec, &source));
    }
    Ok(())
}

/// The recordings, as messages name them.
fn describe(paths: &[PathBuf]) -> String {
    match paths {
        [one] => one.display().to_string(),
        many => format!("{} merged recordings", many.len()),
    }
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
fn lost_warning(rec: &Recording, source: &str) -> String {
    let reasons: Vec<String> = rec
        .events_lost
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| format!("{reason}={n}"))
        .collect();
    format!(
        "profgen: WARNING: {} events were lost while recording {} ({}); the profile may miss syscalls: verify it, or record again",
        rec.events_lost_total(),
        source,
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

    #[test]
    fn lost_events_warning_names_count_and_reasons() {
        let rec: Recording = serde_json::from_value(serde_json::json!({
            "schema_version": 1,
            "profgen_version": "0.1.0",
            "host": {"kernel_release": "6.18.0", "machine": "x86_64"},
            "started_at": "2026-01-01T00:00:00Z",
            "ended_at": "2026-01-01T00:01:00Z",
            "target": {"kind": "cgroup", "cgroup": "/a"},
            "events_lost": {"map_full": 0, "ringbuf_full": 12},
            "cgroups": []
        }))
        .unwrap();
        let line = lost_warning(&rec, "rec.json");
        assert!(
            line.starts_with(
                "profgen: WARNING: 12 events were lost while recording rec.json (ringbuf_full=12)"
            ),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    fn write_recording(dir: &std::path::Path, unknown: bool) -> PathBuf {
        let mut cgroup = serde_json::json!({
            "id": 5, "path": "/a", "seccomp_filter_seen": true,
            "syscalls": {"x86_64": ["write", "read"]}
        });
        if unknown {
            cgroup["unknown_numbers"] = serde_json::json!({"x86_64": [470]});
        }
        let rec = serde_json::json!({
            "schema_version": 1,
            "profgen_version": "0.1.0",
            "host": {"kernel_release": "6.18.0", "machine": "x86_64"},
            "started_at": "2026-01-01T00:00:00Z",
            "ended_at": "2026-01-01T00:01:00Z",
            "target": {"kind": "cgroup", "cgroup": "/a"},
            "events_lost": {},
            "cgroups": [cgroup]
        });
        let path = dir.join("recording.json");
        std::fs::write(&path, rec.to_string()).unwrap();
        path
    }

    #[test]
    fn writes_the_profile_into_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let recording = write_recording(dir.path(), false);
        let out = dir.path().join("profiles/web");
        run(SynthArgs {
            recordings: vec![recording],
            out: Some(out.clone()),
        })
        .unwrap();
        let profile: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("seccomp.json")).unwrap()).unwrap();
        assert_eq!(
            profile["syscalls"][0]["names"],
            serde_json::json!(["read", "write"])
        );
    }

    #[test]
    fn a_refused_recording_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let recording = write_recording(dir.path(), true);
        let err = run(SynthArgs {
            recordings: vec![recording],
            out: None,
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("x86_64: 470"), "{err:#}");
        assert!(!dir.path().join("seccomp.json").exists());
    }

    #[test]
    fn several_recordings_are_merged_into_one_profile() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = write_recording(a.path(), false);
        let second = b.path().join("recording.json");
        let text = std::fs::read_to_string(&first)
            .unwrap()
            .replace(r#"["write","read"]"#, r#"["close"]"#);
        std::fs::write(&second, text).unwrap();

        let recordings = vec![first, second];
        let err = run(SynthArgs {
            recordings: recordings.clone(),
            out: None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("--out"), "{err}");

        let out = a.path().join("merged");
        run(SynthArgs {
            recordings,
            out: Some(out.clone()),
        })
        .unwrap();
        let profile: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("seccomp.json")).unwrap()).unwrap();
        assert_eq!(
            profile["syscalls"][0]["names"],
            serde_json::json!(["close", "read", "write"])
        );
    }
}

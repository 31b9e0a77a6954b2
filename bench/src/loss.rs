//! What a flood of distinct names costs: a workload creates N files in one directory as fast
//! as it can, untraced and then under `profgen record`, then the recording is synthesized.
//! Reports the workload's slowdown, the events lost, the recorder's peak RSS, the recording's
//! size, and the time and peak RSS of `profgen synth`.

use std::{ffi::CString, fs, os::unix::ffi::OsStrExt as _, path::Path, process::Command};

use anyhow::{bail, Context as _, Result};
use profgen::model::Recording;

use crate::{
    child::{data_dir, measure},
    profgen_bin,
    report::LossSection,
};

/// The workload: creates `dir` and then `dir/f0` … `dir/f<n-1>`, each opened with
/// `O_CREAT|O_TRUNC` and closed at once. Names start at `first`, so a second run makes names
/// the first never did.
pub fn create_files(n: u64, first: u64, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for i in first..first + n {
        let path = dir.join(format!("f{i}"));
        let c = CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: a NUL-terminated path; the fd is closed at once.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            bail!(
                "creating {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: our own fd.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// `profgen-bench --loss N`: the workload untraced (the baseline), then recorded, then the
/// recording synthesized.
pub fn bench(n: u64) -> Result<LossSection> {
    let profgen = profgen_bin()?;
    let bench = std::env::current_exe().context("locating the benchmark binary")?;
    let work = tempfile::Builder::new()
        .prefix("profgen-loss-")
        .tempdir_in(data_dir())
        .context("creating a scratch directory")?;
    let rec_path = work.path().join("recording.json");
    let out = work.path().join("profiles");
    eprintln!("==> loss: {n} distinct files created in one directory, untraced then recorded");

    let untraced = measure(
        Command::new(&bench)
            .args(["create-files", &n.to_string(), "0"])
            .arg(work.path().join("untraced/spool")),
    )?;
    // The recorder's own start (loading the programs) and stop, with nothing to record.
    let idle = measure(
        Command::new(&profgen)
            .arg("record")
            .arg("--out")
            .arg(work.path().join("idle.json"))
            .args(["--", "true"]),
    )?;
    let record = measure(
        Command::new(&profgen)
            .arg("record")
            .arg("--out")
            .arg(&rec_path)
            .arg("--")
            .arg(&bench)
            .args(["create-files", &n.to_string(), &n.to_string()])
            .arg(work.path().join("var/lib/loss/spool")),
    )?;
    let rec = Recording::load(&rec_path).context("reading the recording")?;
    let size = fs::metadata(&rec_path)?.len();
    let synth = measure(
        Command::new(&profgen)
            .arg("synth")
            .arg(&rec_path)
            .arg("--out")
            .arg(&out)
            .stdout(std::process::Stdio::null()),
    )?;
    let aggregated: usize = rec
        .cgroups
        .iter()
        .map(|c| c.activity.aggregated_dirs.len())
        .sum();
    let section = LossSection {
        files: n,
        untraced_wall_s: untraced.wall.as_secs_f64(),
        record_wall_s: record.wall.as_secs_f64(),
        recorder_alone_wall_s: idle.wall.as_secs_f64(),
        events_lost: rec.events_lost_total(),
        lost_reasons: lost_reasons(&rec),
        recorder_rss_mb: record.max_rss_kb as f64 / 1024.0,
        recording_kb: size as f64 / 1024.0,
        aggregated_dirs: aggregated,
        synth_wall_s: synth.wall.as_secs_f64(),
        synth_rss_mb: synth.max_rss_kb as f64 / 1024.0,
        event_exits: rec
            .host
            .event_exits
            .map_or("not recorded", |e| e.as_str())
            .into(),
    };
    eprintln!("    {section:?}");
    Ok(section)
}

fn lost_reasons(rec: &Recording) -> String {
    let nonzero: Vec<String> = rec
        .events_lost
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    if nonzero.is_empty() {
        "none".into()
    } else {
        nonzero.join(", ")
    }
}

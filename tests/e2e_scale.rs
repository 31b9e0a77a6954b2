//! A flood of distinct names under `profgen record`: 200 000 files created in one directory
//! as fast as the workload can. The kernel side aggregates the directory before the ring
//! buffer, so nothing is lost, the recording stays small, and the AppArmor profile allows the
//! names the next run makes there (and still not `/etc/shadow`).

#[path = "support/mod.rs"]
mod support;

use std::{fs, path::Path, process::Command};

use profgen::{
    model::{activity::FileOp, Recording},
    profile_set::apparmor::{parse, Grants},
    verify::apparmor::parser::{self, ParserError},
};
use support::*;

const FILES: u64 = 200_000;
/// The recording of a flood must not grow with it.
const MAX_RECORDING_BYTES: u64 = 1 << 20;

#[test]
fn a_flood_of_names_is_aggregated_without_loss() {
    if !is_root() {
        return skip("needs root to load eBPF programs");
    }
    if parser::parser_path().is_none() {
        return skip("apparmor_parser is not installed");
    }
    let profgen = profgen_binary();
    let bench = bench_binary();
    // Disk-backed: /tmp may be a small tmpfs.
    let work = tempfile::Builder::new()
        .prefix("profgen-scale-")
        .tempdir_in("/var/tmp")
        .expect("scratch directory");
    let spool = work.path().join("var/lib/flood/spool");
    let rec_path = work.path().join("recording.json");
    let out = output(
        Command::new(&profgen)
            .arg("record")
            .arg("--out")
            .arg(&rec_path)
            .arg("--")
            .arg(&bench)
            .args(["create-files", &FILES.to_string(), "0"])
            .arg(&spool),
    );
    assert!(out.status.success(), "record failed: {}", text(&out.stderr));
    assert_eq!(
        fs::read_dir(&spool).expect("the spool").count() as u64,
        FILES,
        "the workload made every file"
    );

    let rec = Recording::load(&rec_path).expect("recording");
    assert_eq!(rec.events_lost_total(), 0, "lost: {:?}", rec.events_lost);
    let size = fs::metadata(&rec_path).expect("recording").len();
    assert!(size < MAX_RECORDING_BYTES, "recording of {size} bytes");
    let spool_real = fs::canonicalize(&spool).expect("spool");
    let spool_bytes = spool_real.as_os_str().as_encoded_bytes();
    let aggregated = rec
        .cgroups
        .iter()
        .flat_map(|c| &c.activity.aggregated_dirs)
        .find(|d| d.dir.as_bytes() == spool_bytes)
        .unwrap_or_else(|| {
            panic!(
                "no aggregated fact for {}: {:?}",
                spool_real.display(),
                rec.cgroups
                    .iter()
                    .map(|c| &c.activity.aggregated_dirs)
                    .collect::<Vec<_>>()
            )
        });
    assert!(aggregated.ops.contains(&FileOp::Create), "{aggregated:?}");
    let per_name = rec
        .cgroups
        .iter()
        .flat_map(|c| &c.activity.files)
        .filter(|f| f.path.as_bytes().starts_with(spool_bytes))
        .count();
    assert!(per_name <= 100, "{per_name} names recorded one by one");

    let profiles = work.path().join("profiles");
    let out = output(
        Command::new(&profgen)
            .arg("synth")
            .arg(&rec_path)
            .arg("--out")
            .arg(&profiles),
    );
    assert!(out.status.success(), "synth failed: {}", text(&out.stderr));
    let profile = fs::read_to_string(profiles.join("apparmor.profile")).expect("profile");
    match parser::check(&profile) {
        Ok(()) => {}
        Err(ParserError::Absent(why)) => return skip(&format!("apparmor_parser: {why}")),
        Err(e) => panic!("{e}\n{profile}"),
    }
    let grants = Grants::of(&parse(&profile).expect("profile reads back"));
    let next = Path::new(&spool_real).join(format!("f{}", FILES + 7));
    let on_next = grants.on_path(next.as_os_str().as_encoded_bytes(), false);
    assert!(
        on_next.write,
        "the next run's {} is not writable:\n{profile}",
        next.display()
    );
    let shadow = grants.on_path(b"/etc/shadow", false);
    assert!(
        !shadow.read && !shadow.write,
        "/etc/shadow allowed:\n{profile}"
    );
}

//! Bad input to the real `profgen` binary: each failure is one `profgen: error:` line naming
//! the problem, the exit code documented in `profgen --help`, and no output file, partial or
//! otherwise. (A profile that breaks the workload, exit 3, is checked in `e2e_demo`, which
//! has the workload.)
//!
//! Every failing case has a control that succeeds with the same command and one thing
//! changed, so the failure is known to come from that thing.

#[path = "support/mod.rs"]
mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use profgen::model::{Abi, Activity, CgroupRecord, Host, Recording, Target, SCHEMA_VERSION};
use support::*;

/// A small, valid recording: what `profgen synth` accepts.
fn valid_recording() -> Recording {
    let names: BTreeSet<String> = ["read", "write", "exit_group", "execve"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    Recording {
        schema_version: SCHEMA_VERSION,
        profgen_version: "0.1.0".into(),
        host: Host {
            kernel_release: "6.18.0".into(),
            machine: "x86_64".into(),
            event_exits: None,
        },
        started_at: "2026-01-01T00:00:00Z".into(),
        ended_at: "2026-01-01T00:00:01Z".into(),
        target: Target::Cgroup {
            cgroup: "/e2e".into(),
        },
        runtime: None,
        syscalls_only: false,
        coverage: Default::default(),
        events_lost: BTreeMap::from([("ring_buffer_full".to_owned(), 0)]),
        cgroups: vec![CgroupRecord {
            id: 4242,
            path: Some("/e2e/app".into()),
            seccomp_filter_seen: true,
            entrypoint_seen: true,
            joined_after_handover: false,
            syscalls: BTreeMap::from([(Abi::X86_64, names)]),
            excluded_before_filter: BTreeMap::new(),
            unknown_numbers: BTreeMap::new(),
            args: BTreeMap::new(),
            activity: Activity::default(),
        }],
    }
}

fn json(rec: &Recording) -> Vec<u8> {
    rec.to_json().expect("a recording serializes")
}

fn synth(profgen: &Path, recording: &Path, out: &Path) -> std::process::Output {
    output(
        Command::new(profgen)
            .arg("synth")
            .arg(recording)
            .arg("--out")
            .arg(out),
    )
}

/// `profgen synth` of a recording written as `bytes` into a fresh output dir, expected to fail
/// with exit 1 naming each of `mentions`, leaving the output dir as it was.
fn synth_fails(profgen: &Path, case: &str, bytes: &[u8], mentions: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join(format!("{case}.json"));
    fs::write(&recording, bytes).unwrap();
    let out = dir.path().join("out");
    // A profile from an earlier run must survive a failed one, byte for byte.
    fs::create_dir(&out).unwrap();
    fs::write(out.join("seccomp.json"), b"earlier profile\n").unwrap();
    let got = synth(profgen, &recording, &out);
    let line = assert_error(&format!("synth: {case}"), &got, EXIT_ERROR, mentions);
    eprintln!("{case}: {line}");
    assert_eq!(
        dir_entries(&out),
        vec!["seccomp.json".to_owned()],
        "{case}: files left in the output dir"
    );
    assert_eq!(
        fs::read(out.join("seccomp.json")).unwrap(),
        b"earlier profile\n",
        "{case}: the earlier profile was overwritten"
    );
}

#[test]
fn synth_refuses_bad_recordings_and_leaves_no_output() {
    let profgen = profgen_binary();
    let t0 = Instant::now();

    // Control: the valid recording synthesizes.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    fs::write(&good, json(&valid_recording())).unwrap();
    let got = synth(&profgen, &good, &dir.path().join("out"));
    assert_success("synth of a valid recording", &got);
    let profile = fs::read_to_string(dir.path().join("out/seccomp.json")).unwrap();
    assert!(profile.contains("\"exit_group\""), "{profile}");

    let valid = json(&valid_recording());
    synth_fails(
        &profgen,
        "truncated",
        &valid[..valid.len() / 2],
        &["truncated.json"],
    );

    let mut rec = valid_recording();
    rec.schema_version = 999;
    synth_fails(
        &profgen,
        "future-version",
        &json(&rec),
        &["future-version.json", "999", "version"],
    );

    let mut rec = valid_recording();
    rec.cgroups[0]
        .syscalls
        .get_mut(&Abi::X86_64)
        .unwrap()
        .insert("no_such_syscall".into());
    synth_fails(
        &profgen,
        "unknown-syscall",
        &json(&rec),
        &["no_such_syscall"],
    );

    // A missing recording.
    let missing = dir.path().join("missing.json");
    let out = dir.path().join("out-missing");
    let got = synth(&profgen, &missing, &out);
    assert_error(
        "synth: missing recording",
        &got,
        EXIT_ERROR,
        &["missing.json"],
    );
    assert!(!out.exists(), "output dir created for a missing recording");

    // An output dir that cannot be created: its parent is a regular file.
    let file = dir.path().join("a-file");
    fs::write(&file, b"not a directory\n").unwrap();
    let got = synth(&profgen, &good, &file.join("profiles"));
    assert_error(
        "synth: output dir below a regular file",
        &got,
        EXIT_ERROR,
        &["a-file/profiles"],
    );
    assert_eq!(fs::read(&file).unwrap(), b"not a directory\n");
    // Nothing beside the file either (no stray temporary files).
    let mut expected = vec!["a-file", "good.json", "out", "out-missing"];
    expected.retain(|n| dir.path().join(n).exists());
    assert_eq!(
        dir_entries(dir.path()),
        expected.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
    eprintln!("took {:?}", t0.elapsed());
}

/// A pid no process has: above every pid in use, below `pid_max`.
fn unused_pid() -> u32 {
    let max: u32 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (2..max)
        .rev()
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .expect("a free pid")
}

/// `profgen record ARGS --out DIR/rec.json` expected to fail before recording: the exit code,
/// the error line, no recording and nothing else in DIR.
fn record_fails(profgen: &Path, case: &str, args: &[&str], code: i32, mentions: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec.json");
    let mut cmd = Command::new(profgen);
    cmd.arg("record")
        .arg("--out")
        .arg(&out)
        .arg("--duration")
        .arg("2s")
        .args(args);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let got = child.wait_with_output().unwrap();
    let line = assert_error(&format!("record: {case}"), &got, code, mentions);
    eprintln!("{case}: {line}");
    assert_eq!(
        dir_entries(dir.path()),
        Vec::<String>::new(),
        "{case}: files written"
    );
    // `record -- CMD` names its fresh cgroup after its pid; a failed run must not leave it.
    let cg2 = profgen::cgroup::cgroup2_mount().expect("a cgroup2 mount");
    let fresh = cg2.join(format!("profgen-record-{pid}"));
    assert!(!fresh.exists(), "{case}: {} left behind", fresh.display());
    line
}

#[test]
fn record_refuses_missing_targets() {
    if !is_root() {
        return skip("record's target checks are reached only as root");
    }
    let profgen = profgen_binary();
    let t0 = Instant::now();
    let cg2 = profgen::cgroup::cgroup2_mount().expect("a cgroup2 mount");

    record_fails(
        &profgen,
        "command not found",
        &["--", "profgen-e2e-no-such-command", "arg"],
        EXIT_ERROR,
        &["profgen-e2e-no-such-command"],
    );
    record_fails(
        &profgen,
        "command path not found",
        &["--", "/nonexistent/profgen-e2e/cmd"],
        EXIT_ERROR,
        &["/nonexistent/profgen-e2e/cmd"],
    );
    let missing = cg2.join(format!("profgen-e2e-missing-{}", std::process::id()));
    record_fails(
        &profgen,
        "cgroup missing",
        &["--cgroup", missing.to_str().unwrap()],
        EXIT_ERROR,
        &[missing.to_str().unwrap(), "does not exist"],
    );
    let pid = unused_pid().to_string();
    record_fails(
        &profgen,
        "pid missing",
        &["--pid", &pid],
        EXIT_ERROR,
        &[&format!("process {pid}")],
    );

    // Control: the same command line with a command that exists records and succeeds.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec.json");
    let got = output(
        Command::new(&profgen)
            .arg("record")
            .arg("--out")
            .arg(&out)
            .args(["--", "true"]),
    );
    assert_success("record -- true", &got);
    let rec = Recording::load(&out).expect("the control's recording loads");
    let Target::Command { cgroup, .. } = &rec.target else {
        panic!("target {:?}", rec.target);
    };
    let fresh = cg2.join(cgroup.trim_start_matches('/'));
    assert!(!fresh.exists(), "{} left behind", fresh.display());
    eprintln!("took {:?}", t0.elapsed());
}

/// A copy of the binary a non-root user can execute, in a directory it can write to, so
/// that only the missing privilege can make `record` fail.
fn world_usable_copy(profgen: &Path, dir: &Path) -> PathBuf {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).unwrap();
    let copy = dir.join("profgen");
    fs::copy(profgen, &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

#[test]
fn record_as_non_root_exits_4_naming_the_missing_privilege() {
    if !is_root() {
        return skip("switching to the nobody user needs root");
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        return skip("setpriv (util-linux) is not installed");
    }
    let profgen = profgen_binary();
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let bin = world_usable_copy(&profgen, dir.path());
    let nobody = |args: &[&str]| {
        let out = dir.path().join("rec.json");
        let got = output(
            Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--inh-caps=-all",
                    "--",
                ])
                .arg(&bin)
                .arg("record")
                .arg("--out")
                .arg(&out)
                .args(["--duration", "2s"])
                .args(args),
        );
        (got, out)
    };

    // Control: nobody can run this copy at all.
    let got = output(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .arg("--version"),
    );
    assert_success("profgen --version as nobody", &got);

    let cg = CgroupDir::create("profgen-e2e-nonroot");
    let own_pid = std::process::id().to_string();
    let cases: [(&str, Vec<&str>); 3] = [
        ("-- CMD", vec!["--", "true"]),
        ("--cgroup", vec!["--cgroup", cg.path.to_str().unwrap()]),
        ("--pid", vec!["--pid", &own_pid]),
    ];
    // Every case runs before any verdict, so one report shows which targets are affected.
    let mut failures = Vec::new();
    for (case, args) in cases {
        let (got, out) = nobody(&args);
        let verdict = std::panic::catch_unwind(|| {
            let line = assert_error(
                &format!("record {case} as nobody"),
                &got,
                EXIT_NO_PERMISSION,
                &[],
            );
            let lower = line.to_lowercase();
            assert!(
                lower.contains("root") || lower.contains("cap_bpf"),
                "record {case} as nobody: the error line does not name the missing privilege: {line}"
            );
            assert!(!out.exists(), "record {case} as nobody wrote a recording");
            line
        });
        match verdict {
            Ok(line) => eprintln!("{case}: {line}"),
            Err(panic) => failures.push(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| format!("record {case} as nobody failed")),
            ),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!("took {:?}", t0.elapsed());
}

//! The CI gate of `docs/ci.md`, end to end: record the demo's test suite, `profgen check` the
//! recording against the committed `profiles/demo-nginx` (passes); then a changed workload —
//! the same nginx serving one more file, fetched after the suite — is recorded and checked
//! against the same set: it fails (exit 5) and names the new file. `profgen diff` of the set
//! synthesized from the changed recording against the committed one reports the new rule.

#[path = "support/mod.rs"]
mod support;

use std::{ffi::OsStr, fs, net::TcpListener, path::Path, process::Command, time::Duration};

use profgen::verify::runc::{unique_id, Runc};
use profgen_demo::{build_bundle, http::Connection, seccomp, suite, BundleOptions};
use support::*;

/// `profgen diff` / `check`: the new set or recording allows (needs) more.
const EXIT_ALLOWS_MORE: i32 = 5;
/// The file only the changed workload serves.
const EXTRA: &str = "release-notes.txt";

fn prerequisites() -> Result<(), String> {
    if !is_root() {
        return Err("runc containers and eBPF need root".into());
    }
    if Command::new("runc").arg("--version").output().is_err() {
        return Err("`runc` is not installed".into());
    }
    if !Path::new(profgen_demo::config::NGINX_BIN).is_file() {
        return Err("nginx is not installed (Debian package nginx)".into());
    }
    Ok(())
}

/// Records the demo container while the suite runs (and, for the changed workload, one more
/// request for [`EXTRA`]); returns the recording's path.
fn record_demo(work: &Path, name: &str, extra_request: bool) -> std::path::PathBuf {
    let profgen = profgen_binary();
    let parent = CgroupDir::create(&format!("profgen-e2e-ci-{name}"));
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bundle = build_bundle(
        &work.join(format!("bundle-{name}")),
        &BundleOptions {
            cgroups_path: Some(format!("{}/nginx", parent.rel)),
            seccomp: Some(seccomp::recording()),
            ..BundleOptions::new(port)
        },
    )
    .expect("building the demo bundle");
    fs::write(
        bundle.rootfs.join("srv/site").join(EXTRA),
        "profgen 0.2: diff and check\n",
    )
    .unwrap();
    let rec = work.join(format!("{name}.json"));
    let recorder = Recorder::start(
        &profgen,
        &[OsStr::new("--cgroup"), parent.path.as_os_str()],
        &rec,
    );
    {
        let container = Runc::default()
            .run_detached(&bundle.dir, &unique_id(&format!("profgen-e2e-ci-{name}")))
            .expect("starting the demo container");
        container
            .wait_tcp(bundle.addr, Duration::from_secs(20))
            .expect("nginx accepts connections");
        let failed: Vec<String> = suite::run(bundle.addr, Duration::from_secs(10))
            .into_iter()
            .filter_map(|c| c.result.err().map(|e| format!("{}: {e}", c.name)))
            .collect();
        assert!(failed.is_empty(), "the suite failed: {failed:#?}");
        if extra_request {
            let mut conn = Connection::open(bundle.addr, Duration::from_secs(5)).unwrap();
            let response = conn.get(&format!("/{EXTRA}")).unwrap();
            assert_eq!(response.status(), 200, "GET /{EXTRA}");
        }
        container.stop(Duration::from_secs(10)).unwrap();
    }
    recorder.stop();
    rec
}

#[test]
fn check_passes_for_the_demo_and_names_what_a_changed_workload_adds() {
    if let Err(reason) = prerequisites() {
        return skip(&reason);
    }
    let profgen = profgen_binary();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/demo-nginx");
    let work = tempfile::tempdir().unwrap();

    // The demo as committed: everything it did is allowed.
    let same = record_demo(work.path(), "same", false);
    let got = output(
        Command::new(&profgen)
            .args(["check", "--profiles"])
            .arg(&committed)
            .arg(&same),
    );
    assert_success("profgen check of the unchanged demo", &got);

    // One more file served: the check fails and names it, in Markdown too.
    let changed = record_demo(work.path(), "changed", true);
    let got = output(
        Command::new(&profgen)
            .args(["check", "--format", "markdown", "--profiles"])
            .arg(&committed)
            .arg(&changed),
    );
    let report = text(&got.stdout);
    assert_eq!(
        got.status.code(),
        Some(EXIT_ALLOWS_MORE),
        "profgen check of the changed demo:\n{report}\n{}",
        text(&got.stderr)
    );
    assert!(
        report.contains(&format!("/srv/site/{EXTRA}")),
        "the check does not name the new file:\n{report}"
    );

    // The set made from the changed recording allows more than the committed one.
    let new_set = work.path().join("new-set");
    let made = output(
        Command::new(&profgen)
            .arg("synth")
            .arg(&changed)
            .arg("--out")
            .arg(&new_set)
            .args(profgen_demo::synth_args()),
    );
    assert_success("profgen synth of the changed demo", &made);
    let got = output(
        Command::new(&profgen)
            .arg("diff")
            .arg(&committed)
            .arg(&new_set),
    );
    let table = text(&got.stdout);
    assert_eq!(
        got.status.code(),
        Some(EXIT_ALLOWS_MORE),
        "profgen diff committed → changed:\n{table}\n{}",
        text(&got.stderr)
    );
    assert!(
        table.contains(EXTRA),
        "the diff does not name the new rule:\n{table}"
    );
}

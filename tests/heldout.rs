//! Held-out proof on real servers from Debian's packages: a profile is only as good as its
//! worst next run.
//!
//! For each server of `profgen_servers` (nginx, redis, PostgreSQL 15, memcached, haproxy):
//!
//! * run A: `profgen record --cgroup PARENT` while the server runs in runc containers below
//!   it under the permissive recording filter, through its lifecycle (suite, reload, graceful
//!   restart on its data, kill -9 leaving pid and lock files, restart, suite, stop);
//!   `profgen synth` makes the profile set.
//! * run B, held out: the same lifecycle again, other containers and pids, starting on the
//!   data run A left, under the synthesized seccomp profile (runc); then the AppArmor profile
//!   in a kernel that enforces it (qemu), see [`apparmor_step`].
//!
//! Run B must pass every suite check with zero `apparmor="DENIED"` lines. A table sums it up.
//! `PROFGEN_HELDOUT_SERVERS=redis,postgres` runs some servers only; `PROFGEN_HELDOUT_KEEP=DIR`
//! keeps each server's recording and profile set in `DIR/<server>/`.
//!
//! Needs root, runc and the servers' Debian packages; skips with a reason otherwise, unless
//! CI=true.

#[path = "support/mod.rs"]
mod support;

use std::{
    env,
    ffi::{OsStr, OsString},
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use profgen::verify::{
    apparmor::{find_kernel, prove, AppArmorCheck, VmOptions},
    load_profile, with_seccomp,
};
use profgen_demo::seccomp;
use profgen_servers::{
    bundle::{self, Bundle},
    lifecycle::{self, Run, RunOutcome},
    Server,
};
use support::*;

/// How long a server may take to answer after a start (crash recovery included).
const READY: Duration = Duration::from_secs(60);
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);

fn selected() -> Result<Vec<Server>, String> {
    match env::var("PROFGEN_HELDOUT_SERVERS") {
        Ok(list) if !list.trim().is_empty() => list.split(',').map(|s| s.trim().parse()).collect(),
        _ => Ok(Server::ALL.to_vec()),
    }
}

fn prerequisites(servers: &[Server]) -> Result<(), String> {
    if !is_root() {
        return Err("runc containers and eBPF need root".into());
    }
    for (bin, package) in [
        ("runc", "runc"),
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("apparmor_parser", "apparmor"),
    ] {
        if Command::new(bin).arg("--version").output().is_err() {
            return Err(format!(
                "`{bin}` is not installed (Debian package {package})"
            ));
        }
    }
    if find_kernel().is_none() {
        return Err(
            "no /boot/vmlinuz-* for the AppArmor VM (Debian package linux-image-amd64)".into(),
        );
    }
    for s in servers {
        let recipe = s.recipe(1);
        if let Some(missing) = recipe.binaries.iter().find(|b| !b.exists()) {
            return Err(format!(
                "{} is missing (Debian package {})",
                missing.display(),
                recipe.package
            ));
        }
    }
    Ok(())
}

/// One line of the table.
struct Row {
    server: Server,
    rules: usize,
    syscalls: usize,
    run_a: (usize, usize),
    seccomp: (usize, usize),
    apparmor: String,
    failures: Vec<String>,
    secs: f64,
}

#[test]
fn held_out_runs_hold_under_the_recorded_profiles() {
    let servers = match selected() {
        Ok(s) => s,
        Err(e) => panic!("PROFGEN_HELDOUT_SERVERS: {e}"),
    };
    if let Err(reason) = prerequisites(&servers) {
        return skip(&reason);
    }
    let profgen = profgen_binary();
    let work = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let mut rows = Vec::new();
    for server in servers {
        rows.push(held_out(server, &profgen, &work.path().join(server.name())));
    }
    print_table(&rows);
    eprintln!("took {:.0} s", t0.elapsed().as_secs_f64());
    let failed: Vec<String> = rows
        .iter()
        .flat_map(|r| r.failures.iter().map(move |f| format!("{}: {f}", r.server)))
        .collect();
    assert!(
        failed.is_empty(),
        "held-out failures:\n{}",
        failed.join("\n")
    );
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| server | kind | AppArmor rules | syscalls allowed | run A (recorded) | run B under seccomp | run B under AppArmor | time |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {}/{} checks | {}/{} checks | {} | {:.0} s |",
            r.server,
            r.server.kind(),
            r.rules,
            r.syscalls,
            r.run_a.0,
            r.run_a.1,
            r.seccomp.0,
            r.seccomp.1,
            r.apparmor,
            r.secs
        );
    }
    println!();
}

fn log(server: Server, run: &str) -> impl FnMut(&str) + '_ {
    let run = run.to_owned();
    move |line: &str| eprintln!("[{server} {run}] {line}")
}

fn held_out(server: Server, profgen: &Path, dir: &Path) -> Row {
    let t0 = Instant::now();
    let mut row = Row {
        server,
        rules: 0,
        syscalls: 0,
        run_a: (0, 0),
        seccomp: (0, 0),
        apparmor: "not run".into(),
        failures: Vec::new(),
        secs: 0.0,
    };
    fs::create_dir_all(dir).unwrap();
    let port = profgen_servers::free_ports(server.ports()).expect("free ports");
    let bundle = bundle::build(
        &dir.join("bundle"),
        &dir.join("state"),
        &server.recipe(port),
    )
    .unwrap_or_else(|e| panic!("building the {server} bundle: {e}"));
    setup(server, &bundle, dir);

    // Run A, recorded.
    let parent = CgroupDir::create(&format!("profgen-heldout-{server}"));
    let rec_path = dir.join("recording.json");
    let recorder = Recorder::start(
        profgen,
        &[OsStr::new("--cgroup"), parent.path.as_os_str()],
        &rec_path,
    );
    let mut run_a = Run {
        server,
        port,
        state: &bundle.state,
        persisted: 0,
        ready_timeout: READY,
        id_prefix: format!("profgen-heldout-a-{server}"),
    };
    let a = lifecycle::run(
        &mut run_a,
        &mut |k| {
            bundle
                .write_config(
                    Some(format!("{}/{server}-{}", parent.rel, k + 1)),
                    Some(seccomp::recording()),
                )
                .map_err(|e| e.to_string())?;
            Ok(bundle.dir.clone())
        },
        &mut log(server, "A"),
    );
    let rec = recorder.stop();
    row.run_a = (a.passed(), a.total());
    if !a.failures().is_empty() {
        show_logs(&a);
        row.failures
            .extend(a.failures().into_iter().map(|f| format!("run A: {f}")));
        row.secs = t0.elapsed().as_secs_f64();
        return row;
    }
    let lost: Vec<_> = rec.events_lost.iter().filter(|(_, n)| **n > 0).collect();
    if !lost.is_empty() {
        row.failures
            .push(format!("run A's recording lost events: {lost:?}"));
    }
    drop(parent);

    // synth
    let profiles = dir.join("profiles");
    let name = format!("heldout-{server}");
    let got = output(
        Command::new(profgen)
            .arg("synth")
            .arg(&rec_path)
            .arg("--out")
            .arg(&profiles)
            .args(["--name", &name]),
    );
    assert_success(&format!("profgen synth ({server})"), &got);
    let profile = load_profile(&profiles.join("seccomp.json")).expect("seccomp.json loads");
    let apparmor_text = fs::read_to_string(profiles.join("apparmor.profile")).unwrap();
    row.syscalls = allowed_names(&profile).len();
    row.rules = apparmor_rules(&apparmor_text);
    keep(server, dir);

    // Run B under seccomp: a separate run on A's data.
    bundle.write_config(None, None).unwrap();
    let patched = with_seccomp(&bundle.dir, &profile).expect("patching the bundle");
    let mut run_b = Run {
        server,
        port,
        state: &bundle.state,
        persisted: run_a.persisted,
        ready_timeout: READY,
        id_prefix: format!("profgen-heldout-b-{server}"),
    };
    let b = lifecycle::run(
        &mut run_b,
        &mut |_| Ok(patched.path().to_owned()),
        &mut log(server, "B seccomp"),
    );
    row.seccomp = (b.passed(), b.total());
    if b.seccomp_modes.iter().any(|m| *m != 2) {
        row.failures.push(format!(
            "run B: a container ran without its filter (Seccomp: {:?})",
            b.seccomp_modes
        ));
    }
    if !b.failures().is_empty() {
        show_logs(&b);
        row.failures.extend(
            b.failures()
                .into_iter()
                .map(|f| format!("run B under seccomp: {f}")),
        );
    }

    // Run B under AppArmor.
    match apparmor_step(
        server,
        &name,
        &profiles.join("apparmor.profile"),
        &bundle,
        port,
        run_b.persisted,
        dir,
    ) {
        Ok(verdict) => row.apparmor = verdict,
        Err(why) => {
            row.apparmor = "FAILED".into();
            row.failures.push(format!("run B under AppArmor: {why}"));
        }
    }
    row.secs = t0.elapsed().as_secs_f64();
    row
}

/// The server's one-off set-up (PostgreSQL's initdb) in a container on the same root and
/// state, not recorded: an image's or an init container's job, not the server's.
fn setup(server: Server, bundle: &Bundle, dir: &Path) {
    let Some(args) = server.setup() else { return };
    let setup_dir = bundle
        .with_args(&dir.join("setup"), args)
        .expect("writing the set-up bundle");
    let id = profgen::verify::runc::unique_id(&format!("profgen-heldout-setup-{server}"));
    let got = profgen::verify::process::run(
        Command::new("runc")
            .args(["run", "--bundle"])
            .arg(&setup_dir)
            .arg(&id),
        SETUP_TIMEOUT,
    )
    .expect("running runc");
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    assert!(
        got.success(),
        "{server} set-up failed: {}\n{}{}",
        got.describe(),
        got.stdout,
        got.stderr
    );
}

fn show_logs(run: &RunOutcome) {
    for s in &run.steps {
        if let Some(log) = &s.log {
            eprintln!("--- container output at {:?}\n{log}", s.step);
        }
    }
}

/// `PROFGEN_HELDOUT_KEEP=DIR`: the recording and the profile set, for a look afterwards.
fn keep(server: Server, dir: &Path) {
    let Some(keep) = env::var_os("PROFGEN_HELDOUT_KEEP") else {
        return;
    };
    let dest = PathBuf::from(keep).join(server.name());
    fs::create_dir_all(&dest).unwrap();
    for entry in fs::read_dir(dir.join("profiles")).unwrap().flatten() {
        fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
    }
}

/// Rules of the profile: lines ending in `,` (before a trailing `# why` comment) that are not
/// comments, includes or the abi.
fn apparmor_rules(text: &str) -> usize {
    text.lines()
        .map(|l| l.split_once(" #").map_or(l, |(rule, _)| rule).trim())
        .filter(|l| l.ends_with(',') && !l.starts_with('#') && !l.starts_with("abi "))
        .count()
}

#[test]
fn rules_are_counted_with_their_comments() {
    let profile = "abi <abi/3.0>,\n#include <tunables/global>\nprofile p {\n  # a comment,\n  /etc/hosts r,\n  owner /run/x.[0-9]* rw,  # pid-in-name\n}\n";
    assert_eq!(apparmor_rules(profile), 2);
}

/// The fact the guest's own script checks that the in-guest lifecycle makes false on purpose:
/// `server-suite --confined-by` kills the process the script started and starts the server
/// again (its exit status says whether the restarted server passed).
const ALIVE_AFTER: &str = "the workload still ran after the suite";

/// Run B under the AppArmor profile, in a kernel that enforces it (`verify::apparmor::prove`:
/// Debian's kernel under qemu, the guest's root the bundle's root filesystem): a copy of the
/// bundle holding the data run B under seccomp left, the server started confined by the
/// guest, then `server-suite --confined-by`: the suite, kill -9, a confined restart on what
/// the kill left, the suite, a graceful stop. Zero DENIED lines, probes denied.
fn apparmor_step(
    server: Server,
    name: &str,
    profile: &Path,
    bundle: &Bundle,
    port: u16,
    persisted: u32,
    dir: &Path,
) -> Result<String, String> {
    let vm_bundle = bundle
        .vm_copy(&dir.join("vm"))
        .map_err(|e| format!("copying the bundle for the VM: {e}"))?;
    let suite: Vec<OsString> = [
        server_suite_binary().into_os_string(),
        server.name().into(),
        "--port".into(),
        port.to_string().into(),
        "--previous".into(),
        persisted.to_string().into(),
        "--confined-by".into(),
        name.into(),
    ]
    .into();
    let check = AppArmorCheck {
        profile: profile.to_owned(),
        bundle: vm_bundle,
        wait_tcp: Some(([127, 0, 0, 1], port).into()),
        suite,
        suite_timeout: Duration::from_secs(300),
        vm: VmOptions::default(),
    };
    let proof = prove(&check).map_err(|e| format!("the VM could not run: {e}"))?;
    let _ = fs::remove_dir_all(dir.join("vm"));
    eprintln!("[{server} B AppArmor]\n{proof}");
    let failures: Vec<String> = proof
        .failures()
        .into_iter()
        .filter(|f| f != ALIVE_AFTER)
        .collect();
    let vm = proof.vm.as_ref().ok_or("the VM did not run")?;
    let (passed, total) = suite_counts(&vm.suite_output);
    if !failures.is_empty() {
        return Err(failures.join("; "));
    }
    Ok(format!(
        "{passed}/{total} checks, {} DENIED",
        vm.workload_denied.len()
    ))
}

/// Passed and total checks from the suite's summary lines (`suite: 15 checks, 15 passed, 0
/// failed`).
fn suite_counts(lines: &[String]) -> (usize, usize) {
    let mut passed = 0;
    let mut total = 0;
    for l in lines {
        let Some((_, rest)) = l.split_once(": ") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if let [n, "checks,", p, "passed,", _, "failed"] = words.as_slice() {
            total += n.parse::<usize>().unwrap_or(0);
            passed += p.parse::<usize>().unwrap_or(0);
        }
    }
    (passed, total)
}

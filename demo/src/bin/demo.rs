//! `cargo xtask demo`: the main job on the built-in workload, the way a user runs it.
//!
//! 1. build the OCI bundle (nginx + static site + probe) with a permissive seccomp filter,
//! 2. `profgen record --cgroup` a parent cgroup, start the container below it under runc,
//! 3. run the HTTP test suite against it, stop the container, stop the recording,
//! 4. `profgen synth` the recording into `profiles/demo-nginx/`,
//! 5. `profgen verify`: the same container under the synthesized profile, the same suite,
//!    and a probe outside the profile that must get EPERM.

use std::{
    fs,
    net::TcpListener,
    path::Path,
    process::{Child, Command},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};
use profgen::{
    cgroup::Cgroup,
    verify::runc::{unique_id, Runc},
};
use profgen_demo::{build_bundle, seccomp, suite, BundleOptions};

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("locating the workspace")?
        .to_owned();
    let out_dir = root.join("profiles/demo-nginx");
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("locating the build directory")?
        .to_owned();
    let profgen = bin_dir.join("profgen");
    let suite_bin = bin_dir.join("demo-suite");
    for bin in [&profgen, &suite_bin] {
        ensure!(
            bin.is_file(),
            "{} is missing: build the workspace first",
            bin.display()
        );
    }
    let work = tempfile::Builder::new()
        .prefix("profgen-demo-")
        .tempdir_in(root.join("target"))
        .context("creating a work directory under target/")?;

    step("building the OCI bundle: the host's nginx and its libraries, the site, the probe");
    let port = free_port()?;
    let parent = Cgroup::root()?.path().join("profgen-demo");
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let cgroups_path = format!("/profgen-demo/nginx-{}", std::process::id());
    let bundle = build_bundle(
        &work.path().join("bundle"),
        &BundleOptions {
            cgroups_path: Some(cgroups_path.clone()),
            seccomp: Some(seccomp::recording()),
            ..BundleOptions::new(port)
        },
    )?;

    step(&format!(
        "recording cgroup {} (containers below it included)",
        parent.display()
    ));
    let recording = work.path().join("recording.json");
    let ready = work.path().join("ready");
    let mut recorder = Command::new(&profgen)
        .args(["record", "--cgroup"])
        .arg(&parent)
        .arg("--out")
        .arg(&recording)
        .arg("--ready-file")
        .arg(&ready)
        .spawn()
        .context("starting profgen record")?;
    wait_for(&ready, &mut recorder)?;

    step(&format!(
        "starting nginx under runc (cgroup {cgroups_path}), running the suite"
    ));
    let checks = {
        let container = Runc::default()
            .run_detached(&bundle.dir, &unique_id("profgen-demo"))
            .context("starting the demo container")?;
        container.wait_tcp(bundle.addr, Duration::from_secs(20))?;
        let checks = suite::run(bundle.addr, Duration::from_secs(10));
        // A graceful stop while recording: shutting down is part of what the workload does
        // (nginx's workers and master exit through exit_group).
        container.stop(Duration::from_secs(10))?;
        checks
    };
    let failed: Vec<_> = checks.iter().filter(|c| c.result.is_err()).collect();
    for check in &checks {
        match &check.result {
            Ok(()) => println!("    ok    {}", check.name),
            Err(why) => println!("    FAIL  {}: {why}", check.name),
        }
    }
    ensure!(
        failed.is_empty(),
        "{} check(s) failed while recording",
        failed.len()
    );

    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(recorder.id() as i32, libc::SIGINT) };
    let status = recorder.wait()?;
    ensure!(status.success(), "profgen record failed ({status})");

    step(&format!("synthesizing into {}", out_dir.display()));
    fs::create_dir_all(&out_dir)?;
    fs::copy(&recording, out_dir.join("recording.json"))?;
    run(Command::new(&profgen)
        .arg("synth")
        .arg(out_dir.join("recording.json"))
        .arg("--out")
        .arg(&out_dir))?;

    step("verifying: the same container under the profile, the same suite, a probe outside it");
    run(Command::new(&profgen)
        .args(["verify", "--bundle"])
        .arg(&bundle.dir)
        .arg("--seccomp")
        .arg(out_dir.join("seccomp.json"))
        .args(["--probe", "unshare,ptrace,personality", "--wait-tcp"])
        .arg(bundle.addr.to_string())
        .arg("--")
        .arg(&suite_bin)
        .args(["--url", &bundle.url()]))?;
    let _ = fs::remove_dir(&parent);
    step(&format!(
        "done: {} holds recording.json and seccomp.json, proven under runc",
        out_dir.display()
    ));
    Ok(())
}

fn step(what: &str) {
    eprintln!("==> {what}");
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for(ready: &Path, recorder: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        if let Some(status) = recorder.try_wait()? {
            bail!("profgen record exited before recording started ({status})");
        }
        if Instant::now() > deadline {
            let _ = recorder.kill();
            bail!("profgen record did not start within 30 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    ensure!(status.success(), "{cmd:?} failed ({status})");
    Ok(())
}

//! nginx requests/s under wrk, with and without profgen recording the container.

use std::{
    fs,
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Child, Command},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use profgen::{
    cgroup::Cgroup,
    verify::runc::{unique_id, Runc},
};
use profgen_demo::{build_bundle, seccomp, BundleOptions};

use crate::{median, profgen_bin, run};

/// Both configurations run the same bundle with the same permissive seccomp filter (the one
/// used for recording), so the only difference is profgen.
pub fn bench(seconds: u32, rounds: usize) -> Result<()> {
    let work = tempfile::tempdir()?;
    let parent = Cgroup::root()?.path().join("profgen-bench");
    fs::create_dir_all(&parent)?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let bundle = build_bundle(
        &work.path().join("bundle"),
        &BundleOptions {
            cgroups_path: Some(format!("/profgen-bench/nginx-{}", std::process::id())),
            seccomp: Some(seccomp::recording()),
            ..BundleOptions::new(port)
        },
    )?;
    eprintln!("==> nginx: wrk for {seconds} s per run, {rounds} rounds, interleaved");
    let (mut plain, mut recorded) = (vec![], vec![]);
    for round in 1..=rounds {
        plain.push(serve(&bundle.dir, bundle.addr, seconds)?);
        let recorder = Recorder::start(&parent, work.path())?;
        recorded.push(serve(&bundle.dir, bundle.addr, seconds)?);
        recorder.stop()?;
        eprintln!(
            "    round {round}: untraced {:.0} req/s, recorded {:.0} req/s",
            plain[round - 1],
            recorded[round - 1]
        );
    }
    let _ = fs::remove_dir(&parent);
    let (plain, recorded) = (median(plain), median(recorded));
    println!("nginx requests/s (wrk, 1 thread, 16 connections, median of {rounds} rounds)");
    println!("  untraced                {plain:9.0} req/s  1.00");
    println!(
        "  recorded by profgen     {recorded:9.0} req/s  {:.3} of untraced",
        recorded / plain
    );
    Ok(())
}

fn serve(bundle: &Path, addr: SocketAddr, seconds: u32) -> Result<f64> {
    let container = Runc::default()
        .run_detached(bundle, &unique_id("profgen-bench"))
        .context("starting nginx")?;
    container.wait_tcp(addr, Duration::from_secs(20))?;
    let out = run(Command::new("wrk").args([
        "-t1",
        "-c16",
        &format!("-d{seconds}s"),
        &format!("http://{addr}/index.html"),
    ]))?;
    container.stop(Duration::from_secs(5))?;
    out.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output:\n{out}"))
}

struct Recorder(Child);

impl Recorder {
    fn start(cgroup: &Path, work: &Path) -> Result<Self> {
        let ready = work.join("ready");
        let _ = fs::remove_file(&ready);
        let mut child = Command::new(profgen_bin()?)
            .args(["record", "--cgroup"])
            .arg(cgroup)
            .arg("--out")
            .arg(work.join("bench-recording.json"))
            .arg("--ready-file")
            .arg(&ready)
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready.exists() {
            if Instant::now() > deadline || child.try_wait()?.is_some() {
                let _ = child.kill();
                bail!("the recorder did not start");
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(Self(child))
    }

    fn stop(mut self) -> Result<()> {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let status = self.0.wait()?;
        if !status.success() {
            bail!("profgen record failed ({status})");
        }
        Ok(())
    }
}

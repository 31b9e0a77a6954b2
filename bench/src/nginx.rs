//! nginx under wrk, with and without profgen recording the container: requests/s, and the CPU
//! time nginx's cgroup spends per request (steadier on a shared machine: it does not depend
//! on how much of the CPU nginx got, only on what each request cost it).

use std::{
    fs,
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Child, Command},
    time::Duration,
};

use anyhow::{bail, Context as _, Result};
use profgen::{
    cgroup::Cgroup,
    record::kernel::{Hook, Kernel},
    verify::runc::{unique_id, Runc},
};
use profgen_demo::{build_bundle, seccomp, BundleOptions};

use crate::{
    nginx_cpu::{Cost, Nginx},
    profgen_bin,
    report::{NginxSection, Outcome, Row, Table},
    run,
};

/// One nginx container serves every configuration, so only the hook differs between them:
/// none, an empty one (what any syscall-entry hook costs nginx), profgen recording everything,
/// profgen recording syscalls only. The configurations take turns within each round (in an
/// order rotated by one each round), each measured after a warm-up; a configuration's ratio
/// is taken to the untraced run of the same round, so slow drift of the machine cancels out.
/// Each configuration is measured twice in its turn: requests/s, then CPU per request.
pub fn bench(seconds: u32, cost_runs: u32, rounds: usize) -> Result<NginxSection> {
    let work = tempfile::tempdir()?;
    let parent = Cgroup::root()?.path().join("profgen-bench");
    fs::create_dir_all(&parent)?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let cgroup = format!("profgen-bench/nginx-{}", std::process::id());
    // Its cpu.stat counts nginx's CPU (and the eBPF programs', which run in its tasks), never
    // wrk's, which runs in the benchmark's own cgroup.
    let nginx = Nginx::new(profgen::cgroup::cgroup2_mount()?.join(&cgroup));
    let bundle = build_bundle(
        &work.path().join("bundle"),
        &BundleOptions {
            cgroups_path: Some(format!("/{cgroup}")),
            seccomp: Some(seccomp::recording()),
            ..BundleOptions::new(port)
        },
    )?;
    let container = Runc::default()
        .run_detached(&bundle.dir, &unique_id("profgen-bench"))
        .context("starting nginx")?;
    container.wait_tcp(bundle.addr, Duration::from_secs(20))?;
    eprintln!(
        "==> nginx: wrk for {seconds} s per run (after 1 s of warm-up), then {cost_runs} one-second runs of one request at a time on one CPU, {rounds} rounds, interleaved, after a warm-up round"
    );
    let names = [
        ("untraced", "nginx alone"),
        (
            "empty raw tracepoint (floor)",
            "an empty BPF program on raw_syscalls:sys_enter",
        ),
        (
            "profgen record",
            "`profgen record --cgroup PARENT` (everything)",
        ),
        (
            "profgen record --syscalls-only",
            "`profgen record --cgroup PARENT --syscalls-only`",
        ),
    ];
    let mut rps: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut recorder_cpu: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    // Requests/s (many connections, nginx free to use every CPU), then the CPU per request
    // (`nginx_cpu`), under the same hook.
    let measure = |i: usize| -> Result<(f64, Cost, Option<f64>)> {
        let both = || -> Result<(f64, Cost)> {
            Ok((
                requests_per_s(bundle.addr, seconds)?,
                nginx.cost(bundle.addr, cost_runs)?,
            ))
        };
        match i {
            0 => both().map(|(r, c)| (r, c, None)),
            1 => {
                let _hook = Kernel::load(Hook::Empty).context("attaching the empty hook")?;
                both().map(|(r, c)| (r, c, None))
            }
            _ => {
                let recorder = Recorder::start(&parent, work.path(), i == 3)?;
                let rps = requests_per_s(bundle.addr, seconds);
                let before = crate::containers::cpu_seconds(recorder.0.id())?;
                let cost = nginx.cost(bundle.addr, cost_runs);
                let own = crate::containers::cpu_seconds(recorder.0.id())? - before;
                recorder.stop()?;
                let cost = cost?;
                let own_us = own * 1e6 / cost.requests as f64;
                Ok((rps?, cost, Some(own_us)))
            }
        }
    };
    // The first measurement after nginx starts costs more per request than any later one
    // (seen in every run); it is made once and left out.
    measure(0)?;
    for round in 1..=rounds {
        // Each round starts one configuration later, so none always runs first.
        for k in 0..names.len() {
            let i = (k + round - 1) % names.len();
            let (got, cost, own) = measure(i)?;
            rps[i].push(got);
            cpu[i].push(cost.us_per_request);
            recorder_cpu[i].extend(own);
        }
        let row: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, (n, _))| {
                format!(
                    "{n} {:.0}/s {:.2} µs/req",
                    rps[i][round - 1],
                    cpu[i][round - 1]
                )
            })
            .collect();
        eprintln!("    round {round}: {}", row.join(", "));
    }
    container.stop(Duration::from_secs(5))?;
    let _ = fs::remove_dir(&parent);
    let table = |title: &str, values: Vec<Vec<f64>>| Table {
        title: title.into(),
        rows: names
            .iter()
            .zip(values)
            .filter(|(_, v)| !v.is_empty())
            .map(|((name, how), v)| Row::new(name, how, Outcome::Measured(v)))
            .collect(),
    };
    Ok(NginxSection {
        seconds,
        cost_runs,
        rounds,
        table: table("nginx", rps),
        cpu_table: table("nginx CPU per request", cpu),
        recorder_cpu: table("the recorder's own CPU per request", recorder_cpu),
    })
}

/// Requests/s wrk gets from `addr` in `seconds`, after a second of warm-up.
fn requests_per_s(addr: SocketAddr, seconds: u32) -> Result<f64> {
    let wrk = |seconds: u32| {
        run(Command::new("wrk").args([
            "-t1",
            "-c16",
            &format!("-d{seconds}s"),
            &format!("http://{addr}/index.html"),
        ]))
    };
    wrk(1)?;
    let out = wrk(seconds)?;
    out.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output:\n{out}"))
}

struct Recorder(Child);

impl Recorder {
    fn start(cgroup: &Path, work: &Path, syscalls_only: bool) -> Result<Self> {
        let ready = work.join("ready");
        let _ = fs::remove_file(&ready);
        let mut cmd = Command::new(profgen_bin()?);
        cmd.args(["record", "--cgroup"])
            .arg(cgroup)
            .arg("--out")
            .arg(work.join("bench-recording.json"))
            .arg("--ready-file")
            .arg(&ready);
        if syscalls_only {
            cmd.arg("--syscalls-only");
        }
        let mut child = cmd.spawn()?;
        crate::child::wait_ready(&mut child, &ready)?;
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

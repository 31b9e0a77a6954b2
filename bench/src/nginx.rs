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
    profgen_bin,
    report::{NginxSection, Outcome, Row, Table},
    run,
};

/// One nginx container serves every configuration, so only the hook differs between them:
/// none, an empty one (what any syscall-entry hook costs nginx), profgen recording everything,
/// profgen recording syscalls only. The configurations take turns within each round (in an
/// order rotated by one each round), each measured after a warm-up; a configuration's ratio
/// is taken to the untraced run of the same round, so slow drift of the machine cancels out.
pub fn bench(seconds: u32, rounds: usize) -> Result<NginxSection> {
    let work = tempfile::tempdir()?;
    let parent = Cgroup::root()?.path().join("profgen-bench");
    fs::create_dir_all(&parent)?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let cgroup = format!("profgen-bench/nginx-{}", std::process::id());
    // The cgroup v2 directory: its cpu.stat counts nginx's CPU (and the eBPF programs run in
    // its tasks), never wrk's, which runs in the benchmark's own cgroup.
    let cpu_stat = profgen::cgroup::cgroup2_mount()?
        .join(&cgroup)
        .join("cpu.stat");
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
        "==> nginx: wrk for {seconds} s per run (after 1 s of warm-up), {rounds} rounds, interleaved"
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
    let measure = |i: usize| -> Result<(Load, Option<f64>)> {
        match i {
            0 => Ok((load(bundle.addr, seconds, &cpu_stat)?, None)),
            1 => {
                let _hook = Kernel::load(Hook::Empty).context("attaching the empty hook")?;
                Ok((load(bundle.addr, seconds, &cpu_stat)?, None))
            }
            _ => {
                let recorder = Recorder::start(&parent, work.path(), i == 3)?;
                let before = crate::containers::cpu_seconds(recorder.0.id())?;
                let got = load(bundle.addr, seconds, &cpu_stat);
                let own = crate::containers::cpu_seconds(recorder.0.id())? - before;
                recorder.stop()?;
                let got = got?;
                let own_us = own * 1e6 / got.requests as f64;
                Ok((got, Some(own_us)))
            }
        }
    };
    for round in 1..=rounds {
        // Each round starts one configuration later, so none always runs first.
        for k in 0..names.len() {
            let i = (k + round - 1) % names.len();
            let (got, own) = measure(i)?;
            rps[i].push(got.rps);
            cpu[i].push(got.cpu_us_per_request);
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
        rounds,
        table: table("nginx", rps),
        cpu_table: table("nginx CPU per request", cpu),
        recorder_cpu: table("the recorder's own CPU per request", recorder_cpu),
    })
}

/// One measured run.
struct Load {
    rps: f64,
    /// CPU time of nginx's cgroup during the run over the requests completed, in µs.
    cpu_us_per_request: f64,
    requests: u64,
}

/// What wrk gets from `addr` in `seconds`, after a second of warm-up, and what nginx's CPU
/// time (`cpu_stat`, its cgroup's) grew by meanwhile.
fn load(addr: SocketAddr, seconds: u32, cpu_stat: &Path) -> Result<Load> {
    let wrk = |seconds: u32| {
        run(Command::new("wrk").args([
            "-t1",
            "-c16",
            &format!("-d{seconds}s"),
            &format!("http://{addr}/index.html"),
        ]))
    };
    wrk(1)?;
    let before = usage_usec(cpu_stat)?;
    let out = wrk(seconds)?;
    let used = usage_usec(cpu_stat)? - before;
    let (rps, requests) = parse_wrk(&out)
        .with_context(|| format!("no Requests/sec or request count in wrk's output:\n{out}"))?;
    Ok(Load {
        rps,
        cpu_us_per_request: used as f64 / requests as f64,
        requests,
    })
}

/// Requests/s and requests completed, from wrk's report (`  123 requests in 5.00s, …`).
fn parse_wrk(out: &str) -> Option<(f64, u64)> {
    let rps = out
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())?;
    let requests = out
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.parse().ok())
        .filter(|&n| n > 0)?;
    Some((rps, requests))
}

/// `usage_usec` of a cgroup v2 `cpu.stat` (present whether or not the cpu controller is
/// enabled for the cgroup).
fn usage_usec(cpu_stat: &Path) -> Result<u64> {
    let text =
        fs::read_to_string(cpu_stat).with_context(|| format!("reading {}", cpu_stat.display()))?;
    parse_usage_usec(&text).with_context(|| format!("no usage_usec in {}", cpu_stat.display()))
}

fn parse_usage_usec(cpu_stat: &str) -> Option<u64> {
    cpu_stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_report_and_cpu_stat_are_read() {
        let wrk = "Running 5s test @ http://127.0.0.1:8080/index.html\n  1 threads and 16 connections\n  \
            Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   1.10ms  300.00us   9.00ms   90.00%\n  \
            65432 requests in 5.00s, 53.21MB read\nRequests/sec:  13086.40\nTransfer/sec:     10.64MB\n";
        assert_eq!(parse_wrk(wrk), Some((13086.40, 65432)));
        assert_eq!(parse_wrk("Requests/sec: 5\n"), None, "no count, no figure");
        assert_eq!(
            parse_wrk("  0 requests in 5.00s, 0B read\nRequests/sec: 0.00\n"),
            None,
            "nothing served: no per-request figure"
        );
        let stat = "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnr_periods 0\n";
        assert_eq!(parse_usage_usec(stat), Some(1_234_567));
        assert_eq!(parse_usage_usec("user_usec 5\n"), None);
    }
}

//! Per-syscall cost of the hook.

use std::{
    fs,
    path::Path,
    process::{Child, Command},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use profgen::record::kernel::{Hook, Kernel};

use crate::{median, profgen_bin, run};

/// The loop: `calls` getppid, timed in chunks; the fastest chunk approximates the cost free
/// of preemption by other work on the machine.
pub fn run_loop(calls: u64, out: &Path) -> Result<()> {
    const CHUNK: u64 = 100_000;
    let mut best = f64::MAX;
    let mut done = 0;
    while done < calls {
        let n = CHUNK.min(calls - done);
        let start = Instant::now();
        for _ in 0..n {
            // SAFETY: getppid has no arguments and cannot fail.
            unsafe { libc::syscall(libc::SYS_getppid) };
        }
        best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
        done += n;
    }
    fs::write(out, format!("{best}")).with_context(|| format!("writing {}", out.display()))
}

fn loop_cmd(calls: u64, out: &Path) -> Result<Vec<String>> {
    let exe = std::env::current_exe()?;
    Ok(vec![
        exe.display().to_string(),
        "getppid-loop".into(),
        calls.to_string(),
        out.display().to_string(),
    ])
}

fn read_ns(out: &Path) -> Result<f64> {
    fs::read_to_string(out)
        .with_context(|| format!("reading {}", out.display()))?
        .trim()
        .parse()
        .context("parsing the loop's result")
}

fn plain(calls: u64, out: &Path) -> Result<f64> {
    let argv = loop_cmd(calls, out)?;
    run(Command::new(&argv[0]).args(&argv[1..]))?;
    read_ns(out)
}

fn floor(calls: u64, out: &Path) -> Result<f64> {
    let _hook = Kernel::load(Hook::Empty).context("attaching the empty hook")?;
    plain(calls, out)
}

fn recorded(calls: u64, out: &Path, syscalls_only: bool) -> Result<f64> {
    let argv = loop_cmd(calls, out)?;
    let rec = out.with_extension("recording.json");
    let mut cmd = Command::new(profgen_bin()?);
    cmd.args(["record", "--out"]).arg(&rec);
    if syscalls_only {
        cmd.arg("--syscalls-only");
    }
    run(cmd.arg("--").args(&argv))?;
    let text = fs::read_to_string(&rec)?;
    if !text.contains("\"getppid\"") {
        bail!("the recording of the loop does not contain getppid");
    }
    read_ns(out)
}

/// Another cgroup is being recorded while the loop runs outside it.
fn bystander(calls: u64, out: &Path, syscalls_only: bool) -> Result<f64> {
    let ready = out.with_extension("ready");
    let _ = fs::remove_file(&ready);
    let mut cmd = Command::new(profgen_bin()?);
    cmd.args(["record", "--out"])
        .arg(out.with_extension("bystander.json"))
        .arg("--ready-file")
        .arg(&ready);
    if syscalls_only {
        cmd.arg("--syscalls-only");
    }
    let mut recorder: Child = cmd.args(["--", "sleep", "3600"]).spawn()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        if Instant::now() > deadline || recorder.try_wait()?.is_some() {
            let _ = recorder.kill();
            bail!("the recorder did not start");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let result = plain(calls, out);
    // SAFETY: plain kill(2).
    unsafe { libc::kill(recorder.id() as i32, libc::SIGTERM) };
    recorder.wait()?;
    result
}

pub fn bench(calls: u64, rounds: usize) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("profgen-bench-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let out = dir.join("ns");
    eprintln!("==> syscall cost: {calls} getppid per run, {rounds} rounds, interleaved");
    let kernel = Kernel::load(Hook::Record).context("loading the recording programs")?;
    eprintln!(
        "    the entry program reads the cgroup id by {:?}{}; the exit program {}",
        kernel.cgroup_id_by,
        if kernel.remembers_cgroups {
            ", remembered per CPU for the last task"
        } else {
            ""
        },
        if kernel.stages_every_event {
            "completes events the entry program staged"
        } else {
            "reads the saved registers (only execs are staged)"
        }
    );
    drop(kernel);
    // Configurations, measured in this order in every round.
    let names = [
        "untraced",
        "empty raw tracepoint (floor)",
        "recorded by profgen",
        "recorded, --syscalls-only",
        "outside the recorded cgroup",
        "outside, --syscalls-only",
    ];
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for round in 1..=rounds {
        ns[0].push(plain(calls, &out)?);
        ns[1].push(floor(calls, &out)?);
        ns[2].push(recorded(calls, &out, false)?);
        ns[3].push(recorded(calls, &out, true)?);
        ns[4].push(bystander(calls, &out, false)?);
        ns[5].push(bystander(calls, &out, true)?);
        let row: Vec<String> = names
            .iter()
            .zip(&ns)
            .map(|(n, v)| format!("{n} {:.1}", v[round - 1]))
            .collect();
        eprintln!("    round {round}: {}", row.join(", "));
    }
    let _ = fs::remove_dir_all(&dir);
    let med: Vec<f64> = ns.into_iter().map(median).collect();
    let (base, floor_added) = (med[0], med[1] - med[0]);
    println!("syscall cost (getppid, fastest 100k-call chunk, median of {rounds} rounds)");
    for (name, value) in names.iter().zip(&med) {
        let added = value - base;
        let vs_floor = if name.starts_with("untraced") || name.starts_with("empty") {
            String::new()
        } else {
            format!("; {:.2}x the floor's added cost", added / floor_added)
        };
        println!(
            "  {name:<30} {value:7.1} ns/call  {:.2}x untraced  (+{added:.1} ns{vs_floor})",
            value / base
        );
    }
    Ok(())
}

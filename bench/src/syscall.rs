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

fn recorded(calls: u64, out: &Path) -> Result<f64> {
    let argv = loop_cmd(calls, out)?;
    let rec = out.with_extension("recording.json");
    run(Command::new(profgen_bin()?)
        .args(["record", "--out"])
        .arg(&rec)
        .arg("--")
        .args(&argv))?;
    let text = fs::read_to_string(&rec)?;
    if !text.contains("\"getppid\"") {
        bail!("the recording of the loop does not contain getppid");
    }
    read_ns(out)
}

/// Another cgroup is being recorded while the loop runs outside it.
fn bystander(calls: u64, out: &Path) -> Result<f64> {
    let ready = out.with_extension("ready");
    let _ = fs::remove_file(&ready);
    let mut recorder: Child = Command::new(profgen_bin()?)
        .args(["record", "--out"])
        .arg(out.with_extension("bystander.json"))
        .arg("--ready-file")
        .arg(&ready)
        .args(["--", "sleep", "3600"])
        .spawn()?;
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
    let (mut base, mut empty, mut prof, mut other) = (vec![], vec![], vec![], vec![]);
    for round in 1..=rounds {
        base.push(plain(calls, &out)?);
        empty.push(floor(calls, &out)?);
        prof.push(recorded(calls, &out)?);
        other.push(bystander(calls, &out)?);
        eprintln!(
            "    round {round}: untraced {:.1} ns, empty hook {:.1} ns, profgen {:.1} ns, outside the recorded cgroup {:.1} ns",
            base[round - 1], empty[round - 1], prof[round - 1], other[round - 1]
        );
    }
    let _ = fs::remove_dir_all(&dir);
    let (base, empty, prof, other) = (median(base), median(empty), median(prof), median(other));
    let floor_added = empty - base;
    println!("syscall cost (getppid, median of {rounds} rounds)");
    println!("  untraced                         {base:7.1} ns/call  1.00x");
    println!(
        "  empty raw tracepoint (floor)     {empty:7.1} ns/call  {:.2}x  (+{floor_added:.1} ns)",
        empty / base
    );
    println!(
        "  recorded by profgen              {prof:7.1} ns/call  {:.2}x  (+{:.1} ns; {:.2}x the floor's added cost)",
        prof / base,
        prof - base,
        (prof - base) / floor_added
    );
    println!(
        "  outside the recorded cgroup      {other:7.1} ns/call  {:.2}x  (+{:.1} ns; {:.2}x the floor's added cost)",
        other / base,
        other - base,
        (other - base) / floor_added
    );
    Ok(())
}

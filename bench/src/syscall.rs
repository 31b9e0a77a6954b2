//! Per-syscall cost of the hook: on `getppid`, which the entry program only sets a bit for,
//! and on `fcntl(F_GETFD)`, whose command it also keeps (a watched argument,
//! `profiler_common::args`).

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

/// The measured call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Call {
    Getppid,
    /// `fcntl(fd, F_GETFD)`, by a process that first installs an allow-all seccomp filter:
    /// the recording counts calls (and keeps arguments) from a filter on, as it does for a
    /// container's. Every configuration of this loop runs under that filter.
    Fcntl,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Getppid => "getppid",
            Call::Fcntl => "fcntl",
        }
    }
}

/// An allow-all seccomp filter on the calling thread, with no_new_privs set.
fn allow_all_filter() -> Result<()> {
    let mut prog = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }];
    let fprog = libc::sock_fprog {
        len: 1,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: plain prctl and seccomp calls with a valid program.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            ) != 0
        {
            bail!(
                "installing the allow-all filter: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

/// The loop: `calls` calls, timed in chunks; the fastest chunk approximates the cost free
/// of preemption by other work on the machine.
pub fn run_loop(call: Call, calls: u64, out: &Path) -> Result<()> {
    const CHUNK: u64 = 100_000;
    let fd = match call {
        Call::Getppid => -1,
        Call::Fcntl => {
            allow_all_filter()?;
            let null = fs::File::open("/dev/null").context("opening /dev/null")?;
            std::os::fd::IntoRawFd::into_raw_fd(null)
        }
    };
    let mut best = f64::MAX;
    let mut done = 0;
    while done < calls {
        let n = CHUNK.min(calls - done);
        let start = Instant::now();
        match call {
            Call::Getppid => {
                for _ in 0..n {
                    // SAFETY: getppid has no arguments and cannot fail.
                    unsafe { libc::syscall(libc::SYS_getppid) };
                }
            }
            Call::Fcntl => {
                for _ in 0..n {
                    // SAFETY: F_GETFD on an fd this process owns.
                    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFD) };
                }
            }
        }
        best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
        done += n;
    }
    fs::write(out, format!("{best}")).with_context(|| format!("writing {}", out.display()))
}

fn loop_cmd(call: Call, calls: u64, out: &Path) -> Result<Vec<String>> {
    let exe = std::env::current_exe()?;
    Ok(vec![
        exe.display().to_string(),
        "loop".into(),
        clap::ValueEnum::to_possible_value(&call)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default(),
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

fn plain(call: Call, calls: u64, out: &Path) -> Result<f64> {
    let argv = loop_cmd(call, calls, out)?;
    run(Command::new(&argv[0]).args(&argv[1..]))?;
    read_ns(out)
}

fn floor(call: Call, calls: u64, out: &Path) -> Result<f64> {
    let _hook = Kernel::load(Hook::Empty).context("attaching the empty hook")?;
    plain(call, calls, out)
}

fn recorded(call: Call, calls: u64, out: &Path, syscalls_only: bool) -> Result<f64> {
    let argv = loop_cmd(call, calls, out)?;
    let rec = out.with_extension("recording.json");
    let mut cmd = Command::new(profgen_bin()?);
    cmd.args(["record", "--out"]).arg(&rec);
    if syscalls_only {
        cmd.arg("--syscalls-only");
    }
    run(cmd.arg("--").args(&argv))?;
    let text = fs::read_to_string(&rec)?;
    if !text.contains(&format!("\"{}\"", call.name())) {
        bail!("the recording of the loop does not contain {}", call.name());
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
    let result = plain(Call::Getppid, calls, out);
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
        "fcntl untraced",
        "fcntl, empty raw tracepoint",
        "fcntl recorded, --syscalls-only",
    ];
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for round in 1..=rounds {
        ns[0].push(plain(Call::Getppid, calls, &out)?);
        ns[1].push(floor(Call::Getppid, calls, &out)?);
        ns[2].push(recorded(Call::Getppid, calls, &out, false)?);
        ns[3].push(recorded(Call::Getppid, calls, &out, true)?);
        ns[4].push(bystander(calls, &out, false)?);
        ns[5].push(bystander(calls, &out, true)?);
        ns[6].push(plain(Call::Fcntl, calls, &out)?);
        ns[7].push(floor(Call::Fcntl, calls, &out)?);
        ns[8].push(recorded(Call::Fcntl, calls, &out, true)?);
        let row: Vec<String> = names
            .iter()
            .zip(&ns)
            .map(|(n, v)| format!("{n} {:.1}", v[round - 1]))
            .collect();
        eprintln!("    round {round}: {}", row.join(", "));
    }
    let _ = fs::remove_dir_all(&dir);
    let med: Vec<f64> = ns.into_iter().map(median).collect();
    println!("syscall cost (fastest 100k-call chunk, median of {rounds} rounds)");
    print_rows(&names[..6], &med[..6]);
    println!("  fcntl(F_GETFD) under an allow-all filter: its command is a watched argument");
    print_rows(&names[6..], &med[6..]);
    let getppid_hook = med[3] - med[1];
    let fcntl_hook = med[8] - med[7];
    println!(
        "  keeping fcntl's argument: +{fcntl_hook:.1} ns over the floor, against +{getppid_hook:.1} ns for getppid (--syscalls-only): {:+.1} ns per captured call",
        fcntl_hook - getppid_hook
    );
    Ok(())
}

/// Rows of one loop: the first is untraced, the second the floor.
fn print_rows(names: &[&str], med: &[f64]) {
    let (base, floor_added) = (med[0], med[1] - med[0]);
    for (i, (name, value)) in names.iter().zip(med).enumerate() {
        let added = value - base;
        let vs_floor = if i < 2 {
            String::new()
        } else {
            format!("; {:.2}x the floor's added cost", added / floor_added)
        };
        println!(
            "  {name:<32} {value:7.1} ns/call  {:.2}x untraced  (+{added:.1} ns{vs_floor})",
            value / base
        );
    }
}

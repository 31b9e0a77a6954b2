//! Section a): every configuration of every loop, interleaved over rounds.

use std::{
    fs,
    os::fd::AsRawFd as _,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command},
};

use anyhow::{bail, Context as _, Result};
use profgen::{
    cgroup::Cgroup,
    record::kernel::{Hook, Kernel},
};

use crate::{
    peers::{self, Bpftrace as Program, BpftraceRun},
    profgen_bin,
    report::{Outcome, Row, SyscallSection, Table},
    run,
    syscall::{loop_argv, read_ns, Call},
};

/// Who watches the loop.
#[derive(Clone, Copy, Debug)]
enum Config {
    Untraced,
    /// Empty programs on the hooks `Hook` names (an empty raw tracepoint on `sys_enter`:
    /// what any syscall-entry hook pays).
    Floor(Hook),
    /// `profgen record -- loop`.
    Profgen {
        syscalls_only: bool,
    },
    /// `profgen record` of another command while the loop runs outside its cgroup.
    ProfgenOutside {
        syscalls_only: bool,
    },
    /// A bpftrace program filtering on a cgroup the loop runs in (or, `inside: false`, not).
    Bpftrace {
        program: Program,
        inside: bool,
    },
    Strace,
    PerfTrace,
}

impl Config {
    /// Another tool than profgen.
    fn peer(self) -> bool {
        matches!(
            self,
            Config::Bpftrace { .. } | Config::Strace | Config::PerfTrace
        )
    }

    /// Tracers that stop the process at every call run a shorter loop.
    fn slow(self) -> bool {
        matches!(self, Config::Strace | Config::PerfTrace)
    }
}

fn rows_of(call: Call) -> Vec<(&'static str, &'static str, Config)> {
    use Config::*;
    use Program::*;
    let mut rows = vec![
        ("untraced", "the loop alone", Untraced),
        (
            "empty raw tracepoint (floor)",
            "an empty BPF program on raw_syscalls:sys_enter",
            Floor(Hook::Empty),
        ),
        (
            "empty enter and exit hooks (floor of both)",
            "the above and an empty program on each syscalls:sys_exit_* tracepoint profgen uses when the kernel has no fexit (those run on every syscall's exit)",
            Floor(Hook::EmptyWithExitTracepoints),
        ),
        (
            "empty raw tracepoints on enter and exit",
            "empty BPF programs on raw_syscalls:sys_enter and raw_syscalls:sys_exit",
            Floor(Hook::EmptyWithRawExit),
        ),
        (
            "profgen record",
            "`profgen record -- loop` (everything: syscalls, files, network, capabilities)",
            Profgen {
                syscalls_only: false,
            },
        ),
        (
            "profgen record --syscalls-only",
            "`profgen record --syscalls-only -- loop`",
            Profgen {
                syscalls_only: true,
            },
        ),
    ];
    if call == Call::Getppid {
        rows.extend([
            (
                "outside profgen's recorded cgroup",
                "`profgen record -- sleep` running; the loop in another cgroup",
                ProfgenOutside {
                    syscalls_only: false,
                },
            ),
            (
                "outside, --syscalls-only",
                "as above with `--syscalls-only`",
                ProfgenOutside {
                    syscalls_only: true,
                },
            ),
        ]);
    }
    rows.extend([
        (
            "bpftrace: syscall set",
            "`raw_syscalls:sys_enter /cgroup == cgroupid(…)/ { @[args->id] = count(); }`",
            Bpftrace {
                program: SyscallSet,
                inside: true,
            },
        ),
        (
            "bpftrace: syscall set + file opens",
            "the above and `sys_enter_openat /cgroup…/ { @opens[str(args->filename)] = count(); }`",
            Bpftrace {
                program: SyscallSetAndOpens,
                inside: true,
            },
        ),
    ]);
    if call == Call::Getppid {
        rows.push((
            "outside bpftrace's cgroup",
            "the syscall-set program running; the loop in another cgroup",
            Bpftrace {
                program: SyscallSet,
                inside: false,
            },
        ));
    }
    rows.extend([
        ("strace", "`strace -f -qq -o /dev/null -- loop`", Strace),
        (
            "perf trace",
            "`perf trace -s -o FILE -- loop` (per-syscall summary only)",
            PerfTrace,
        ),
    ]);
    rows
}

fn title(call: Call) -> &'static str {
    match call {
        Call::Getppid => "getppid loop (profgen sets one bit per call)",
        Call::Fcntl => "fcntl(F_GETFD) loop under an allow-all seccomp filter (profgen keeps the command argument)",
        Call::Open => "openat(\"/dev/null\") + close loop under an allow-all seccomp filter (ns per open+close pair; a file fact)",
    }
}

/// Shared by every measurement: scratch files and the cgroup the loop runs in for bpftrace.
struct Bench {
    work: tempfile::TempDir,
    cgroup: PathBuf,
    calls: u64,
    slow_calls: u64,
}

impl Bench {
    fn out(&self) -> PathBuf {
        self.work.path().join("ns")
    }

    /// Runs the loop, in `cgroup` if given, and returns its ns per iteration.
    fn run_loop(&self, call: Call, calls: u64, cgroup: Option<&Path>) -> Result<f64> {
        let out = self.out();
        let argv = loop_argv(call, calls, &out)?;
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        let _procs = match cgroup {
            Some(dir) => {
                let procs = fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join("cgroup.procs"))
                    .with_context(|| format!("opening {}/cgroup.procs", dir.display()))?;
                let fd = procs.as_raw_fd();
                // SAFETY: only write(2) between fork and exec; "0" moves the writer.
                unsafe {
                    cmd.pre_exec(move || {
                        if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                Some(procs)
            }
            None => None,
        };
        run(&mut cmd)?;
        read_ns(&out)
    }

    fn measure(&self, call: Call, config: Config) -> Result<f64> {
        let calls = call.iterations(if config.slow() {
            self.slow_calls
        } else {
            self.calls
        });
        match config {
            Config::Untraced => self.run_loop(call, calls, None),
            Config::Floor(hook) => {
                let _hook = Kernel::load(hook).context("attaching the empty hook")?;
                self.run_loop(call, calls, None)
            }
            Config::Profgen { syscalls_only } => self.profgen(call, calls, syscalls_only),
            Config::ProfgenOutside { syscalls_only } => {
                let recorder = Bystander::start(self.work.path(), syscalls_only)?;
                let ns = self.run_loop(call, calls, None);
                recorder.stop()?;
                ns
            }
            Config::Bpftrace { program, inside } => {
                let bt = BpftraceRun::start(&program.program(&self.cgroup), self.work.path())?;
                let ns = self.run_loop(call, calls, inside.then_some(self.cgroup.as_path()));
                let maps = bt.stop()?;
                let ns = ns?;
                if inside && !call.seen_by_number(&maps) {
                    bail!("bpftrace's map lacks {}: {}", call.name(), maps.trim());
                }
                if inside
                    && program == Program::SyscallSetAndOpens
                    && call == Call::Open
                    && !maps.contains("@opens[/dev/null]")
                {
                    bail!("bpftrace's map lacks /dev/null: {}", maps.trim());
                }
                Ok(ns)
            }
            Config::Strace => {
                peers::strace(&loop_argv(call, calls, &self.out())?)?;
                read_ns(&self.out())
            }
            Config::PerfTrace => {
                let summary =
                    peers::perf_trace(&loop_argv(call, calls, &self.out())?, self.work.path())?;
                if !call.seen_by_name(&summary) {
                    bail!(
                        "perf trace's summary lacks {}: {}",
                        call.name(),
                        summary.trim()
                    );
                }
                read_ns(&self.out())
            }
        }
    }

    fn profgen(&self, call: Call, calls: u64, syscalls_only: bool) -> Result<f64> {
        let out = self.out();
        let argv = loop_argv(call, calls, &out)?;
        let rec = self.work.path().join("recording.json");
        let mut cmd = Command::new(profgen_bin()?);
        cmd.args(["record", "--out"]).arg(&rec);
        if syscalls_only {
            cmd.arg("--syscalls-only");
        }
        run(cmd.arg("--").args(&argv))?;
        let text = fs::read_to_string(&rec)?;
        if !call.seen_by_name(&text) {
            bail!("profgen's recording of the loop lacks {}", call.name());
        }
        if call == Call::Open && !syscalls_only && !text.contains("\"/dev/null\"") {
            bail!("profgen's recording of the open loop lacks /dev/null");
        }
        read_ns(&out)
    }
}

/// `profgen record` of a sleeping command: the loop runs outside its cgroup.
struct Bystander(Child);

impl Bystander {
    fn start(work: &Path, syscalls_only: bool) -> Result<Self> {
        let ready = work.join("ready");
        let _ = fs::remove_file(&ready);
        let mut cmd = Command::new(profgen_bin()?);
        cmd.args(["record", "--out"])
            .arg(work.join("bystander.json"))
            .arg("--ready-file")
            .arg(&ready);
        if syscalls_only {
            cmd.arg("--syscalls-only");
        }
        let mut child = cmd.args(["--", "sleep", "3600"]).spawn()?;
        crate::child::wait_ready(&mut child, &ready)?;
        Ok(Self(child))
    }

    fn stop(mut self) -> Result<()> {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        self.0.wait()?;
        Ok(())
    }
}

/// Measures every loop under every configuration, `rounds` times, interleaved. A peer that
/// fails is reported as not measured, with its error; the untraced baseline must succeed.
/// Which of the per-call cost part's loops and rows run.
pub struct Scope {
    pub calls: Vec<Call>,
    pub peers: bool,
}

pub fn bench(calls: u64, slow_calls: u64, rounds: usize, scope: &Scope) -> Result<SyscallSection> {
    let root = Cgroup::root()?;
    let parent = root.path().join("profgen-bench");
    fs::create_dir_all(&parent)?;
    let cgroup = parent.join(format!("peer-{}", std::process::id()));
    fs::create_dir_all(&cgroup)?;
    let bench = Bench {
        work: tempfile::tempdir()?,
        cgroup: cgroup.clone(),
        calls,
        slow_calls,
    };
    let result = measure_all(&bench, rounds, scope);
    let _ = fs::remove_dir(&cgroup);
    let _ = fs::remove_dir(&parent);
    Ok(SyscallSection {
        calls,
        slow_calls,
        rounds,
        tables: result?,
    })
}

fn measure_all(bench: &Bench, rounds: usize, scope: &Scope) -> Result<Vec<Table>> {
    let calls = &scope.calls;
    let plan: Vec<Vec<(&str, &str, Config)>> = calls
        .iter()
        .map(|&c| {
            let mut rows = rows_of(c);
            rows.retain(|(_, _, config)| scope.peers || !config.peer());
            rows
        })
        .collect();
    let mut results: Vec<Vec<Outcome>> = plan
        .iter()
        .map(|rows| vec![Outcome::Measured(Vec::new()); rows.len()])
        .collect();
    eprintln!(
        "==> per-call cost: {} calls per run ({} under strace/perf), {rounds} rounds, interleaved",
        bench.calls, bench.slow_calls
    );
    for round in 1..=rounds {
        for (t, &call) in calls.iter().enumerate() {
            let mut line = Vec::new();
            for (r, (name, _, config)) in plan[t].iter().enumerate() {
                let Outcome::Measured(values) = &mut results[t][r] else {
                    continue;
                };
                match bench.measure(call, *config) {
                    Ok(ns) => {
                        values.push(ns);
                        line.push(format!("{name} {ns:.1}"));
                    }
                    Err(e) if r == 0 => return Err(e.context("the untraced baseline failed")),
                    Err(e) => {
                        eprintln!("    {name} on {}: not measured: {e:#}", call.name());
                        results[t][r] = Outcome::NotRun(format!("{e:#}"));
                    }
                }
            }
            eprintln!("    round {round}, {}: {}", call.name(), line.join(", "));
        }
    }
    Ok(calls
        .iter()
        .zip(plan)
        .zip(results)
        .map(|((&call, rows), outcomes)| Table {
            title: title(call).into(),
            rows: rows
                .into_iter()
                .zip(outcomes)
                .map(|((name, how, _), outcome)| Row::new(name, how, outcome))
                .collect(),
        })
        .collect())
}

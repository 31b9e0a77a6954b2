//! The tools a user would pick instead of profgen, doing the same job on the same loop:
//! bpftrace programs keyed on the loop's cgroup, `strace`, `perf trace`.

use std::{
    fs,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

/// A bpftrace program filtering on one cgroup, as a user writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bpftrace {
    /// The cgroup's syscall set: a count per syscall number.
    SyscallSet,
    /// The syscall set and the files it opens (by name, from `sys_enter_openat`).
    SyscallSetAndOpens,
}

impl Bpftrace {
    /// The program's text; `cgroup` is the cgroup directory's absolute path.
    pub fn program(self, cgroup: &Path) -> String {
        let filter = format!("/cgroup == cgroupid(\"{}\")/", cgroup.display());
        let set =
            format!("tracepoint:raw_syscalls:sys_enter {filter} {{ @[args->id] = count(); }}");
        let opens = format!(
            "tracepoint:syscalls:sys_enter_openat {filter} {{ @opens[str(args->filename)] = count(); }}"
        );
        // BEGIN fires once every probe is attached: the readiness signal.
        let begin = "BEGIN { printf(\"ready\\n\"); }";
        match self {
            Bpftrace::SyscallSet => format!("{set}\n{begin}\n"),
            Bpftrace::SyscallSetAndOpens => format!("{set}\n{opens}\n{begin}\n"),
        }
    }
}

/// A running bpftrace, attached.
pub struct BpftraceRun {
    child: Child,
    out: std::path::PathBuf,
}

impl BpftraceRun {
    pub fn start(program: &str, work: &Path) -> Result<Self> {
        let out = work.join("bpftrace.out");
        let log = fs::File::create(&out)?;
        let child = Command::new("bpftrace")
            // Line-buffered, so "ready" reaches the file while bpftrace runs.
            .args(["-B", "line", "-e"])
            .arg(program)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("starting bpftrace (apt-get install bpftrace)")?;
        let mut run = Self { child, out };
        // Compiling the program takes seconds on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let text = fs::read_to_string(&run.out).unwrap_or_default();
            if text.lines().any(|l| l == "ready") {
                return Ok(run);
            }
            if let Some(status) = run.child.try_wait()? {
                bail!("bpftrace exited ({status}): {}", text.trim());
            }
            if Instant::now() > deadline {
                run.interrupt();
                bail!("bpftrace did not attach within 90 s: {}", text.trim());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn interrupt(&mut self) {
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }

    /// Detaches and returns what bpftrace printed (its maps).
    pub fn stop(mut self) -> Result<String> {
        self.interrupt();
        Ok(fs::read_to_string(&self.out)?)
    }
}

/// `strace -f -qq -o /dev/null -- argv`: every call stops the process twice.
pub fn strace(argv: &[String]) -> Result<()> {
    crate::run(
        Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null", "--"])
            .args(argv),
    )
    .map(drop)
}

/// `perf trace -s -o OUT -- argv`: the per-syscall summary of the command (the syscall set),
/// no per-event lines. Returns the summary.
pub fn perf_trace(argv: &[String], work: &Path) -> Result<String> {
    let out = work.join("perf-trace.out");
    crate::run(
        Command::new("perf")
            .args(["trace", "-s", "-o"])
            .arg(&out)
            .arg("--")
            .args(argv),
    )?;
    Ok(fs::read_to_string(&out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_filter_on_the_cgroup_and_signal_readiness() {
        let cg = Path::new("/sys/fs/cgroup/unified/profgen-bench/peer-1");
        let set = Bpftrace::SyscallSet.program(cg);
        assert_eq!(
            set.lines().next().unwrap(),
            "tracepoint:raw_syscalls:sys_enter /cgroup == cgroupid(\"/sys/fs/cgroup/unified/profgen-bench/peer-1\")/ { @[args->id] = count(); }"
        );
        assert!(!set.contains("openat"));
        let both = Bpftrace::SyscallSetAndOpens.program(cg);
        assert!(both.contains("tracepoint:syscalls:sys_enter_openat /cgroup == cgroupid("));
        assert!(both.contains("@opens[str(args->filename)] = count();"));
        assert!(both.ends_with("BEGIN { printf(\"ready\\n\"); }\n"));
    }
}

//! Per-call cost on the same loop: on `getppid`, which profgen's entry program only sets a bit
//! for; on `fcntl(F_GETFD)`, whose command it also keeps (a watched argument,
//! `profiler_common::args`); and on `openat` + `close` of `/dev/null`, a file fact. Each loop
//! runs untraced, under an empty raw tracepoint (the floor), recorded by profgen, outside the
//! recorded cgroup, and under the peers a user would pick instead (`peers`).

use std::{fs, path::Path, time::Instant};

use anyhow::{bail, Context as _, Result};

/// The measured call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Call {
    Getppid,
    /// `fcntl(fd, F_GETFD)`, by a process that first installs an allow-all seccomp filter:
    /// the recording counts calls (and keeps arguments) from a filter on, as it does for a
    /// container's. Every configuration of this loop runs under that filter.
    Fcntl,
    /// `openat("/dev/null")` then `close`, under the same filter: one loop iteration is two
    /// calls, and the opened name is a file fact.
    Open,
}

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::Getppid => "getppid",
            Call::Fcntl => "fcntl",
            Call::Open => "openat",
        }
    }

    /// Loop iterations relative to getppid's, so each loop runs about as long: an fcntl
    /// costs about twice a getppid, an open+close pair about fifteen times.
    pub fn iterations(self, getppid_calls: u64) -> u64 {
        match self {
            Call::Getppid => getppid_calls,
            Call::Fcntl => getppid_calls / 2,
            Call::Open => getppid_calls / 10,
        }
        .max(1)
    }

    fn number(self) -> i64 {
        match self {
            Call::Getppid => libc::SYS_getppid,
            Call::Fcntl => libc::SYS_fcntl,
            Call::Open => libc::SYS_openat,
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

/// The loop: `calls` calls, timed in (at least ten) chunks of at most 100,000; the fastest
/// chunk approximates the cost free of preemption by other work on the machine.
pub fn run_loop(call: Call, calls: u64, out: &Path) -> Result<()> {
    let chunk = (calls / 10).clamp(1, 100_000);
    let fd = match call {
        Call::Getppid => -1,
        Call::Open => {
            allow_all_filter()?;
            -1
        }
        Call::Fcntl => {
            allow_all_filter()?;
            let null = fs::File::open("/dev/null").context("opening /dev/null")?;
            std::os::fd::IntoRawFd::into_raw_fd(null)
        }
    };
    let mut best = f64::MAX;
    let mut done = 0;
    while done < calls {
        let n = chunk.min(calls - done);
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
            Call::Open => {
                for _ in 0..n {
                    // SAFETY: a NUL-terminated path; the fd is closed at once.
                    unsafe {
                        let fd =
                            libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                        libc::close(fd);
                    }
                }
            }
        }
        best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
        done += n;
    }
    fs::write(out, format!("{best}")).with_context(|| format!("writing {}", out.display()))
}

/// The argv that runs the loop: `profgen-bench loop CALL CALLS OUT`.
pub fn loop_argv(call: Call, calls: u64, out: &Path) -> Result<Vec<String>> {
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

/// The loop's result: ns per iteration of its fastest chunk.
pub fn read_ns(out: &Path) -> Result<f64> {
    fs::read_to_string(out)
        .with_context(|| format!("reading {}", out.display()))?
        .trim()
        .parse()
        .context("parsing the loop's result")
}

impl Call {
    /// How the call appears in what a tool recorded: its name in profgen's recording and
    /// perf trace's summary, `@[nr]` in a bpftrace syscall-set map.
    pub fn seen_by_name(self, text: &str) -> bool {
        text.contains(self.name())
    }

    pub fn seen_by_number(self, text: &str) -> bool {
        text.contains(&format!("@[{}]", self.number()))
    }
}

//! The CPU time nginx spends per request: its cgroup's `cpu.stat` `usage_usec` over the
//! requests wrk completed, with nginx and wrk pinned to one CPU and one request in flight.
//!
//! On a shared machine, requests/s measures how much CPU nginx was given as much as what a
//! request costs; CPU time per request does not, once two further sources of noise are gone:
//! * a request's cost depends on where its two ends run: with wrk and nginx on different
//!   CPUs each request wakes a CPU (an IPI, an idle exit: in a VM, a VM exit), and on the
//!   benchmark's 2-core VM one-second chunks flipped between about 20 and 52 µs as the
//!   scheduler moved them; pinned together, chunks agree within a few percent;
//! * with many requests in flight, how many nginx handles per wake-up (and so per-request
//!   cost) depends on how the CPU was shared; with one in flight it does not.
//!
//! What is left (other work evicting caches) mostly adds: the cheapest of one-second chunks
//! is the figure, as the per-call cost takes the fastest chunk (the median of the chunks
//! moved several times more from run to run). Not all of it adds (one run's cheapest was 6%
//! below every other untraced run's): the rounds' spread in the report is what to trust.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::run;

/// One measurement: µs of nginx CPU per request in the cheapest chunk, and the requests
/// served in all chunks.
pub struct Cost {
    pub us_per_request: f64,
    pub requests: u64,
}

/// nginx's cgroup v2 directory.
pub struct Nginx {
    cgroup: PathBuf,
}

impl Nginx {
    pub fn new(cgroup2_dir: PathBuf) -> Self {
        Self {
            cgroup: cgroup2_dir,
        }
    }

    /// The cost of a request to `addr`: `chunks` one-second wrk runs after a second of
    /// warm-up, nginx and wrk on the machine's last CPU; nginx is unpinned after.
    pub fn cost(&self, addr: SocketAddr, chunks: u32) -> Result<Cost> {
        let cpu = online_cpus()?.saturating_sub(1);
        let threads = self.cgroup.join("cgroup.threads");
        set_affinity(&threads, Some(cpu))?;
        let result = (|| {
            let wrk = || {
                run(Command::new("taskset").args([
                    "-c",
                    &cpu.to_string(),
                    "wrk",
                    "-t1",
                    "-c1",
                    "-d1s",
                    &format!("http://{addr}/index.html"),
                ]))
            };
            wrk()?;
            let mut cheapest = f64::INFINITY;
            let mut requests = 0;
            for _ in 0..chunks.max(1) {
                let before = self.usage_usec()?;
                let out = wrk()?;
                let used = self.usage_usec()? - before;
                let n = wrk_requests(&out)
                    .with_context(|| format!("no request count in wrk's output:\n{out}"))?;
                cheapest = cheapest.min(used as f64 / n as f64);
                requests += n;
            }
            Ok(Cost {
                us_per_request: cheapest,
                requests,
            })
        })();
        set_affinity(&threads, None)?;
        result
    }

    fn usage_usec(&self) -> Result<u64> {
        let path = self.cgroup.join("cpu.stat");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        usage_usec(&text).with_context(|| format!("no usage_usec in {}", path.display()))
    }
}

/// Requests completed, from wrk's report (`  123 requests in 1.00s, …`); none is no figure.
pub fn wrk_requests(out: &str) -> Option<u64> {
    out.lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.parse().ok())
        .filter(|&n| n > 0)
}

/// `usage_usec` of a cgroup v2 `cpu.stat` (there whether or not the cpu controller is
/// enabled for the cgroup).
fn usage_usec(cpu_stat: &str) -> Option<u64> {
    cpu_stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
}

fn online_cpus() -> Result<usize> {
    // SAFETY: no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n < 1 {
        bail!(
            "sysconf(_SC_NPROCESSORS_ONLN): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(n as usize)
}

/// Pins every thread listed in `threads` (a cgroup's `cgroup.threads`) to `cpu`, or lets
/// them run anywhere this process may (`None`).
fn set_affinity(threads: &Path, cpu: Option<usize>) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; the calls get valid pointers to it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    match cpu {
        // SAFETY: as above.
        Some(cpu) => unsafe { libc::CPU_SET(cpu, &mut set) },
        None => {
            // SAFETY: as above; pid 0 is this thread.
            if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
                bail!("sched_getaffinity: {}", std::io::Error::last_os_error());
            }
        }
    }
    let list =
        fs::read_to_string(threads).with_context(|| format!("reading {}", threads.display()))?;
    for tid in list.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: as above.
        if unsafe { libc::sched_setaffinity(tid, size, &set) } != 0 {
            bail!(
                "setting the CPU affinity of nginx's thread {tid}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_report_and_cpu_stat_are_read() {
        let wrk = "Running 1s test @ http://127.0.0.1:8080/index.html\n  1 threads and 1 connections\n  \
            Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   40.00us  10.00us   1.00ms   90.00%\n  \
            28347 requests in 1.00s, 23.05MB read\nRequests/sec:  28347.00\nTransfer/sec:     23.05MB\n";
        assert_eq!(wrk_requests(wrk), Some(28347));
        assert_eq!(wrk_requests("Requests/sec: 5\n"), None, "no count");
        assert_eq!(
            wrk_requests("  0 requests in 1.00s, 0B read\nRequests/sec: 0.00\n"),
            None,
            "nothing served: no per-request figure"
        );
        let stat = "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnr_periods 0\n";
        assert_eq!(usage_usec(stat), Some(1_234_567));
        assert_eq!(usage_usec("user_usec 5\n"), None);
    }
}

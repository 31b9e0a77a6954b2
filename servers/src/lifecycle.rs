//! One run of a server under runc, the way production treats it: start, the suite, a reload
//! and the suite again, a graceful stop, a restart on the data it left, a kill -9 that leaves
//! pid and lock files behind, a restart on those, the suite, a graceful stop.
//!
//! Which bundle each container starts from is the caller's (`bundle_for`): under the recording
//! filter with a cgroup below the recorder's for run A, under the synthesized profile for run
//! B. The suites run in this process.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use profgen::verify::{
    runc::{unique_id, Container, Runc},
    seccomp_mode,
};

use crate::{suite, Check, Ending, Server, SuiteOptions};

/// What a run does, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Start,
    Suite,
    /// The server's reload signal; skipped (with the suite after it) when it has none.
    Reload,
    Stop,
    Kill,
}

pub const STEPS: [Step; 11] = [
    Step::Start,
    Step::Suite,
    Step::Reload,
    Step::Suite,
    Step::Stop,
    Step::Start,
    Step::Suite,
    Step::Kill,
    Step::Start,
    Step::Suite,
    Step::Stop,
];

/// The steps `server` goes through.
pub fn steps(server: Server) -> Vec<Step> {
    let mut out = Vec::new();
    let mut skip_suite = false;
    for step in STEPS {
        match step {
            Step::Reload if server.reload_signal().is_none() => skip_suite = true,
            Step::Suite if skip_suite => skip_suite = false,
            s => out.push(s),
        }
    }
    out
}

/// What happened at one step.
#[derive(Debug)]
pub struct StepOutcome {
    pub step: Step,
    /// One line for the log (`start 2: seccomp mode 2`, `kill -9: left run/x.pid`).
    pub summary: String,
    /// The suite's checks (suite steps only).
    pub checks: Vec<Check>,
    /// A failure of the step itself (the container did not start or stop).
    pub error: Option<String>,
    /// The container's output, when something failed.
    pub log: Option<String>,
}

/// A whole run.
#[derive(Debug, Default)]
pub struct RunOutcome {
    pub steps: Vec<StepOutcome>,
    /// `Seccomp:` of each container's init process (2: a filter).
    pub seccomp_modes: Vec<u32>,
}

impl RunOutcome {
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.steps.iter().flat_map(|s| s.checks.iter())
    }

    pub fn passed(&self) -> usize {
        self.checks().filter(|c| c.result.is_ok()).count()
    }

    pub fn total(&self) -> usize {
        self.checks().count()
    }

    /// Failed checks and failed steps, one line each.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.steps {
            if let Some(e) = &s.error {
                out.push(format!("{:?}: {e}", s.step));
            }
            for c in &s.checks {
                if let Err(e) = &c.result {
                    out.push(format!("{}: {e}", c.name));
                }
            }
        }
        out
    }
}

/// How a run is driven.
pub struct Run<'a> {
    pub server: Server,
    pub port: u16,
    /// The state directory the containers' data lives in (listed after a kill).
    pub state: &'a Path,
    /// Suite runs whose data the server holds when this run begins; updated as it goes.
    pub persisted: u32,
    pub ready_timeout: Duration,
    /// Container ids start with this.
    pub id_prefix: String,
}

const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Drives `run` through [`steps`]; `bundle_for(k)` is the bundle of the k-th container
/// (0-based). `log` gets one line per step as it happens.
pub fn run(
    run: &mut Run<'_>,
    bundle_for: &mut dyn FnMut(usize) -> Result<PathBuf, String>,
    log: &mut dyn FnMut(&str),
) -> RunOutcome {
    let runc = Runc::default();
    let mut outcome = RunOutcome::default();
    let mut container: Option<Container> = None;
    let mut started = 0;
    let mut previous = None;
    for step in steps(run.server) {
        // The first start may follow the last stop of an earlier run.
        if step == Step::Start && previous != Some(Step::Kill) {
            thread::sleep(run.server.restart_delay());
        }
        previous = Some(step);
        let mut out = StepOutcome {
            step,
            summary: String::new(),
            checks: Vec::new(),
            error: None,
            log: None,
        };
        match step {
            Step::Start => {
                let addr = SocketAddr::from(([127, 0, 0, 1], run.port));
                match start(
                    &runc,
                    bundle_for,
                    started,
                    &run.id_prefix,
                    addr,
                    run.ready_timeout,
                ) {
                    Ok(c) => {
                        let mode = c
                            .pid()
                            .ok()
                            .flatten()
                            .and_then(|pid| seccomp_mode(pid).ok())
                            .unwrap_or(0);
                        outcome.seccomp_modes.push(mode);
                        out.summary = format!("start {}: seccomp mode {mode}", started + 1);
                        container = Some(c);
                    }
                    Err(e) => {
                        out.summary = format!("start {}: failed", started + 1);
                        out.error = Some(e);
                    }
                }
                started += 1;
            }
            Step::Suite => {
                let opts = SuiteOptions {
                    port: run.port,
                    previous: run.persisted,
                    ready_timeout: run.ready_timeout,
                };
                out.checks = run.server.suite(&opts);
                let failed = suite::failures(&out.checks);
                let expected = if run.server.keeps_data(Ending::Graceful) {
                    format!(" (data of {} earlier suite run(s) expected)", run.persisted)
                } else {
                    String::new()
                };
                out.summary = format!(
                    "suite{expected}: {}/{} checks passed",
                    out.checks.len() - failed,
                    out.checks.len()
                );
                // The journal entry is each suite's last check: once written, its data counts.
                if out.checks.last().is_some_and(|c| c.result.is_ok()) {
                    run.persisted += 1;
                }
                if failed > 0 {
                    out.log = container.as_ref().map(Container::logs);
                }
            }
            Step::Reload => {
                let sig = run.server.reload_signal().unwrap_or("HUP");
                out.summary = format!("reload (SIG{sig})");
                out.error = with_container(&container, |c| signal(c, sig));
                // The reload is asynchronous; the next suite waits for the server anyway.
                thread::sleep(Duration::from_millis(500));
            }
            Step::Stop | Step::Kill => {
                let (sig, ending) = match step {
                    Step::Stop => (run.server.stop_signal(), Ending::Graceful),
                    _ => ("KILL", Ending::Killed),
                };
                let ended = with_container(&container, |c| {
                    signal(c, sig)?;
                    wait_stopped(c, STOP_TIMEOUT)
                });
                if ended.is_some() {
                    out.log = container.as_ref().map(Container::logs);
                }
                out.error = ended;
                drop(container.take());
                if !run.server.keeps_data(ending) {
                    run.persisted = 0;
                }
                out.summary = match ending {
                    Ending::Graceful => format!("stop (SIG{sig})"),
                    Ending::Killed => {
                        format!("kill -9; left behind: {}", leftovers(run.state).join(", "))
                    }
                };
            }
        }
        log(&format!(
            "{}{}",
            out.summary,
            out.error
                .as_ref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        ));
        outcome.steps.push(out);
    }
    outcome
}

fn start(
    runc: &Runc,
    bundle_for: &mut dyn FnMut(usize) -> Result<PathBuf, String>,
    k: usize,
    prefix: &str,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<Container, String> {
    let bundle = bundle_for(k)?;
    let c = runc
        .run_detached(&bundle, &unique_id(prefix))
        .map_err(|e| e.to_string())?;
    // Fails at once, with the container's output, when the server exits instead.
    c.wait_tcp(addr, timeout).map_err(|e| e.to_string())?;
    Ok(c)
}

fn with_container(
    c: &Option<Container>,
    f: impl FnOnce(&Container) -> Result<(), String>,
) -> Option<String> {
    match c {
        Some(c) => f(c).err(),
        None => Some("no container is running (it did not start)".into()),
    }
}

/// `runc kill ID SIG`: to the container's init process, the server.
pub fn signal(c: &Container, sig: &str) -> Result<(), String> {
    let out = Command::new("runc")
        .args(["kill", c.id(), sig])
        .output()
        .map_err(|e| format!("runc kill: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "runc kill {sig}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn wait_stopped(c: &Container, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match c.state() {
            Ok(s) if s.status == "stopped" => return Ok(()),
            Ok(_) => {}
            // Gone already: runc forgets a container only on delete, so this is odd but ended.
            Err(_) => return Ok(()),
        }
        if Instant::now() >= deadline {
            return Err(format!("still running {timeout:?} after the signal"));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Pid files, lock files and sockets in the state directory (what a kill leaves behind).
pub fn leftovers(state: &Path) -> Vec<String> {
    let mut found = Vec::new();
    walk(state, state, &mut found);
    found.sort();
    found
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, found);
        } else if is_leftover(&name) {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            found.push(rel.display().to_string());
        }
    }
}

/// A name a server keeps only while it runs.
pub fn is_leftover(name: &str) -> bool {
    name.ends_with(".pid")
        || name.ends_with(".lock")
        || name.ends_with(".sock")
        || name.starts_with(".s.PGSQL.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_without_reload_skips_it_and_its_suite() {
        let s = steps(Server::Redis);
        assert!(!s.contains(&Step::Reload));
        assert_eq!(s.iter().filter(|s| **s == Step::Suite).count(), 3);
        let s = steps(Server::Nginx);
        assert_eq!(s, STEPS);
        // A kill is always followed by a start on what it left.
        let k = s.iter().position(|s| *s == Step::Kill).unwrap();
        assert_eq!(s[k + 1], Step::Start);
    }

    #[test]
    fn leftovers_are_pid_lock_and_socket_files() {
        for name in [
            "nginx.pid",
            "postmaster.pid",
            ".s.PGSQL.5432.lock",
            ".s.PGSQL.5432",
            "redis.sock",
        ] {
            assert!(is_leftover(name), "{name}");
        }
        for name in ["dump.rdb", "appendonly.aof.1.incr.aof", "memory_file"] {
            assert!(!is_leftover(name), "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("run")).unwrap();
        fs::write(dir.path().join("run/x.pid"), "1").unwrap();
        fs::write(dir.path().join("data.db"), "").unwrap();
        assert_eq!(leftovers(dir.path()), ["run/x.pid"]);
    }
}

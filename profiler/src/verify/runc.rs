//! Driving runc: create and start a detached container from a bundle, wait until it serves,
//! run commands inside it, and always remove it again.
//!
//! The container is created (`runc create`) and started (`runc start`) in two steps: between
//! them its cgroup exists and `runc init` waits inside it, so a recorder can target the cgroup
//! before the workload's first syscall. Detached and without a terminal, the container keeps
//! the stdio runc was started with; we hand it two files and read them for error messages.

use std::{
    ffi::OsStr,
    fs,
    io::{self, Read},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use super::{
    cgroups,
    process::{self, Captured},
};

/// How long a runc subcommand (not `exec`) may take.
const RUNC_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of the container's output goes into an error message.
const LOG_TAIL: usize = 4000;

#[derive(Debug, thiserror::Error)]
pub enum RuncError {
    #[error("cannot run {binary} (install runc, e.g. `apt-get install runc`)")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`runc {command}` for container {id} failed ({status}): {output}")]
    Failed {
        command: String,
        id: String,
        status: String,
        output: String,
    },
    #[error(transparent)]
    Bundle(#[from] super::BundleError),
    #[error("unexpected output from `runc state {id}`: {output}")]
    State { id: String, output: String },
    #[error("container {id} stopped; its output:\n{log}")]
    Stopped { id: String, log: String },
    #[error("container {id} did not accept connections on {addr} within {timeout:?}; its output:\n{log}")]
    NotReady {
        id: String,
        addr: SocketAddr,
        timeout: Duration,
        log: String,
    },
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl RuncError {
    /// True when runc itself could not be used (missing binary, unreadable bundle, local I/O),
    /// as opposed to the container failing to start or run.
    pub fn is_environment(&self) -> bool {
        matches!(self, Self::Spawn { .. } | Self::Bundle(_) | Self::Io(_))
    }
}

impl RuncError {
    /// One line without the container's output (which a report carries separately): runc's
    /// own message, without its logger's fields or a Go panic's stack.
    pub fn summary(&self) -> String {
        match self {
            Self::Failed {
                command,
                status,
                output,
                ..
            } => match super::runc_output::message(output) {
                msg if msg.is_empty() => format!("`runc {command}` failed ({status})"),
                msg => format!("`runc {command}` failed ({status}): {msg}"),
            },
            Self::Stopped { .. } => "the container stopped".into(),
            Self::NotReady { addr, timeout, .. } => {
                format!("nothing accepted connections on {addr} within {timeout:?}")
            }
            other => other.to_string(),
        }
    }

    /// What runc and the container printed, when the error carries it.
    pub fn output(&self) -> Option<String> {
        match self {
            Self::Failed { output, .. } => Some(output.clone()),
            Self::Stopped { log, .. } | Self::NotReady { log, .. } => Some(log.clone()),
            _ => None,
        }
    }
}

/// The runc binary and its state directory.
#[derive(Clone, Debug)]
pub struct Runc {
    binary: PathBuf,
    root: Option<PathBuf>,
}

impl Default for Runc {
    fn default() -> Self {
        Self::new("runc")
    }
}

impl Runc {
    /// `binary` is a path or a name looked up in `PATH`.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
            root: None,
        }
    }

    /// State directory (`runc --root`); runc's default is `/run/runc`.
    pub fn with_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        if let Some(root) = &self.root {
            cmd.arg("--root").arg(root);
        }
        cmd
    }

    /// Runs one runc subcommand about container `id`, failing on a non-zero exit.
    fn call(&self, id: &str, args: &[&OsStr]) -> Result<Captured, RuncError> {
        let got = process::run(self.command().args(args), RUNC_TIMEOUT).map_err(|source| {
            RuncError::Spawn {
                binary: self.binary.clone(),
                source,
            }
        })?;
        if !got.success() {
            return Err(RuncError::Failed {
                command: args[0].to_string_lossy().into_owned(),
                id: id.to_owned(),
                status: got.describe(),
                output: format!("{}{}", got.stderr, got.stdout).trim().to_owned(),
            });
        }
        Ok(got)
    }

    /// `runc create`: the container's processes exist but the workload has not started.
    /// The returned guard deletes the container when dropped.
    pub fn create(&self, bundle: &Path, id: &str) -> Result<Container, RuncError> {
        let spec = super::bundle::load_spec(&bundle.join("config.json"))?;
        // runc's default for a spec without cgroupsPath is a cgroup named after the container.
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().clone())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("/{id}"));
        let created_parents = cgroups::missing_parents(&cgroups::cgroup_mounts(), &cgroups_path);

        let logs = tempfile::Builder::new().prefix("profgen-runc-").tempdir()?;
        let stdout = logs.path().join("stdout");
        let stderr = logs.path().join("stderr");
        let runc_log = logs.path().join("runc.log");
        let mut cmd = self.command();
        cmd.arg("--log")
            .arg(&runc_log)
            .arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout)?)
            .stderr(fs::File::create(&stderr)?);
        let container = Container {
            runc: self.clone(),
            id: id.to_owned(),
            cgroups_path,
            created_parents,
            stdout,
            stderr,
            runc_log,
            _logs: logs,
            removed: false,
        };
        // `runc create` returns once `runc init` waits for `start`; the container keeps the
        // files open, so we wait for runc's exit, not for EOF.
        let status = cmd.status().map_err(|source| RuncError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        if !status.success() {
            return Err(RuncError::Failed {
                command: "create".into(),
                id: id.to_owned(),
                status: process::describe(status),
                output: container.logs(),
            });
        }
        Ok(container)
    }

    /// `runc create` followed by `runc start`.
    pub fn run_detached(&self, bundle: &Path, id: &str) -> Result<Container, RuncError> {
        let container = self.create(bundle, id)?;
        container.start()?;
        Ok(container)
    }
}

/// A container id that no other run on this host uses: `prefix-PID-N-TIME`.
pub fn unique_id(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // The time keeps ids from a crashed earlier process with the same pid apart.
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() % 1_000_000_000);
    format!("{prefix}-{}-{n}-{micros:x}", std::process::id())
}

/// What `runc state` says about a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// "created", "running", "paused" or "stopped".
    pub status: String,
    /// The container's init process on the host (0 once stopped).
    pub pid: u32,
}

/// A command run inside the container with `runc exec`.
#[derive(Clone, Debug)]
pub struct ExecOutput {
    /// `None` when the command did not finish in time.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A created container. Dropping it deletes it (`runc delete --force`) and removes the parent
/// cgroups runc created for it.
#[derive(Debug)]
pub struct Container {
    runc: Runc,
    id: String,
    cgroups_path: String,
    created_parents: Vec<PathBuf>,
    stdout: PathBuf,
    stderr: PathBuf,
    runc_log: PathBuf,
    /// Holds the directory of the three files above.
    _logs: tempfile::TempDir,
    removed: bool,
}

impl Container {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The container's cgroup below a hierarchy's root (`linux.cgroupsPath`, or runc's
    /// default `/<id>`). In the v2 tree it is `<cgroup2 mount><cgroups_path>`.
    pub fn cgroups_path(&self) -> &str {
        &self.cgroups_path
    }

    /// The container's cgroup directory in the cgroup2 filesystem.
    pub fn cgroup2_dir(&self) -> Result<PathBuf, crate::cgroup::CgroupError> {
        let mount = crate::cgroup::cgroup2_mount()?;
        Ok(mount.join(self.cgroups_path.trim_start_matches('/')))
    }

    /// `runc start`: the workload begins (and the seccomp filter is loaded just before it).
    pub fn start(&self) -> Result<(), RuncError> {
        self.runc
            .call(&self.id, &["start".as_ref(), self.id.as_ref()])
            .map_err(|err| self.with_logs(err))?;
        Ok(())
    }

    pub fn state(&self) -> Result<State, RuncError> {
        let got = self
            .runc
            .call(&self.id, &["state".as_ref(), self.id.as_ref()])?;
        parse_state(&got.stdout).ok_or_else(|| RuncError::State {
            id: self.id.clone(),
            output: got.stdout.clone(),
        })
    }

    /// The init process's pid on the host, if the container is running.
    pub fn pid(&self) -> Result<Option<u32>, RuncError> {
        let state = self.state()?;
        Ok((state.status == "running" && state.pid != 0).then_some(state.pid))
    }

    /// Waits until something accepts TCP connections on `addr`, failing early when the
    /// container stops.
    pub fn wait_tcp(&self, addr: SocketAddr, timeout: Duration) -> Result<(), RuncError> {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if self.state()?.status != "running" {
                return Err(RuncError::Stopped {
                    id: self.id.clone(),
                    log: self.logs(),
                });
            }
            if Instant::now() >= deadline {
                return Err(RuncError::NotReady {
                    id: self.id.clone(),
                    addr,
                    timeout,
                    log: self.logs(),
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `args` inside the container (`runc exec`), under the container's seccomp filter.
    /// A non-zero exit is not an error: the caller judges the output. An exit code of 255
    /// with runc's message on stderr usually means the command could not be started.
    pub fn exec<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        timeout: Duration,
    ) -> Result<ExecOutput, RuncError> {
        let mut cmd = self.runc.command();
        cmd.arg("exec").arg(&self.id).args(args);
        let got = process::run(&mut cmd, timeout).map_err(|source| RuncError::Spawn {
            binary: self.runc.binary.clone(),
            source,
        })?;
        Ok(ExecOutput {
            code: got.status.and_then(|s| s.code()),
            stdout: got.stdout,
            stderr: got.stderr,
        })
    }

    /// What the container (and runc about it) printed so far: the end of each stream, so a
    /// busy access log on stdout cannot crowd out the error on stderr.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for (label, path, budget) in [
            ("stdout", &self.stdout, LOG_TAIL / 4),
            ("stderr", &self.stderr, LOG_TAIL),
            ("runc log", &self.runc_log, LOG_TAIL / 2),
        ] {
            let mut content = String::new();
            if let Ok(mut file) = fs::File::open(path) {
                let _ = file.read_to_string(&mut content);
            }
            let content = process::tail_lines(content.trim_end(), budget);
            if !content.is_empty() {
                text.push_str(&format!("--- {label}\n{content}\n"));
            }
        }
        text
    }

    fn with_logs(&self, err: RuncError) -> RuncError {
        match err {
            RuncError::Failed {
                command,
                id,
                status,
                output,
            } => RuncError::Failed {
                command,
                id,
                status,
                output: format!("{output}\n{}", self.logs()),
            },
            other => other,
        }
    }

    /// Stops the workload with SIGTERM, waits up to `grace` for it to exit, then deletes the
    /// container (killing whatever is left).
    pub fn stop(mut self, grace: Duration) -> Result<(), RuncError> {
        // Fails when the container already stopped; the state check below covers that.
        let _ = self.runc.call(
            &self.id,
            &["kill".as_ref(), self.id.as_ref(), "TERM".as_ref()],
        );
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            match self.state() {
                Ok(state) if state.status != "stopped" => thread::sleep(Duration::from_millis(50)),
                _ => break,
            }
        }
        self.remove()
    }

    fn remove(&mut self) -> Result<(), RuncError> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let deleted = self.runc.call(
            &self.id,
            &["delete".as_ref(), "--force".as_ref(), self.id.as_ref()],
        );
        cgroups::remove(&self.created_parents);
        deleted.map(drop)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Err(err) = self.remove() {
            log::warn!("removing container {}: {err}", self.id);
        }
    }
}

fn parse_state(json: &str) -> Option<State> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(State {
        status: value.get("status")?.as_str()?.to_owned(),
        pid: u32::try_from(value.get("pid")?.as_u64()?).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runc_state() {
        let json = r#"{"ociVersion":"1.0.2-dev","id":"x","pid":8671,"status":"running",
            "bundle":"/tmp/rx","rootfs":"/tmp/rx/rootfs","created":"2026-01-01T00:00:00Z","owner":""}"#;
        assert_eq!(
            parse_state(json),
            Some(State {
                status: "running".into(),
                pid: 8671
            })
        );
        assert_eq!(parse_state("not json"), None);
        assert_eq!(parse_state(r#"{"pid":1}"#), None);
    }

    #[test]
    fn ids_are_unique_and_prefixed() {
        let a = unique_id("profgen-verify");
        let b = unique_id("profgen-verify");
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("profgen-verify-{}-", std::process::id())));
    }

    #[test]
    fn a_missing_runc_is_an_environment_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Runc::new("/nonexistent/runc")
            .create(dir.path(), "x")
            .unwrap_err();
        // No config.json: the bundle is read before runc runs.
        assert!(err.is_environment(), "{err}");
    }
}

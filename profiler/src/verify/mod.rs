//! Proving a profile: enforce it and re-run the workload's tests.
//!
//! [`seccomp`] runs a bundle under runc with a seccomp profile in a temporary copy of its
//! `config.json`, runs the test command on the host, then runs a probe inside the container
//! that tries syscalls outside the profile (profgen's own, [`shipped_probe`], bind-mounted for
//! the run). Every step becomes a fact in a [`Report`]; the profile is proven when the
//! container started with the filter active, the tests passed, the container was still up
//! afterwards, and every probed syscall was refused with EPERM. The same run enforces a
//! securityContext when one is given ([`security_context`]).
//!
//! [`apparmor::prove`] proves an AppArmor profile in a VM, [`netpol::prove()`] a NetworkPolicy
//! by its evaluator; [`set`] names what failed across a set.

pub mod apparmor;
mod bundle;
mod cgroups;
pub mod crun_vm;
pub mod exits_vm;
pub mod netpol;
pub mod probe;
pub mod process;
mod report;
pub mod runc;
pub mod runc_output;
pub mod runtime_calls;
pub mod security_context;
pub mod set;
pub mod shipped_probe;

use std::{ffi::OsString, fs, net::SocketAddr, path::PathBuf, process::Command, time::Duration};

pub use bundle::{
    load_profile, load_spec, with_confinement, with_seccomp, BundleError, PatchedBundle,
};
use k8s_openapi::api::core::v1::SecurityContext;
use oci_spec::runtime::LinuxSeccomp;
pub use report::{Part, Report, TestRun};

/// The profile was enforced and the workload failed under it, or a probe outside it was not
/// refused.
#[derive(Debug, thiserror::Error)]
#[error("verification failed: {0}")]
pub struct VerifyFailed(pub String);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle or profile could not be read.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// runc could not be used at all (as opposed to the container failing under the profile).
    #[error(transparent)]
    Runc(#[from] runc::RuncError),
    #[error("cannot run the test command {command:?}")]
    TestCommand {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("this profgen was built without its seccomp probe (no C compiler at build time: install gcc and rebuild); give --probe-path PATH of a probe in the bundle, or --no-probe")]
    NoProbe,
    #[error("cannot write the seccomp probe to a temporary file")]
    ProbeFile(#[source] std::io::Error),
    /// The facts are in `report`; `source` sums up what failed.
    #[error("the workload under the enforced profile")]
    Failed {
        report: Box<Report>,
        #[source]
        source: VerifyFailed,
    },
}

/// What to enforce and how to exercise it.
#[derive(Clone, Debug)]
pub struct SeccompCheck {
    /// An OCI bundle (`config.json` and its root filesystem). Not modified.
    pub bundle: PathBuf,
    /// Goes into `linux.seccomp`; `None` leaves the bundle's own (for a securityContext alone).
    pub profile: Option<LinuxSeccomp>,
    /// Runs on the host once the container is up; must exit 0. Empty: no tests.
    pub test_command: Vec<OsString>,
    /// Wait for the container to accept connections here before running the tests.
    pub wait_tcp: Option<SocketAddr>,
    /// A probe already in the bundle, by its path inside the container; `None`: profgen's
    /// own, bind-mounted for the run.
    pub probe_path: Option<String>,
    /// Syscalls outside the profile that must be refused with EPERM. Empty: no probe.
    pub probes: Vec<String>,
    /// Limit for the test command; waiting for the container and the probe get their own.
    pub test_timeout: Duration,
    pub runc: runc::Runc,
    /// Also enforce this securityContext (capabilities, no_new_privs, read-only root, user)
    /// and check the running container shows it.
    pub security_context: Option<SecurityContext>,
}

impl SeccompCheck {
    pub fn new(bundle: impl Into<PathBuf>, profile: LinuxSeccomp) -> Self {
        Self {
            bundle: bundle.into(),
            profile: Some(profile),
            test_command: Vec::new(),
            wait_tcp: None,
            probe_path: None,
            probes: vec!["unshare".into()],
            test_timeout: Duration::from_secs(300),
            runc: runc::Runc::default(),
            security_context: None,
        }
    }
}

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Enforces the profile and judges the result: `Ok` only when every fact holds, otherwise
/// [`Error::Failed`] carrying the report.
pub fn seccomp(check: &SeccompCheck) -> Result<Report, Error> {
    let report = enforce(check)?;
    let failures = report.failures();
    if failures.is_empty() {
        return Ok(report);
    }
    Err(Error::Failed {
        source: VerifyFailed(failures.join("; ")),
        report: Box::new(report),
    })
}

/// Enforces the profile and collects the facts without judging them. Errors only when the
/// environment is unusable (bundle unreadable, runc missing, test command not found).
pub fn enforce(check: &SeccompCheck) -> Result<Report, Error> {
    let mut expected = None;
    // Probes test the seccomp profile: none without one.
    let probes: &[String] = match check.profile {
        Some(_) => &check.probes,
        None => &[],
    };
    let shipped = match (&check.probe_path, probes.is_empty()) {
        (None, false) => Some(
            shipped_probe::ProbeFile::write()
                .map_err(Error::ProbeFile)?
                .ok_or(Error::NoProbe)?,
        ),
        _ => None,
    };
    let mut probe_path = check.probe_path.clone();
    let patched = with_confinement(&check.bundle, check.profile.as_ref(), |spec| {
        if let Some(file) = &shipped {
            probe_path = Some(shipped_probe::mount(spec, file.path()));
        }
        if let Some(sc) = &check.security_context {
            expected = Some(security_context::apply(spec, sc).map_err(|source| {
                BundleError::SecurityContext {
                    path: check.bundle.join("config.json"),
                    source,
                }
            })?);
        }
        Ok(())
    })?;
    let id = runc::unique_id("profgen-verify");
    let mut report = Report::new(&id);

    // Until the container is running, a runc failure is most likely the profile refusing
    // something runc does after loading it: a fact, not an environment error. Early returns
    // leave the deletion to the container's drop guard.
    let container = match check.runc.create(patched.path(), &id) {
        Ok(c) => c,
        Err(err) if err.is_environment() => return Err(err.into()),
        Err(err) => {
            report.started = Err(err.summary());
            report.container_log = err.output().unwrap_or_default();
            return Ok(report);
        }
    };
    if let Err(err) = container.start() {
        if err.is_environment() {
            return Err(err.into());
        }
        report.started = Err(err.summary());
        report.container_log = container.logs();
        return Ok(report);
    }
    report.started = Ok(());

    if let Some(addr) = check.wait_tcp {
        match container.wait_tcp(addr, READY_TIMEOUT) {
            Ok(()) => report.ready = Some(Ok(())),
            Err(err) if err.is_environment() => return Err(err.into()),
            Err(err) => {
                report.ready = Some(Err(err.summary()));
                report.container_log = container.logs();
                return Ok(report);
            }
        }
    }

    // The filter sits on the container's init process, the workload itself.
    if check.profile.is_some() {
        let mode = match container.pid() {
            Ok(Some(pid)) => seccomp_mode(pid).map_err(|e| e.to_string()),
            Ok(None) => Err("the container stopped right after starting".into()),
            Err(err) => Err(err.summary()),
        };
        let failed = mode.is_err();
        report.seccomp_mode = Some(mode);
        if failed {
            report.container_log = container.logs();
            return Ok(report);
        }
    }
    if let Some(expected) = &expected {
        report.security_context = Some(match container.pid() {
            Ok(Some(pid)) => security_context::observe(pid)
                .map(|observed| security_context::compare(expected, &observed))
                .map_err(|e| e.to_string()),
            Ok(None) => Err("the container stopped right after starting".into()),
            Err(err) => Err(err.summary()),
        });
    }

    if let Some((program, args)) = check.test_command.split_first() {
        let captured = process::run(Command::new(program).args(args), check.test_timeout).map_err(
            |source| Error::TestCommand {
                command: program.to_string_lossy().into_owned(),
                source,
            },
        )?;
        report.tests = Some(TestRun::from(captured));
        report.running_after_tests = Some(matches!(container.pid(), Ok(Some(_))));
    }

    if let (Some(path), false) = (&probe_path, probes.is_empty()) {
        let mut argv = vec![path.clone()];
        argv.extend(probes.iter().cloned());
        report.probes = Some(match container.exec(&argv, PROBE_TIMEOUT) {
            Err(err) if err.is_environment() => return Err(err.into()),
            Err(err) => Err(err.summary()),
            Ok(out) if out.code != Some(0) => Err(probe_failure(&argv, &out)),
            Ok(out) => probe::parse(&out.stdout, probes).map_err(|e| e.to_string()),
        });
    }

    report.container_log = container.logs();
    if let Err(err) = container.stop(STOP_GRACE) {
        log::warn!("{err}");
    }
    Ok(report)
}

/// One line: runc's own message when runc could not start the probe (exit 255), else what the
/// probe printed.
fn probe_failure(argv: &[String], out: &runc::ExecOutput) -> String {
    let command = argv.join(" ");
    match out.code {
        None => format!("`{command}` did not finish within {PROBE_TIMEOUT:?}"),
        Some(255) if out.stdout.trim().is_empty() => format!(
            "`runc exec … {command}`: {}",
            runc_output::message(&out.stderr)
        ),
        Some(code) => format!(
            "`{command}` exited with {code}: {}",
            runc_output::message(&format!("{}\n{}", out.stdout, out.stderr))
        ),
    }
}

/// The `Seccomp:` field of `/proc/PID/status`: 0 none, 1 strict, 2 filter.
pub fn seccomp_mode(pid: u32) -> std::io::Result<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_seccomp_mode(&status).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no Seccomp field in /proc/{pid}/status"),
        )
    })
}

fn parse_seccomp_mode(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_seccomp_field() {
        let status = "Name:\tnginx\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";
        assert_eq!(parse_seccomp_mode(status), Some(2));
        assert_eq!(parse_seccomp_mode("Name:\tx\n"), None);
    }

    #[test]
    fn a_probe_runc_cannot_start_is_one_line() {
        let out = runc::ExecOutput {
            code: Some(255),
            stdout: String::new(),
            stderr: "time=\"2026-11-29T21:34:38Z\" level=error msg=\"exec failed: unable to start container process: exec: \\\"/probe\\\": stat /probe: no such file or directory\"\n".into(),
        };
        let argv = ["/probe".to_owned(), "unshare".to_owned()];
        assert_eq!(
            probe_failure(&argv, &out),
            "`runc exec … /probe unshare`: exec failed: unable to start container process: exec: \"/probe\": stat /probe: no such file or directory"
        );
    }

    #[test]
    fn our_own_mode_is_readable() {
        let mode = seccomp_mode(std::process::id()).unwrap();
        assert!(mode <= 2);
    }
}

//! `profgen verify`.

use std::{ffi::OsString, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use profgen::verify::{self, runc::Runc, SeccompCheck};

/// Prove a seccomp profile: run the bundle under runc with the profile enforced, run the tests
/// against it (they must pass), and check that syscalls outside the profile are refused.
///
/// The bundle is not modified: the profile goes into a temporary copy of its config.json.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  profgen verify --bundle demo-bundle --seccomp seccomp.json \
                  --wait-tcp 127.0.0.1:8080 -- demo-suite --url http://127.0.0.1:8080"
)]
pub struct VerifyArgs {
    /// OCI bundle directory (config.json and its root filesystem).
    #[arg(long)]
    bundle: PathBuf,
    /// The seccomp profile to enforce: OCI `linux.seccomp` JSON.
    #[arg(long)]
    seccomp: PathBuf,
    /// Path of the probe binary inside the container.
    #[arg(long, default_value = "/probe")]
    probe_path: String,
    /// Syscalls outside the profile that must be refused with EPERM (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "unshare",
        conflicts_with = "no_probe"
    )]
    probe: Vec<String>,
    /// Do not run the probe (the bundle has none).
    #[arg(long)]
    no_probe: bool,
    /// Wait until the container accepts TCP connections on this address before testing.
    #[arg(long)]
    wait_tcp: Option<SocketAddr>,
    /// Time limit for the test command.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Also enforce this securityContext (`securitycontext.yaml` from `profgen synth`):
    /// capabilities, allowPrivilegeEscalation, readOnlyRootFilesystem, runAsUser go into
    /// the container's config, and the running container must show them.
    #[arg(long, value_name = "FILE")]
    security_context: Option<PathBuf>,
    /// The runc binary.
    #[arg(long, env = "PROFGEN_RUNC", default_value = "runc")]
    runc: PathBuf,
    /// The test command, run on the host while the container runs; must exit 0.
    #[arg(last = true, required = true, value_name = "TEST_CMD")]
    test: Vec<OsString>,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let profile = verify::load_profile(&args.seccomp)?;
    let security_context = args
        .security_context
        .as_deref()
        .map(verify::security_context::load)
        .transpose()?;
    let check = SeccompCheck {
        test_command: args.test,
        wait_tcp: args.wait_tcp,
        probe_path: args.probe_path,
        probes: if args.no_probe {
            Vec::new()
        } else {
            args.probe
        },
        test_timeout: args.timeout,
        runc: Runc::new(args.runc),
        security_context,
        ..SeccompCheck::new(&args.bundle, profile)
    };
    match verify::seccomp(&check) {
        Ok(report) => {
            print!("{report}");
            println!("verified: {}", args.seccomp.display());
            Ok(())
        }
        // The report first, then an error whose chain holds `VerifyFailed` (exit code 3).
        Err(verify::Error::Failed { report, source }) => {
            print!("{report}");
            Err(anyhow::Error::new(source).context(format!("enforcing {}", args.seccomp.display())))
        }
        Err(err) => Err(err).with_context(|| format!("verifying {}", args.bundle.display())),
    }
}

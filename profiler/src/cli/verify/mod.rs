//! `profgen verify`: prove a profile set, or single artifacts, by enforcing them.

mod inputs;
mod run;

use std::{
    ffi::OsString,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

const ABOUT: &str = "\
Prove confinement by enforcing it: every artifact of a profile set, or the ones named.

  seccomp.json          the bundle under runc with the profile, the suite on the host (must
                        pass), then profgen's own probe, bind-mounted into the container for
                        the run, tries syscalls outside the profile (each must get EPERM)
  securitycontext.yaml  in the same runc run: capabilities, no_new_privs, read-only root and
                        user go into the container's config, the suite must pass, and the
                        running container must show them
  apparmor.profile      apparmor_parser, then Debian's kernel under qemu boots the bundle's
                        root filesystem, loads the profile in enforce mode, starts the
                        bundle's process confined (aa-exec), waits for --wait-tcp, runs the
                        suite inside the VM (zero apparmor=\"DENIED\" lines), then probes
                        confined by the profile (read /etc/shadow, write under /usr) must be
                        DENIED. The suite is copied into the VM with its shared libraries and
                        runs there against the same address: it must be a compiled program
                        that needs nothing else from the host
  networkpolicy.yaml    the NetworkPolicy evaluator replays the recorded flows of
                        recording.json (each must be admitted), then probes (a stranger on each
                        ingress port, a recorded client on another port, a connection out to an
                        unrecorded destination) must be denied; no bundle or suite needed

Each proof prints what it ran and what it found, one block per artifact; the last line names
what failed and what passed. The bundle is never modified.";

const AFTER_HELP: &str = "\
Examples:
  profgen verify --profiles profiles/app --bundle ./bundle --wait-tcp 127.0.0.1:8080 \\
      -- ./suite --url http://127.0.0.1:8080
  profgen verify --bundle ./bundle --seccomp seccomp.json -- ./suite
  profgen verify --network-policy networkpolicy.yaml --recording recording.json

Exit codes: 0 every artifact proven; 3 verification failed (the summary names each failed
artifact); 1 bad input, or an artifact could not be proven at all (no runc, no qemu).";

/// Prove a profile set (or single artifacts) by enforcing it.
#[derive(Debug, clap::Args)]
#[command(about = "Prove a profile set by enforcing it", long_about = ABOUT, after_help = AFTER_HELP)]
pub struct VerifyArgs {
    /// A profile set (`profgen synth --out DIR`): proves each of seccomp.json,
    /// securitycontext.yaml, apparmor.profile and networkpolicy.yaml (with recording.json)
    /// that DIR holds. A file flag below names that artifact's file instead.
    #[arg(long, value_name = "DIR")]
    profiles: Option<PathBuf>,
    /// OCI bundle directory (config.json and its root filesystem). Needed for seccomp, the
    /// securityContext and AppArmor.
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// A seccomp profile to enforce: OCI `linux.seccomp` JSON.
    #[arg(long, value_name = "FILE")]
    seccomp: Option<PathBuf>,
    /// A securityContext to enforce (`securitycontext.yaml` from `profgen synth`).
    #[arg(long, value_name = "FILE")]
    security_context: Option<PathBuf>,
    /// An AppArmor profile to enforce in a VM.
    #[arg(long, value_name = "FILE")]
    apparmor: Option<PathBuf>,
    /// A NetworkPolicy to judge against the recorded flows of --recording.
    #[arg(long, value_name = "FILE")]
    network_policy: Option<PathBuf>,
    /// The recording the NetworkPolicy was made from (default with --profiles:
    /// DIR/recording.json).
    #[arg(long, value_name = "FILE")]
    recording: Option<PathBuf>,
    /// A cluster snapshot naming the NetworkPolicy's peers (as given to `profgen synth
    /// --cluster`).
    #[arg(long, value_name = "FILE")]
    cluster: Option<PathBuf>,
    /// The pod's address for the NetworkPolicy proof (repeatable; default: the snapshot's pod,
    /// else the placeholders 192.0.2.10 and 2001:db8::10).
    #[arg(long, value_name = "IP")]
    pod_ip: Vec<IpAddr>,
    /// Syscalls outside the seccomp profile that must be refused with EPERM (comma-separated).
    /// profgen's probe also makes the argument probes of the syscalls the profile allows only
    /// with some arguments (`socket(AF_NETLINK)`, `clone(CLONE_NEWUSER)`, `ioctl(TIOCSTI)`,
    /// `personality(READ_IMPLIES_EXEC)`), which must be refused too.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "unshare",
        conflicts_with = "no_probe"
    )]
    probe: Vec<String>,
    /// Do not run the seccomp probe.
    #[arg(long)]
    no_probe: bool,
    /// Use this probe, already in the bundle (path inside the container), instead of
    /// profgen's own.
    #[arg(long, value_name = "PATH")]
    probe_path: Option<String>,
    /// Wait until the workload accepts TCP connections on this address before the suite
    /// (in the VM: until something listens on its port; the address is added to the VM's
    /// loopback interface).
    #[arg(long, value_name = "ADDR")]
    wait_tcp: Option<SocketAddr>,
    /// Time limit for the suite, per run.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The runc binary.
    #[arg(long, env = "PROFGEN_RUNC", default_value = "runc")]
    runc: PathBuf,
    /// The kernel the AppArmor VM boots (default: the newest /boot/vmlinuz-*).
    #[arg(long, value_name = "FILE")]
    kernel: Option<PathBuf>,
    /// The suite: runs against the workload and must exit 0 (on the host for runc, inside
    /// the VM for AppArmor).
    #[arg(last = true, value_name = "SUITE")]
    test: Vec<OsString>,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let inputs = inputs::Inputs::load(&args)?;
    run::all(&args, &inputs)
}

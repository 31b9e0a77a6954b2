//! `profgen agent`: the DaemonSet's learning window.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use profgen::k8s;

/// Record every matching pod of this node for a learning window (the DaemonSet's command).
///
/// Each pod's cgroup is recorded from when the pod is scheduled, so its containers are
/// recorded from their first syscall. Replicas of one workload merge into one profile set per
/// container, written below --output and served over HTTP (--listen) for `profgen pull`.
/// State is saved in --state: a restarted agent resumes the same window and loses nothing
/// already recorded. After the window it keeps serving until SIGTERM.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Length of the learning window, e.g. `1h`.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Only pods of this namespace (default: all).
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// Only pods matching this label selector.
    #[arg(long, value_name = "LABELS")]
    selector: Option<String>,
    /// State directory (a hostPath): pod recordings, the window's start.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/profgen/state")]
    state: PathBuf,
    /// Where profile sets are written: DIR/<namespace>/<workload>/<container>/.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/profgen/profiles")]
    output: PathBuf,
    /// The node's cgroup2 tree, when it is not this process's cgroup2 mount.
    #[arg(long, value_name = "PATH", env = "PROFGEN_CGROUP_ROOT")]
    cgroup_root: Option<PathBuf>,
    /// Serve the results on this address (`GET /profiles`, `GET /profiles/<dir>/<file>`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// This node's name as the API knows it (default: $NODE_NAME, else the host name).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// How often state and profiles are saved while the window is open.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    checkpoint: Duration,
    /// Install the permissive learning seccomp profile below this kubelet seccomp root
    /// (`/var/lib/kubelet/seccomp`) at `profgen/learning.json`.
    #[arg(long, value_name = "DIR")]
    seccomp_root: Option<PathBuf>,
    /// Keep what the container runtime did before installing its seccomp filter.
    #[arg(long)]
    include_runtime_setup: bool,
}

pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let opts = k8s::agent_run::AgentOptions {
        duration: args.duration,
        namespace: args.namespace,
        selector: args.selector,
        state: args.state,
        output: args.output,
        cgroup_root: args.cgroup_root,
        listen: args.listen,
        node: args.node.unwrap_or_else(k8s::this_node_name),
        checkpoint: args.checkpoint,
        include_runtime_setup: args.include_runtime_setup,
        seccomp_root: args.seccomp_root,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the event loop")?;
    let summary = runtime.block_on(async {
        // Capabilities first: without them nothing else matters (exit code 4).
        let recorder = k8s::agent_run::start_recorder(&opts)?;
        let cluster = k8s::Cluster::infer().await?;
        k8s::agent_run::run_agent(recorder, &cluster, &opts, &|line| {
            eprintln!("profgen: {line}")
        })
        .await
    })?;
    super::record::print_sets(&summary.index, &opts.output);
    for warning in &summary.warnings {
        eprintln!("profgen: warning: {warning}");
    }
    Ok(())
}

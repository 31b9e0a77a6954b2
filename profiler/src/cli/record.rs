//! `profgen record`: watch a workload and write what it did as a recording.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use profgen::{
    k8s,
    record::{self, session::Stop, Options, TargetSpec},
};

/// Record what a workload does (syscalls per cgroup, from its first syscall).
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["cgroup", "pid", "command", "pod", "selector"]))]
pub struct RecordArgs {
    /// Record a cgroup v2 subtree, including cgroups created below it later (how a container
    /// started after the recording is caught from its first syscall). Absolute, or relative
    /// to the cgroup2 mount.
    #[arg(long, value_name = "PATH")]
    cgroup: Option<PathBuf>,
    /// Record the cgroup of a running process.
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// Record a pod running on this node, found through the Kubernetes API (KUBECONFIG,
    /// ~/.kube/config, or the in-cluster service account). Its pod cgroup is recorded, so
    /// containers that start or restart meanwhile are recorded from their first syscall.
    /// Repeatable. Writes one profile set per container below --out-dir.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pod: Vec<String>,
    /// Record the pods of this node matching a label selector (`app=web,tier!=db`).
    #[arg(long, value_name = "LABELS")]
    selector: Option<String>,
    /// Namespace of --selector (default: all) and of --pod names given without one.
    #[arg(long, short = 'n', value_name = "NS")]
    namespace: Option<String>,
    /// Where --pod/--selector write their profile sets: DIR/<namespace>/<workload>/<container>/.
    #[arg(long, value_name = "DIR", default_value = "profiles")]
    out_dir: PathBuf,
    /// The node's cgroup2 tree, when it is not this process's cgroup2 mount (a hostPath).
    #[arg(long, value_name = "PATH", env = "PROFGEN_CGROUP_ROOT")]
    cgroup_root: Option<PathBuf>,
    /// This node's name as the API knows it (default: $NODE_NAME, else the host name).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Stop after this long, e.g. `30s`, `5m` (default: when the command exits, or on
    /// Ctrl-C / SIGTERM).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Where to write the recording.
    #[arg(long, short, default_value = "recording.json")]
    out: PathBuf,
    /// Keep what happened before the container runtime installed its seccomp filter (the
    /// runtime's own set-up). Off by default: the profile would allow mount, pivot_root, ….
    #[arg(long)]
    include_runtime_setup: bool,
    /// Record syscalls only (enough for seccomp): no file, network or capability facts, and
    /// no exit tracepoints, so every other process on the machine pays less. The recording
    /// says so, and `profgen synth` then writes the seccomp profile alone.
    #[arg(long)]
    syscalls_only: bool,
    /// Run the command N times, each recorded on its own, and write one recording merged
    /// from all of them that keeps in how many runs each rule was seen (`profgen synth`
    /// lists the rules only some runs needed). With a command only.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// Create this (empty) file once recording has started.
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Run this command in a fresh cgroup and record it and everything it starts.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

pub fn run(args: RecordArgs) -> anyhow::Result<()> {
    if !args.pod.is_empty() || args.selector.is_some() {
        return run_pods(args);
    }
    let target = if let Some(path) = args.cgroup {
        TargetSpec::Cgroup(path)
    } else if let Some(pid) = args.pid {
        TargetSpec::Pid(pid)
    } else {
        TargetSpec::Command(args.command)
    };
    let opts = Options {
        target,
        duration: args.duration,
        include_runtime_setup: args.include_runtime_setup,
        syscalls_only: args.syscalls_only,
        ready_file: args.ready_file,
    };
    if args.runs > 1 && !matches!(opts.target, TargetSpec::Command(_)) {
        anyhow::bail!("--runs repeats a command: give one after `--` (a cgroup or process is recorded once; record it again and pass every recording to `profgen synth`)");
    }
    let mut runs = Vec::new();
    let mut outcome = None;
    for run in 1..=args.runs {
        if args.runs > 1 {
            eprintln!(
                "profgen: run {run} of {}: recording {}",
                args.runs,
                describe(&opts.target)
            );
        } else {
            eprintln!("profgen: recording {}", describe(&opts.target));
        }
        let this = record::record(&opts)?;
        let failed = matches!(&this.stop, Stop::CommandExited(status) if !status.success());
        runs.push(this.recording.clone());
        outcome = Some(this);
        if failed {
            break;
        }
    }
    let mut outcome = outcome.expect("at least one run");
    if runs.len() > 1 {
        outcome.recording = profgen::model::Recording::merge(&runs).context("merging the runs")?;
    }
    let rec = &outcome.recording;
    rec.save(&args.out)
        .with_context(|| format!("writing the recording to {}", args.out.display()))?;

    let allowed = rec.allowed_syscalls();
    let total: usize = allowed.values().map(|s| s.len()).sum();
    eprintln!(
        "profgen: {} cgroup(s), {total} syscall name(s) across {} ABI(s); stopped: {}; wrote {}",
        rec.cgroups.len(),
        allowed.len(),
        describe_stop(&outcome.stop),
        args.out.display()
    );
    for warning in &outcome.warnings {
        eprintln!("profgen: warning: {warning}");
    }
    let lost = rec.events_lost_total();
    if lost > 0 {
        eprintln!(
            "profgen: WARNING: {lost} event(s) lost ({}); the profile may miss what they were",
            rec.events_lost
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k}={n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    } else {
        eprintln!("profgen: no events lost");
    }
    if let Stop::CommandExited(status) = outcome.stop {
        if !status.success() {
            anyhow::bail!(
                "the command exited with status {} in run {} (the recording of the runs so far was written; a failing workload may have skipped code paths)",
                record::session::exit_code(&status),
                runs.len()
            );
        }
    }
    Ok(())
}

fn describe(target: &TargetSpec) -> String {
    match target {
        TargetSpec::Command(argv) => format!("command `{}`", argv.join(" ")),
        TargetSpec::Cgroup(path) => format!("cgroup {}", path.display()),
        TargetSpec::Pid(pid) => format!("the cgroup of process {pid}"),
    }
}

fn describe_stop(stop: &Stop) -> String {
    match stop {
        Stop::CommandExited(status) => {
            format!("command exited ({})", record::session::exit_code(status))
        }
        Stop::Duration => "duration elapsed".into(),
        Stop::Signal(name) => format!("{name} received"),
    }
}

/// `--pod` / `--selector`: the pods' cgroups, one profile set per workload container.
fn run_pods(args: RecordArgs) -> anyhow::Result<()> {
    let pods = args
        .pod
        .iter()
        .map(|p| match p.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() => {
                Ok((ns.to_owned(), name.to_owned()))
            }
            None if !p.is_empty() => Ok((
                args.namespace.clone().unwrap_or_else(|| "default".into()),
                p.clone(),
            )),
            _ => anyhow::bail!("--pod {p}: give NAMESPACE/NAME"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = k8s::agent_run::RecordPods {
        pods,
        selector: args.selector,
        namespace: args.namespace,
        duration: args.duration,
        out: args.out_dir,
        cgroup_root: args.cgroup_root,
        node: args.node.unwrap_or_else(k8s::this_node_name),
        include_runtime_setup: args.include_runtime_setup,
        syscalls_only: args.syscalls_only,
        ready_file: args.ready_file,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the event loop")?;
    let summary = runtime.block_on(async {
        let cluster = k8s::Cluster::infer().await?;
        k8s::agent_run::record_pods(&cluster, &opts, &|line| eprintln!("profgen: {line}")).await
    })?;
    print_sets(&summary.index, &opts.out);
    eprintln!("profgen: stopped: {}", summary.stop);
    for warning in &summary.warnings {
        eprintln!("profgen: warning: {warning}");
    }
    if summary.index.sets.is_empty() {
        anyhow::bail!(
            "no container of the pod(s) was recorded (none ran, or none made a syscall while recording)"
        );
    }
    Ok(())
}

/// One line per profile set written.
pub(super) fn print_sets(index: &k8s::profiles::Index, out: &std::path::Path) {
    for set in &index.sets {
        eprintln!(
            "profgen: {} {}/{} container {} ({}): {}",
            set.workload.kind,
            set.workload.namespace,
            set.workload.name,
            set.container,
            set.pods.join(", "),
            out.join(&set.dir).display()
        );
        for problem in &set.problems {
            eprintln!("profgen: warning: {}: {problem}", set.dir);
        }
    }
}

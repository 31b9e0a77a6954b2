//! The two ways pods are recorded on a node, as event loops: `profgen record --pod/--selector`
//! (the pods named now, until a duration or a signal) and `profgen agent` (every matching pod
//! of the node, from when it is scheduled, for a learning window that survives restarts).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};
use tokio::{
    signal::unix::{signal, SignalKind},
    time::{interval, sleep_until, Instant, MissedTickBehavior},
};

use super::{
    agent::StateDir,
    client::{ensure_on_node, Cluster, PodEvent, PodSelector},
    engine::{Engine, EngineError},
    error::K8sError,
    owner::Workload,
    pod,
    profiles::Index,
};
use crate::{
    cgroup,
    record::{
        self,
        live::{LiveOptions, LiveRecorder, TICK},
        progress::Progress,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    K8s(#[from] K8sError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    #[error("{0}")]
    Target(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    /// Missing privilege or kernel feature (exit code 4).
    pub fn is_permission(&self) -> bool {
        matches!(self, Self::Engine(EngineError::Record(e)) if e.is_permission())
    }
}

impl From<record::Error> for RunError {
    fn from(e: record::Error) -> Self {
        Self::Engine(EngineError::Record(e))
    }
}

impl From<super::agent::StateError> for RunError {
    fn from(e: super::agent::StateError) -> Self {
        Self::Engine(EngineError::State(e))
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let context = context.into();
    move |source| RunError::Io { context, source }
}

/// Why recording stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    Duration,
    Signal(&'static str),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Duration => f.write_str("duration elapsed"),
            Stop::Signal(s) => write!(f, "{s} received"),
        }
    }
}

pub struct Summary {
    pub index: Index,
    pub stop: Stop,
    pub warnings: Vec<String>,
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, RunError> {
        Ok(Self {
            int: signal(SignalKind::interrupt()).map_err(io("installing a SIGINT handler"))?,
            term: signal(SignalKind::terminate()).map_err(io("installing a SIGTERM handler"))?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// `profgen record --pod` / `--selector`.
#[derive(Clone, Debug)]
pub struct RecordPods {
    /// `(namespace, name)`.
    pub pods: Vec<(String, String)>,
    pub selector: Option<String>,
    /// For `selector` (all namespaces when `None`).
    pub namespace: Option<String>,
    pub duration: Option<Duration>,
    pub out: PathBuf,
    pub cgroup_root: Option<PathBuf>,
    pub node: String,
    pub include_runtime_setup: bool,
    /// Record syscalls only: the sets get their seccomp profile alone.
    pub syscalls_only: bool,
    pub ready_file: Option<PathBuf>,
}

/// How often pod statuses are read again while recording by hand: a container that starts
/// or restarts gets a new runtime id, named only in the status.
const REFRESH: Duration = Duration::from_secs(2);

async fn find_pods(cluster: &Cluster, opts: &RecordPods) -> Result<Vec<Pod>, RunError> {
    let mut pods = Vec::new();
    for (ns, name) in &opts.pods {
        pods.push(cluster.pod(ns, name).await?);
    }
    if let Some(labels) = &opts.selector {
        let sel = PodSelector {
            namespace: opts.namespace.clone(),
            labels: Some(labels.clone()),
            node: None,
        };
        pods.extend(cluster.pods(&sel).await?);
    }
    Ok(pods)
}

/// Finds the pods, checks they run here, records their pod cgroups, writes one profile set
/// per workload container below `opts.out`.
pub async fn record_pods(
    cluster: &Cluster,
    opts: &RecordPods,
    progress: &dyn Fn(&str),
) -> Result<Summary, RunError> {
    let found = find_pods(cluster, opts).await?;
    for p in found.iter().filter(|p| {
        opts.pods
            .iter()
            .any(|(ns, n)| pod::namespace(p) == ns && pod::name(p) == n)
    }) {
        ensure_on_node(p, &opts.node)?;
    }
    let (here, elsewhere): (Vec<Pod>, Vec<Pod>) = found
        .into_iter()
        .partition(|p| pod::node(p) == Some(opts.node.as_str()));
    if here.is_empty() {
        let sel = opts.selector.as_deref().unwrap_or_default();
        return Err(RunError::Target(if elsewhere.is_empty() {
            format!(
                "no pod matches the selector {sel}{}",
                opts.namespace
                    .as_deref()
                    .map(|n| format!(" in namespace {n}"))
                    .unwrap_or_default()
            )
        } else {
            let mut nodes: Vec<&str> = elsewhere.iter().filter_map(pod::node).collect();
            nodes.sort();
            nodes.dedup();
            format!(
                "none of the {} pod(s) matching {sel} runs on this node ({}); they run on {}: run profgen there, or use the agent DaemonSet",
                elsewhere.len(),
                opts.node,
                nodes.join(", ")
            )
        }));
    }
    for p in &elsewhere {
        progress(&format!(
            "skipping pod {} (on node {})",
            pod::key(p),
            pod::node(p).unwrap_or("none")
        ));
    }

    let root = cgroup::cgroup2_root(opts.cgroup_root.as_deref())?;
    let mut engine = Engine::new(LiveRecorder::start(
        &root,
        LiveOptions {
            include_runtime_setup: opts.include_runtime_setup,
            syscalls_only: opts.syscalls_only,
        },
    )?);
    let mut workloads: BTreeMap<String, Workload> = BTreeMap::new();
    for p in here {
        let w = cluster.workload(&p).await?;
        workloads.insert(pod::key(&p), w.clone());
        engine.apply(p, w);
    }
    let placed = engine.place()?;
    if !placed.waiting.is_empty() {
        return Err(RunError::Target(format!(
            "no pod cgroup below {} for {} (looked for kubepods…pod<uid>): is this the node's cgroup2 tree? (--cgroup-root)",
            root.display(),
            placed.waiting.join(", ")
        )));
    }
    for p in &placed.targeted {
        progress(&format!("recording pod {p}"));
    }
    if let Some(ready) = &opts.ready_file {
        std::fs::write(ready, b"").map_err(io(format!("writing {}", ready.display())))?;
    }

    let mut signals = Signals::new()?;
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let mut meter = Progress::new();
    let mut tick = interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut refresh = interval(REFRESH);
    refresh.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let stop = loop {
        tokio::select! {
            _ = engine.recorder().readable() => engine.recorder_mut().drain(),
            _ = tick.tick() => engine.recorder_mut().tick(&mut meter)?,
            _ = refresh.tick() => {
                // Best effort: a failed refresh keeps the statuses already known.
                if let Ok(pods) = find_pods(cluster, opts).await {
                    for p in pods {
                        if let Some(w) = workloads.get(&pod::key(&p)) {
                            engine.apply(p, w.clone());
                        }
                    }
                }
            }
            _ = until(deadline) => break Stop::Duration,
            s = signals.recv() => break Stop::Signal(s),
        }
    };
    meter.finish();
    let (index, warnings) = engine.finish(&opts.out, &opts.node)?;
    Ok(Summary {
        index,
        stop,
        warnings,
    })
}

/// `profgen agent`.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    pub duration: Duration,
    pub namespace: Option<String>,
    pub selector: Option<String>,
    pub state: PathBuf,
    pub output: PathBuf,
    pub cgroup_root: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub node: String,
    /// How often state and profiles are written while the window is open.
    pub checkpoint: Duration,
    pub include_runtime_setup: bool,
    /// The kubelet's seccomp root, to install the learning profile in.
    pub seccomp_root: Option<PathBuf>,
}

/// When the learning window opened: kept in the state directory so a restarted agent closes
/// it on time instead of opening a new one.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Window {
    started_unix: u64,
    duration_secs: u64,
}

const WINDOW_KEY: &str = "window";

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Time left in the window, opening it if none (or one of another length) was saved.
fn window_left(state: &StateDir, duration: Duration) -> Result<Duration, RunError> {
    let saved: Option<Window> = state.load(WINDOW_KEY)?;
    let window = match saved {
        Some(w) if w.duration_secs == duration.as_secs() => w,
        _ => {
            let w = Window {
                started_unix: now_unix(),
                duration_secs: duration.as_secs(),
            };
            state.save(WINDOW_KEY, &w)?;
            w
        }
    };
    let elapsed = now_unix().saturating_sub(window.started_unix);
    Ok(Duration::from_secs(
        window.duration_secs.saturating_sub(elapsed),
    ))
}

/// Loads the eBPF programs for the agent, over the node's cgroup tree.
/// Must run inside the event loop that then runs [`run_agent`].
pub fn start_recorder(opts: &AgentOptions) -> Result<LiveRecorder, RunError> {
    let root = cgroup::cgroup2_root(opts.cgroup_root.as_deref())?;
    Ok(LiveRecorder::start(
        &root,
        LiveOptions {
            include_runtime_setup: opts.include_runtime_setup,
            syscalls_only: false,
        },
    )?)
}

/// How long to wait before watching again after the stream ended or failed.
const REWATCH: Duration = Duration::from_secs(1);

/// Runs the agent: records the window, then keeps serving the results until SIGINT/SIGTERM.
///
/// `recorder` comes from [`start_recorder`], called before the cluster is contacted: an agent
/// without the capabilities to record says so first, whatever else is wrong.
pub async fn run_agent(
    recorder: LiveRecorder,
    cluster: &Cluster,
    opts: &AgentOptions,
    progress: &dyn Fn(&str),
) -> Result<Summary, RunError> {
    if let Some(seccomp_root) = &opts.seccomp_root {
        let path = super::agent::install_learning_profile(seccomp_root)?;
        progress(&format!("learning seccomp profile at {}", path.display()));
    }
    let state = StateDir::open(&opts.state)?;
    let left = window_left(&state, opts.duration)?;
    let mut engine = Engine::new(recorder).with_state(StateDir::open(&opts.state)?)?;
    if engine.resumed() > 0 {
        progress(&format!(
            "resumed {} pod recording(s) from {}",
            engine.resumed(),
            opts.state.display()
        ));
    }
    std::fs::create_dir_all(&opts.output)
        .map_err(io(format!("creating {}", opts.output.display())))?;
    let server = match opts.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(io(format!("listening on {addr}")))?;
            progress(&format!(
                "serving {} on http://{}/profiles",
                opts.output.display(),
                listener.local_addr().map_err(io("listening"))?
            ));
            Some(tokio::spawn(super::http::serve(
                listener,
                opts.output.clone(),
            )))
        }
        None => None,
    };
    let mut signals = Signals::new()?;
    let sel = PodSelector {
        namespace: opts.namespace.clone(),
        labels: opts.selector.clone(),
        node: Some(opts.node.clone()),
    };
    // The first watch proves the permissions: a 403 here is one line and an exit.
    let mut stream = Some(cluster.watch_pods(&sel, None).await?);
    progress(&format!(
        "recording pods on node {} for {}",
        opts.node,
        humantime::format_duration(left)
    ));

    let deadline = Some(Instant::now() + left);
    // A DaemonSet's stderr is a log: the plain line, every 30 seconds.
    let mut meter = Progress::new();
    let mut tick = interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut place = interval(Duration::from_secs(1));
    place.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut checkpoint = interval(opts.checkpoint);
    checkpoint.set_missed_tick_behavior(MissedTickBehavior::Skip);
    checkpoint.tick().await;
    let mut workloads: BTreeMap<String, Workload> = BTreeMap::new();
    let mut resume_from: Option<String> = None;
    let mut rewatch_at: Option<Instant> = None;

    let stop = loop {
        tokio::select! {
            _ = engine.recorder().readable() => engine.recorder_mut().drain(),
            _ = tick.tick() => engine.recorder_mut().tick(&mut meter)?,
            _ = place.tick() => {
                for p in engine.place()?.targeted {
                    progress(&format!("recording pod {p}"));
                }
            }
            _ = checkpoint.tick() => {
                engine.checkpoint(&opts.output, &opts.node)?;
            }
            ev = next_event(&mut stream) => match ev {
                Some(Ok(PodEvent::Applied(p))) => {
                    let uid = p.metadata.uid.clone().unwrap_or_default();
                    let w = match workloads.get(&uid) {
                        Some(w) => w.clone(),
                        None => {
                            let w = cluster.workload(&p).await?;
                            workloads.insert(uid, w.clone());
                            w
                        }
                    };
                    let new = !engine.knows(&p);
                    engine.apply(*p, w);
                    if new {
                        for key in engine.place()?.targeted {
                            progress(&format!("recording pod {key}"));
                        }
                    }
                }
                // A deleted pod's recording stays: its replicas' profile set keeps it.
                Some(Ok(PodEvent::Deleted(_))) => {}
                Some(Ok(PodEvent::InitialListDone { resource_version }))
                | Some(Ok(PodEvent::Bookmark { resource_version })) => {
                    resume_from = Some(resource_version);
                }
                Some(Ok(PodEvent::Expired)) => {
                    resume_from = None;
                    stream = None;
                    rewatch_at = Some(Instant::now());
                }
                Some(Err(e)) => {
                    progress(&format!("watch failed, watching again: {e}"));
                    stream = None;
                    rewatch_at = Some(Instant::now() + REWATCH);
                }
                None => {
                    stream = None;
                    rewatch_at = Some(Instant::now() + REWATCH);
                }
            },
            _ = until(rewatch_at) => {
                rewatch_at = None;
                match cluster.watch_pods(&sel, resume_from.as_deref()).await {
                    Ok(s) => stream = Some(s),
                    Err(e) => {
                        progress(&format!("watch failed, retrying: {e}"));
                        rewatch_at = Some(Instant::now() + REWATCH);
                    }
                }
            }
            _ = until(deadline) => break Stop::Duration,
            s = signals.recv() => break Stop::Signal(s),
        }
    };
    meter.finish();
    drop(stream);
    let (index, warnings) = engine.finish(&opts.output, &opts.node)?;
    progress(&format!(
        "window closed ({stop}): {} profile set(s) in {}",
        index.sets.len(),
        opts.output.display()
    ));
    if let (Some(server), Stop::Duration) = (&server, &stop) {
        // The results stay available for `profgen pull` until the DaemonSet is removed.
        let s = signals.recv().await;
        progress(&format!("{s} received, exiting"));
        server.abort();
    }
    Ok(Summary {
        index,
        stop,
        warnings,
    })
}

async fn next_event(
    stream: &mut Option<futures::stream::BoxStream<'static, Result<PodEvent, K8sError>>>,
) -> Option<Result<PodEvent, K8sError>> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

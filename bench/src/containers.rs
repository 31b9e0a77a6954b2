//! Section e): `profgen agent`'s CPU and memory during its learning window while short
//! containers of its node's pods start, run and exit, one after another.
//!
//! The pods are replicas of a captured coredns pod (`pods`), sent by a stand-in API server
//! (`profgen_testkit::fake_api`) as their watch's initial events; each pod's cgroup is made where the kubelet's
//! systemd driver makes it before its first container, and each container is a runc
//! container in the cgroup containerd would give it, named by the id in the pod's status.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use profgen::{k8s::profiles::Index, model::Recording, verify::runc::unique_id};

use profgen_testkit::{
    busybox,
    fake_api::{self, Reply},
};

use crate::{
    pods::{self, BenchPod, Selection},
    profgen_bin,
    report::ContainersSection,
};

/// What each container does: a few busybox commands, then it exits.
const SCRIPT: &str = "/bin/busybox uname -a >/dev/null; \
    /bin/busybox cat /proc/self/status >/dev/null; /bin/busybox ls / >/dev/null; \
    /bin/busybox sleep 0.2";

pub fn bench(containers: usize, rounds: usize) -> Result<ContainersSection> {
    let busybox = busybox::static_busybox().context(
        "no statically linked busybox (apt-get install busybox-static): the containers' rootfs needs one",
    )?;
    let work = tempfile::tempdir()?;
    let bundle = busybox::bundle(&work.path().join("bundle"), &busybox, SCRIPT)?;
    let (pods, selection) = pods::replicas(pods::WATCH_CAPTURE, containers, std::process::id())?;
    // The pods' watch; anything else (the ReplicaSet the agent asks for to name the workload)
    // is not found, so the agent names the workload from the pod alone, as it does without
    // that permission.
    let watch = pods::watch_body(pods::WATCH_CAPTURE, &pods)?;
    let pods_path = format!("/api/v1/namespaces/{}/pods", selection.namespace);
    let api = fake_api::serve(move |path, query| {
        if path == pods_path && query.contains("watch=true") {
            Reply::Watch(watch.clone())
        } else {
            let name = path.rsplit('/').next().unwrap_or("");
            Reply::Json {
                status: 404,
                body: fake_api::not_found("apps", "replicasets", name),
            }
        }
    })?;
    let kubeconfig = fake_api::kubeconfig(work.path(), &api.url, "")?;
    let _pod_cgroups = PodCgroups::create(&pods)?;
    eprintln!(
        "==> containers: {containers} pods of one short busybox container each under `profgen agent`, {rounds} rounds"
    );
    let mut sec = ContainersSection {
        containers,
        rounds,
        untraced_wall_s: Vec::new(),
        recorded_wall_s: Vec::new(),
        agent_cpu_s: Vec::new(),
        agent_start_cpu_s: Vec::new(),
        agent_total_cpu_s: Vec::new(),
        agent_rss_mb: Vec::new(),
        containers_recorded: Vec::new(),
        events_lost: 0,
    };
    for round in 1..=rounds {
        sec.untraced_wall_s
            .push(batch(&bundle, &pods)?.as_secs_f64());
        let dir = work.path().join(format!("agent{round}"));
        let agent = Agent::start(&kubeconfig, &selection, &dir, &pods)?;
        let started_cpu = cpu_seconds(agent.pid())?;
        let wall = batch(&bundle, &pods);
        let window_cpu = cpu_seconds(agent.pid())? - started_cpu;
        let usage = agent.stop()?;
        let wall = wall?.as_secs_f64();
        let (found, lost) = recorded(&dir.join("output"))?;
        sec.recorded_wall_s.push(wall);
        sec.agent_cpu_s.push(window_cpu);
        sec.agent_start_cpu_s.push(started_cpu);
        sec.agent_total_cpu_s.push(usage.cpu_s);
        sec.agent_rss_mb.push(usage.max_rss_kb as f64 / 1024.0);
        sec.containers_recorded.push(found);
        sec.events_lost += lost;
        eprintln!(
            "    round {round}: untraced {:.2} s, under the agent {wall:.2} s, agent {window_cpu:.2} s CPU in the window ({started_cpu:.2} s to start, {:.2} s in all), {:.1} MB, {found}/{containers} containers recorded, {lost} events lost",
            sec.untraced_wall_s[round - 1],
            usage.cpu_s,
            usage.max_rss_kb as f64 / 1024.0,
        );
    }
    Ok(sec)
}

/// Containers the agent's profile sets hold (busybox executed in their cgroup), and the
/// events their recordings lost.
fn recorded(output: &Path) -> Result<(usize, u64)> {
    let index: Index = serde_json::from_slice(
        &fs::read(output.join("index.json")).context("the agent wrote no index.json")?,
    )
    .context("reading the agent's index.json")?;
    let (mut found, mut lost) = (0, 0);
    for set in &index.sets {
        let rec = Recording::load(output.join(&set.dir).join("recording.json"))
            .with_context(|| format!("reading the recording of {}", set.dir))?;
        found += busybox::busybox_cgroups(&rec);
        lost += rec.events_lost_total();
    }
    Ok((found, lost))
}

/// Runs one container per pod, one after another, each in its pod's container cgroup, each to
/// its exit; returns the batch's wall time.
fn batch(bundle: &Path, pods: &[BenchPod]) -> Result<Duration> {
    let start = Instant::now();
    for (i, pod) in pods.iter().enumerate() {
        let id = unique_id("profgen-bench-ct");
        busybox::set_cgroups_path(bundle, &pod.container_cgroup)?;
        let out = Command::new("runc")
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .output()
            .context("running runc")?;
        if !out.status.success() {
            let _ = Command::new("runc").args(["delete", "-f", &id]).output();
            bail!(
                "container {i} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(start.elapsed())
}

/// runc (cgroupfs driver on a hybrid host) also makes the parent in every v1 hierarchy and
/// removes only each container's own directory; the empty parents are removed here.
pub fn remove_v1_leftovers(rel: &str) {
    let Ok(entries) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for hierarchy in entries.flatten().map(|e| e.path()) {
        let mut path = rel.trim_start_matches('/').to_owned();
        while !path.is_empty() {
            let _ = fs::remove_dir(hierarchy.join(&path));
            path.truncate(path.rfind('/').unwrap_or(0));
        }
    }
}

/// User+system CPU seconds of a process so far (all its threads), from /proc/PID/stat.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesized command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("parsing /proc/{pid}/stat"))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11)? + ticks(12)?) / hz)
}

/// The pods' cgroups, made as the kubelet makes them before a pod's first container, and
/// removed at the end with what runc made beside them in the v1 hierarchies (only empty
/// directories go, so nothing else's cgroup is touched).
struct PodCgroups(Vec<String>);

impl PodCgroups {
    fn create(pods: &[BenchPod]) -> Result<Self> {
        let mount = profgen::cgroup::cgroup2_mount()?;
        let made = Self(pods.iter().map(|p| p.pod_cgroup.clone()).collect());
        for rel in &made.0 {
            let dir = mount.join(rel.trim_start_matches('/'));
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(made)
    }
}

impl Drop for PodCgroups {
    fn drop(&mut self) {
        for rel in &self.0 {
            remove_v1_leftovers(rel);
        }
    }
}

struct Usage {
    cpu_s: f64,
    max_rss_kb: i64,
}

/// `profgen agent`, its stderr kept (it says which pods it records).
struct Agent {
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
}

impl Agent {
    /// Starts the agent on the pods' node with a window longer than the benchmark, and waits
    /// until it records every pod: its programs are loaded, the watch has sent the pods and
    /// their cgroups are targeted.
    fn start(kubeconfig: &Path, sel: &Selection, dir: &Path, pods: &[BenchPod]) -> Result<Self> {
        let mut child = Command::new(profgen_bin()?)
            .arg("agent")
            .args(["--duration", "1h", "--namespace", &sel.namespace])
            .args(["--selector", &sel.selector, "--node", &sel.node])
            .arg("--state")
            .arg(dir.join("state"))
            .arg("--output")
            .arg(dir.join("output"))
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting profgen agent")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let (pipe, log) = (child.stderr.take(), stderr.clone());
        thread::spawn(move || {
            for line in pipe
                .map(BufReader::new)
                .into_iter()
                .flat_map(BufRead::lines)
                .map_while(Result::ok)
            {
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&(line + "\n"));
            }
        });
        let mut agent = Self {
            child: Some(child),
            stderr,
        };
        let want: Vec<String> = pods
            .iter()
            .map(|p| format!("recording pod {}\n", p.key))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = agent.text();
            if want.iter().all(|w| text.contains(w.as_str())) {
                return Ok(agent);
            }
            let exited = agent.child.as_mut().map(|c| c.try_wait()).transpose()?;
            if Instant::now() > deadline || exited.flatten().is_some() {
                let recording = want.iter().filter(|w| text.contains(w.as_str())).count();
                bail!(
                    "profgen agent did not record the {} pods ({recording} after 60 s):\n{text}",
                    pods.len()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Ends the window early with SIGTERM (the agent writes its profile sets) and returns
    /// its CPU time and peak RSS.
    fn stop(mut self) -> Result<Usage> {
        let Some(child) = self.child.take() else {
            bail!("the agent was already stopped");
        };
        let pid = child.id() as i32;
        // SAFETY: plain kill(2) on our child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let mut status = 0;
        // SAFETY: all-zero is a valid rusage.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: our own child; out-parameters are valid.
        if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } < 0 {
            bail!("waiting for the agent: {}", std::io::Error::last_os_error());
        }
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            // The reader thread may still be copying the last lines.
            thread::sleep(Duration::from_millis(200));
            bail!(
                "profgen agent failed (wait status {status}):\n{}",
                self.text()
            );
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Ok(Usage {
            cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
            max_rss_kb: usage.ru_maxrss,
        })
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

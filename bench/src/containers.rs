//! Section e): the recorder's CPU and memory while short containers come and go below the
//! cgroup it records, as on a node where pods start and exit during a learning window.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use profgen::{cgroup::Cgroup, model::Recording, verify::runc::unique_id};

use crate::{profgen_bin, report::ContainersSection};

/// What each container does: a few busybox commands, then it exits.
const SCRIPT: &str = "/bin/busybox uname -a >/dev/null; \
    /bin/busybox cat /proc/self/status >/dev/null; /bin/busybox ls / >/dev/null; \
    /bin/busybox sleep 0.2";

pub fn bench(containers: usize, rounds: usize) -> Result<ContainersSection> {
    let busybox = busybox().context(
        "no statically linked busybox (apt-get install busybox-static): the containers' rootfs needs one",
    )?;
    let work = tempfile::tempdir()?;
    let bundle = bundle(&work.path().join("bundle"), &busybox)?;
    let rel = format!("/profgen-bench/containers-{}", std::process::id());
    let parent = Cgroup::root()?.path().join(rel.trim_start_matches('/'));
    fs::create_dir_all(&parent)?;
    eprintln!("==> containers: {containers} short busybox containers per batch, {rounds} rounds");
    let mut sec = ContainersSection {
        containers,
        rounds,
        untraced_wall_s: Vec::new(),
        recorded_wall_s: Vec::new(),
        recorder_cpu_s: Vec::new(),
        recorder_start_cpu_s: Vec::new(),
        recorder_total_cpu_s: Vec::new(),
        recorder_rss_mb: Vec::new(),
        containers_recorded: Vec::new(),
        events_lost: 0,
    };
    let result = (|| -> Result<()> {
        for round in 1..=rounds {
            sec.untraced_wall_s
                .push(batch(&bundle, &rel, containers)?.as_secs_f64());
            let rec_path = work.path().join("recording.json");
            let recorder = Recorder::start(&parent, &rec_path, work.path())?;
            let started_cpu = cpu_seconds(recorder.0.id())?;
            let wall = batch(&bundle, &rel, containers);
            let window_cpu = cpu_seconds(recorder.0.id())? - started_cpu;
            let usage = recorder.stop()?;
            let wall = wall?.as_secs_f64();
            let rec = Recording::load(&rec_path).context("reading the recording")?;
            sec.recorded_wall_s.push(wall);
            sec.recorder_cpu_s.push(window_cpu);
            sec.recorder_start_cpu_s.push(started_cpu);
            sec.recorder_total_cpu_s.push(usage.cpu_s);
            sec.recorder_rss_mb.push(usage.max_rss_kb as f64 / 1024.0);
            sec.containers_recorded.push(busybox_cgroups(&rec));
            sec.events_lost += rec.events_lost_total();
            eprintln!(
                "    round {round}: untraced {:.2} s, recorded {wall:.2} s, recorder {window_cpu:.2} s CPU in the window ({started_cpu:.2} s to start, {:.2} s in all), {:.1} MB, {} containers recorded",
                sec.untraced_wall_s[round - 1],
                usage.cpu_s,
                usage.max_rss_kb as f64 / 1024.0,
                busybox_cgroups(&rec)
            );
        }
        Ok(())
    })();
    let _ = fs::remove_dir(&parent);
    remove_v1_leftovers(&rel);
    result.map(|()| sec)
}

/// Runs `n` containers one after another, each in its own cgroup below `parent_rel`, each to
/// its exit; returns the batch's wall time.
fn batch(bundle: &Path, parent_rel: &str, n: usize) -> Result<Duration> {
    let start = Instant::now();
    for i in 0..n {
        let id = unique_id("profgen-bench-ct");
        set_cgroups_path(bundle, &format!("{parent_rel}/c{i}"))?;
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

fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            p.is_file()
                && Command::new("file")
                    .arg(p)
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains("statically linked"))
                    .unwrap_or(true)
        })
}

/// A bundle as the agent tests build it: a rootfs holding a static busybox, `runc spec`'s
/// defaults, read-only root, and the learning seccomp profile (the recording starts at the
/// container's filter, as for a pod).
fn bundle(dir: &Path, busybox: &Path) -> Result<PathBuf> {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        fs::create_dir_all(rootfs.join(d))?;
    }
    fs::copy(busybox, rootfs.join("bin/busybox"))?;
    let out = Command::new("runc")
        .arg("spec")
        .current_dir(dir)
        .output()
        .context("running runc spec")?;
    if !out.status.success() {
        bail!("runc spec failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let path = dir.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&fs::read(&path)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/busybox", "sh", "-c", SCRIPT]);
    spec["root"]["readonly"] = true.into();
    spec["linux"]["seccomp"] = serde_json::from_str(profgen::k8s::agent::LEARNING_PROFILE)?;
    fs::write(&path, serde_json::to_vec_pretty(&spec)?)?;
    Ok(dir.to_owned())
}

fn set_cgroups_path(bundle: &Path, cgroups_path: &str) -> Result<()> {
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&fs::read(&path)?)?;
    spec["linux"]["cgroupsPath"] = cgroups_path.into();
    fs::write(&path, serde_json::to_vec_pretty(&spec)?)?;
    Ok(())
}

/// Cgroups of the recording in which busybox ran: the containers it caught.
fn busybox_cgroups(rec: &Recording) -> usize {
    rec.cgroups
        .iter()
        .filter(|c| {
            c.activity
                .processes
                .iter()
                .any(|p| p.exe.as_bytes() == b"/bin/busybox")
        })
        .count()
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
fn cpu_seconds(pid: u32) -> Result<f64> {
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

struct Usage {
    cpu_s: f64,
    max_rss_kb: i64,
}

struct Recorder(Child);

impl Recorder {
    fn start(cgroup: &Path, out: &Path, work: &Path) -> Result<Self> {
        let ready = work.join("ready");
        let _ = fs::remove_file(&ready);
        let mut child = Command::new(profgen_bin()?)
            .args(["record", "--cgroup"])
            .arg(cgroup)
            .arg("--out")
            .arg(out)
            .arg("--ready-file")
            .arg(&ready)
            .stderr(Stdio::null())
            .spawn()?;
        crate::child::wait_ready(&mut child, &ready)?;
        Ok(Self(child))
    }

    /// Stops the recorder (it writes the recording) and returns its CPU time and peak RSS.
    fn stop(self) -> Result<Usage> {
        let pid = self.0.id() as i32;
        // SAFETY: plain kill(2) on our child.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let mut status = 0;
        // SAFETY: all-zero is a valid rusage.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: our own child; out-parameters are valid.
        if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } < 0 {
            bail!(
                "waiting for the recorder: {}",
                std::io::Error::last_os_error()
            );
        }
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            bail!("profgen record failed (wait status {status})");
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Ok(Usage {
            cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
            max_rss_kb: usage.ru_maxrss,
        })
    }
}

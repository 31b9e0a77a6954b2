//! Measuring a runtime on this machine: the runtime's own `run`, the kernel log read from
//! `/dev/kmsg` from where it stood before the run (nothing is cleared).

use std::{
    fs,
    io::{ErrorKind, Read, Seek, SeekFrom},
    os::unix::fs::{symlink, OpenOptionsExt},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use super::{
    bundle::{self, Variant, VARIANTS},
    io, kmsg, MeasureError, Run,
};

const PRINTK_RATELIMIT: &str = "/proc/sys/kernel/printk_ratelimit";

/// `kernel.printk_ratelimit` at 0 until dropped, then as it was.
struct NoRateLimit(String);

impl NoRateLimit {
    fn set() -> Result<Self, MeasureError> {
        let was = fs::read_to_string(PRINTK_RATELIMIT).map_err(io(PRINTK_RATELIMIT))?;
        fs::write(PRINTK_RATELIMIT, "0").map_err(io(format!("writing {PRINTK_RATELIMIT}")))?;
        Ok(Self(was))
    }
}

impl Drop for NoRateLimit {
    fn drop(&mut self) {
        let _ = fs::write(PRINTK_RATELIMIT, self.0.trim());
    }
}

/// `/dev/kmsg` from its current end.
struct KmsgTail(fs::File);

impl KmsgTail {
    fn open() -> Result<Self, MeasureError> {
        let mut f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .map_err(io("opening /dev/kmsg"))?;
        f.seek(SeekFrom::End(0)).map_err(io("seeking /dev/kmsg"))?;
        Ok(Self(f))
    }

    /// Every record logged since, one a line (the message part of each). Waits until the
    /// kernel's audit thread has printed what was queued: no new record for 300 ms.
    fn read_settled(&mut self) -> Result<String, MeasureError> {
        let mut out = String::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let mut got = false;
            loop {
                match self.0.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        got = true;
                        let rec = String::from_utf8_lossy(&buf[..n]);
                        let first = rec.lines().next().unwrap_or("");
                        let msg = first.split_once(';').map_or(first, |(_, m)| m);
                        out.push_str(msg);
                        out.push('\n');
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // Records were overwritten before they were read.
                    Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                        out.push_str("audit: audit_lost=kmsg-overwritten\n");
                    }
                    Err(e) => return Err(io("reading /dev/kmsg")(e)),
                }
            }
            if !got {
                return Ok(out);
            }
        }
    }
}

/// The measuring bundle below `dir`: one root filesystem, a bundle per variant.
fn write_bundles(dir: &Path, busybox: &Path) -> Result<(), MeasureError> {
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).map_err(io("creating the root filesystem"))?;
    fs::copy(
        busybox,
        rootfs.join(bundle::BUSYBOX.trim_start_matches('/')),
    )
    .map_err(io(format!("copying {}", busybox.display())))?;
    symlink(
        "busybox",
        rootfs.join(bundle::ENTRYPOINT.trim_start_matches('/')),
    )
    .map_err(io("linking the entrypoint"))?;
    for (path, text) in bundle::ROOTFS_FILES {
        let p = rootfs.join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().expect("below the root")).map_err(io("creating /etc"))?;
        fs::write(&p, text).map_err(io(format!("writing {}", p.display())))?;
    }
    for v in VARIANTS {
        let b = dir.join(v.label());
        fs::create_dir_all(&b).map_err(io("creating a bundle"))?;
        fs::write(
            b.join("config.json"),
            bundle::config_json(v, &rootfs.to_string_lossy()),
        )
        .map_err(io("writing config.json"))?;
    }
    Ok(())
}

/// Runs `runtime` (runc, or any runtime with runc's command line) `runs` times per variant
/// and returns what each run logged. Root only; `busybox` must be a static busybox.
pub fn measure(runtime: &Path, busybox: &Path, runs: usize) -> Result<Vec<Run>, MeasureError> {
    let dir = tempfile::tempdir().map_err(io("creating a temp dir"))?;
    write_bundles(dir.path(), busybox)?;
    let state = dir.path().join("state");
    let name = runtime
        .file_name()
        .map_or("runtime".into(), |n| n.to_string_lossy().into_owned());
    let _limit = NoRateLimit::set()?;
    let mut out = Vec::new();
    for variant in VARIANTS {
        for index in 1..=runs {
            out.push(run_once(
                runtime,
                &name,
                dir.path(),
                &state,
                variant,
                index,
            )?);
        }
    }
    Ok(out)
}

fn run_once(
    runtime: &Path,
    name: &str,
    dir: &Path,
    state: &Path,
    variant: Variant,
    index: usize,
) -> Result<Run, MeasureError> {
    let id = format!(
        "profgen-measure-{}-{}-{index}",
        std::process::id(),
        variant.label()
    );
    let mut tail = KmsgTail::open()?;
    let failed = match variant.create_start {
        false => lifecycle_run(runtime, dir, state, variant, &id)?,
        true => lifecycle_create_start(runtime, dir, state, variant, &id)?,
    };
    let log = tail.read_settled()?;
    if let Some(detail) = failed {
        return Err(MeasureError::RunFailed {
            runtime: name.to_owned(),
            variant: variant.label(),
            index,
            detail,
        });
    }
    let processes = kmsg::runtime_calls(&log).map_err(|source| MeasureError::Log {
        variant: variant.label(),
        index,
        source,
    })?;
    Ok(Run {
        variant,
        index,
        processes,
    })
}

fn runtime_cmd(runtime: &Path, state: &Path) -> Command {
    let mut cmd = Command::new(runtime);
    cmd.arg("--root").arg(state).stdin(Stdio::null());
    cmd
}

fn describe(out: &std::process::Output) -> Option<String> {
    (!out.status.success()).then(|| {
        format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

/// `run`: the runtime returns when the container's process exits. `Some(why)` when it failed.
fn lifecycle_run(
    runtime: &Path,
    dir: &Path,
    state: &Path,
    variant: Variant,
    id: &str,
) -> Result<Option<String>, MeasureError> {
    let out = runtime_cmd(runtime, state)
        .args(["run", "--bundle"])
        .arg(dir.join(variant.label()))
        .arg(id)
        .output()
        .map_err(io(format!("running {}", runtime.display())))?;
    Ok(describe(&out))
}

/// `create`, `start`, waiting for the process to stop, `delete`. The container's stdio are
/// files: a pipe would keep `create` waiting for the container's end.
fn lifecycle_create_start(
    runtime: &Path,
    dir: &Path,
    state: &Path,
    variant: Variant,
    id: &str,
) -> Result<Option<String>, MeasureError> {
    let stdio = dir.join(format!("{id}.log"));
    let file = || {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stdio)
            .map_err(io(format!("opening {}", stdio.display())))
    };
    let create = runtime_cmd(runtime, state)
        .args(["create", "--bundle"])
        .arg(dir.join(variant.label()))
        .arg(id)
        .stdout(file()?)
        .stderr(file()?)
        .status()
        .map_err(io(format!("running {} create", runtime.display())))?;
    if !create.success() {
        let text = fs::read_to_string(&stdio).unwrap_or_default();
        return Ok(Some(format!("create: {create}: {}", text.trim())));
    }
    let start = runtime_cmd(runtime, state)
        .args(["start", id])
        .output()
        .map_err(io(format!("running {} start", runtime.display())))?;
    for _ in 0..100 {
        let st = runtime_cmd(runtime, state)
            .args(["state", id])
            .output()
            .map_err(io(format!("running {} state", runtime.display())))?;
        if String::from_utf8_lossy(&st.stdout).contains("\"stopped\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = runtime_cmd(runtime, state)
        .args(["delete", "--force", id])
        .output();
    Ok(describe(&start).map(|d| format!("start: {d}")))
}

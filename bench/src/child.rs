//! Child processes measured to their end (wall time and peak RSS from `wait4`), and where the
//! large benchmarks keep their files.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

/// One child process run to its end: wall time and peak RSS (of it and the descendants it
/// waited for; the workload under `record` is a few MB, so for `record` this is the
/// recorder's).
pub struct Measured {
    pub wall: Duration,
    pub max_rss_kb: i64,
}

pub fn measure(cmd: &mut Command) -> Result<Measured> {
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let mut status = 0;
    // SAFETY: all-zero is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: our own child; out-parameters are valid.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if pid < 0 {
        bail!("waiting for {cmd:?}: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{cmd:?} failed (wait status {status})");
    }
    Ok(Measured {
        wall,
        max_rss_kb: usage.ru_maxrss,
    })
}

/// A disk-backed scratch directory for a million files or a recording of them (`/tmp` may be
/// a small tmpfs): `PROFGEN_BENCH_DIR`, else `/var/tmp`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("PROFGEN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp"))
}

/// Waits until the recorder `child` (started with `--ready-file ready`) has attached its
/// programs; a recorder that exits or takes more than 30 s is killed and reported.
pub fn wait_ready(child: &mut Child, ready: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the recorder did not start");
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

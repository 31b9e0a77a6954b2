//! Booting Debian's kernel under qemu (software emulation) with an initramfs, and reading the
//! serial console until the guest powers off.

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use super::{find_kernel, io, which, VmError, VmOptions};

/// The kernel and the qemu binary `opts` name, found.
pub(crate) fn kernel_and_qemu(opts: &VmOptions) -> Result<(PathBuf, PathBuf), VmError> {
    let kernel = match &opts.kernel {
        Some(k) => k.clone(),
        None => find_kernel().ok_or_else(|| VmError::NoKernel("/boot/vmlinuz-*".into()))?,
    };
    let qemu = which(&opts.qemu)
        .ok_or_else(|| VmError::MissingTool(opts.qemu.display().to_string(), "qemu-system-x86"))?;
    Ok((kernel, qemu))
}

pub(crate) struct BootArgs<'a> {
    pub qemu: &'a Path,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub memory_mb: u32,
    /// The kernel command line.
    pub append: &'a str,
    pub timeout: Duration,
    /// The console line that marks the end of booting (for [`Boot::boot_secs`]).
    pub first_marker: &'a str,
}

/// What the guest printed.
pub(crate) struct Boot {
    pub console: String,
    pub qemu_stderr: String,
    /// From qemu's start to the first marker line (0 when none came).
    pub boot_secs: f64,
    pub total_secs: f64,
}

/// Boots the guest and collects its console until it powers off; kills it at the timeout.
pub(crate) fn boot(a: &BootArgs<'_>) -> Result<Boot, VmError> {
    let start = Instant::now();
    let mut child = Command::new(a.qemu)
        .args([
            "-accel",
            "tcg",
            "-m",
            &a.memory_mb.to_string(),
            "-nographic",
            "-no-reboot",
        ])
        .args([
            "-smp", "1", "-nic", "none", "-monitor", "none", "-serial", "stdio",
        ])
        .arg("-kernel")
        .arg(a.kernel)
        .arg("-initrd")
        .arg(a.initrd)
        .args(["-append", a.append])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io("starting qemu"))?;

    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            if tx
                .send((Instant::now(), String::from_utf8_lossy(&line).into_owned()))
                .is_err()
            {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let mut console = String::new();
    let mut first_marker: Option<Instant> = None;
    let deadline = start + a.timeout;
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok((at, line)) => {
                if first_marker.is_none() && line.contains(a.first_marker) {
                    first_marker = Some(at);
                }
                console.push_str(&line);
                console.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
        }
    }
    if timed_out {
        let _ = child.kill();
    }
    let _ = child.wait();
    let _ = reader.join();
    let qemu_stderr = err_reader.join().unwrap_or_default();
    if timed_out {
        let tail: Vec<&str> = console.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(VmError::Timeout(
            a.timeout,
            format!("{}\n{qemu_stderr}", tail.join("\n")),
        ));
    }
    Ok(Boot {
        console,
        qemu_stderr,
        boot_secs: first_marker.map_or(0.0, |t| (t - start).as_secs_f64()),
        total_secs: start.elapsed().as_secs_f64(),
    })
}

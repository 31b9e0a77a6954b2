//! Proving an AppArmor profile: the real parser ([`parser`]), and enforcement in a kernel that
//! has AppArmor ([`enforce`]).
//!
//! The host kernel may lack AppArmor; Debian's `linux-image-amd64` has it and boots under
//! `qemu-system-x86_64` with software emulation. [`enforce`] builds an initramfs holding
//! busybox as init, the demo workload (Debian's nginx, `demo/nginx.conf`, `demo/site`), the
//! parser and `aa-exec`, the AppArmor include tree, the profile, the HTTP test suite and the
//! probes; boots it; loads the profile in enforce mode; runs nginx confined and the suite
//! against it; counts `apparmor="DENIED"` kernel log lines; then runs probes confined by the
//! same profile that must be denied. The facts come back over the serial console
//! ([`guest`]); [`VmReport::failures`] judges them.

mod cpio;
mod guest;
mod image;
pub mod parser;

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

pub use guest::Denied;
pub use image::ImageError;

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("no kernel found (looked for {0}); install Debian's linux-image-amd64")]
    NoKernel(String),
    #[error("{0} not found; install Debian's `{1}` package")]
    MissingTool(String, &'static str),
    #[error("building the initramfs: {0}")]
    Image(#[from] ImageError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the VM did not finish within {0:?}; last console lines:\n{1}")]
    Timeout(Duration, String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VmError {
    let what = what.into();
    move |source| VmError::Io { what, source }
}

#[derive(Clone, Debug)]
pub struct VmOptions {
    /// `vmlinuz`; `None`: the newest `/boot/vmlinuz-*`.
    pub kernel: Option<PathBuf>,
    pub qemu: PathBuf,
    pub memory_mb: u32,
    pub timeout: Duration,
    /// nginx's config with `@PORT@` where the port goes (`demo/nginx.conf`).
    pub nginx_conf: PathBuf,
    /// The static site, served from `/srv/site`.
    pub site: PathBuf,
    pub port: u16,
    /// Fetched with busybox `wget` in the guest; each must succeed.
    pub urls: Vec<String>,
    /// The HTTP test suite binary (`demo-suite`), run as `SUITE --url http://127.0.0.1:PORT`.
    pub suite: Option<PathBuf>,
    /// Appended to the kernel command line.
    pub extra_kernel_args: String,
}

impl VmOptions {
    /// Defaults for the demo: paths relative to the workspace root `repo`.
    pub fn demo(repo: &Path) -> Self {
        Self {
            kernel: None,
            qemu: PathBuf::from("qemu-system-x86_64"),
            memory_mb: 512,
            timeout: Duration::from_secs(240),
            nginx_conf: repo.join("demo/nginx.conf"),
            site: repo.join("demo/site"),
            port: 8080,
            urls: vec![
                "/".into(),
                "/index.html".into(),
                "/assets/app.js".into(),
                "/uuid-generator".into(),
            ],
            suite: None,
            extra_kernel_args: String::new(),
        }
    }
}

/// What happened in the guest, as reported by it.
#[derive(Clone, Debug, Default)]
pub struct VmReport {
    /// Seconds from starting qemu to the guest's first marker, and to the end.
    pub boot_secs: f64,
    pub total_secs: f64,
    pub apparmor_enabled: bool,
    pub lsm: String,
    pub profile_loaded: bool,
    pub parser_output: Vec<String>,
    pub nginx_ready: bool,
    /// nginx's AppArmor label (`NAME (enforce)` when confined).
    pub nginx_label: String,
    pub urls_ok: usize,
    pub urls_failed: Vec<String>,
    /// `None` when no suite was run.
    pub suite_exit: Option<i32>,
    pub suite_output: Vec<String>,
    pub nginx_alive_after: bool,
    pub nginx_output: Vec<String>,
    /// DENIED lines while the workload and its tests ran (expected: none).
    pub workload_denied: Vec<String>,
    /// Per probe: (name, exit code, DENIED lines). Expected: non-zero exit, DENIED lines.
    pub probes: Vec<(String, i32, Vec<String>)>,
    pub write_probe_file_exists: bool,
    pub finished: bool,
    pub console: String,
}

impl VmReport {
    /// Every fact that does not hold; empty when the profile is proven.
    pub fn failures(&self, expected_urls: usize) -> Vec<String> {
        let mut f = Vec::new();
        let mut check = |ok: bool, msg: String| {
            if !ok {
                f.push(msg)
            }
        };
        check(self.finished, "the guest did not finish its checks".into());
        check(
            self.apparmor_enabled,
            format!("AppArmor not enabled in the guest (lsm: {})", self.lsm),
        );
        check(
            self.profile_loaded,
            format!("profile not loaded: {}", self.parser_output.join(" | ")),
        );
        check(self.nginx_ready, "nginx never answered".into());
        check(
            self.nginx_label.contains("(enforce)"),
            format!("nginx label {:?}, not enforce", self.nginx_label),
        );
        check(
            self.urls_ok == expected_urls,
            format!(
                "{}/{} URLs fetched; failed: {:?}",
                self.urls_ok, expected_urls, self.urls_failed
            ),
        );
        if let Some(rc) = self.suite_exit {
            check(
                rc == 0,
                format!("test suite exited {rc}: {}", self.suite_output.join(" | ")),
            );
        }
        check(self.nginx_alive_after, "nginx died during the tests".into());
        check(
            self.workload_denied.is_empty(),
            format!(
                "{} DENIED lines under the workload: {:?}",
                self.workload_denied.len(),
                self.workload_denied
            ),
        );
        for (name, rc, denied) in &self.probes {
            check(*rc != 0, format!("probe {name} succeeded (exit 0)"));
            check(!denied.is_empty(), format!("probe {name}: no DENIED line"));
        }
        check(
            self.probes.len() == 2,
            format!("{} probes reported, expected 2", self.probes.len()),
        );
        check(
            !self.write_probe_file_exists,
            "the write probe created its file under /usr".into(),
        );
        f
    }
}

/// The newest `/boot/vmlinuz-*`.
pub fn find_kernel() -> Option<PathBuf> {
    let mut ks: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    ks.sort();
    ks.pop()
}

fn which(name: &Path) -> Option<PathBuf> {
    if name.is_absolute() {
        return name.is_file().then(|| name.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/sbin".into(),
            "/bin".into(),
        ])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn tool(name: &str, package: &'static str) -> Result<PathBuf, VmError> {
    which(Path::new(name)).ok_or_else(|| VmError::MissingTool(name.into(), package))
}

/// A guest user database: nginx resolves `user www-data` and switches to it.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n";
/// A stand-in the read probe must not be able to read.
const SHADOW: &str = "root:*:19000:0:99999:7:::\n";

/// Builds the initramfs for `profile_text` (profile `name`) into `out`.
pub fn build_initramfs(
    profile_text: &str,
    name: &str,
    opts: &VmOptions,
    out: &Path,
) -> Result<(), VmError> {
    let busybox = tool("busybox", "busybox-static")?;
    let nginx = tool("nginx", "nginx-light")?;
    let parser = tool("apparmor_parser", "apparmor")?;
    let aa_exec = tool("aa-exec", "apparmor")?;
    let mut img = image::Image::default();
    for p in [&nginx, &parser, &aa_exec] {
        img.program(p)?;
    }
    if let Some(suite) = &opts.suite {
        for lib in image::ldd(suite)? {
            img.host(&lib)?;
        }
        img.copy_to(suite, guest::SUITE_PATH, 0o755)?;
    }
    img.copy_to(&busybox, "/bin/busybox", 0o755)?;
    for d in ["abi", "tunables", "abstractions"] {
        img.host(&Path::new("/etc/apparmor.d").join(d))?;
    }
    img.host(Path::new("/etc/nginx/mime.types"))?;
    let conf = std::fs::read_to_string(&opts.nginx_conf)
        .map_err(io(format!("reading {}", opts.nginx_conf.display())))?
        .replace("@PORT@", &opts.port.to_string());
    img.write("/etc/nginx/nginx.conf", 0o644, conf.as_bytes());
    img.copy_dir_to(&opts.site, "/srv/site")?;
    img.write("/etc/passwd", 0o644, PASSWD.as_bytes());
    img.write("/etc/group", 0o644, GROUP.as_bytes());
    img.write(guest::SHADOW, 0o640, SHADOW.as_bytes());
    for d in ["/var/log/nginx", "/var/lib/nginx", "/root", "/tmp", "/run"] {
        img.mkdir(d, 0o755);
    }
    img.write(guest::PROFILE_PATH, 0o644, profile_text.as_bytes());
    let script = guest::init_script(&guest::Script {
        name,
        port: opts.port,
        urls: &opts.urls,
        suite: opts.suite.is_some(),
    });
    img.write("/init", 0o755, script.as_bytes());
    let mut f = std::fs::File::create(out).map_err(io(format!("creating {}", out.display())))?;
    img.finish(&mut f).map_err(io("writing the initramfs"))
}

/// Boots the guest with the profile and reports what happened. Errors only when the VM
/// could not be built or run; a profile that fails shows up in [`VmReport::failures`].
pub fn enforce(profile_text: &str, name: &str, opts: &VmOptions) -> Result<VmReport, VmError> {
    crate::synth::apparmor::validate_name(name).map_err(|e| VmError::Io {
        what: "profile name".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let kernel = match &opts.kernel {
        Some(k) => k.clone(),
        None => find_kernel().ok_or_else(|| VmError::NoKernel("/boot/vmlinuz-*".into()))?,
    };
    let qemu = which(&opts.qemu)
        .ok_or_else(|| VmError::MissingTool(opts.qemu.display().to_string(), "qemu-system-x86"))?;
    let dir = tempfile::tempdir().map_err(io("creating a temp dir"))?;
    let initrd = dir.path().join("initramfs.cpio.gz");
    build_initramfs(profile_text, name, opts, &initrd)?;

    let append = format!(
        "console=ttyS0 quiet apparmor=1 security=apparmor panic=-1 rdinit=/init {}",
        opts.extra_kernel_args
    );
    let start = Instant::now();
    let mut child = Command::new(qemu)
        .args([
            "-accel",
            "tcg",
            "-m",
            &opts.memory_mb.to_string(),
            "-nographic",
            "-no-reboot",
        ])
        .args([
            "-smp", "1", "-nic", "none", "-monitor", "none", "-serial", "stdio",
        ])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", &append])
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
    let deadline = start + opts.timeout;
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok((at, line)) => {
                if first_marker.is_none() && line.contains("PROFGEN booted") {
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
    let qemu_err = err_reader.join().unwrap_or_default();
    if timed_out {
        let tail: Vec<&str> = console.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(VmError::Timeout(
            opts.timeout,
            format!("{}\n{qemu_err}", tail.join("\n")),
        ));
    }

    let mut report = report_from(&console);
    report.total_secs = start.elapsed().as_secs_f64();
    report.boot_secs = first_marker.map_or(0.0, |t| (t - start).as_secs_f64());
    if !qemu_err.trim().is_empty() {
        report
            .console
            .push_str(&format!("\n[qemu stderr] {qemu_err}"));
    }
    Ok(report)
}

fn report_from(console: &str) -> VmReport {
    let (facts, denied) = guest::parse(console);
    let mut r = VmReport {
        console: console.to_string(),
        ..Default::default()
    };
    for (k, v) in facts {
        match k.as_str() {
            "apparmor-enabled" => r.apparmor_enabled = v.trim() == "Y",
            "lsm" => r.lsm = v,
            "load-rc" => r.profile_loaded = v.trim() == "0",
            "loaded" => r.profile_loaded &= v.trim() == "1",
            "parser-line" => r.parser_output.push(v),
            "ready" => r.nginx_ready = v.trim() == "1",
            "label" => r.nginx_label = v,
            "urls-ok" => r.urls_ok = v.trim().parse().unwrap_or(0),
            "url-failed" => r.urls_failed.push(v),
            "suite-rc" => r.suite_exit = v.trim().parse().ok(),
            "suite-line" => r.suite_output.push(v),
            "nginx-alive" => r.nginx_alive_after = v.trim() == "1",
            "nginx-line" => r.nginx_output.push(v),
            "probe-rc" => {
                let (name, rc) = v.split_once(' ').unwrap_or((&v, "-1"));
                let lines = denied
                    .iter()
                    .filter(|d| d.phase == name)
                    .map(|d| d.line.clone())
                    .collect();
                r.probes
                    .push((name.to_string(), rc.trim().parse().unwrap_or(-1), lines));
            }
            "write-usr-exists" => r.write_probe_file_exists = v.trim() == "1",
            "done" => r.finished = true,
            _ => {}
        }
    }
    r.workload_denied = denied
        .iter()
        .filter(|d| d.phase == "workload")
        .map(|d| d.line.clone())
        .collect();
    r
}

/// The profile as the VM harness needs it to stand in for the container runtime (not from
/// the recording, not in the committed profile):
/// * The harness sends nginx's stdout and stderr to a file, where a container runtime gives a
///   pipe (pipes are not mediated by AppArmor, files are): nginx's `open("/dev/stdout")`
///   reaches that file, so the file is allowed.
/// * nginx runs as full root in the VM, while the container's bounding set held only
///   `container_caps`: the kernel refused anything else in the container before AppArmor was
///   asked. `deny capability` rules (not logged) give the VM the same refusals; capabilities
///   the profile allows are left alone.
pub fn for_the_vm(profile: &str, container_caps: &[&str]) -> String {
    let body = profile.trim_end().strip_suffix('}').unwrap_or(profile);
    let mut out = format!(
        "{body}\n  # VM harness only: nginx's stdout file (a pipe under a container runtime)\n  /var/log/nginx/console.log w,\n  # VM harness only: the container's capability bounding set\n"
    );
    for cap in crate::model::CAPABILITY_NAMES {
        if !container_caps.contains(&cap) && !profile.contains(&format!("capability {cap},")) {
            out.push_str(&format!("  deny capability {cap},\n"));
        }
    }
    out.push_str("}\n");
    out
}

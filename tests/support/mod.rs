//! Shared harness of the `e2e_*` tests: the real `profgen` binary, a recorder process that is
//! always stopped, cgroups that are always removed, and the checks every failing command
//! must pass (one error line, the documented exit code).
//!
//! Included with `#[path = "support/mod.rs"] mod support;`, so each test uses only part of it.
#![allow(dead_code)]

pub mod cluster;

use std::{
    env, fs,
    io::Read as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use profgen::model::{Abi, CgroupRecord, Recording};

/// Exit codes documented in `profgen --help`.
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_VERIFY_FAILED: i32 = 3;
pub const EXIT_NO_PERMISSION: i32 = 4;

/// How long the recorder may take to load and attach its programs.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Skips with a printed reason, except under `CI=true`, where a skip would hide a regression.
pub fn skip(reason: &str) {
    if env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("skipped: {reason}");
}

/// Effective uid 0 (capabilities alone are not what the brief of these tests is about).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// The target directory and profile this test binary was built into:
/// `<target>/<profile>/deps/<test>-<hash>`.
fn target_and_profile() -> (PathBuf, PathBuf, String) {
    let exe = env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary below <target>/<profile>/deps")
        .to_owned();
    let target_dir = profile_dir.parent().expect("target directory").to_owned();
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile name")
        .to_owned();
    (target_dir, profile_dir, profile)
}

/// Builds `bin` of `package` into this test's own target directory and profile and returns
/// its path. A test of another package cannot use `CARGO_BIN_EXE_*`, and `cargo test` does not
/// build other packages' binaries; asking cargo is a no-op when the binary is up to date, so a
/// stale binary is never what gets tested.
fn cargo_binary(package: &str, bin: &str) -> PathBuf {
    let (target_dir, profile_dir, profile) = target_and_profile();
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package, "--bin", bin])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    // `cargo test` gives this process its package's CARGO_MANIFEST_DIR, CARGO_PKG_*, …; some
    // build scripts (ring's) rerun when such a variable changes, so passing them on would
    // make this build and a plain `cargo build` in the same target directory rebuild each
    // other's dependencies every time. The user's own CARGO_* settings are kept.
    const SET_BY_CARGO_TEST: [&str; 6] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_RUSTC_CURRENT_DIR",
        "CARGO_BIN_NAME",
    ];
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_") || SET_BY_CARGO_TEST.contains(&&*key) {
            cmd.env_remove(&*key);
        }
    }
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
    let path = profile_dir.join(bin);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The `profgen` binary under test; `PROFGEN_BIN` overrides the build.
pub fn profgen_binary() -> PathBuf {
    match env::var_os("PROFGEN_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => cargo_binary("profiler", "profgen"),
    }
}

/// The benchmark binary, whose hidden `create-files` mode is the loss workload.
pub fn bench_binary() -> PathBuf {
    cargo_binary("profgen-bench", "profgen-bench")
}

/// The demo's HTTP test suite, the command `profgen verify` runs against the container.
pub fn demo_suite_binary() -> PathBuf {
    cargo_binary("profgen-demo", "demo-suite")
}

/// The reference servers' suites (`profgen-servers`), run inside the AppArmor VM.
pub fn server_suite_binary() -> PathBuf {
    cargo_binary("profgen-servers", "server-suite")
}

/// Runs a command to completion, capturing its output, with stdin closed.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that a command succeeded, showing what it printed when it did not.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Asserts how a failing profgen command reported its failure: the documented exit code, and
/// exactly one `profgen: error:` line on stderr, the last one, containing each of `mentions`
/// (case-insensitive). Other stderr lines may only be profgen's own progress lines: no panic,
/// no backtrace, no multi-line error dump.
pub fn assert_error(what: &str, out: &Output, code: i32, mentions: &[&str]) -> String {
    let stderr = text(&out.stderr);
    let context = || {
        format!(
            "{what}: status {}\n--- stdout\n{}--- stderr\n{stderr}",
            out.status,
            text(&out.stdout)
        )
    };
    assert_eq!(out.status.code(), Some(code), "exit code; {}", context());
    let lines: Vec<&str> = stderr.lines().collect();
    let errors: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("profgen: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line; {}", context());
    assert_eq!(
        lines.last(),
        Some(errors[0]),
        "the error line is the last line; {}",
        context()
    );
    for line in &lines {
        assert!(
            line.starts_with("profgen: "),
            "stray stderr line {line:?}; {}",
            context()
        );
    }
    // A cause repeated right after itself ("…: Permission denied: Permission denied") means
    // an error both displays and chains its source.
    let parts: Vec<&str> = errors[0].split(": ").collect();
    assert!(
        parts.windows(2).all(|w| w[0] != w[1]),
        "the error line repeats a cause; {}",
        context()
    );
    let error = errors[0].to_lowercase();
    for m in mentions {
        assert!(
            error.contains(&m.to_lowercase()),
            "the error line should mention {m:?}; {}",
            context()
        );
    }
    errors[0].to_string()
}

/// Names of the files in `dir` (none when it does not exist).
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// A `profgen record` process. Dropping it kills the recorder if it is still running.
pub struct Recorder {
    child: Option<Child>,
    pub out: PathBuf,
    stderr: PathBuf,
}

impl Recorder {
    /// Starts `profgen record ARGS --out OUT --ready-file …` and waits until it has attached.
    /// The recorder's stderr goes to a file beside `out`, shown when something fails.
    pub fn start(profgen: &Path, args: &[&std::ffi::OsStr], out: &Path) -> Recorder {
        let ready = out.with_extension("ready");
        let stderr = out.with_extension("stderr");
        let child = Command::new(profgen)
            .arg("record")
            .args(args)
            .arg("--out")
            .arg(out)
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", profgen.display()));
        let mut recorder = Recorder {
            child: Some(child),
            out: out.to_owned(),
            stderr,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while !ready.exists() {
            if let Some(status) = recorder.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "profgen record exited before it was ready ({status}):\n{}",
                    recorder.stderr_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "profgen record was not ready within {READY_TIMEOUT:?}:\n{}",
                recorder.stderr_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
        recorder
    }

    pub fn stderr_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.stderr) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Stops the recorder the way a user does (Ctrl-C), requires a clean exit and returns the
    /// recording it wrote.
    pub fn stop(mut self) -> Recording {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let status = wait_timeout(&mut child, Duration::from_secs(60));
        let stderr = self.stderr_text();
        assert!(
            status.is_some_and(|s| s.success()),
            "profgen record after SIGINT: {status:?}\n{stderr}"
        );
        eprintln!("--- profgen record\n{stderr}");
        Recording::load(&self.out).unwrap_or_else(|e| panic!("loading {}: {e}", self.out.display()))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for `child` up to `timeout`; kills it and returns `None` when it does not exit.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A cgroup v2 directory this test created. Dropping it moves any process left inside to the
/// root cgroup and removes the directory and everything below it.
pub struct CgroupDir {
    pub path: PathBuf,
    /// Path below the cgroup2 mount, as recordings name it (`/profgen-e2e-…`).
    pub rel: String,
}

impl CgroupDir {
    /// A fresh cgroup directly below the cgroup2 root, named after `prefix` and this process.
    pub fn create(prefix: &str) -> CgroupDir {
        let mount = profgen::cgroup::cgroup2_mount().expect("a cgroup2 mount");
        let name = format!("{prefix}-{}", std::process::id());
        let path = mount.join(&name);
        // A leftover of a crashed earlier run with the same pid would carry its activity.
        if path.exists() {
            remove_cgroup_tree(&path, &mount);
        }
        fs::create_dir(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        CgroupDir {
            path,
            rel: format!("/{name}"),
        }
    }

    /// A child directory created now (for cgroups created while recording).
    pub fn child(&self, name: &str) -> (PathBuf, String) {
        let path = self.path.join(name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        (path, format!("{}/{name}", self.rel))
    }
}

impl Drop for CgroupDir {
    fn drop(&mut self) {
        if let Ok(mount) = profgen::cgroup::cgroup2_mount() {
            remove_cgroup_tree(&self.path, &mount);
        }
    }
}

/// Removes a cgroup and its descendants, deepest first, after moving their processes out
/// (a cgroup with processes cannot be removed).
fn remove_cgroup_tree(path: &Path, mount: &Path) {
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&entry.path(), mount);
            }
        }
    }
    if let Ok(procs) = fs::read_to_string(path.join("cgroup.procs")) {
        for pid in procs.lines() {
            let _ = fs::write(mount.join("cgroup.procs"), pid);
        }
    }
    for _ in 0..50 {
        match fs::remove_dir(path) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            // EBUSY while an exiting task still counts as a member.
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
    eprintln!("warning: could not remove cgroup {}", path.display());
}

/// The x86_64 syscalls a cgroup's record says the profile must allow.
pub fn syscalls(cg: &CgroupRecord) -> Vec<&str> {
    cg.syscalls
        .get(&Abi::X86_64)
        .map(|s| s.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Every x86_64 syscall any cgroup of the recording made (after the filter, where one was
/// seen).
pub fn all_syscalls(rec: &Recording) -> std::collections::BTreeSet<String> {
    rec.cgroups
        .iter()
        .flat_map(|c| syscalls(c).into_iter().map(str::to_owned))
        .collect()
}

/// The cgroup record at `rel`, with the recording's paths listed when it is missing.
pub fn cgroup_at<'a>(rec: &'a Recording, rel: &str) -> &'a CgroupRecord {
    rec.cgroups
        .iter()
        .find(|c| c.path.as_deref() == Some(rel))
        .unwrap_or_else(|| {
            panic!(
                "no cgroup {rel} in the recording; it has {:?}",
                rec.cgroups.iter().map(|c| &c.path).collect::<Vec<_>>()
            )
        })
}

/// Asserts every loss counter is zero: a recording with lost events proves nothing.
pub fn assert_no_events_lost(rec: &Recording) {
    assert!(
        !rec.events_lost.is_empty(),
        "the recording lists no loss counters at all"
    );
    let lost: Vec<_> = rec.events_lost.iter().filter(|(_, n)| **n > 0).collect();
    assert!(lost.is_empty(), "events lost: {lost:?}");
}

/// Compiles a small C program with the host's `cc` into `dir/name`.
pub fn compile_c(dir: &Path, name: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    fs::write(&src, source).unwrap();
    let out = output(Command::new("cc").arg("-O1").arg("-o").arg(&bin).arg(&src));
    assert_success(&format!("cc {}", src.display()), &out);
    bin
}

/// The syscall names a seccomp profile allows (by name, with or without argument rules).
pub fn allowed_names(
    profile: &oci_spec::runtime::LinuxSeccomp,
) -> std::collections::BTreeSet<String> {
    profile
        .syscalls()
        .iter()
        .flatten()
        .filter(|r| r.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActAllow)
        .flat_map(|r| r.names().iter().cloned())
        .collect()
}

/// A file fact: its path, its operations, whether it failed.
pub type FileFact = (
    String,
    std::collections::BTreeSet<profgen::model::activity::FileOp>,
    bool,
);

/// The file facts of every cgroup of `rec` whose path starts with `prefix`: what two ways of
/// recording the same workload must agree on. Exact: a directory is `dir/` however late its
/// event was read.
pub fn file_facts(rec: &Recording, prefix: &str) -> std::collections::BTreeSet<FileFact> {
    rec.cgroups
        .iter()
        .flat_map(|cg| &cg.activity.files)
        .filter_map(|file| {
            let path = file.path.to_str()?;
            path.starts_with(prefix)
                .then(|| (path.to_owned(), file.ops.clone(), file.failed))
        })
        .collect()
}

/// A program on `PATH` or in the system directories root's `PATH` may lack.
pub fn which(name: &str) -> Option<PathBuf> {
    profgen::verify::apparmor::which(Path::new(name))
}

/// profgen without its debug information, in `dir`: a qemu guest holds it in memory.
pub fn stripped_profgen(dir: &Path) -> PathBuf {
    let bin = profgen_binary();
    let out = dir.join("profgen");
    let stripped = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(&bin)
        .arg(&out)
        .status()
        .is_ok_and(|s| s.success());
    if stripped {
        out
    } else {
        bin
    }
}

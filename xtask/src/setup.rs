//! Installs what a fresh Debian 12 machine lacks, idempotently: each step checks first and
//! says what it does. Seconds when everything is there.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context as _, Result};

use crate::step;

/// Debian packages and why profgen needs each.
const PACKAGES: &[(&str, &str)] = &[
    ("runc", "runs the demo and verification containers"),
    (
        "crun",
        "the other OCI runtime (CRI-O's, Podman's): copied into the cgroup v2 qemu guest to measure its calls after the filter and to run the demo under it",
    ),
    ("nginx", "the demo workload"),
    (
        "apparmor",
        "apparmor_parser validates and loads AppArmor profiles",
    ),
    (
        "qemu-system-x86",
        "boots an AppArmor kernel to enforce profiles",
    ),
    ("linux-image-amd64", "the AppArmor kernel booted under qemu"),
    ("busybox-static", "the init of the qemu guest"),
    ("iproute2", "network namespaces for the NetworkPolicy tests"),
    ("wrk", "load generator of the nginx benchmark"),
    (
        "seccomp",
        "scmp_sys_resolver cross-checks the syscall tables",
    ),
    (
        "redis-server",
        "a reference server besides the demo: `profgen verify` proves a set for its bundle",
    ),
    (
        "postgresql",
        "a reference database for the held-out proof (tests/heldout.rs)",
    ),
    (
        "memcached",
        "a reference cache for the held-out proof (tests/heldout.rs)",
    ),
    (
        "haproxy",
        "a reference proxy for the held-out proof (tests/heldout.rs)",
    ),
    (
        "gcc",
        "builds profgen's seccomp probe (a static, freestanding binary)",
    ),
    ("libc6-dev", "kernel headers for the seccomp probe"),
    (
        "binutils",
        "objcopy strips the debug info from the agent image's profgen",
    ),
    (
        "openssl",
        "the CA of the kubeconfig in the agent image test (tests/agent_image.rs)",
    ),
];

/// What only `cargo xtask bench` needs: the peers it measures profgen against (wrk and
/// busybox-static, which it also uses, are in [`PACKAGES`]).
const BENCH_PACKAGES: &[(&str, &str)] = &[
    (
        "bpftrace",
        "a peer of the benchmark: per-cgroup syscall sets and file opens",
    ),
    ("strace", "a peer of the benchmark: ptrace-based tracing"),
    ("linux-perf", "a peer of the benchmark: `perf trace`"),
];

pub fn run() -> Result<()> {
    debian_packages(PACKAGES)?;
    rust_src()?;
    bpf_linker()?;
    Ok(())
}

/// The benchmark's peers, on top of [`run`]'s set-up.
pub fn bench() -> Result<()> {
    debian_packages(BENCH_PACKAGES)
}

fn debian_packages(packages: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !installed(name))
        .collect();
    if missing.is_empty() {
        step("Debian packages: all present");
        return Ok(());
    }
    for (name, why) in packages.iter().filter(|(n, _)| missing.contains(n)) {
        step(&format!("Debian package {name}: missing ({why})"));
    }
    if !is_root() {
        bail!(
            "installing Debian packages needs root: run `sudo apt-get install -y {}` or run this as root",
            missing.join(" ")
        );
    }
    step("apt-get update");
    run_quiet(Command::new("apt-get").args(["update", "-qq"]))?;
    step(&format!("apt-get install {}", missing.join(" ")));
    run_quiet(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn rust_src() -> Result<()> {
    let out = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", "nightly"])
        .output()
        .context("running rustup (profgen's eBPF programs need rustup with a nightly toolchain)")?;
    if !out.status.success() {
        bail!("no nightly toolchain: run `rustup toolchain install nightly --component rust-src`");
    }
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with("rust-src"))
    {
        step("nightly rust-src: present");
        return Ok(());
    }
    step("nightly rust-src: installing (the eBPF crate builds core from source)");
    run_quiet(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))
}

/// bpf-linker must link with the same LLVM major as the nightly rustc. Debian has no such
/// LLVM, but the nightly ships libLLVM: bpf-linker is built against it through a prefix
/// directory of symlinks, kept for good because the binary finds libLLVM through an rpath.
fn bpf_linker() -> Result<()> {
    let llvm_major = nightly_llvm_major()?;
    if let Ok(out) = Command::new("bpf-linker").arg("--version").output() {
        if out.status.success() && linker_llvm_ok(llvm_major) {
            step(&format!("bpf-linker (LLVM {llvm_major}): present"));
            return Ok(());
        }
    }
    let prefix = llvm_prefix(llvm_major)?;
    step(&format!(
        "bpf-linker: building against the nightly's LLVM {llvm_major} (a few minutes, once)"
    ));
    let status = Command::new("cargo")
        .args([
            "install",
            "bpf-linker",
            "--locked",
            "--force",
            "--no-default-features",
            "--features",
            &format!("llvm-{llvm_major}"),
        ])
        .env("LLVM_PREFIX", &prefix)
        .env_remove("RUSTC")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .context("running cargo install bpf-linker")?;
    if !status.success() {
        bail!("cargo install bpf-linker failed ({status}); see the output above");
    }
    Ok(())
}

/// Whether the installed bpf-linker can load its libLLVM (a removed prefix breaks it).
fn linker_llvm_ok(major: u32) -> bool {
    let Ok(path) = which("bpf-linker") else {
        return false;
    };
    let Ok(out) = Command::new("ldd").arg(&path).output() else {
        return true;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    !text.contains("not found")
        && (text.contains(&format!("libLLVM.so.{major}"))
            || text.contains(&format!("libLLVM-{major}")))
}

fn which(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("{name} not on PATH"))
}

fn nightly_llvm_major() -> Result<u32> {
    let out = Command::new("rustc")
        .args(["+nightly", "-vV"])
        .output()
        .context("running rustc +nightly")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next()?.parse().ok())
        .context("reading the nightly's LLVM version from `rustc +nightly -vV`")
}

/// `$HOME/.local/share/profgen/llvm-<major>/lib/{libLLVM.so, <its own name>}` → the nightly's
/// libLLVM.
fn llvm_prefix(major: u32) -> Result<PathBuf> {
    let sysroot = Command::new("rustc")
        .args(["+nightly", "--print", "sysroot"])
        .output()
        .context("running rustc +nightly --print sysroot")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let libdir = sysroot.join("lib");
    let lib = fs::read_dir(&libdir)
        .with_context(|| format!("reading {}", libdir.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("libLLVM.so.{major}")))
        })
        .with_context(|| format!("no libLLVM.so.{major}* in {}", libdir.display()))?;
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let prefix = Path::new(&home).join(format!(".local/share/profgen/llvm-{major}"));
    let prefix_lib = prefix.join("lib");
    fs::create_dir_all(&prefix_lib)
        .with_context(|| format!("creating {}", prefix_lib.display()))?;
    for name in [
        std::ffi::OsString::from("libLLVM.so"),
        lib.file_name().unwrap_or_default().to_owned(),
    ] {
        let link = prefix_lib.join(name);
        let _ = fs::remove_file(&link);
        symlink(&lib, &link).with_context(|| format!("linking {}", link.display()))?;
    }
    Ok(prefix)
}

fn run_quiet(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

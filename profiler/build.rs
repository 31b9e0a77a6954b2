//! Builds the eBPF programs (`profiler-ebpf`) with the nightly toolchain and bpf-linker, and
//! embeds them. Without bpf-linker the pure parts still build: `profgen record` then says
//! the binary has no eBPF programs. `PROFGEN_REQUIRE_EBPF=1` (set by `cargo xtask`) turns
//! that into a build error.
//!
//! Also builds the seccomp probe (`probe/probe.c`) that `profgen verify` mounts into the
//! container: a freestanding static binary, so that it runs in any root filesystem. It needs a
//! C compiler (`cc`, or `CC`) and the kernel's headers (Debian: `gcc`, `linux-libc-dev`);
//! without them profgen builds without its probe and `verify` says so.
//! `PROFGEN_REQUIRE_EBPF=1` makes a failure here a build error too.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

fn main() -> anyhow::Result<()> {
    println!("cargo::rustc-check-cfg=cfg(profgen_no_ebpf)");
    println!("cargo::rerun-if-env-changed=PROFGEN_REQUIRE_EBPF");
    println!("cargo::rerun-if-env-changed=PROFGEN_NO_EBPF");
    println!("cargo::rerun-if-changed=../profiler-common/src");

    let required = env::var_os("PROFGEN_REQUIRE_EBPF").is_some_and(|v| v == "1");
    let out = PathBuf::from(env::var("OUT_DIR")?);
    if let Err(why) = build_probe(&out.join("probe")) {
        if required {
            anyhow::bail!("building the seccomp probe: {why}");
        }
        println!("cargo::warning=building without the seccomp probe ({why}); `profgen verify` will need --probe-path or --no-probe");
        fs::write(out.join("probe"), [])?;
    }
    let skip = env::var_os("PROFGEN_NO_EBPF").is_some_and(|v| v == "1");
    let has_linker = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());

    if skip || (!has_linker && !required) {
        let reason = if skip {
            "PROFGEN_NO_EBPF=1"
        } else {
            "bpf-linker not found"
        };
        println!(
            "cargo::warning=building without eBPF programs ({reason}); run `cargo xtask setup`"
        );
        fs::write(out.join("profiler"), [])?;
        println!("cargo::rustc-cfg=profgen_no_ebpf");
        return Ok(());
    }
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "profiler-ebpf",
            root_dir: "../profiler-ebpf",
            ..Default::default()
        }],
        aya_build::Toolchain::Nightly,
    )
}

/// `cc -static -nostdlib …` of the freestanding probe, for the target when it is the host.
fn build_probe(binary: &Path) -> Result<(), String> {
    println!("cargo::rerun-if-changed=probe/probe.c");
    println!("cargo::rerun-if-env-changed=CC");
    let (host, target) = (env::var("HOST"), env::var("TARGET"));
    if host != target {
        return Err(format!(
            "cross-compiling for {}: the probe is built for the host only",
            target.unwrap_or_default()
        ));
    }
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    // -O1: at -O2 GCC may turn the probe's own memset loop into a call to memset.
    let out = Command::new(&cc)
        .args([
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-stack-protector",
            "-fno-pie",
            "-no-pie",
            "-O1",
            "-Wall",
            "-o",
        ])
        .arg(binary)
        .arg("probe/probe.c")
        .output()
        .map_err(|e| format!("cannot run `{cc}`: {e}; install gcc"))?;
    if !out.status.success() {
        return Err(format!(
            "`{cc}` failed: {}",
            // A cargo warning is one line.
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " | ")
        ));
    }
    Ok(())
}

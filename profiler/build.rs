//! Builds the eBPF programs (`profiler-ebpf`) with the nightly toolchain and bpf-linker, and
//! embeds them. Without bpf-linker the pure parts still build: `profgen record` then says
//! the binary has no eBPF programs. `PROFGEN_REQUIRE_EBPF=1` (set by `cargo xtask`) turns
//! that into a build error.

use std::{env, fs, path::PathBuf, process::Command};

fn main() -> anyhow::Result<()> {
    println!("cargo::rustc-check-cfg=cfg(profgen_no_ebpf)");
    println!("cargo::rerun-if-env-changed=PROFGEN_REQUIRE_EBPF");
    println!("cargo::rerun-if-env-changed=PROFGEN_NO_EBPF");
    println!("cargo::rerun-if-changed=../profiler-common/src");

    let required = env::var_os("PROFGEN_REQUIRE_EBPF").is_some_and(|v| v == "1");
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
        let out = PathBuf::from(env::var("OUT_DIR")?);
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

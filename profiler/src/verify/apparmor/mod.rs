//! Proving an AppArmor profile: the real parser ([`parser`]), and enforcement in a kernel that
//! has AppArmor ([`enforce`], [`prove`]).
//!
//! The host kernel may lack AppArmor; Debian's `linux-image-amd64` has it and boots under
//! `qemu-system-x86_64` with software emulation. [`enforce`] builds an initramfs whose root is
//! the bundle's root filesystem ([`Workload`]) with profgen's tools beside it under
//! `/.profgen` (busybox as init, the parser and `aa-exec` with their own libraries, the
//! AppArmor include tree, the profile, the suite); boots it; loads the profile in enforce
//! mode; starts the bundle's process confined (`aa-exec -p NAME`) and runs the suite against
//! it inside the guest; counts `apparmor="DENIED"` kernel log lines; then runs probes
//! confined by the same profile that must be denied (read `/etc/shadow`, write under `/usr`).
//! The facts come back over the serial console (`guest.rs`); [`VmReport::failures`] judges
//! them.
//!
//! The suite runs in the guest, where there is no network but loopback: it must be an ELF
//! program that needs nothing from the host beyond its shared libraries (which are copied),
//! and it reaches the workload at the same address as on the host (the `--wait-tcp` address is
//! added to the guest's loopback interface).

mod cpio;
mod guest;
pub(crate) mod image;
pub mod parser;
mod prove;
pub(crate) mod qemu;
mod vm_report;
mod workload;

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    time::Duration,
};

pub(crate) use guest::quote as guest_quote;
pub use guest::Denied;
pub use image::ImageError;
pub use prove::{
    load as load_profile, profile_name, prove, AppArmorCheck, AppArmorProof, ProveError,
};
pub use vm_report::{VmReport, PROBES};
pub use workload::{Workload, WorkloadError};

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
    #[error("the suite program {0:?} was not found on PATH")]
    SuiteNotFound(OsString),
    #[error("the suite {0} is not an ELF program: the AppArmor proof runs the suite inside the VM, where only a compiled program and its shared libraries are copied")]
    SuiteNotElf(PathBuf),
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VmError {
    let what = what.into();
    move |source| VmError::Io { what, source }
}

/// How to run the VM; what runs in it is a [`Workload`].
#[derive(Clone, Debug)]
pub struct VmOptions {
    /// `vmlinuz`; `None`: the newest `/boot/vmlinuz-*`.
    pub kernel: Option<PathBuf>,
    pub qemu: PathBuf,
    /// At least this much; more when the root filesystem is large (it lives in memory twice
    /// while the kernel unpacks it).
    pub memory_mb: u32,
    /// For booting, loading and the probes; the suite's own limit is added.
    pub timeout: Duration,
    /// Appended to the kernel command line.
    pub extra_kernel_args: String,
}

impl Default for VmOptions {
    fn default() -> Self {
        Self {
            kernel: None,
            qemu: PathBuf::from("qemu-system-x86_64"),
            memory_mb: 512,
            timeout: Duration::from_secs(240),
            extra_kernel_args: String::new(),
        }
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

/// A program by path, or on `PATH` and the system directories root's `PATH` may lack.
pub fn which(name: &Path) -> Option<PathBuf> {
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

pub(crate) fn tool(name: &str, package: &'static str) -> Result<PathBuf, VmError> {
    which(Path::new(name)).ok_or_else(|| VmError::MissingTool(name.into(), package))
}

/// A stand-in the read probe must not be able to read, when the root filesystem has none.
const SHADOW: &str = "root:*:19000:0:99999:7:::\n";

/// Builds the initramfs for `profile_text` (profile `name`) and `workload` into `out`;
/// returns its size in bytes.
pub fn build_initramfs(
    profile_text: &str,
    name: &str,
    workload: &Workload,
    out: &Path,
) -> Result<usize, VmError> {
    let busybox = tool("busybox", "busybox-static")?;
    let parser = tool("apparmor_parser", "apparmor")?;
    let aa_exec = tool("aa-exec", "apparmor")?;
    let suite = match workload.suite.split_first() {
        None => None,
        Some((program, args)) => Some((suite_program(program)?, args)),
    };
    let mut img = image::Image::default();
    img.tree(&workload.rootfs)?;
    for skipped in &img.skipped {
        log::info!("not in the VM's root filesystem (not a file, directory or symlink): {skipped}");
    }
    // busybox-static: it runs before anything else exists.
    img.copy_to(&busybox, guest::BUSYBOX, 0o755)?;
    let parser =
        img.private_program(&parser, &format!("{}/bin/apparmor_parser", image::PRIVATE))?;
    let aa_exec = img.private_program(&aa_exec, &format!("{}/bin/aa-exec", image::PRIVATE))?;
    let root = (workload.uid, workload.gid) == (0, 0) && workload.additional_gids.is_empty();
    let setpriv = match root {
        true => None,
        false => Some(img.private_program(
            &tool("setpriv", "util-linux")?,
            &format!("{}/bin/setpriv", image::PRIVATE),
        )?),
    };
    let suite = match suite {
        None => None,
        Some((program, args)) => {
            let file = program.file_name().expect("a file").to_string_lossy();
            let run = img.private_program(&program, &format!("{}/suite/{file}", image::PRIVATE))?;
            let args: Vec<String> = args
                .iter()
                .map(|a| guest::quote(&a.to_string_lossy()))
                .collect();
            Some(format!("{run} {}", args.join(" ")).trim_end().to_owned())
        }
    };
    for d in ["abi", "tunables", "abstractions"] {
        img.copy_dir_to(
            &Path::new("/etc/apparmor.d").join(d),
            &format!("{}/{d}", guest::APPARMOR_D),
        )?;
    }
    img.write(guest::PROFILE_PATH, 0o644, profile_text.as_bytes());
    img.write(guest::PARSER_CONF, 0o644, b"");
    // Only when the root filesystem has none: the probes need something to be refused.
    img.write(guest::SHADOW, 0o640, SHADOW.as_bytes());
    img.mkdir("/usr", 0o755);
    let script = guest::init_script(&guest::Script {
        name,
        workload,
        parser: &parser,
        aa_exec: &aa_exec,
        setpriv: setpriv.as_deref(),
        suite,
    });
    img.write(guest::INIT_PATH, 0o755, script.as_bytes());
    let size = img.size();
    let mut f = std::fs::File::create(out).map_err(io(format!("creating {}", out.display())))?;
    img.finish(&mut f).map_err(io("writing the initramfs"))?;
    Ok(size)
}

/// The suite's program on the host: a path, or a name on `PATH`; an ELF file.
fn suite_program(program: &std::ffi::OsStr) -> Result<PathBuf, VmError> {
    let path = Path::new(program);
    let found = if path.components().count() > 1 {
        path.is_file().then(|| path.to_path_buf())
    } else {
        which(path)
    }
    .ok_or_else(|| VmError::SuiteNotFound(program.to_owned()))?;
    if !image::is_elf(&found) {
        return Err(VmError::SuiteNotElf(found));
    }
    Ok(found)
}

/// Boots the guest with the profile and `workload` and reports what happened. Errors only when
/// the VM could not be built or run; a profile that fails shows up in [`VmReport::failures`].
pub fn enforce(
    profile_text: &str,
    name: &str,
    workload: &Workload,
    opts: &VmOptions,
) -> Result<VmReport, VmError> {
    crate::synth::apparmor::validate_name(name).map_err(|e| VmError::Io {
        what: "profile name".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let (kernel, qemu) = qemu::kernel_and_qemu(opts)?;
    let dir = tempfile::tempdir().map_err(io("creating a temp dir"))?;
    let initrd = dir.path().join("initramfs.cpio.gz");
    let size_mb = build_initramfs(profile_text, name, workload, &initrd)? / (1 << 20);
    let memory_mb = opts.memory_mb.max(256 + 3 * size_mb as u32);
    let timeout = opts.timeout + workload.suite_timeout;

    let append = format!(
        "console=ttyS0 quiet apparmor=1 security=apparmor panic=-1 rdinit={} {}",
        guest::INIT_PATH,
        opts.extra_kernel_args
    );
    let qemu::Boot {
        console,
        qemu_stderr: qemu_err,
        boot_secs,
        total_secs,
    } = qemu::boot(&qemu::BootArgs {
        qemu: &qemu,
        kernel: &kernel,
        initrd: &initrd,
        memory_mb,
        append: &append,
        timeout,
        first_marker: "PROFGEN booted",
    })?;
    let mut report = VmReport::from_console(&console);
    report.total_secs = total_secs;
    report.boot_secs = boot_secs;
    if !qemu_err.trim().is_empty() {
        report
            .console
            .push_str(&format!("\n[qemu stderr] {qemu_err}"));
    }
    Ok(report)
}

/// The profile as the VM harness needs it to stand in for the container runtime (not from
/// the recording, not in the committed profile):
/// * The harness sends the workload's stdout and stderr to a file, where a container runtime
///   gives a pipe (pipes are not mediated by AppArmor, files are): an `open("/dev/stdout")`
///   reaches that file, so the file is allowed.
/// * The workload runs as full root in the VM, while the container's bounding set held only
///   `container_caps`: the kernel refused anything else in the container before AppArmor was
///   asked. `deny capability` rules (not logged) give the VM the same refusals; capabilities
///   the profile allows are left alone.
pub fn for_the_vm(profile: &str, container_caps: &[&str]) -> String {
    let body = profile.trim_end().strip_suffix('}').unwrap_or(profile);
    let mut out = format!(
        "{body}\n  # VM harness only: the workload's stdout file (a pipe under a container runtime)\n  {} w,\n  # VM harness only: the container's capability bounding set\n",
        guest::WORKLOAD_LOG
    );
    for cap in crate::model::CAPABILITY_NAMES {
        if !container_caps.contains(&cap) && !profile.contains(&format!("capability {cap},")) {
            out.push_str(&format!("  deny capability {cap},\n"));
        }
    }
    out.push_str("}\n");
    out
}

//! profgen's own seccomp probe (`probe/probe.c`, built by `build.rs`), brought into the
//! container under test: written to a temporary file and bind-mounted read-only into the
//! verification's copy of the config, so that any bundle is verified unchanged.
//!
//! The mount goes below a tmpfs the spec already mounts (`/dev` in every `runc spec`), so the
//! mount point runc creates lives in that tmpfs and never in the bundle's root filesystem.

use std::{
    io::{self, Write as _},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use oci_spec::runtime::{Mount, MountBuilder, Spec};

/// The probe's file name below the chosen mount.
const FILE_NAME: &str = ".profgen-probe";

/// The probe binary, or `None` when profgen was built without a C compiler.
pub fn binary() -> Option<&'static [u8]> {
    let bytes: &'static [u8] = include_bytes!(concat!(env!("OUT_DIR"), "/probe"));
    (!bytes.is_empty()).then_some(bytes)
}

/// The probe written to a temporary executable file; removed when dropped.
#[derive(Debug)]
pub struct ProbeFile {
    path: tempfile::TempPath,
}

impl ProbeFile {
    /// Writes [`binary`] out. `Ok(None)` when this profgen has no probe.
    pub fn write() -> io::Result<Option<Self>> {
        let Some(bytes) = binary() else {
            return Ok(None);
        };
        let mut file = tempfile::Builder::new()
            .prefix("profgen-probe-")
            .tempfile()?;
        file.write_all(bytes)?;
        file.flush()?;
        // Readable and executable by the container's user, whoever that is.
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o755))?;
        Ok(Some(Self {
            path: file.into_temp_path(),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Adds the read-only bind mount of `source` to `spec` and returns the probe's path inside
/// the container.
pub fn mount(spec: &mut Spec, source: &Path) -> String {
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    let destination = destination(&mounts);
    mounts.push(
        MountBuilder::default()
            .destination(PathBuf::from(&destination))
            .typ("bind")
            .source(source)
            .options(["bind", "ro", "nosuid", "nodev"].map(String::from).to_vec())
            .build()
            .expect("a valid bind mount"),
    );
    spec.set_mounts(Some(mounts));
    destination
}

/// Below `/dev` when it is a tmpfs, else below the first tmpfs mount, else at the root (where
/// runc has to create an empty mount point file in the root filesystem).
fn destination(mounts: &[Mount]) -> String {
    let tmpfs = |m: &&Mount| m.typ().as_deref() == Some("tmpfs");
    let dir = mounts
        .iter()
        .filter(tmpfs)
        .find(|m| m.destination() == Path::new("/dev"))
        .or_else(|| mounts.iter().find(tmpfs))
        .map(|m| {
            m.destination()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_owned()
        })
        .unwrap_or_default();
    format!("{dir}/{FILE_NAME}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpfs(dest: &str) -> Mount {
        MountBuilder::default()
            .destination(dest)
            .typ("tmpfs")
            .source("tmpfs")
            .build()
            .unwrap()
    }

    fn proc_mount() -> Mount {
        MountBuilder::default()
            .destination("/proc")
            .typ("proc")
            .source("proc")
            .build()
            .unwrap()
    }

    #[test]
    fn goes_below_a_tmpfs_so_the_root_filesystem_is_untouched() {
        let cases: &[(&[Mount], &str)] = &[
            (
                &[proc_mount(), tmpfs("/run"), tmpfs("/dev")],
                "/dev/.profgen-probe",
            ),
            (&[proc_mount(), tmpfs("/run/")], "/run/.profgen-probe"),
            (&[proc_mount()], "/.profgen-probe"),
            (&[], "/.profgen-probe"),
        ];
        for (mounts, want) in cases {
            assert_eq!(destination(mounts), *want, "{mounts:?}");
        }
    }

    #[test]
    fn mounts_read_only_after_the_spec_s_own_mounts() {
        let mut spec = Spec::default();
        let at = mount(&mut spec, Path::new("/tmp/profgen-probe-x"));
        // runc spec's default mounts have a tmpfs on /dev.
        assert_eq!(at, "/dev/.profgen-probe");
        let last = spec.mounts().as_ref().unwrap().last().unwrap().clone();
        assert_eq!(last.destination(), Path::new("/dev/.profgen-probe"));
        assert_eq!(
            last.source().as_deref(),
            Some(Path::new("/tmp/profgen-probe-x"))
        );
        let options = last.options().clone().unwrap();
        assert!(options.iter().any(|o| o == "ro"), "{options:?}");
    }

    #[test]
    fn the_probe_is_built_and_runs_on_the_host() {
        let Some(file) = ProbeFile::write().unwrap() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but profgen was built without its probe (no C compiler at build time)"
            );
            println!("skipped: profgen was built without its probe");
            return;
        };
        // Another test thread forking while the file was open for writing holds that fd
        // until its exec: ETXTBSY for a moment, a property of this test process only.
        let run = || {
            std::process::Command::new(file.path())
                .args(["personality", "sysinfo"])
                .output()
        };
        let mut out = run();
        for _ in 0..50 {
            match &out {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    out = run();
                }
                _ => break,
            }
        }
        let out = out.unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "personality ok\nsysinfo ok\n"
        );
        let unknown = std::process::Command::new(file.path())
            .arg("frobnicate")
            .output()
            .unwrap();
        assert_eq!(unknown.status.code(), Some(2));
    }
}

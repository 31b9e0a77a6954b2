//! The AppArmor proof of a profile file for a bundle: the parser, then the VM with the
//! bundle's workload and suite. What `profgen verify --apparmor` and the demo both run.

use std::{
    ffi::OsString,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use super::{enforce, for_the_vm, parser, VmError, VmOptions, VmReport, Workload, WorkloadError};

#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: no `profile NAME` line: not an AppArmor profile")]
    NoName(PathBuf),
    #[error("{path}: profile name {name:?}: {message}")]
    BadName {
        path: PathBuf,
        name: String,
        message: String,
    },
    #[error(transparent)]
    Parser(parser::ParserError),
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error(transparent)]
    Vm(#[from] VmError),
}

/// What to prove.
#[derive(Clone, Debug)]
pub struct AppArmorCheck {
    /// `apparmor.profile`.
    pub profile: PathBuf,
    /// The OCI bundle whose root filesystem and process the guest runs.
    pub bundle: PathBuf,
    pub wait_tcp: Option<SocketAddr>,
    /// Run inside the guest: a host ELF program and its arguments.
    pub suite: Vec<OsString>,
    pub suite_timeout: Duration,
    pub vm: VmOptions,
}

/// The facts of the proof.
#[derive(Clone, Debug)]
pub struct AppArmorProof {
    pub name: String,
    pub profile: PathBuf,
    /// `apparmor_parser -Q -K`'s verdict; the VM runs only after it compiled.
    pub compiled: Result<(), String>,
    pub vm: Option<VmReport>,
}

impl AppArmorProof {
    pub fn failures(&self) -> Vec<String> {
        match (&self.compiled, &self.vm) {
            (Err(e), _) => vec![format!("apparmor_parser rejected the profile: {e}")],
            (Ok(()), Some(vm)) => vm.failures(),
            (Ok(()), None) => vec!["the VM did not run".into()],
        }
    }

    pub fn short_reason(&self) -> Option<String> {
        match (&self.compiled, &self.vm) {
            (Err(_), _) => Some("apparmor_parser rejected it".into()),
            (Ok(()), Some(vm)) => vm.short_reason(),
            (Ok(()), None) => Some("the VM did not run".into()),
        }
    }

    /// One phrase for a passing proof.
    pub fn passed_phrase(&self) -> String {
        let denied: usize = self
            .vm
            .iter()
            .flat_map(|vm| &vm.probes)
            .map(|p| p.2.len())
            .sum();
        let probes = self.vm.as_ref().map_or(0, |vm| vm.probes.len());
        format!("0 DENIED for the suite, {denied} for {probes} probes")
    }
}

impl fmt::Display for AppArmorProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "profile {} ({})", self.name, self.profile.display())?;
        match &self.compiled {
            Ok(()) => writeln!(f, "ok   apparmor_parser -Q -K: compiled")?,
            Err(e) => writeln!(f, "FAIL apparmor_parser -Q -K: {e}")?,
        }
        let Some(vm) = &self.vm else {
            return Ok(());
        };
        writeln!(
            f,
            "     guest booted in {:.1} s ({:.1} s in all)",
            vm.boot_secs, vm.total_secs
        )?;
        for (ok, what) in vm.facts() {
            writeln!(f, "{} {what}", if ok { "ok  " } else { "FAIL" })?;
            if what.ends_with("DENIED for the suite") {
                for line in &vm.workload_denied {
                    writeln!(f, "       {line}")?;
                }
            }
        }
        if !vm.failures().is_empty() {
            for (label, lines) in [
                ("suite output", &vm.suite_output),
                ("workload output", &vm.workload_output),
            ] {
                if !lines.is_empty() {
                    writeln!(f, "--- {label} (in the guest)")?;
                    for l in lines {
                        writeln!(f, "{l}")?;
                    }
                }
            }
            if !vm.finished {
                let tail: Vec<&str> = vm.console.lines().rev().take(30).collect();
                writeln!(f, "--- console")?;
                for l in tail.iter().rev() {
                    writeln!(f, "{l}")?;
                }
            }
        }
        Ok(())
    }
}

/// The name the profile declares: the first `profile NAME` line.
pub fn profile_name(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix("profile ")?;
        let name = rest.split_whitespace().next()?;
        Some(name.trim_matches('"').to_owned())
    })
}

/// Reads and names the profile: bad input, before anything slow runs.
pub fn load(path: &Path) -> Result<(String, String), ProveError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProveError::Read {
        path: path.to_owned(),
        source,
    })?;
    let name = profile_name(&text).ok_or_else(|| ProveError::NoName(path.to_owned()))?;
    crate::synth::apparmor::validate_name(&name).map_err(|e| ProveError::BadName {
        path: path.to_owned(),
        name: name.clone(),
        message: e.to_string(),
    })?;
    Ok((text, name))
}

/// Compiles the profile, then enforces it in the VM with the bundle's workload and suite.
/// Errors when the environment cannot run the proof (no parser, no kernel, no qemu); a
/// profile that fails is in [`AppArmorProof::failures`].
pub fn prove(check: &AppArmorCheck) -> Result<AppArmorProof, ProveError> {
    let (text, name) = load(&check.profile)?;
    let mut proof = AppArmorProof {
        name: name.clone(),
        profile: check.profile.clone(),
        compiled: Ok(()),
        vm: None,
    };
    match parser::check(&text) {
        Ok(()) => {}
        Err(parser::ParserError::Rejected { stderr }) => {
            proof.compiled = Err(stderr);
            return Ok(proof);
        }
        Err(e) => return Err(ProveError::Parser(e)),
    }
    let mut workload = Workload::from_bundle(&check.bundle)?;
    workload.wait_tcp = check.wait_tcp;
    workload.suite = check.suite.clone();
    workload.suite_timeout = check.suite_timeout;
    let in_vm = for_the_vm(&text, &workload.capabilities);
    proof.vm = Some(enforce(&in_vm, &name, &workload, &check.vm)?);
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_declared_name() {
        let cases = [
            ("abi <abi/3.0>,\n#include <tunables/global>\n\nprofile demo-nginx flags=(attach_disconnected) {\n}\n", Some("demo-nginx")),
            ("  profile redis {\n}", Some("redis")),
            ("# profile in a comment is not one\n/usr/bin/x {\n}\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(profile_name(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn a_file_without_a_profile_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apparmor.profile");
        std::fs::write(&path, "not a profile\n").unwrap();
        assert!(matches!(load(&path), Err(ProveError::NoName(_))));
        std::fs::write(&path, "profile -bad {\n}\n").unwrap();
        assert!(matches!(load(&path), Err(ProveError::BadName { .. })));
        assert!(matches!(
            load(&dir.path().join("missing")),
            Err(ProveError::Read { .. })
        ));
    }
}

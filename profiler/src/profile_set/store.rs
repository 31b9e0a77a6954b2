//! A profile set's directory: reading it, and writing a built set into it.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use k8s_openapi::api::{core::v1::SecurityContext, networking::v1::NetworkPolicy};
use oci_spec::runtime::LinuxSeccomp;

use super::{apparmor, Artifact, BuiltSet, SetError};
use crate::{
    model::Recording,
    output::{write_atomic_with, OutputError},
    verify::netpol,
};

/// The artifacts of one directory, parsed. `None` where the file is absent.
#[derive(Clone, Debug)]
pub struct LoadedSet {
    pub dir: PathBuf,
    /// Every artifact file present, parsed or not.
    pub present: BTreeSet<Artifact>,
    pub seccomp: Option<LinuxSeccomp>,
    pub apparmor: Option<apparmor::Profile>,
    pub network_policies: Option<Vec<NetworkPolicy>>,
    pub security_context: Option<SecurityContext>,
    pub recording: Option<Recording>,
}

/// Reads the set in `dir`: every artifact present is parsed (the YAML ones that nothing reads
/// back are still checked to be YAML), so a corrupt file is an error naming it.
pub fn load(dir: impl AsRef<Path>) -> Result<LoadedSet, SetError> {
    let dir = dir.as_ref();
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SetError::MissingDir { path: dir.into() })
        }
        Err(source) => {
            return Err(SetError::Read {
                path: dir.into(),
                source,
            })
        }
        Ok(m) if !m.is_dir() => return Err(SetError::NotADir { path: dir.into() }),
        Ok(_) => {}
    }
    let present: BTreeSet<Artifact> = Artifact::ALL
        .into_iter()
        .filter(|a| dir.join(a.file_name()).is_file())
        .collect();
    if !Artifact::CONFINING.iter().any(|a| present.contains(a)) {
        return Err(SetError::NoSet { path: dir.into() });
    }
    let mut set = LoadedSet {
        dir: dir.into(),
        present: present.clone(),
        seccomp: None,
        apparmor: None,
        network_policies: None,
        security_context: None,
        recording: None,
    };
    for artifact in present {
        let path = dir.join(artifact.file_name());
        if artifact == Artifact::Recording {
            set.recording = Some(Recording::load(&path)?);
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| SetError::Read {
            path: path.clone(),
            source,
        })?;
        let corrupt = |what: &'static str, message: String| SetError::Corrupt {
            path: path.clone(),
            what,
            message: one_line(&message),
        };
        match artifact {
            Artifact::Seccomp => {
                set.seccomp = Some(
                    serde_json::from_str(&text)
                        .map_err(|e| corrupt("not a seccomp profile (OCI JSON)", e.to_string()))?,
                )
            }
            Artifact::AppArmor => {
                set.apparmor = Some(apparmor::parse(&text).map_err(|e| {
                    corrupt("not an AppArmor profile profgen can read", e.to_string())
                })?)
            }
            Artifact::NetworkPolicy => {
                let policies = netpol::parse_policies(&text)
                    .map_err(|e| corrupt("not a NetworkPolicy", e.to_string()))?;
                for p in &policies {
                    netpol::validate(p).map_err(|e| corrupt("invalid", e.to_string()))?;
                }
                set.network_policies = Some(policies);
            }
            Artifact::SecurityContext => {
                let sc: Option<SecurityContext> = serde_norway::from_str(&text)
                    .map_err(|e| corrupt("not a securityContext", e.to_string()))?;
                set.security_context = Some(sc.unwrap_or_default());
            }
            Artifact::SecurityContextPatch
            | Artifact::Kustomization
            | Artifact::SpoSeccompProfile => {
                for doc in serde_norway::Deserializer::from_str(&text) {
                    serde::Deserialize::deserialize(doc)
                        .map(|_: serde_norway::Value| ())
                        .map_err(|e| corrupt("not YAML", e.to_string()))?;
                }
            }
            Artifact::SecurityContextEvidence | Artifact::Recording => {}
        }
    }
    Ok(set)
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Files earlier profgen versions wrote into a set and this one does not: the agent's plain
/// text evidence report, now `securitycontext.md`.
const FORMER_ARTIFACTS: [&str; 1] = ["securitycontext.txt"];

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("creating the output directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] OutputError),
    #[error("removing {}, left from an earlier set", path.display())]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `set` into `dir` (created if missing), each file atomically, then removes the
/// artifact files of an earlier set that `set` does not have, so that [`load`] never reads
/// two sets as one. Other files in `dir` are left alone.
pub fn write(dir: &Path, set: &BuiltSet) -> Result<(), WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError::CreateDir {
        path: dir.into(),
        source,
    })?;
    for f in &set.files {
        write_atomic_with(&dir.join(f.name()), |w| f.write_to(w))?;
    }
    let stale = Artifact::ALL
        .into_iter()
        .filter(|a| !set.has(*a))
        .map(Artifact::file_name)
        .chain(FORMER_ARTIFACTS);
    for name in stale {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(WriteError::RemoveStale { path, source: e })
            }
            _ => {}
        }
    }
    Ok(())
}

//! Reading a profile set from its directory.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use k8s_openapi::api::{core::v1::SecurityContext, networking::v1::NetworkPolicy};
use oci_spec::runtime::LinuxSeccomp;

use super::{apparmor, Artifact, SetError};
use crate::{model::Recording, verify::netpol};

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

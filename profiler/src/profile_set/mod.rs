//! A profile set: the directory `profgen synth` writes (and a team commits), read back.
//!
//! This module is the one place that knows what a set holds: [`Artifact`] names every file.
//! [`build`] makes every artifact from a recording in memory (for `profgen synth`,
//! `profgen record --pod` and the agent alike), [`write()`] puts a built set into its
//! directory, and [`load`] parses whatever artifacts are present into typed values for
//! `profgen diff` and `profgen check`.

pub mod apparmor;
mod build;
#[cfg(test)]
mod build_tests;
#[cfg(test)]
pub(crate) mod fixtures;
mod render;
pub mod seccomp;
mod store;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use build::{
    build, AppArmorCheck, AppArmorMade, BuildError, BuildOptions, BuiltSet, Contents, File, Mode,
    ParserVerdict, NO_LABELS, SYSCALLS_ONLY,
};
pub use store::{load, write, LoadedSet, WriteError};

/// One file of a profile set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Artifact {
    Seccomp,
    AppArmor,
    NetworkPolicy,
    SecurityContext,
    SecurityContextEvidence,
    SecurityContextPatch,
    Kustomization,
    SpoSeccompProfile,
    Recording,
}

impl Artifact {
    /// Every artifact, in the order reports list them.
    pub const ALL: [Artifact; 9] = [
        Artifact::Seccomp,
        Artifact::AppArmor,
        Artifact::NetworkPolicy,
        Artifact::SecurityContext,
        Artifact::SecurityContextEvidence,
        Artifact::SecurityContextPatch,
        Artifact::Kustomization,
        Artifact::SpoSeccompProfile,
        Artifact::Recording,
    ];

    /// The artifacts that confine the workload: a directory holding none of them is not a
    /// profile set.
    pub const CONFINING: [Artifact; 4] = [
        Artifact::Seccomp,
        Artifact::AppArmor,
        Artifact::NetworkPolicy,
        Artifact::SecurityContext,
    ];

    pub const fn file_name(self) -> &'static str {
        match self {
            Artifact::Seccomp => "seccomp.json",
            Artifact::AppArmor => "apparmor.profile",
            Artifact::NetworkPolicy => "networkpolicy.yaml",
            Artifact::SecurityContext => "securitycontext.yaml",
            Artifact::SecurityContextEvidence => "securitycontext.md",
            Artifact::SecurityContextPatch => "securitycontext-patch.yaml",
            Artifact::Kustomization => "kustomization.yaml",
            Artifact::SpoSeccompProfile => "spo-seccompprofile.yaml",
            Artifact::Recording => "recording.json",
        }
    }
}

impl std::fmt::Display for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.file_name())
    }
}

/// Why a directory could not be read as a profile set. One line each, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error("{}: no such directory (give the directory `profgen synth --out` wrote)", path.display())]
    MissingDir { path: PathBuf },

    #[error("{}: not a directory (give the directory `profgen synth --out` wrote)", path.display())]
    NotADir { path: PathBuf },

    #[error(
        "{}: holds no profile set: expected at least one of {} (write one with `profgen synth RECORDING --out DIR`)",
        path.display(),
        Artifact::CONFINING.map(Artifact::file_name).join(", ")
    )]
    NoSet { path: PathBuf },

    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: {what}: {message}", path.display())]
    Corrupt {
        path: PathBuf,
        /// "not a seccomp profile", "not an AppArmor profile profgen can read", …
        what: &'static str,
        message: String,
    },

    #[error(transparent)]
    Recording(#[from] crate::model::ModelError),
}

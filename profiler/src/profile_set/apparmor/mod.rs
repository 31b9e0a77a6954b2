//! An AppArmor profile read back into rules, and what a set of rules grants.
//!
//! Reads the shape `synth::apparmor` writes (one profile, one rule a line, `#` comments,
//! quoted paths with `\xHH` escapes) plus the usual hand edits: `deny` and `audit`
//! qualifiers, `capability,`, `network,`, `file` keyword, permissions before the path, exec
//! targets. Rules of other kinds (signal, ptrace, mount, unix, …) are kept as text: a diff
//! compares them as text, a check ignores them. Nested profiles and hats are refused.

pub mod glob;
mod grants;
mod parse;
pub mod rules;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

pub use glob::{Glob, GlobError};
pub use grants::{base_rules, Grants};
pub use parse::parse;
pub use rules::{normalize_capability, Capabilities, FileRule, Letters, NetworkRule};

/// One parsed profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    /// `flags=(…)`, as written.
    pub flags: BTreeSet<String>,
    /// `#include <…>` inside the profile, without the brackets (`abstractions/base`).
    pub includes: BTreeSet<String>,
    pub files: Vec<FileRule>,
    pub capabilities: Capabilities,
    /// `deny capability …,`
    pub denied_capabilities: Capabilities,
    pub network: Vec<NetworkRule>,
    /// `deny network …,`
    pub denied_network: Vec<NetworkRule>,
    /// Rules of other kinds, whitespace-normalised, without the trailing comma.
    pub other: BTreeSet<String>,
}

/// The include that brings in `synth::apparmor::base`'s grants.
pub const BASE: &str = "abstractions/base";

impl Profile {
    pub fn includes_base(&self) -> bool {
        self.includes.contains(BASE)
    }

    /// Whether the profile lets the confined task create a socket of this family and type.
    pub fn allows_socket(&self, family: &str, kind: &str) -> bool {
        let want = NetworkRule {
            family: Some(family.to_ascii_lowercase()),
            kind: Some(kind.to_ascii_lowercase()),
        };
        self.network.iter().any(|r| r.covers(&want))
            && !self.denied_network.iter().any(|r| r.covers(&want))
    }

    /// Whether the profile grants the capability.
    pub fn allows_capability(&self, name: &str) -> bool {
        self.capabilities.allows(name) && !self.denied_capabilities.allows(name)
    }

    /// Complain or unconfined mode: the profile logs rather than denies.
    pub fn enforces(&self) -> bool {
        !self
            .flags
            .iter()
            .any(|f| f == "complain" || f == "unconfined" || f == "mode=complain")
    }
}

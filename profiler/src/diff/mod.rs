//! A semantic diff of two profile sets (or two recordings): what NEW allows that OLD did not,
//! and the reverse, per artifact. Pure: it reads [`LoadedSet`]s and [`Recording`](crate::model::Recording)s.
//!
//! "Added" always means *allowed by NEW and not by OLD* (a widening), "removed" the reverse
//! (a narrowing); a change that is neither (a renamed profile path, another uid) is
//! "changed". Coverage is decided conservatively: when a rule's coverage cannot be proven,
//! it is reported as added, never hidden.

mod apparmor;
mod netpol;
mod recording;
pub mod render;
mod seccomp;
mod securitycontext;
#[cfg(test)]
mod tests;

use std::{fmt, path::PathBuf};

pub use recording::diff_recordings;

use crate::profile_set::{Artifact, LoadedSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// Allowed by NEW, not by OLD.
    Added,
    /// Allowed by OLD, not by NEW.
    Removed,
    /// Different, neither wider nor narrower.
    Changed,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        })
    }
}

/// One difference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub artifact: Artifact,
    /// Within the artifact: an architecture, `file`, `capability`, `ingress`, a field, …
    pub section: String,
    pub change: Change,
    pub what: String,
}

impl Item {
    fn new(
        artifact: Artifact,
        section: impl Into<String>,
        change: Change,
        what: impl Into<String>,
    ) -> Self {
        Item {
            artifact,
            section: section.into(),
            change,
            what: what.into(),
        }
    }
}

/// Every difference, sorted (artifact, section, change, what), so output is deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub items: Vec<Item>,
    /// What was not compared, and why.
    pub notes: Vec<String>,
    /// A diff of two recordings: "added" is what NEW's workload did and OLD's did not.
    pub of_recordings: bool,
}

impl Diff {
    fn finish(mut self) -> Self {
        self.items.sort();
        self.items.dedup();
        self.notes.sort();
        self.notes.dedup();
        self
    }

    pub fn count(&self, change: Change) -> usize {
        self.items.iter().filter(|i| i.change == change).count()
    }

    /// NEW allows something OLD did not.
    pub fn widens(&self) -> bool {
        self.count(Change::Added) > 0
    }
}

/// Why two sets were not compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error(
        "{} and {} are profiles of different workloads: {what} (pass --force to compare them anyway)",
        old.display(),
        new.display()
    )]
    DifferentWorkloads {
        old: PathBuf,
        new: PathBuf,
        what: String,
    },
}

/// The outcome `profgen diff` and `profgen check` exit 5 on: not a failure of profgen, a
/// verdict on the input.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AllowsMore(pub String);

/// Compares two sets. Unless `force`, refuses sets of different workloads (AppArmor profile
/// names, or NetworkPolicy namespaces and podSelectors, differ).
pub fn diff_sets(old: &LoadedSet, new: &LoadedSet, force: bool) -> Result<Diff, DiffError> {
    let mut diff = Diff::default();
    if let Some(what) = different_workload(old, new) {
        if !force {
            return Err(DiffError::DifferentWorkloads {
                old: old.dir.clone(),
                new: new.dir.clone(),
                what,
            });
        }
        diff.notes
            .push(format!("compared despite different workloads: {what}"));
    }
    for artifact in Artifact::CONFINING {
        match (
            old.present.contains(&artifact),
            new.present.contains(&artifact),
        ) {
            (true, false) => diff.items.push(Item::new(
                artifact,
                "file",
                Change::Added,
                format!("NEW has no {artifact}: nothing it confined is confined"),
            )),
            (false, true) => diff.items.push(Item::new(
                artifact,
                "file",
                Change::Removed,
                format!("NEW adds {artifact}"),
            )),
            _ => {}
        }
    }
    if let (Some(o), Some(n)) = (&old.seccomp, &new.seccomp) {
        seccomp::diff(o, n, &mut diff.items);
    }
    if let (Some(o), Some(n)) = (&old.apparmor, &new.apparmor) {
        apparmor::diff(o, n, &mut diff.items);
    }
    if let (Some(o), Some(n)) = (&old.network_policies, &new.network_policies) {
        netpol::diff(o, n, &mut diff);
    }
    if let (Some(o), Some(n)) = (&old.security_context, &new.security_context) {
        securitycontext::diff(o, n, &mut diff.items);
    }
    Ok(diff.finish())
}

/// What tells the two sets' workloads apart, if anything.
fn different_workload(old: &LoadedSet, new: &LoadedSet) -> Option<String> {
    if let (Some(o), Some(n)) = (&old.apparmor, &new.apparmor) {
        if o.name != n.name {
            return Some(format!("AppArmor profile {} vs {}", o.name, n.name));
        }
    }
    if let (Some(o), Some(n)) = (&old.network_policies, &new.network_policies) {
        let (o, n) = (netpol::selected(o), netpol::selected(n));
        if o != n {
            return Some(format!(
                "NetworkPolicy podSelector {} vs {}",
                o.join("; "),
                n.join("; ")
            ));
        }
    }
    None
}

//! What a profile's file rules grant: on a path (a recorded access), and over everything a
//! rule of another profile can match (a diff).

use super::{
    glob::Glob,
    rules::{FileRule, Letters},
    Profile,
};
use crate::synth::apparmor::base::BASE;

/// The file rules `#include <abstractions/base>` brings in (the synthesizer's table).
pub fn base_rules() -> Vec<FileRule> {
    BASE.iter()
        .map(|(pattern, letters)| FileRule {
            deny: false,
            owner: false,
            path: Glob::parse(pattern).expect("the base table holds valid globs"),
            letters: Letters::parse(letters).expect("the base table holds valid letters"),
        })
        .collect()
}

/// A profile's file rules, with base's when it includes it.
pub struct Grants {
    allow: Vec<FileRule>,
    deny: Vec<FileRule>,
}

impl Grants {
    pub fn of(profile: &Profile) -> Grants {
        let mut rules = profile.files.clone();
        if profile.includes_base() {
            rules.extend(base_rules());
        }
        let (deny, allow) = rules.into_iter().partition(|r| r.deny);
        Grants { allow, deny }
    }

    /// The letters granted on `path` for a task that owns the file (`owned`) or not.
    pub fn on_path(&self, path: &[u8], owned: bool) -> Letters {
        let granted = self
            .allow
            .iter()
            .filter(|r| (owned || !r.owner) && r.path.matches(path))
            .fold(Letters::default(), |acc, r| acc.union(&r.letters));
        self.deny
            .iter()
            .filter(|r| (owned || !r.owner) && r.path.matches(path))
            .fold(granted, |acc, r| acc.without(&r.letters))
    }

    /// Whether these rules grant at least what `rule` grants, on every path it matches.
    /// Conservative: rules whose globs each cover the new one's add up; anything the glob
    /// inclusion cannot decide counts as not granted.
    pub fn cover(&self, rule: &FileRule) -> bool {
        let granted = self
            .allow
            .iter()
            .filter(|r| (rule.owner || !r.owner) && r.path.covers(&rule.path))
            .fold(Letters::default(), |acc, r| acc.union(&r.letters));
        granted.grants(&rule.letters)
    }
}

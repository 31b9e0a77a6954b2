//! AppArmor profile from what a workload did (`docs/apparmor.md`).
//!
//! A pure function of an [`Activity`]: file rules with the letters the recorded operations
//! need, `capability` rules for what was used, `network` rules by family and type. Rules that
//! `abstractions/base` already grants are dropped; failed accesses become comments, not rules;
//! paths become broader only by the rules in `generalise.rs` (using what the workload made,
//! `made.rs`) and `collapse.rs`, and a rule that writes also reads (`read-back`, `made.rs`).
//! Anything that cannot be written in AppArmor's grammar is reported in
//! [`Profile::not_expressible`] (and as a comment), never dropped silently. A large profile
//! writes a directory's alike files as one rule (`group.rs`).

// `profile_set` reads profiles back and needs what base grants and how ops become letters.
mod aggregated;
pub(crate) mod base;
mod collapse;
mod escape;
mod failed;
mod generalise;
mod group;
mod made;
mod pattern;
pub(crate) mod rules;
#[cfg(test)]
mod testglob;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_next_run;

use std::{borrow::Cow, collections::BTreeSet, fmt::Write as _};

use crate::model::activity::{Activity, FileAccess, FileOp};
use pattern::Pattern;
use rules::Perms;

/// Why no profile could be written at all.
#[derive(Debug, thiserror::Error)]
pub enum AppArmorError {
    #[error(
        "invalid AppArmor profile name {name:?}: use 1 to 200 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit (Kubernetes refers to it as localhostProfile)"
    )]
    InvalidName { name: String },
}

#[derive(Clone, Debug)]
pub struct AppArmorOptions {
    /// The directory-collapse threshold (`dir/*`, `dir/**`); 0 never collapses.
    pub collapse_threshold: usize,
}

impl Default for AppArmorOptions {
    fn default() -> Self {
        Self {
            collapse_threshold: 10,
        }
    }
}

/// Rule counts for the CLI table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppArmorSummary {
    pub file_rules: usize,
    pub exec_rules: usize,
    pub write_rules: usize,
    pub owner_rules: usize,
    pub capability_rules: usize,
    pub network_rules: usize,
    /// Accesses `abstractions/base` already allows.
    pub covered_by_base: usize,
    /// Rules made broader by a generalisation rule (ids, `/proc/@{pid}`, collapses).
    pub generalised: usize,
    /// Failed accesses, left out of the profile and listed as comments.
    pub failed_left_out: usize,
    pub not_expressible: usize,
}

impl AppArmorSummary {
    /// (label, count) rows in display order.
    pub fn rows(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("file rules", self.file_rules),
            ("  of which exec (ix)", self.exec_rules),
            ("  of which write", self.write_rules),
            ("  of which owner", self.owner_rules),
            ("capability rules", self.capability_rules),
            ("network rules", self.network_rules),
            ("covered by abstractions/base", self.covered_by_base),
            ("generalised", self.generalised),
            ("failed accesses left out", self.failed_left_out),
            ("not expressible", self.not_expressible),
        ]
    }
}

#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    /// The profile, ready for `apparmor_parser`.
    pub text: String,
    pub summary: AppArmorSummary,
    /// What the recording holds that the profile cannot say, each with the reason. The
    /// workload will be denied these.
    pub not_expressible: Vec<String>,
    /// Things the user should know (capabilities not recorded, …).
    pub warnings: Vec<String>,
}

pub(crate) struct Rule {
    pattern: Pattern,
    perms: Perms,
    owner: bool,
    /// Generalisation rules that shaped this one. Mostly the rules' own names: a rule per file
    /// of a million-file recording does not allocate its notes.
    notes: Vec<Cow<'static, str>>,
}

/// Capability names the AppArmor 3.0 parser knows: the kernel's, as recordings spell them.
use crate::model::CAPABILITY_NAMES as CAPABILITIES;

const FAMILIES: &[&str] = &[
    "unix",
    "inet",
    "ax25",
    "ipx",
    "appletalk",
    "netrom",
    "bridge",
    "atmpvc",
    "x25",
    "inet6",
    "rose",
    "netbeui",
    "security",
    "key",
    "netlink",
    "packet",
    "ash",
    "econet",
    "atmsvc",
    "rds",
    "sna",
    "irda",
    "pppox",
    "wanpipe",
    "llc",
    "ib",
    "mpls",
    "can",
    "tipc",
    "bluetooth",
    "iucv",
    "rxrpc",
    "isdn",
    "phonet",
    "ieee802154",
    "caif",
    "alg",
    "nfc",
    "vsock",
    "kcm",
    "qipcrtr",
    "smc",
    "xdp",
    "mctp",
];

const SOCKET_TYPES: &[&str] = &["stream", "dgram", "seqpacket", "rdm", "raw", "packet"];

/// Refuses names AppArmor or Kubernetes would misread: `/` (hats and paths), `:`
/// (namespaces), spaces, quotes, `//`.
pub fn validate_name(name: &str) -> Result<(), AppArmorError> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AppArmorError::InvalidName { name: name.into() })
    }
}

/// The note on a rule that reads what the workload wrote: what it allows beyond what was
/// recorded.
const READ_BACK: &str = "read-back: r added as a next start reads what this run wrote";

/// The rule pattern for one recorded path: generalised by every rule, unless that would cover
/// a path that failed while recording (then by the id rules alone, as without the facts of
/// what the workload made).
fn pattern_for(path: &[u8], made: &made::Made, failed: &[Vec<u8>]) -> (Pattern, Vec<&'static str>) {
    let Some(facts) = made.facts(path) else {
        return generalise::generalise(path, None);
    };
    let full = generalise::generalise(path, Some(&facts));
    if failed.iter().any(|f| full.0.matches(f)) {
        let plain = generalise::generalise(path, None);
        if plain.0 != full.0 {
            return plain;
        }
    }
    full
}

/// Each successful access's rule, in the order of `files`, and why those that cannot be
/// written could not.
fn access_rules(
    files: &[FileAccess],
    made: &made::Made,
    bounding: &[Vec<u8>],
) -> (Vec<Rule>, Vec<String>) {
    let mut rules = Vec::with_capacity(files.len());
    let mut unexpressible = Vec::new();
    for f in files.iter().filter(|f| !f.failed) {
        let path = f.path.as_bytes();
        if let Some(why) = escape::unexpressible(path) {
            unexpressible.push(format!("file {:?}: {why}", String::from_utf8_lossy(path)));
            continue;
        }
        let perms = Perms::from_ops(f.ops.iter());
        if perms.is_empty() {
            continue;
        }
        let (pattern, applied) = pattern_for(path, made, bounding);
        rules.push(Rule {
            pattern,
            perms,
            owner: f.owned,
            notes: applied.into_iter().map(Cow::Borrowed).collect(),
        });
    }
    (rules, unexpressible)
}

/// The failed paths no generalised rule may cover: those that failed and never succeeded, but
/// not a failed unlink (`unlink-before-create`). Removing a name that is not there is how a
/// writer makes sure its temporary name is free (PostgreSQL unlinks `pg_internal.init.PID`
/// before writing it), not something the workload did without: the names its temporary
/// files take are what the rule allows anyway. The failure is still listed.
fn bounding_failures(activity: &Activity, succeeded: &BTreeSet<&[u8]>) -> Vec<Vec<u8>> {
    let mut out = BTreeSet::new();
    for f in activity.files.iter().filter(|f| f.failed) {
        let path = f.path.as_bytes();
        let unlink_only = !f.ops.is_empty() && f.ops.iter().all(|op| *op == FileOp::Unlink);
        if !succeeded.contains(path) && !unlink_only {
            out.insert(path.to_vec());
        }
    }
    out.into_iter().collect()
}

/// Synthesizes the profile `name` from what the workload did.
pub fn apparmor(
    name: &str,
    activity: &Activity,
    opts: &AppArmorOptions,
) -> Result<Profile, AppArmorError> {
    validate_name(name)?;
    let mut summary = AppArmorSummary::default();
    let mut not_expressible = Vec::new();
    let mut warnings = Vec::new();

    // Paths that failed and never succeeded: no rule may come to cover them.
    let succeeded: BTreeSet<&[u8]> = activity
        .files
        .iter()
        .filter(|f| !f.failed)
        .map(|f| f.path.as_bytes())
        .collect();
    let failed: Vec<Vec<u8>> = activity
        .files
        .iter()
        .filter(|f| f.failed && !succeeded.contains(f.path.as_bytes()))
        .map(|f| f.path.as_bytes().to_vec())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let bounding = bounding_failures(activity, &succeeded);
    drop(succeeded);
    let made = made::Made::new(activity);

    // Every successful access's rule, then merged per generalised path: sorted in a list
    // rather than gathered in a map, as the recording's paths come sorted and mostly stay
    // so (a map of a million rules costs a search per access, and more memory).
    let (mut merged, unexpressible) = access_rules(&activity.files, &made, &bounding);
    not_expressible.extend(unexpressible);
    // Stable: a merged rule's notes come in the order of the accesses.
    merged.sort_by(|a, b| a.pattern.cmp(&b.pattern));
    merged.dedup_by(|next, kept| {
        if next.pattern != kept.pattern {
            return false;
        }
        kept.perms = kept.perms.union(next.perms);
        // `owner` restricts: it holds for the merged rule only if it held for every access.
        kept.owner &= next.owner;
        for n in next.notes.drain(..) {
            if !kept.notes.contains(&n) {
                kept.notes.push(n);
            }
        }
        true
    });

    // Read-back and what base covers, on the way into the collapse.
    let covered_by_base = &mut summary.covered_by_base;
    let rules = merged.into_iter().filter_map(|mut rule| {
        if made::reads_back(&rule.pattern.shape(), &rule.perms) {
            rule.perms.read = true;
            rule.notes.push(Cow::Borrowed(READ_BACK));
        }
        match rule.pattern.base_text() {
            Some(lit) if base::covers(&lit, &rule.perms) => {
                *covered_by_base += 1;
                None
            }
            _ => Some(rule),
        }
    });

    let rules = collapse::collapse(rules, &failed, opts.collapse_threshold, &|p| {
        made.created(p)
    });
    let (globs, refused) = aggregated::rules(&activity.aggregated_dirs);
    not_expressible.extend(refused);
    let rules = aggregated::absorb(rules, globs);

    let mut text = String::new();
    let _ = writeln!(
        text,
        "# AppArmor profile {name}, synthesized by profgen from a recording."
    );
    let _ = writeln!(text, "# Generalisation rules: docs/apparmor.md.");
    text.push_str("abi <abi/3.0>,\n\n#include <tunables/global>\n\n");
    let _ = writeln!(
        text,
        "profile {name} flags=(attach_disconnected,mediate_deleted) {{"
    );
    text.push_str("  #include <abstractions/base>\n");

    // Capabilities.
    match &activity.capabilities {
        None => {
            let w = "capabilities were not recorded (the kernel has no capability:cap_capable tracepoint): the profile allows none".to_string();
            let _ = writeln!(text, "\n  # {w}");
            warnings.push(w);
        }
        Some(caps) => {
            let mut lines = BTreeSet::new();
            for c in caps {
                let n = c.trim().to_ascii_lowercase();
                let n = n.strip_prefix("cap_").unwrap_or(&n).to_string();
                if CAPABILITIES.contains(&n.as_str()) {
                    lines.insert(n);
                } else {
                    not_expressible.push(format!("capability {c:?}: unknown to AppArmor 3.0"));
                }
            }
            if !lines.is_empty() {
                text.push_str("\n  # capabilities used\n");
            }
            for c in &lines {
                let _ = writeln!(text, "  capability {c},");
            }
            summary.capability_rules = lines.len();
        }
    }

    // Network: family and type only, never a bare `network,`.
    let mut net = BTreeSet::new();
    for s in &activity.sockets {
        let fam = s.family.to_ascii_lowercase();
        let ty = s.kind.to_ascii_lowercase();
        if FAMILIES.contains(&fam.as_str()) && SOCKET_TYPES.contains(&ty.as_str()) {
            net.insert(format!("network {fam} {ty},"));
        } else {
            not_expressible.push(format!(
                "socket {} {}: not a family/type AppArmor 3.0 can name",
                s.family, s.kind
            ));
        }
    }
    if !net.is_empty() {
        text.push_str("\n  # sockets created (family, type)\n");
    }
    for n in &net {
        let _ = writeln!(text, "  {n}");
    }
    summary.network_rules = net.len();

    // Files.
    if !rules.is_empty() {
        text.push_str("\n  # files\n");
    }
    for line in group::lines(&rules, group::FROM_RULES) {
        let r = line.rule;
        let letters = r.perms.letters();
        let owner = if r.owner { "owner " } else { "" };
        let note = if r.notes.is_empty() {
            String::new()
        } else {
            format!("  # {}", r.notes.join(", "))
        };
        let _ = writeln!(text, "  {owner}{} {letters},{note}", line.path);
    }
    for r in &rules {
        summary.file_rules += 1;
        summary.exec_rules += usize::from(r.perms.exec);
        summary.write_rules += usize::from(r.perms.write || r.perms.append);
        summary.owner_rules += usize::from(r.owner);
        summary.generalised += usize::from(!r.notes.is_empty());
    }

    if !failed.is_empty() {
        text.push_str("\n  # failed while recording, not allowed:\n");
        for line in failed::comment_lines(&failed) {
            let _ = writeln!(text, "  #   {line}");
        }
    }
    summary.failed_left_out = failed.len();

    if !not_expressible.is_empty() {
        text.push_str("\n  # recorded but not expressible in AppArmor (will be denied):\n");
        for n in &not_expressible {
            let _ = writeln!(text, "  #   {}", escape::for_comment(n.as_bytes()));
        }
    }
    summary.not_expressible = not_expressible.len();
    text.push_str("}\n");

    Ok(Profile {
        name: name.to_string(),
        text,
        summary,
        not_expressible,
        warnings,
    })
}

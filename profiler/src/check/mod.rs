//! `profgen check`: would a committed profile set allow everything a recording did?
//!
//! Pure: a [`LoadedSet`] and a [`Recording`] (several are merged with `Recording::merge`
//! first) give a [`Report`]. Each finding names the cgroup that did it and the programs
//! that cgroup ran. Syscalls are judged per ABI against `seccomp.json`; files, execs, sockets
//! and capabilities against `apparmor.profile` (with `abstractions/base` when included);
//! capabilities also against the securityContext; flows against `networkpolicy.yaml` with
//! the NetworkPolicy evaluator. What the activity holds is what the synthesizer reads
//! ([`workload_activity`]): failed accesses are not the workload's needs and are skipped.

mod args;
mod flows;
mod render;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::SecurityContext;

pub use render::{markdown, table};

use crate::{
    cluster::Cluster,
    model::{Activity, CgroupRecord, Recording},
    profile_set::{
        apparmor::{normalize_capability, Grants, Letters, Profile},
        seccomp::{self, Verdict},
        Artifact, LoadedSet,
    },
    synth::workload_activity,
    verify::netpol::PolicyError,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Syscall,
    File,
    Exec,
    Socket,
    Capability,
    Flow,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Syscall => "syscall",
            Kind::File => "file",
            Kind::Exec => "exec",
            Kind::Socket => "socket",
            Kind::Capability => "capability",
            Kind::Flow => "flow",
        })
    }
}

/// A cgroup that did something, and the programs it ran.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Doer {
    pub cgroup: String,
    pub exes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub what: String,
    /// Which artifact does not allow it, and how.
    pub why: String,
    pub by: Vec<Doer>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// What the set does not allow: the check fails on any.
    pub outside: Vec<Finding>,
    /// Syscalls only rules with argument conditions allow, which the recording holds no
    /// complete argument values for (or whose recorded values pass only in some
    /// combinations): shown, not failed. Values no rule allows are in `outside`.
    pub with_arguments: Vec<Finding>,
    /// What was not checked, and why.
    pub notes: Vec<String>,
}

impl Report {
    pub fn passes(&self) -> bool {
        self.outside.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("networkpolicy.yaml: {0}")]
    Policy(#[from] PolicyError),
}

type Key = (Kind, String, String);

#[derive(Default)]
struct Acc {
    outside: BTreeMap<Key, BTreeSet<Doer>>,
    with_arguments: BTreeMap<Key, BTreeSet<Doer>>,
}

impl Acc {
    fn add(&mut self, kind: Kind, what: String, why: String, by: &Doer) {
        self.outside
            .entry((kind, what, why))
            .or_default()
            .insert(by.clone());
    }

    /// A call the profile allows only with some arguments: outside it when the recorded
    /// values say so, shown apart when the recording has no values to judge by.
    fn add_by_arguments(
        &mut self,
        verdict: args::ArgVerdict,
        what: String,
        why: String,
        by: &Doer,
    ) {
        match verdict {
            args::ArgVerdict::Allowed => {}
            args::ArgVerdict::Refused(values) => self.add(
                Kind::Syscall,
                what,
                format!("{why}; it was made with {}", values.join(", ")),
                by,
            ),
            args::ArgVerdict::Unknown => {
                self.with_arguments
                    .entry((Kind::Syscall, what, why))
                    .or_default()
                    .insert(by.clone());
            }
        }
    }
}

fn findings(map: BTreeMap<Key, BTreeSet<Doer>>) -> Vec<Finding> {
    map.into_iter()
        .map(|((kind, what, why), by)| Finding {
            kind,
            what,
            why,
            by: by.into_iter().collect(),
        })
        .collect()
}

/// Checks `rec` against `set`. `cluster` resolves NetworkPolicy selector peers to pods.
pub fn check(
    set: &LoadedSet,
    rec: &Recording,
    cluster: Option<&Cluster>,
) -> Result<Report, CheckError> {
    let mut acc = Acc::default();
    let mut notes = notes(set, rec);
    let shell = Recording {
        cgroups: Vec::new(),
        ..rec.clone()
    };
    let grants = set.apparmor.as_ref().map(Grants::of);
    for cg in &rec.cgroups {
        let doer = doer(cg);
        if let Some(profile) = &set.seccomp {
            syscalls(profile, cg, &doer, &mut acc);
        }
        // The activity as the synthesizer saw it, one cgroup at a time to name who did it.
        let activity = workload_activity(&Recording {
            cgroups: vec![cg.clone()],
            ..shell.clone()
        })
        .into_owned();
        if let (Some(profile), Some(grants)) = (&set.apparmor, &grants) {
            files(grants, &activity, &doer, &mut acc);
            sockets(profile, &activity, &doer, &mut acc);
        }
        capabilities(
            set.apparmor.as_ref(),
            set.security_context.as_ref(),
            &activity,
            &doer,
            &mut acc,
        );
        if let Some(policies) = &set.network_policies {
            for (what, why) in flows::judge(policies, &activity, cluster, &mut notes)? {
                acc.add(Kind::Flow, what, why, &doer);
            }
        }
    }
    notes.sort();
    notes.dedup();
    Ok(Report {
        outside: findings(acc.outside),
        with_arguments: findings(acc.with_arguments),
        notes,
    })
}

fn notes(set: &LoadedSet, rec: &Recording) -> Vec<String> {
    let mut notes = Vec::new();
    let absent = |a: Artifact, what: &str| format!("{a} absent: {what} not checked");
    if set.seccomp.is_none() {
        notes.push(absent(Artifact::Seccomp, "syscalls"));
    }
    if set.apparmor.is_none() {
        notes.push(absent(Artifact::AppArmor, "files, execs and sockets"));
    }
    if set.network_policies.is_none() {
        notes.push(absent(Artifact::NetworkPolicy, "flows"));
    }
    if rec.syscalls_only {
        notes.push("the recording holds syscalls only: files, execs, sockets, capabilities and flows were not recorded".into());
    } else if rec
        .cgroups
        .iter()
        .any(|c| c.activity.capabilities.is_none())
    {
        notes.push(
            "capabilities were not recorded (no capability:cap_capable tracepoint): not checked"
                .into(),
        );
    }
    let lost = rec.events_lost_total();
    if lost > 0 {
        notes.push(format!(
            "the recording lost {lost} events: it may hold less than the workload did"
        ));
    }
    notes
}

fn doer(cg: &CgroupRecord) -> Doer {
    let exes: BTreeSet<String> = cg
        .activity
        .processes
        .iter()
        .map(|p| String::from_utf8_lossy(p.exe.as_bytes()).into_owned())
        .collect();
    Doer {
        cgroup: cg
            .path
            .clone()
            .unwrap_or_else(|| format!("cgroup id {}", cg.id)),
        exes: exes.into_iter().collect(),
    }
}

fn syscalls(
    profile: &oci_spec::runtime::LinuxSeccomp,
    cg: &CgroupRecord,
    doer: &Doer,
    acc: &mut Acc,
) {
    for (abi, names) in &cg.syscalls {
        for name in names {
            let what = format!("{name} ({abi})");
            if name == "clone3" && args::answers_enosys(profile, name) {
                clone3_through_clone(profile, cg, *abi, what, doer, acc);
                continue;
            }
            match seccomp::verdict(profile, *abi, name) {
                Verdict::Allowed => {}
                Verdict::OnlyWithArguments(conditions) => {
                    let why = format!(
                        "{} allows it only if {}",
                        Artifact::Seccomp,
                        conditions.join(" or ")
                    );
                    let recorded = cg.args.get(abi).and_then(|calls| calls.get(name));
                    acc.add_by_arguments(args::judge(profile, name, recorded), what, why, doer);
                }
                Verdict::Denied(why) => acc.add(
                    Kind::Syscall,
                    what,
                    format!("{}: {why}", Artifact::Seccomp),
                    doer,
                ),
            }
        }
    }
    for (abi, numbers) in &cg.unknown_numbers {
        for nr in numbers {
            acc.add(
                Kind::Syscall,
                format!("#{nr} ({abi})"),
                "a syscall number no table names: no profile can allow it by name".into(),
                doer,
            );
        }
    }
}

/// `clone3` answers ENOSYS: libcs make the same call through `clone`, so the recorded
/// `clone3` flags are judged by `clone`'s rules.
fn clone3_through_clone(
    profile: &oci_spec::runtime::LinuxSeccomp,
    cg: &CgroupRecord,
    abi: crate::model::Abi,
    what: String,
    doer: &Doer,
    acc: &mut Acc,
) {
    let via = "answers clone3 with ENOSYS (libcs fall back to clone)";
    match seccomp::verdict(profile, abi, "clone") {
        Verdict::Allowed => {}
        Verdict::Denied(why) => acc.add(
            Kind::Syscall,
            what,
            format!("{} {via} and refuses clone: {why}", Artifact::Seccomp),
            doer,
        ),
        Verdict::OnlyWithArguments(conditions) => {
            let why = format!(
                "{} {via}, which it allows only if {}",
                Artifact::Seccomp,
                conditions.join(" or ")
            );
            let recorded = cg.args.get(&abi).and_then(|calls| calls.get("clone3"));
            acc.add_by_arguments(args::judge(profile, "clone", recorded), what, why, doer);
        }
    }
}

/// `/proc/self/…` as the kernel resolves it, `/proc/<pid>/…`, so that `@{pid}` rules apply.
fn as_mediated(path: &[u8]) -> Vec<u8> {
    for alias in [&b"/proc/self"[..], b"/proc/thread-self"] {
        if let Some(rest) = path.strip_prefix(alias) {
            if rest.is_empty() || rest.starts_with(b"/") {
                // Any pid: `@{pid}` and `*` match every one alike.
                return [&b"/proc/1"[..], rest].concat();
            }
        }
    }
    path.to_vec()
}

fn files(grants: &Grants, activity: &Activity, doer: &Doer, acc: &mut Acc) {
    for f in activity.files.iter().filter(|f| !f.failed) {
        let need = Letters::needed_by(&f.ops);
        if need == Letters::default() {
            continue;
        }
        let granted = grants.on_path(&as_mediated(f.path.as_bytes()), f.owned);
        let missing = granted.missing(&need, false);
        if missing.is_empty() {
            continue;
        }
        let kind = if need.exec.is_some() && granted.exec.is_none() {
            Kind::Exec
        } else {
            Kind::File
        };
        let why = match granted.to_string() {
            g if g.is_empty() => {
                format!("needs {need}: no rule of {} matches it", Artifact::AppArmor)
            }
            g => format!(
                "needs {need}: {} grants only {g} (lacks {missing})",
                Artifact::AppArmor
            ),
        };
        acc.add(
            kind,
            String::from_utf8_lossy(f.path.as_bytes()).into_owned(),
            why,
            doer,
        );
    }
}

fn sockets(profile: &Profile, activity: &Activity, doer: &Doer, acc: &mut Acc) {
    for s in &activity.sockets {
        if !profile.allows_socket(&s.family, &s.kind) {
            acc.add(
                Kind::Socket,
                format!("{} {}", s.family, s.kind),
                format!("no `network` rule of {} allows it", Artifact::AppArmor),
                doer,
            );
        }
    }
}

fn capabilities(
    profile: Option<&Profile>,
    sc: Option<&SecurityContext>,
    activity: &Activity,
    doer: &Doer,
    acc: &mut Acc,
) {
    let Some(used) = &activity.capabilities else {
        return;
    };
    let upper = |c: &str| normalize_capability(c).to_ascii_uppercase();
    let list = |l: Option<&Vec<String>>| -> BTreeSet<String> {
        l.into_iter().flatten().map(|c| upper(c)).collect()
    };
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    let add = list(caps.and_then(|c| c.add.as_ref()));
    let drop = list(caps.and_then(|c| c.drop.as_ref()));
    for cap in used {
        let name = normalize_capability(cap);
        if profile.is_some_and(|p| !p.allows_capability(&name)) {
            acc.add(
                Kind::Capability,
                name.clone(),
                format!("no `capability {name},` in {}", Artifact::AppArmor),
                doer,
            );
        }
        let cap_upper = upper(&name);
        if sc.is_some() && !add.contains(&cap_upper) {
            let why = if drop.contains("ALL") {
                Some("drops ALL and does not add it")
            } else if drop.contains(&cap_upper) {
                Some("drops it")
            } else {
                None
            };
            if let Some(why) = why {
                acc.add(
                    Kind::Capability,
                    name.clone(),
                    format!("{}: capabilities {why}", Artifact::SecurityContext),
                    doer,
                );
            }
        }
    }
}

//! In how many runs each rule was seen. A recording merged from several runs of a workload's
//! tests (or several replicas) allows what any run did; coverage keeps, for the rules that not
//! every run saw, how many did. A rule seen in one run of three is still allowed (it was needed
//! once) but is the kind of rule a one-run profile breaks on, so `profgen synth` lists it.
//!
//! Rules are what the artifacts are made of: syscalls per ABI, files (successful accesses, by
//! path), capabilities and network flows.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Abi, Flow, FsPath, Recording};

/// Runs merged into a recording, and the rules fewer than all of them saw.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    /// Runs merged into this recording; 0 (absent) means one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub runs: u32,
    /// Syscalls seen in fewer than `runs` runs: name → runs that saw it, per ABI.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub syscalls: BTreeMap<Abi, BTreeMap<String, u32>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SeenPath>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capabilities: BTreeMap<String, u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<SeenFlow>,
}

/// A file (successfully accessed) and the runs that accessed it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeenPath {
    pub path: FsPath,
    pub runs: u32,
}

/// A flow and the runs that made it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeenFlow {
    pub flow: Flow,
    pub runs: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Coverage {
    /// The number of runs (at least one).
    pub fn runs(&self) -> u32 {
        self.runs.max(1)
    }

    /// Whether every rule was seen in every run.
    pub fn is_complete(&self) -> bool {
        self.syscalls.is_empty()
            && self.files.is_empty()
            && self.capabilities.is_empty()
            && self.flows.is_empty()
    }

    /// Whether there is nothing to write: one run.
    pub fn is_single_run(&self) -> bool {
        self.runs() == 1 && self.is_complete()
    }

    /// The coverage of `recordings` merged: runs add up, and each rule counts the runs of
    /// every recording that saw it.
    pub(super) fn of_merge(recordings: &[Recording]) -> Coverage {
        let runs: u32 = recordings.iter().map(|r| r.coverage.runs()).sum();
        let mut counts = Counts::default();
        for rec in recordings {
            counts.add(rec);
        }
        counts.partial(runs)
    }
}

/// A rule of one kind, as coverage keys it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    Syscall(Abi, String),
    File(FsPath),
    Capability(String),
    Flow(Flow),
}

#[derive(Default)]
struct Counts(BTreeMap<Rule, u32>);

impl Counts {
    /// Adds the runs of `rec` that saw each of its rules.
    fn add(&mut self, rec: &Recording) {
        let partial = partial_counts(&rec.coverage);
        for rule in rules(rec) {
            let n = partial.get(&rule).copied().unwrap_or(rec.coverage.runs());
            *self.0.entry(rule).or_default() += n;
        }
    }

    fn partial(self, runs: u32) -> Coverage {
        let mut c = Coverage {
            runs,
            ..Coverage::default()
        };
        for (rule, n) in self.0.into_iter().filter(|(_, n)| *n < runs) {
            match rule {
                Rule::Syscall(abi, name) => {
                    c.syscalls.entry(abi).or_default().insert(name, n);
                }
                Rule::File(path) => c.files.push(SeenPath { path, runs: n }),
                Rule::Capability(cap) => {
                    c.capabilities.insert(cap, n);
                }
                Rule::Flow(flow) => c.flows.push(SeenFlow { flow, runs: n }),
            }
        }
        c
    }
}

fn partial_counts(c: &Coverage) -> BTreeMap<Rule, u32> {
    let mut out = BTreeMap::new();
    for (abi, names) in &c.syscalls {
        for (name, n) in names {
            out.insert(Rule::Syscall(*abi, name.clone()), *n);
        }
    }
    for f in &c.files {
        out.insert(Rule::File(f.path.clone()), f.runs);
    }
    for (cap, n) in &c.capabilities {
        out.insert(Rule::Capability(cap.clone()), *n);
    }
    for f in &c.flows {
        out.insert(Rule::Flow(f.flow.clone()), f.runs);
    }
    out
}

/// Every rule `rec` holds, over all its cgroups.
fn rules(rec: &Recording) -> BTreeSet<Rule> {
    let mut out = BTreeSet::new();
    for (abi, names) in rec.allowed_syscalls() {
        out.extend(names.into_iter().map(|n| Rule::Syscall(abi, n)));
    }
    for cg in &rec.cgroups {
        let a = &cg.activity;
        out.extend(
            a.files
                .iter()
                .filter(|f| !f.failed)
                .map(|f| Rule::File(f.path.clone())),
        );
        out.extend(
            a.capabilities
                .iter()
                .flatten()
                .cloned()
                .map(Rule::Capability),
        );
        out.extend(a.flows.iter().cloned().map(Rule::Flow));
    }
    out
}

/// How many of the files only some runs saw the terminal names: runs that each touched
/// different files (uploads, cache entries) can leave a million of them.
const SHOWN_FILES: usize = 20;

/// What `rec` saw in only some of its runs, one line per kind, for the terminal.
pub fn partial_lines(rec: &Recording) -> Vec<String> {
    let c = &rec.coverage;
    let runs = c.runs();
    let mut lines = Vec::new();
    for (abi, names) in &c.syscalls {
        let list: Vec<String> = names
            .iter()
            .map(|(n, k)| format!("{n} ({k}/{runs})"))
            .collect();
        lines.push(format!("syscalls ({abi}): {}", list.join(", ")));
    }
    if !c.files.is_empty() {
        let list: Vec<String> = c
            .files
            .iter()
            .take(SHOWN_FILES)
            .map(|f| {
                format!(
                    "{} ({}/{runs})",
                    String::from_utf8_lossy(f.path.as_bytes()),
                    f.runs
                )
            })
            .collect();
        let more = match c.files.len().saturating_sub(SHOWN_FILES) {
            0 => String::new(),
            n => format!(", and {n} more (the recording's coverage lists them all)"),
        };
        lines.push(format!("files: {}{more}", list.join(", ")));
    }
    if !c.capabilities.is_empty() {
        let list: Vec<String> = c
            .capabilities
            .iter()
            .map(|(n, k)| format!("{n} ({k}/{runs})"))
            .collect();
        lines.push(format!("capabilities: {}", list.join(", ")));
    }
    if !c.flows.is_empty() {
        let list: Vec<String> = c
            .flows
            .iter()
            .map(|f| format!("{} ({}/{runs})", describe_flow(&f.flow), f.runs))
            .collect();
        lines.push(format!("flows: {}", list.join(", ")));
    }
    lines
}

fn describe_flow(f: &Flow) -> String {
    let proto = format!("{:?}", f.protocol).to_ascii_lowercase();
    match f.direction {
        super::Direction::Ingress => format!("from {} to :{}/{proto}", f.peer, f.local_port),
        super::Direction::Egress => format!("to {}:{}/{proto}", f.peer, f.peer_port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    fn run(calls: &[&str], files: &[&str]) -> Recording {
        let mut rec = fixtures::recording(vec![fixtures::cgroup_with(calls, files)]);
        rec.coverage = Coverage::default();
        rec
    }

    #[test]
    fn merged_runs_count_what_only_some_saw() {
        let a = run(&["read", "epoll_pwait"], &["/etc/a", "/etc/b"]);
        let b = run(&["read"], &["/etc/a"]);
        let c = run(&["read", "write"], &["/etc/a"]);
        let m = Recording::merge(&[a.clone(), b.clone(), c.clone()]).unwrap();
        assert_eq!(m.coverage.runs, 3);
        assert_eq!(
            m.coverage.syscalls[&Abi::X86_64],
            BTreeMap::from([("epoll_pwait".to_string(), 1), ("write".to_string(), 1)])
        );
        assert_eq!(
            m.coverage.files,
            [SeenPath {
                path: FsPath::from("/etc/b"),
                runs: 1
            }]
        );
        // Merging merged recordings counts runs, not recordings.
        let ab = Recording::merge(&[a, b]).unwrap();
        let again = Recording::merge(&[ab, c]).unwrap();
        assert_eq!(again.coverage, m.coverage);
        assert_eq!(
            partial_lines(&m),
            [
                "syscalls (x86_64): epoll_pwait (1/3), write (1/3)",
                "files: /etc/b (1/3)"
            ]
        );
    }

    #[test]
    fn the_terminal_names_the_first_files_and_counts_the_rest() {
        let names: Vec<String> = (0..SHOWN_FILES + 5)
            .map(|i| format!("/up/{i:03}"))
            .collect();
        let a = run(
            &["read"],
            &names.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let m = Recording::merge(&[a, run(&["read"], &[])]).unwrap();
        assert_eq!(m.coverage.files.len(), SHOWN_FILES + 5);
        let lines = partial_lines(&m);
        let [files] = lines.as_slice() else {
            panic!("{lines:?}")
        };
        assert!(
            files.starts_with("files: /up/000 (1/2), /up/001 (1/2), "),
            "{files}"
        );
        assert!(
            files.ends_with(&format!(
                "/up/{:03} (1/2), and 5 more (the recording's coverage lists them all)",
                SHOWN_FILES - 1
            )),
            "{files}"
        );
    }

    #[test]
    fn a_single_recording_keeps_its_coverage() {
        let a = run(&["read"], &["/etc/a"]);
        let m = Recording::merge(std::slice::from_ref(&a)).unwrap();
        assert!(m.coverage.is_single_run());
        let twice = Recording::merge(&[a.clone(), a]).unwrap();
        assert_eq!(twice.coverage.runs, 2);
        assert!(twice.coverage.is_complete());
    }

    #[test]
    fn failed_accesses_are_not_rules() {
        let mut a = run(&["read"], &["/etc/a"]);
        a.cgroups[0].activity.files[0].failed = true;
        let b = run(&["read"], &[]);
        let m = Recording::merge(&[a, b]).unwrap();
        assert!(m.coverage.is_complete(), "{:?}", m.coverage);
    }
}

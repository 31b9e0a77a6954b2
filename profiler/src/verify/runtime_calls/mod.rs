//! Measuring what a container runtime calls after it installed the container's seccomp filter
//! (the calls `synth::seccomp::runtime` adds to every profile).
//!
//! One method for every runtime: the container runs under a filter whose default action is
//! `SCMP_ACT_LOG` ([`bundle::logging_profile`]), which refuses nothing and has the kernel log
//! every call that reaches it, and the kernel log is read back ([`kmsg`]). What the kernel
//! logged is what went through the filter, on every thread the filter covers, with no tracer
//! changing the timing; the runtime's calls are those of the container's process up to its
//! exec. Audit records reach the kernel log through printk's rate limit when no auditd runs,
//! so `kernel.printk_ratelimit` is 0 while measuring, and a run whose records were dropped is
//! an error, not a shorter list.
//!
//! [`host::measure`] runs a runtime on this machine (runc); [`guest::measure`] boots Debian's
//! kernel under qemu with a pure cgroup v2 hierarchy and runs crun there.

pub mod bundle;
pub mod guest;
pub mod host;
pub mod kmsg;

use std::{collections::BTreeSet, fmt};

pub use bundle::{Variant, VARIANTS};
pub use kmsg::{LogError, ProcessCalls};

use super::apparmor::{ImageError, VmError};

/// One run of the runtime.
#[derive(Clone, Debug)]
pub struct Run {
    pub variant: Variant,
    /// 1-based.
    pub index: usize,
    /// The processes that logged under the filter; the container's process exec'd.
    pub processes: Vec<ProcessCalls>,
}

/// Per variant measured: how many of its runs made a call, of how many.
pub type PerVariant = Vec<(Variant, usize, usize)>;

/// The distinct calls of `runs`, each with the number of runs per variant that made it.
pub fn tally(runs: &[Run]) -> Vec<(String, PerVariant)> {
    let names: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| kmsg::distinct(&r.processes))
        .collect();
    names
        .into_iter()
        .map(|name| {
            let per = VARIANTS
                .into_iter()
                .filter_map(|v| {
                    let of: Vec<&Run> = runs.iter().filter(|r| r.variant == v).collect();
                    let with = of
                        .iter()
                        .filter(|r| kmsg::distinct(&r.processes).contains(&name))
                        .count();
                    (!of.is_empty()).then_some((v, with, of.len()))
                })
                .collect();
            (name, per)
        })
        .collect()
}

/// The tally as text, one call a line: `capset  privs-root 3/3, privs-nobody 3/3`.
pub struct Tally<'a>(pub &'a [Run]);

impl fmt::Display for Tally<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, per) in tally(self.0) {
            let seen: Vec<String> = per
                .iter()
                .filter(|(_, with, _)| *with > 0)
                .map(|(v, with, of)| format!("{} {with}/{of}", v.label()))
                .collect();
            writeln!(f, "{name:<16} {}", seen.join(", "))?;
        }
        Ok(())
    }
}

/// The distinct calls of every run.
pub fn calls(runs: &[Run]) -> BTreeSet<String> {
    runs.iter()
        .flat_map(|r| kmsg::distinct(&r.processes))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{runtime} failed to run the measuring container ({variant}, run {index}): {detail}")]
    RunFailed {
        runtime: String,
        variant: &'static str,
        index: usize,
        detail: String,
    },
    #[error("{variant}, run {index}: {source}")]
    Log {
        variant: &'static str,
        index: usize,
        #[source]
        source: LogError,
    },
    #[error(transparent)]
    Vm(#[from] VmError),
    #[error("building the guest: {0}")]
    Image(#[from] ImageError),
    #[error("the guest stopped before measuring everything (no `{0}` marker); console tail:\n{1}")]
    Guest(String, String),
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> MeasureError {
    let what = what.into();
    move |source| MeasureError::Io { what, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(variant: Variant, index: usize, calls: &[&str]) -> Run {
        Run {
            variant,
            index,
            processes: vec![ProcessCalls {
                pid: 1,
                comm: "c".into(),
                calls: calls.iter().map(|c| c.to_string()).collect(),
                execed: true,
            }],
        }
    }

    #[test]
    fn tallies_runs_per_variant() {
        let [nnp, privs, ..] = VARIANTS;
        let runs = [
            run(nnp, 1, &["close", "execve"]),
            run(nnp, 2, &["close", "futex", "close", "execve"]),
            run(privs, 1, &["capset", "execve"]),
        ];
        let t = tally(&runs);
        let futex = t.iter().find(|(n, _)| n == "futex").unwrap();
        assert_eq!(futex.1, vec![(nnp, 1, 2), (privs, 0, 1)]);
        assert_eq!(
            calls(&runs),
            BTreeSet::from(["capset", "close", "execve", "futex"].map(String::from))
        );
        let text = Tally(&runs).to_string();
        assert!(
            text.contains("execve           nnp-root-run 2/2, privs-root-run 1/1\n"),
            "{text}"
        );
        assert!(
            text.contains("capset           privs-root-run 1/1\n"),
            "{text}"
        );
    }
}

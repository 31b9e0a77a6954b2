//! Verifying a set of artifacts: each one's verdict, and the one line that names what failed.
//!
//! The seccomp profile and the securityContext are enforced in one runc run; when that run
//! fails on a fact that is about neither alone (the container did not start, the tests
//! failed), [`attribute_run`] decides with a second run under the seccomp profile alone.

use std::fmt;

use super::report::{Part, Report};

/// The artifacts of a set, in the order they are proven and reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Artifact {
    Seccomp,
    SecurityContext,
    AppArmor,
    NetworkPolicy,
}

impl Artifact {
    /// As the summary names it, and as its file is named without the extension.
    pub fn name(self) -> &'static str {
        match self {
            Self::Seccomp => "seccomp",
            Self::SecurityContext => "securitycontext",
            Self::AppArmor => "apparmor",
            Self::NetworkPolicy => "networkpolicy",
        }
    }

    /// The file `profgen synth` writes it to.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Seccomp => "seccomp.json",
            Self::SecurityContext => "securitycontext.yaml",
            Self::AppArmor => "apparmor.profile",
            Self::NetworkPolicy => "networkpolicy.yaml",
        }
    }

    pub const ALL: [Artifact; 4] = [
        Self::Seccomp,
        Self::SecurityContext,
        Self::AppArmor,
        Self::NetworkPolicy,
    ];
}

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One artifact's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// Enforced, and a fact did not hold: the short reason.
    Failed(String),
    /// Could not be enforced at all (no VM, runc missing): why.
    NotRun(String),
}

/// The artifacts that could not be enforced, each with why: `apparmor (no qemu)`.
pub fn not_run(outcomes: &[(Artifact, Verdict)]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|(a, v)| match v {
            Verdict::NotRun(why) => Some(format!("{a} ({why})")),
            _ => None,
        })
        .collect()
}

/// `FAILED apparmor (2 DENIED for the suite); passed seccomp, securitycontext`: failures
/// first, each with its reason, then what could not be run, then what passed.
pub fn summary(outcomes: &[(Artifact, Verdict)]) -> String {
    let mut parts = Vec::new();
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|(a, v)| match v {
            Verdict::Failed(why) => Some(format!("{a} ({why})")),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        parts.push(format!("FAILED {}", failed.join(", ")));
    }
    let not_run = not_run(outcomes);
    if !not_run.is_empty() {
        parts.push(format!("NOT RUN {}", not_run.join(", ")));
    }
    let passed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, v)| *v == Verdict::Passed)
        .map(|(a, _)| a.name())
        .collect();
    if !passed.is_empty() {
        parts.push(format!("passed {}", passed.join(", ")));
    }
    parts.join("; ")
}

/// The verdicts of the seccomp profile and the securityContext (each `Some` when it was
/// given) from the run that enforced them together. `seccomp_alone` is the report of a run
/// under the seccomp profile alone, needed only when [`needs_seccomp_alone`] says so.
pub fn attribute_run(
    together: &Report,
    seccomp: bool,
    security_context: bool,
    seccomp_alone: Option<&Report>,
) -> (Option<Verdict>, Option<Verdict>) {
    let first = |v: Vec<String>| v.into_iter().next();
    let run = first(together.failures_of(Part::Run));
    let own_seccomp = first(together.failures_of(Part::Seccomp));
    let own_sc = first(together.failures_of(Part::SecurityContext));
    let verdict = |why: Option<String>| why.map_or(Verdict::Passed, Verdict::Failed);
    let (sc_verdict, seccomp_verdict) = match (seccomp, security_context, run) {
        (_, _, None) => (verdict(own_sc), verdict(own_seccomp)),
        (true, false, Some(why)) => (Verdict::Passed, Verdict::Failed(own_seccomp.unwrap_or(why))),
        (false, _, Some(why)) => (Verdict::Failed(own_sc.unwrap_or(why)), Verdict::Passed),
        (true, true, Some(why)) => match seccomp_alone {
            // The workload fails under the seccomp profile alone: the securityContext is not
            // proven either, since the run it needs never passed.
            Some(alone) if !alone.passed() => (
                Verdict::Failed(own_sc.unwrap_or_else(|| {
                    "not proven: the workload fails under the seccomp profile alone".into()
                })),
                Verdict::Failed(
                    first(alone.failures())
                        .map(|w| format!("{w}; the run with the securityContext too: {why}"))
                        .unwrap_or(why),
                ),
            ),
            Some(_) => (Verdict::Failed(own_sc.unwrap_or(why)), verdict(own_seccomp)),
            None => (
                Verdict::Failed(own_sc.unwrap_or_else(|| why.clone())),
                Verdict::Failed(own_seccomp.unwrap_or(why)),
            ),
        },
    };
    (
        seccomp.then_some(seccomp_verdict),
        security_context.then_some(sc_verdict),
    )
}

/// Whether the joint run failed in a way only a run under the seccomp profile alone can pin
/// on one of the two.
pub fn needs_seccomp_alone(together: &Report, seccomp: bool, security_context: bool) -> bool {
    seccomp && security_context && !together.failures_of(Part::Run).is_empty()
}

#[cfg(test)]
mod tests {
    use super::super::report::TestRun;
    use super::*;

    #[test]
    fn summary_names_failures_first() {
        use Artifact::*;
        let cases: Vec<(Vec<(Artifact, Verdict)>, &str)> = vec![
            (
                vec![
                    (Seccomp, Verdict::Passed),
                    (SecurityContext, Verdict::Passed),
                    (AppArmor, Verdict::Failed("2 DENIED for the suite".into())),
                    (NetworkPolicy, Verdict::Passed),
                ],
                "FAILED apparmor (2 DENIED for the suite); passed seccomp, securitycontext, networkpolicy",
            ),
            (
                vec![(Seccomp, Verdict::Passed), (NetworkPolicy, Verdict::Passed)],
                "passed seccomp, networkpolicy",
            ),
            (
                vec![
                    (Seccomp, Verdict::Failed("tests: exit 1".into())),
                    (AppArmor, Verdict::NotRun("qemu-system-x86_64 not found".into())),
                    (NetworkPolicy, Verdict::Failed("1 probe admitted".into())),
                ],
                "FAILED seccomp (tests: exit 1), networkpolicy (1 probe admitted); NOT RUN apparmor (qemu-system-x86_64 not found)",
            ),
        ];
        for (outcomes, want) in cases {
            assert_eq!(summary(&outcomes), want);
        }
    }

    fn report(tests_pass: bool, sc_ok: bool) -> Report {
        Report {
            started: Ok(()),
            seccomp_mode: Some(Ok(2)),
            tests: Some(TestRun {
                passed: tests_pass,
                status: if tests_pass { "exit 0" } else { "exit 1" }.into(),
                stdout: String::new(),
                stderr: String::new(),
            }),
            security_context: Some(Ok(vec![(sc_ok, "no_new_privs in the container".into())])),
            ..Report::new("c")
        }
    }

    #[test]
    fn a_joint_failure_is_pinned_by_the_run_under_seccomp_alone() {
        let failed = |s: &str| Some(Verdict::Failed(s.into()));
        let passed = Some(Verdict::Passed);
        let mut alone_ok = report(true, true);
        alone_ok.security_context = None;
        let mut alone_bad = report(false, true);
        alone_bad.security_context = None;
        let together_bad = report(false, true);
        let cases = [
            // Both pass.
            (
                report(true, true),
                true,
                true,
                None,
                passed.clone(),
                passed.clone(),
            ),
            // The securityContext's own fact.
            (
                report(true, false),
                true,
                true,
                None,
                passed.clone(),
                failed("no_new_privs in the container"),
            ),
            // Tests fail together, pass under seccomp alone: the securityContext is to blame.
            (
                together_bad.clone(),
                true,
                true,
                Some(&alone_ok),
                passed.clone(),
                failed("tests: exit 1"),
            ),
            // Tests fail under seccomp alone too.
            (
                together_bad.clone(),
                true,
                true,
                Some(&alone_bad),
                failed("tests: exit 1; the run with the securityContext too: tests: exit 1"),
                failed("not proven: the workload fails under the seccomp profile alone"),
            ),
            // One artifact alone takes the run's failure.
            (
                together_bad.clone(),
                true,
                false,
                None,
                failed("tests: exit 1"),
                None,
            ),
            (
                together_bad.clone(),
                false,
                true,
                None,
                None,
                failed("tests: exit 1"),
            ),
        ];
        assert!(needs_seccomp_alone(&together_bad, true, true));
        assert!(!needs_seccomp_alone(&together_bad, true, false));
        assert!(!needs_seccomp_alone(&report(true, false), true, true));
        for (together, seccomp, sc, alone, want_seccomp, want_sc) in cases {
            let got = attribute_run(&together, seccomp, sc, alone);
            assert_eq!(got, (want_seccomp, want_sc), "{together}");
        }
    }
}

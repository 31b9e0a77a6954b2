//! The facts a verification establishes, and the verdict on them.

use std::fmt;

use super::{probe::ProbeResult, process::Captured};

/// The test command's result.
#[derive(Clone, Debug)]
pub struct TestRun {
    pub passed: bool,
    /// "exit 0", "exit 1", "signal 9", "timed out".
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

impl From<Captured> for TestRun {
    fn from(c: Captured) -> Self {
        Self {
            passed: c.success(),
            status: c.describe(),
            stdout: c.stdout,
            stderr: c.stderr,
        }
    }
}

/// Which artifact a fact is about: the seccomp profile, the securityContext, or the run that
/// enforced whatever was given (its failure cannot be pinned on one of them by itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Run,
    Seccomp,
    SecurityContext,
}

/// Each field is one fact; `None` means the step did not run (not configured, or an earlier
/// step failed).
#[derive(Clone, Debug)]
pub struct Report {
    pub container_id: String,
    /// The container was created and started under the profile.
    pub started: Result<(), String>,
    /// `Seccomp:` of the container's init process (2: a filter is active), or why it could
    /// not be read; `None` when no seccomp profile was enforced.
    pub seccomp_mode: Option<Result<u32, String>>,
    /// The container accepted connections.
    pub ready: Option<Result<(), String>>,
    pub tests: Option<TestRun>,
    /// The container was still running when the tests finished.
    pub running_after_tests: Option<bool>,
    pub probes: Option<Result<Vec<ProbeResult>, String>>,
    /// The securityContext's fields as the running container shows them, or why they could
    /// not be read.
    pub security_context: Option<Result<Vec<(bool, String)>, String>>,
    /// The container's output, for diagnosing a failure.
    pub container_log: String,
}

impl Report {
    pub fn new(container_id: &str) -> Self {
        Self {
            container_id: container_id.to_owned(),
            started: Err("not attempted".into()),
            seccomp_mode: None,
            ready: None,
            tests: None,
            running_after_tests: None,
            probes: None,
            security_context: None,
            container_log: String::new(),
        }
    }

    /// Every fact as `(holds, description)`, in the order they were established.
    pub fn facts(&self) -> Vec<(bool, String)> {
        self.facts_by_part()
            .into_iter()
            .map(|(_, ok, what)| (ok, what))
            .collect()
    }

    /// Every fact with the artifact it is about.
    pub fn facts_by_part(&self) -> Vec<(Part, bool, String)> {
        let mut facts = Vec::new();
        match &self.started {
            Ok(()) => facts.push((
                Part::Run,
                true,
                format!("container {} started", self.container_id),
            )),
            Err(e) => {
                facts.push((Part::Run, false, format!("container did not start: {e}")));
                return facts;
            }
        }
        if let Some(ready) = &self.ready {
            match ready {
                Ok(()) => facts.push((Part::Run, true, "container accepts connections".into())),
                Err(e) => {
                    facts.push((
                        Part::Run,
                        false,
                        format!("container never became ready: {e}"),
                    ));
                    return facts;
                }
            }
        }
        if let Some(mode) = &self.seccomp_mode {
            let (ok, what) = match mode {
                Ok(2) => (
                    true,
                    "seccomp filter active in the container (Seccomp: 2)".into(),
                ),
                Ok(m) => (
                    false,
                    format!("no seccomp filter in the container (Seccomp: {m})"),
                ),
                Err(e) => (false, format!("container's seccomp mode unknown: {e}")),
            };
            facts.push((Part::Seccomp, ok, what));
        }
        match &self.security_context {
            None => {}
            Some(Ok(fields)) => facts.extend(
                fields
                    .iter()
                    .map(|(ok, what)| (Part::SecurityContext, *ok, what.clone())),
            ),
            Some(Err(e)) => facts.push((
                Part::SecurityContext,
                false,
                format!("securityContext not observed: {e}"),
            )),
        }
        if let Some(t) = &self.tests {
            facts.push((Part::Run, t.passed, format!("tests: {}", t.status)));
        }
        if let Some(running) = self.running_after_tests {
            facts.push(match running {
                true => (
                    Part::Run,
                    true,
                    "container still running after the tests".into(),
                ),
                false => (
                    Part::Run,
                    false,
                    "container stopped during the tests".into(),
                ),
            });
        }
        match &self.probes {
            None => {}
            Some(Err(e)) => facts.push((Part::Seccomp, false, format!("probe failed: {e}"))),
            Some(Ok(results)) => facts.extend(results.iter().map(|r| {
                if r.refused_by_seccomp() {
                    (
                        Part::Seccomp,
                        true,
                        format!("{}: refused with EPERM", r.syscall),
                    )
                } else {
                    (
                        Part::Seccomp,
                        false,
                        format!("{}: not refused with EPERM (probe: {r})", r.syscall),
                    )
                }
            })),
        }
        facts
    }

    /// The facts that do not hold.
    pub fn failures(&self) -> Vec<String> {
        self.facts()
            .into_iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, what)| what)
            .collect()
    }

    /// The facts about `part` that do not hold.
    pub fn failures_of(&self, part: Part) -> Vec<String> {
        self.facts_by_part()
            .into_iter()
            .filter(|(p, ok, _)| *p == part && !ok)
            .map(|(_, _, what)| what)
            .collect()
    }

    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }
}

/// One line per fact, then the test output and, on failure, the container's output.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (ok, what) in self.facts() {
            writeln!(f, "{} {what}", if ok { "ok  " } else { "FAIL" })?;
        }
        if let Some(t) = &self.tests {
            for (label, text) in [("test stdout", &t.stdout), ("test stderr", &t.stderr)] {
                if !text.trim().is_empty() {
                    writeln!(f, "--- {label}\n{}", text.trim_end())?;
                }
            }
        }
        if !self.passed() && !self.container_log.trim().is_empty() {
            writeln!(f, "--- container output\n{}", self.container_log.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::probe::Outcome;
    use super::*;

    fn passing() -> Report {
        Report {
            started: Ok(()),
            seccomp_mode: Some(Ok(2)),
            ready: Some(Ok(())),
            tests: Some(TestRun {
                passed: true,
                status: "exit 0".into(),
                stdout: "12 checks passed\n".into(),
                stderr: String::new(),
            }),
            running_after_tests: Some(true),
            probes: Some(Ok(vec![ProbeResult {
                syscall: "unshare".into(),
                outcome: Outcome::Refused(1),
            }])),
            ..Report::new("c1")
        }
    }

    #[test]
    fn all_facts_hold() {
        let r = passing();
        assert!(r.passed(), "{r}");
        assert_eq!(r.facts().len(), 6);
        assert!(r.to_string().contains("ok   unshare: refused with EPERM"));
    }

    #[test]
    fn an_allowed_probe_fails_the_verification() {
        let mut r = passing();
        r.probes = Some(Ok(vec![ProbeResult {
            syscall: "unshare".into(),
            outcome: Outcome::Allowed,
        }]));
        assert_eq!(
            r.failures(),
            ["unshare: not refused with EPERM (probe: unshare ok)"]
        );
    }

    #[test]
    fn each_broken_fact_is_reported() {
        let mut r = passing();
        r.seccomp_mode = Some(Ok(0));
        r.tests.as_mut().unwrap().passed = false;
        r.running_after_tests = Some(false);
        assert_eq!(r.failures().len(), 3);
        r.container_log = "nginx: [emerg] something".into();
        assert!(r
            .to_string()
            .contains("--- container output\nnginx: [emerg]"));
    }

    #[test]
    fn each_fact_names_its_artifact() {
        let mut r = passing();
        r.probes = Some(Err("runc exec failed".into()));
        r.security_context = Some(Ok(vec![(
            false,
            "no_new_privs in the container: false".into(),
        )]));
        r.tests.as_mut().unwrap().passed = false;
        assert_eq!(
            r.failures_of(Part::Seccomp),
            ["probe failed: runc exec failed"]
        );
        assert_eq!(
            r.failures_of(Part::SecurityContext),
            ["no_new_privs in the container: false"]
        );
        assert_eq!(r.failures_of(Part::Run), ["tests: exit 0"]);
    }

    #[test]
    fn without_a_profile_the_seccomp_mode_is_no_fact() {
        let mut r = passing();
        r.seccomp_mode = None;
        r.probes = None;
        assert!(r.passed(), "{r}");
        assert!(!r.to_string().contains("seccomp"), "{r}");
    }

    #[test]
    fn a_server_that_never_came_up_ends_the_facts() {
        let mut r = passing();
        r.ready = Some(Err("the container stopped".into()));
        assert_eq!(
            r.failures(),
            ["container never became ready: the container stopped"]
        );
    }

    #[test]
    fn a_container_that_did_not_start_is_the_only_fact() {
        let mut r = passing();
        r.started = Err("runc start failed".into());
        assert_eq!(r.failures(), ["container did not start: runc start failed"]);
    }
}

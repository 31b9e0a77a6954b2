//! What every server's suite shares: named checks, waiting for a condition, and how a suite's
//! outcome is printed and summed up.

use std::{
    thread,
    time::{Duration, Instant},
};

use crate::Check;

/// Checks in the order they ran.
#[derive(Debug, Default)]
pub struct Checks(Vec<Check>);

impl Checks {
    /// Adds a check; returns whether it passed.
    pub fn add(&mut self, name: impl Into<String>, result: Result<(), String>) -> bool {
        let ok = result.is_ok();
        self.0.push(Check {
            name: name.into(),
            result,
        });
        ok
    }

    pub fn into_vec(self) -> Vec<Check> {
        self.0
    }
}

/// Polls `cond` every 50 ms until it holds, fails, or `timeout` passes.
pub fn wait_until(
    timeout: Duration,
    mut cond: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("never held");
    loop {
        match cond() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            return Err(format!("not within {timeout:?} (last: {last})"));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// How many checks failed.
pub fn failures(checks: &[Check]) -> usize {
    checks.iter().filter(|c| c.result.is_err()).count()
}

/// One line per check, as `demo-suite` prints them.
pub fn lines(checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .map(|c| match &c.result {
            Ok(()) => format!("ok   {}", c.name),
            Err(e) => format!("FAIL {}: {e}", c.name),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_returns_once_the_condition_holds() {
        let mut n = 0;
        assert!(wait_until(Duration::from_secs(5), || {
            n += 1;
            Ok(n == 3)
        })
        .is_ok());
        assert_eq!(n, 3);
    }

    #[test]
    fn wait_until_reports_the_last_error() {
        let err = wait_until(Duration::from_millis(120), || Err("refused".into())).unwrap_err();
        assert!(err.contains("refused"), "{err}");
    }

    #[test]
    fn counts_and_prints_failures() {
        let mut c = Checks::default();
        assert!(c.add("a", Ok(())));
        assert!(!c.add("b", Err("no".into())));
        let v = c.into_vec();
        assert_eq!(failures(&v), 1);
        assert_eq!(lines(&v), ["ok   a", "FAIL b: no"]);
    }
}

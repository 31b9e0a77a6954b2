//! The probe's output: one line per probed syscall, `NAME ok` or `NAME errno N`.

use std::fmt;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};

/// EPERM: what a seccomp profile's default `SCMP_ACT_ERRNO` action returns.
pub const EPERM: i32 = 1;

/// The probe's calls of commonly allowed syscalls with arguments a profile made from a
/// workload's recorded values refuses (`profiler/probe/probe.c`): `socket(AF_PACKET)` and
/// `socket(AF_NETLINK)`, `clone(CLONE_NEWUSER)`, `ioctl(TIOCSTI)`,
/// `personality(READ_IMPLIES_EXEC)`. Without a filter, as root, each one succeeds but the
/// ioctl, which is made on no fd and fails with EBADF, never EPERM. `socket_packet` also needs
/// CAP_NET_RAW, whose absence gives EPERM as well: `socket_netlink`, which needs nothing, is
/// the one that shows a filter on the family.
pub const ARGUMENT_PROBES: [&str; 5] = [
    "socket_packet",
    "socket_netlink",
    "clone_newuser",
    "ioctl_tiocsti",
    "personality_read_implies_exec",
];

/// The syscall each argument probe calls.
fn probed_syscall(probe: &str) -> &str {
    probe.split_once('_').map_or(probe, |(syscall, _)| syscall)
}

/// The argument probes that `profile` must refuse: those whose syscall it does not allow
/// unconditionally (allowed only with argument rules, or not at all). A syscall allowed
/// whatever its arguments (an overflowed argument, `--no-args`) has nothing to prove.
pub fn argument_probes_for(profile: &LinuxSeccomp) -> Vec<&'static str> {
    let unconditional = |syscall: &str| {
        profile.syscalls().iter().flatten().any(|rule| {
            rule.action() == LinuxSeccompAction::ScmpActAllow
                && rule.args().as_ref().is_none_or(|a| a.is_empty())
                && rule.names().iter().any(|n| n == syscall)
        })
    };
    ARGUMENT_PROBES
        .into_iter()
        .filter(|p| !unconditional(probed_syscall(p)))
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call succeeded: nothing refused it.
    Allowed,
    /// The call failed with this errno.
    Refused(i32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    pub syscall: String,
    pub outcome: Outcome,
}

impl ProbeResult {
    /// Refused with EPERM, as a seccomp profile that does not allow the syscall refuses it.
    pub fn refused_by_seccomp(&self) -> bool {
        self.outcome == Outcome::Refused(EPERM)
    }
}

impl fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outcome {
            Outcome::Allowed => write!(f, "{} ok", self.syscall),
            Outcome::Refused(errno) => write!(f, "{} errno {errno}", self.syscall),
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("probe output line {0:?} is neither `NAME ok` nor `NAME errno N`")]
    BadLine(String),
    #[error("the probe reported on {got:?}, expected {expected:?}")]
    Mismatch {
        expected: Vec<String>,
        got: Vec<String>,
    },
}

/// Parses the probe's stdout and checks that it reported on exactly `expected`, in order.
pub fn parse(stdout: &str, expected: &[String]) -> Result<Vec<ProbeResult>, ParseError> {
    let results = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_line)
        .collect::<Result<Vec<_>, _>>()?;
    let got: Vec<String> = results.iter().map(|r| r.syscall.clone()).collect();
    if got != expected {
        return Err(ParseError::Mismatch {
            expected: expected.to_vec(),
            got,
        });
    }
    Ok(results)
}

fn parse_line(line: &str) -> Result<ProbeResult, ParseError> {
    let bad = || ParseError::BadLine(line.to_owned());
    let words: Vec<&str> = line.split_whitespace().collect();
    let outcome = match words[..] {
        [_, "ok"] => Outcome::Allowed,
        [_, "errno", n] => Outcome::Refused(n.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    Ok(ProbeResult {
        syscall: words[0].to_owned(),
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn rule(names: &[&str], args: bool) -> serde_json::Value {
        let mut r = serde_json::json!({"names": names, "action": "SCMP_ACT_ALLOW"});
        if args {
            r["args"] = serde_json::json!([{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]);
        }
        r
    }

    fn profile(rules: Vec<serde_json::Value>) -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": rules,
        }))
        .unwrap()
    }

    #[test]
    fn argument_probes_follow_what_the_profile_filters() {
        // socket and clone filtered by argument, ioctl allowed whatever its request,
        // personality not allowed at all.
        let p = profile(vec![
            rule(&["read", "ioctl"], false),
            rule(&["socket"], true),
            rule(&["clone"], true),
        ]);
        assert_eq!(
            argument_probes_for(&p),
            [
                "socket_packet",
                "socket_netlink",
                "clone_newuser",
                "personality_read_implies_exec"
            ]
        );
        // Names only (--no-args): nothing to prove by argument for what is allowed.
        let names_only = profile(vec![rule(
            &["socket", "clone", "ioctl", "personality"],
            false,
        )]);
        assert!(argument_probes_for(&names_only).is_empty());
    }

    #[test]
    fn parses_both_outcomes() {
        let got = parse(
            "unshare errno 1\npersonality ok\n",
            &names(&["unshare", "personality"]),
        )
        .unwrap();
        assert!(got[0].refused_by_seccomp());
        assert_eq!(got[1].outcome, Outcome::Allowed);
        assert!(!got[1].refused_by_seccomp());
        assert_eq!(got[0].to_string(), "unshare errno 1");
    }

    #[test]
    fn other_errnos_are_not_seccomp_refusals() {
        let got = parse("ptrace errno 38\n", &names(&["ptrace"])).unwrap();
        assert_eq!(got[0].outcome, Outcome::Refused(38));
        assert!(!got[0].refused_by_seccomp());
    }

    #[test]
    fn rejects_garbage_and_missing_lines() {
        assert!(matches!(
            parse("unshare unknown\n", &names(&["unshare"])),
            Err(ParseError::BadLine(_))
        ));
        assert!(matches!(
            parse("unshare errno x\n", &names(&["unshare"])),
            Err(ParseError::BadLine(_))
        ));
        assert!(matches!(
            parse("unshare ok\n", &names(&["unshare", "ptrace"])),
            Err(ParseError::Mismatch { .. })
        ));
    }
}

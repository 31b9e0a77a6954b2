//! What the guest reported, and the verdict on it.

use super::guest;

/// What happened in the guest, as reported by it.
#[derive(Clone, Debug, Default)]
pub struct VmReport {
    /// Seconds from starting qemu to the guest's first marker, and to the end.
    pub boot_secs: f64,
    pub total_secs: f64,
    pub apparmor_enabled: bool,
    pub lsm: String,
    pub profile_loaded: bool,
    pub parser_output: Vec<String>,
    /// Something listened on the awaited port (true when there was nothing to wait for).
    pub ready: bool,
    /// The workload's AppArmor label (`NAME (enforce)` when confined).
    pub label: String,
    /// `None` when no suite was run.
    pub suite_exit: Option<i32>,
    pub suite_output: Vec<String>,
    pub alive_after: bool,
    /// The end of what the workload printed.
    pub workload_output: Vec<String>,
    /// DENIED lines while the workload and its suite ran (expected: none).
    pub workload_denied: Vec<String>,
    /// Per probe: (name, exit code, DENIED lines). Expected: non-zero exit, DENIED lines.
    pub probes: Vec<(String, i32, Vec<String>)>,
    pub write_probe_file_exists: bool,
    pub finished: bool,
    pub console: String,
}

/// The probes the guest runs.
pub const PROBES: [&str; 2] = ["read-shadow", "write-usr"];

impl VmReport {
    /// Every fact as `(holds, description)`, in the order the guest established them.
    pub fn facts(&self) -> Vec<(bool, String)> {
        let mut f = vec![
            (
                self.apparmor_enabled,
                format!("AppArmor enabled in the guest (lsm: {})", self.lsm),
            ),
            (
                self.profile_loaded,
                match self.parser_output.is_empty() {
                    true => "profile loaded in enforce mode".to_owned(),
                    false => format!(
                        "profile loaded in enforce mode; the parser said: {}",
                        self.parser_output.join(" | ")
                    ),
                },
            ),
            (
                self.ready,
                "the workload listened on the awaited port".into(),
            ),
            (
                self.label.contains("(enforce)"),
                format!("workload confined: label {:?}", self.label),
            ),
        ];
        if let Some(rc) = self.suite_exit {
            f.push((rc == 0, format!("suite in the guest: exit {rc}")));
        }
        f.push((
            self.alive_after,
            "the workload still ran after the suite".into(),
        ));
        f.push((
            self.workload_denied.is_empty(),
            format!("{} DENIED for the suite", self.workload_denied.len()),
        ));
        for (name, rc, denied) in &self.probes {
            f.push((
                *rc != 0 && !denied.is_empty(),
                format!("probe {name}: exit {rc}, {} DENIED line(s)", denied.len()),
            ));
        }
        if self.probes.len() != PROBES.len() {
            f.push((
                false,
                format!(
                    "{} probes reported, expected {}",
                    self.probes.len(),
                    PROBES.len()
                ),
            ));
        }
        if self.write_probe_file_exists {
            f.push((false, "the write probe created its file under /usr".into()));
        }
        f.push((self.finished, "the guest finished its checks".into()));
        f
    }

    /// Every fact that does not hold; empty when the profile is proven.
    pub fn failures(&self) -> Vec<String> {
        self.facts()
            .into_iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, what)| what)
            .collect()
    }

    /// The failures in a few words, for a summary line: the DENIED count first, then probes
    /// that got through, then whatever failed first.
    pub fn short_reason(&self) -> Option<String> {
        let failures = self.failures();
        let first = failures.first()?;
        let mut parts = Vec::new();
        if !self.workload_denied.is_empty() {
            parts.push(format!(
                "{} DENIED for the suite",
                self.workload_denied.len()
            ));
        }
        let through: Vec<&str> = self
            .probes
            .iter()
            .filter(|(_, rc, denied)| *rc == 0 || denied.is_empty())
            .map(|(name, _, _)| name.as_str())
            .collect();
        if !through.is_empty() {
            parts.push(format!("probe {} not denied", through.join(", ")));
        }
        if parts.is_empty() {
            parts.push(first.clone());
        }
        Some(parts.join(", "))
    }

    /// Reads the guest's markers off the serial console.
    pub fn from_console(console: &str) -> Self {
        let (facts, denied) = guest::parse(console);
        let mut r = VmReport {
            console: console.to_string(),
            ..Default::default()
        };
        for (k, v) in facts {
            match k.as_str() {
                "apparmor-enabled" => r.apparmor_enabled = v.trim() == "Y",
                "lsm" => r.lsm = v,
                "load-rc" => r.profile_loaded = v.trim() == "0",
                "loaded" => r.profile_loaded &= v.trim() == "1",
                "parser-line" => r.parser_output.push(v),
                "ready" => r.ready = v.trim() == "1",
                "label" => r.label = v,
                "suite-rc" => r.suite_exit = v.trim().parse().ok(),
                "suite-line" => r.suite_output.push(v),
                "alive" => r.alive_after = v.trim() == "1",
                "workload-line" => r.workload_output.push(v),
                "probe-rc" => {
                    let (name, rc) = v.split_once(' ').unwrap_or((&v, "-1"));
                    let lines = denied
                        .iter()
                        .filter(|d| d.phase == name)
                        .map(|d| d.line.clone())
                        .collect();
                    r.probes
                        .push((name.to_string(), rc.trim().parse().unwrap_or(-1), lines));
                }
                "write-usr-exists" => r.write_probe_file_exists = v.trim() == "1",
                "done" => r.finished = true,
                _ => {}
            }
        }
        r.workload_denied = denied
            .iter()
            .filter(|d| d.phase == "workload")
            .map(|d| d.line.clone())
            .collect();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSING: &str = "\
[    0.1] Linux version 6.1.0
PROFGEN booted 1.93
PROFGEN apparmor-enabled Y
PROFGEN lsm lockdown,capability,landlock,yama,apparmor
PROFGEN load-rc 0
PROFGEN loaded 1
PROFGEN ready 1
PROFGEN label redis (enforce)
PROFGEN suite-rc 0
PROFGEN suite-line PING_INLINE: 1234.5 requests per second
PROFGEN alive 1
PROFGEN probe-rc read-shadow 1
PROFGEN-DENIED read-shadow [ 9.1] audit: apparmor=\"DENIED\" operation=\"open\" name=\"/etc/shadow\"
PROFGEN probe-rc write-usr 1
PROFGEN-DENIED write-usr [ 9.3] audit: apparmor=\"DENIED\" operation=\"mknod\" name=\"/usr/profgen-probe\"
PROFGEN write-usr-exists 0
PROFGEN done
";

    #[test]
    fn a_clean_run_has_no_failures() {
        let r = VmReport::from_console(PASSING);
        assert_eq!(r.failures(), Vec::<String>::new());
        assert_eq!(r.short_reason(), None);
        assert_eq!(r.label, "redis (enforce)");
        assert_eq!(r.suite_exit, Some(0));
        assert_eq!(r.probes.len(), 2);
    }

    #[test]
    fn each_broken_fact_is_named() {
        let denied = "PROFGEN-DENIED workload [ 5.0] audit: apparmor=\"DENIED\" operation=\"open\" name=\"/srv/site/index.html\"\n";
        let cases = [
            (
                PASSING.replace(
                    "PROFGEN suite-rc 0",
                    &format!("{denied}{denied}PROFGEN suite-rc 1"),
                ),
                "2 DENIED for the suite",
            ),
            (
                PASSING
                    .replace("PROFGEN-DENIED read-shadow", "ignored")
                    .replace("read-shadow 1", "read-shadow 0"),
                "probe read-shadow not denied",
            ),
            (
                PASSING.replace("label redis (enforce)", "label unconfined"),
                "workload confined: label \"unconfined\"",
            ),
            (
                PASSING.replace("PROFGEN done\n", ""),
                "the guest finished its checks",
            ),
            (
                PASSING.replace("ready 1", "ready 0"),
                "the workload listened on the awaited port",
            ),
            (
                PASSING.replace("suite-rc 0", "suite-rc 1"),
                "suite in the guest: exit 1",
            ),
        ];
        for (console, want) in cases {
            let r = VmReport::from_console(&console);
            assert!(!r.failures().is_empty(), "{console}");
            assert_eq!(
                r.short_reason().as_deref(),
                Some(want),
                "{:?}",
                r.failures()
            );
        }
    }
}

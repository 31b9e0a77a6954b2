//! Naming rules: which names Kubernetes accepts (object names, namespaces, labels), and the
//! names profgen gives the artifacts of a set ([`SetNames`]).
//!
//! AppArmor's own rule for profile names stays with its synthesizer
//! ([`crate::synth::apparmor::validate_name`]), which refuses a bad name before making rules.

mod set;
#[cfg(test)]
mod tests;

pub use set::{parse_workload, SetNames};

use crate::model::Target;

/// Why a name given for a set cannot be used. One line each, saying what to give instead.
#[derive(Debug, thiserror::Error)]
pub enum NamingError {
    #[error("--workload {0:?}: expected KIND/NAME, e.g. Deployment/web")]
    WorkloadShape(String),
    #[error(
        "--workload kind {0:?}: expected Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod"
    )]
    WorkloadKind(String),
}

/// A DNS-label form of `name` for Kubernetes object names: lower case, `-` for anything
/// else, at most 63 characters, no `-` at either end.
pub fn kube_name(name: &str) -> String {
    let n: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    n.trim_matches('-').to_string()
}

/// A profile name from what was recorded: the command's or the cgroup's last component,
/// with the characters AppArmor and Kubernetes refuse replaced by `-`.
pub fn default_name(target: &Target) -> String {
    let source = match target {
        Target::Command { argv, .. } => argv.first().map(String::as_str).unwrap_or(""),
        Target::Cgroup { cgroup } | Target::Pid { cgroup, .. } => cgroup.as_str(),
    };
    let last = source
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut name: String = cleaned.chars().take(200).collect();
    if name.is_empty() {
        name = "workload".into();
    }
    name
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters: a label name or value.
fn check_label_part(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err(format!("{} characters, at most 63", s.len()));
    }
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let ok = s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_some_and(alnum)
        && s.chars().last().is_some_and(alnum);
    if ok {
        Ok(())
    } else {
        Err(
            "must be alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
                .into(),
        )
    }
}

/// A DNS-1123 label (a namespace): lower-case alphanumerics and '-', at most 63.
pub fn check_dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("must be 1-63 lower-case alphanumerics or '-', not starting or ending with '-'".into())
    }
}

/// A DNS-1123 subdomain (most object names): dot-separated DNS labels, at most 253.
pub fn check_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err(format!("{} characters, at most 253", s.len()));
    }
    s.split('.').try_for_each(check_dns_label)
}

/// A label as the API server validates it: `[prefix/]name` and a possibly empty value.
pub fn check_label(key: &str, value: &str) -> Result<(), String> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            check_subdomain(prefix).map_err(|e| format!("key prefix {prefix:?}: {e}"))?;
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err("empty key name".into());
    }
    check_label_part(name).map_err(|e| format!("key: {e}"))?;
    if !value.is_empty() {
        check_label_part(value).map_err(|e| format!("value: {e}"))?;
    }
    Ok(())
}

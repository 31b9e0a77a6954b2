//! The tables `profgen synth` prints of a set it made.

use k8s_openapi::{
    api::networking::v1::{NetworkPolicy, NetworkPolicyPort},
    apimachinery::pkg::util::intstr::IntOrString,
};
use profgen::{
    model::Abi,
    profile_set::AppArmorMade,
    synth::{
        securitycontext::{Suggestion, Verdict},
        SeccompSummary,
    },
};
use tabled::{settings::Style, Table, Tabled};

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "seccomp")]
    what: String,
    #[tabled(rename = "syscalls")]
    count: String,
}

fn row(what: impl Into<String>, count: impl ToString) -> Row {
    Row {
        what: what.into(),
        count: count.to_string(),
    }
}

/// A two-column table with the given headers.
fn table(headers: [&str; 2], rows: Vec<(String, String)>) -> String {
    let mut b = tabled::builder::Builder::default();
    b.push_record(headers);
    for (a, c) in rows {
        b.push_record([a, c]);
    }
    b.build().with(Style::sharp()).to_string()
}

pub(super) fn summary_table(s: &SeccompSummary) -> String {
    let mut rows: Vec<Row> = Abi::ALL
        .iter()
        .filter_map(|abi| {
            s.per_abi
                .get(abi)
                .map(|n| row(format!("allowed, {abi}"), n))
        })
        .collect();
    rows.push(row("allowed, total (distinct names)", s.total));
    rows.push(row("recorded", s.recorded));
    rows.push(row("added as equivalents", name_list(s.equivalent_names())));
    for (runtime, added) in &s.added_for_runtimes {
        rows.push(row(format!("added for {runtime}"), name_list(added)));
    }
    rows.extend(s.args.rows().into_iter().map(|(what, v)| row(what, v)));
    rows.push(row(
        "Docker default profile, x86_64",
        s.docker_default_x86_64,
    ));
    if let Some(ratio) = s.x86_64_vs_docker() {
        rows.push(row(
            "x86_64 allowed vs Docker default",
            format!("{:.0}%", ratio * 100.0),
        ));
    }
    Table::new(rows).with(Style::sharp()).to_string()
}

/// "3 (a, b, c)", or "0"; broken into lines of about 60 characters so the table stays
/// readable in a terminal.
fn name_list<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
    if names.is_empty() {
        return "0".into();
    }
    let mut text = format!("{} (", names.len());
    let mut line = text.len();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            text.push(',');
            if line + name.len() > 60 {
                text.push('\n');
                line = 0;
            } else {
                text.push(' ');
                line += 2;
            }
        }
        text.push_str(name);
        line += name.len();
    }
    text.push(')');
    text
}

pub(super) fn apparmor_table(made: &AppArmorMade) -> String {
    let p = &made.profile;
    let mut rows: Vec<(String, String)> = p
        .summary
        .rows()
        .into_iter()
        .map(|(what, n)| (what.to_string(), n.to_string()))
        .collect();
    rows.push(("parser".into(), made.parser.to_string()));
    table([&format!("AppArmor {}", p.name), "rules"], rows)
}

fn port_list(ports: Option<&Vec<NetworkPolicyPort>>) -> String {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return "any port".into();
    };
    ports
        .iter()
        .map(|p| {
            let port = match &p.port {
                Some(IntOrString::Int(n)) => n.to_string(),
                Some(IntOrString::String(s)) => s.clone(),
                None => "any".into(),
            };
            format!("{}/{port}", p.protocol.as_deref().unwrap_or("TCP"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn netpol_table(policy: &NetworkPolicy) -> String {
    let spec = policy.spec.clone().unwrap_or_default();
    let mut rows = vec![(
        "policyTypes".to_string(),
        spec.policy_types.unwrap_or_default().join(", "),
    )];
    let ingress = spec.ingress.unwrap_or_default();
    rows.push(("ingress rules".into(), ingress.len().to_string()));
    for (i, r) in ingress.iter().enumerate() {
        let from = r.from.as_ref().map_or(0, Vec::len);
        let peers = if from == 0 {
            "any source".to_string()
        } else {
            format!("{from} peer(s)")
        };
        rows.push((
            format!("  ingress {}", i + 1),
            format!("{}, from {peers}", port_list(r.ports.as_ref())),
        ));
    }
    let egress = spec.egress.unwrap_or_default();
    rows.push(("egress rules".into(), egress.len().to_string()));
    for (i, r) in egress.iter().enumerate() {
        let to = r.to.as_ref().map_or(0, Vec::len);
        let peers = if to == 0 {
            "any destination".to_string()
        } else {
            format!("{to} peer(s)")
        };
        rows.push((
            format!("  egress {}", i + 1),
            format!("{}, to {peers}", port_list(r.ports.as_ref())),
        ));
    }
    let name = policy.metadata.name.clone().unwrap_or_default();
    table([&format!("NetworkPolicy {name}"), "allows"], rows)
}

pub(super) fn security_context_table(s: &Suggestion) -> String {
    let rows = s
        .evidence
        .iter()
        .map(|e| {
            let v = match e.verdict {
                Verdict::Suggested => "suggested",
                Verdict::Blocked => "blocked (see securitycontext.md)",
                Verdict::NoEvidence => "no evidence",
            };
            (e.field.to_string(), v.to_string())
        })
        .collect();
    table(["securityContext", "verdict"], rows)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn table_shows_each_abi_total_and_docker() {
        let s = SeccompSummary {
            per_abi: BTreeMap::from([(Abi::X86_64, 62), (Abi::I386, 3)]),
            total: 63,
            recorded: 55,
            added_as_equivalents: BTreeMap::from([
                ("epoll wait", ["epoll_pwait".to_string()].into()),
                ("read", ["readv".to_string()].into()),
            ]),
            added_for_runtimes: BTreeMap::from([
                ("crun".to_string(), ["close_range".to_string()].into()),
                ("runc".to_string(), Default::default()),
            ]),
            events_lost: 0,
            docker_default_x86_64: 309,
            args: Default::default(),
        };
        let table = summary_table(&s);
        for line in [
            "allowed, x86_64",
            "allowed, i386",
            "63",
            "309",
            "20%",
            "recorded",
            "55",
            "added as equivalents",
            "2 (epoll_pwait, readv)",
            "added for crun",
            "1 (close_range)",
            "added for runc",
        ] {
            assert!(table.contains(line), "{line} missing from:\n{table}");
        }
        assert!(!table.contains("x32"));
        let long: Vec<String> = (0..30).map(|i| format!("call_{i:02}")).collect();
        let wrapped = name_list(&long);
        assert!(wrapped.starts_with("30 (call_00, call_01"), "{wrapped}");
        assert!(wrapped.lines().all(|l| l.len() <= 70), "{wrapped}");
        assert_eq!(wrapped.matches("call_").count(), 30);
        assert_eq!(name_list(&[]), "0");
    }
}

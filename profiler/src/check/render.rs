//! A check report for the terminal and for a pull request.

use super::{Doer, Finding, Report};
use crate::diff::render::{markdown_table, table as boxed};

const HEADERS: [&str; 4] = ["kind", "what", "why", "done by"];

fn by(doers: &[Doer]) -> String {
    doers
        .iter()
        .map(|d| match d.exes.as_slice() {
            [] => d.cgroup.clone(),
            exes => format!("{} ({})", d.cgroup, exes.join(", ")),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn rows(findings: &[Finding]) -> Vec<[String; 4]> {
    findings
        .iter()
        .map(|f| [f.kind.to_string(), f.what.clone(), f.why.clone(), by(&f.by)])
        .collect()
}

fn verdict(r: &Report) -> String {
    if r.passes() {
        "the profile set allows everything the recording did".to_owned()
    } else {
        format!(
            "{} thing(s) the recording did are outside the profile set",
            r.outside.len()
        )
    }
}

pub fn table(r: &Report) -> String {
    let mut out = String::new();
    if !r.outside.is_empty() {
        out.push_str("outside the set:\n");
        out.push_str(&boxed(HEADERS, &rows(&r.outside)));
        out.push('\n');
    }
    if !r.with_arguments.is_empty() {
        out.push_str(
            "allowed only with arguments (not checked: the recording holds no complete argument values for them):\n",
        );
        out.push_str(&boxed(HEADERS, &rows(&r.with_arguments)));
        out.push('\n');
    }
    out.push_str(&verdict(r));
    out.push('\n');
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

pub fn markdown(r: &Report, title: &str) -> String {
    let mut out = format!("### {title}\n\n");
    if r.passes() {
        out.push_str(&format!("{}.\n\n", verdict(r)));
    } else {
        out.push_str(&format!("**{}**.\n\n", verdict(r)));
        out.push_str(&markdown_table(HEADERS, &rows(&r.outside)));
        out.push('\n');
    }
    if !r.with_arguments.is_empty() {
        out.push_str(
            "Allowed only with arguments (not checked: the recording holds no complete argument values for them):\n\n",
        );
        out.push_str(&markdown_table(HEADERS, &rows(&r.with_arguments)));
        out.push('\n');
    }
    for n in &r.notes {
        out.push_str(&format!("- note: {n}\n"));
    }
    out
}

//! A diff (or a check) as a terminal table or as Markdown for a pull request. Both are
//! functions of the sorted items only, so equal inputs give equal bytes.

use tabled::{builder::Builder, settings::Style};

use super::{Change, Diff};

/// A table with a header row, boxed for the terminal.
pub fn table<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> String {
    let mut b = Builder::default();
    b.push_record(headers);
    for r in rows {
        b.push_record(r.clone());
    }
    b.build().with(Style::sharp()).to_string()
}

/// A Markdown table; cells are escaped so a path cannot break the table.
pub fn markdown_table<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> String {
    let mut out = format!("| {} |\n|{}\n", headers.join(" | "), "---|".repeat(N));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// A cell's text as Markdown code, `|` and newlines escaped.
pub fn md_cell(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let t = text.replace('|', "\\|").replace(['\n', '\r'], " ");
    // A run of backticks longer than any inside keeps the code span whole.
    let mut fence = "`".to_owned();
    while t.contains(&fence) {
        fence.push('`');
    }
    let pad = if t.starts_with('`') || t.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{t}{pad}{fence}")
}

/// "3 added, 1 removed, 0 changed".
pub fn summary(diff: &Diff) -> String {
    format!(
        "{} added, {} removed, {} changed",
        diff.count(Change::Added),
        diff.count(Change::Removed),
        diff.count(Change::Changed)
    )
}

fn rows(diff: &Diff) -> Vec<[String; 4]> {
    diff.items
        .iter()
        .map(|i| {
            [
                i.artifact.to_string(),
                i.section.clone(),
                i.change.to_string(),
                i.what.clone(),
            ]
        })
        .collect()
}

const HEADERS: [&str; 4] = ["artifact", "section", "change", "what"];

/// For the terminal: the table, a summary line, the notes.
pub fn diff_table(diff: &Diff) -> String {
    let mut out = String::new();
    if !diff.items.is_empty() {
        out.push_str(&table(HEADERS, &rows(diff)));
        out.push('\n');
    }
    out.push_str(&format!(
        "{} (added: allowed by NEW, not by OLD)\n",
        summary(diff)
    ));
    for n in &diff.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

/// For a pull request: `title` as a heading, a summary, the table, the notes.
pub fn diff_markdown(diff: &Diff, title: &str) -> String {
    let mut out = format!("### {title}\n\n");
    if diff.widens() {
        let verdict = if diff.of_recordings {
            "NEW did more than OLD"
        } else {
            "NEW allows more than OLD"
        };
        out.push_str(&format!("**{verdict}**: {}.\n\n", summary(diff)));
    } else {
        out.push_str(&format!("Nothing added: {}.\n\n", summary(diff)));
    }
    if !diff.items.is_empty() {
        out.push_str(&markdown_table(HEADERS, &rows(diff)));
        out.push('\n');
    }
    for n in &diff.notes {
        out.push_str(&format!("- note: {n}\n"));
    }
    out
}

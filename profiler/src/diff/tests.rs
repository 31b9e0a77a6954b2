use std::path::Path;

use super::{render, *};
use crate::{
    model::{Direction, FileOp},
    profile_set::{fixtures::*, load},
};

/// OLD synthesized from the web recording, NEW from `change`d copies of its syscalls and
/// activity.
fn pair(
    tmp: &Path,
    change: impl FnOnce(&mut Vec<&'static str>, &mut crate::model::Activity),
) -> (LoadedSet, LoadedSet) {
    let old = web_recording(WEB_SYSCALLS, web_activity());
    let mut syscalls = WEB_SYSCALLS.to_vec();
    let mut activity = web_activity();
    change(&mut syscalls, &mut activity);
    let new = web_recording(&syscalls, activity);
    (
        load(write_set(&tmp.join("old"), "web", &old)).unwrap(),
        load(write_set(&tmp.join("new"), "web", &new)).unwrap(),
    )
}

fn added(d: &Diff) -> Vec<(Artifact, String, String)> {
    d.items
        .iter()
        .filter(|i| i.change == Change::Added)
        .map(|i| (i.artifact, i.section.clone(), i.what.clone()))
        .collect()
}

#[test]
fn the_same_set_has_no_difference() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = pair(tmp.path(), |_, _| {});
    let d = diff_sets(&old, &new, false).unwrap();
    assert_eq!(d.items, []);
    assert!(!d.widens());
}

#[test]
fn each_widening_is_an_addition_and_its_reverse_a_removal() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = pair(tmp.path(), |syscalls, a| {
        syscalls.push("ptrace");
        a.files.push(access("/etc/shadow", &[FileOp::Read], false));
        a.capabilities.as_mut().unwrap().insert("sys_admin".into());
        a.flows.insert(flow(Direction::Ingress, "10.0.0.3", 8080));
    });
    let d = diff_sets(&old, &new, false).unwrap();
    let got = added(&d);
    let want = [
        (Artifact::Seccomp, "x86_64", "ptrace"),
        (Artifact::AppArmor, "file", "/etc/shadow r"),
        (Artifact::AppArmor, "capability", "sys_admin"),
        (
            Artifact::NetworkPolicy,
            "ingress",
            "from 10.0.0.3/32 on TCP 8080",
        ),
        (Artifact::SecurityContext, "capabilities.add", "SYS_ADMIN"),
    ];
    for (a, s, w) in want {
        assert!(
            got.contains(&(a, s.to_owned(), w.to_owned())),
            "{a} {s} {w} not in {got:#?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
    assert!(d.widens());

    // The other way round, the same items are removals and nothing is added.
    let back = diff_sets(&new, &old, false).unwrap();
    assert_eq!(added(&back), [], "{:#?}", back.items);
    assert_eq!(back.count(Change::Removed), want.len());
}

#[test]
fn a_broader_old_rule_covers_a_narrower_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = pair(tmp.path(), |_, _| {});
    // OLD by hand: the site as a glob, ingress from the whole /24.
    edit(
        &old.dir,
        Artifact::AppArmor,
        "/srv/site/index.html r,",
        "/srv/** r,",
    );
    edit(
        &old.dir,
        Artifact::NetworkPolicy,
        "cidr: 10.0.0.2/32",
        "cidr: 10.0.0.0/24",
    );
    let old = load(&old.dir).unwrap();
    let d = diff_sets(&old, &new, false).unwrap();
    assert_eq!(added(&d), []);
    let removed: Vec<&str> = d
        .items
        .iter()
        .filter(|i| i.change == Change::Removed)
        .map(|i| i.what.as_str())
        .collect();
    assert_eq!(
        removed,
        ["/srv/** r", "from 10.0.0.0/24 on TCP 8080"],
        "{d:#?}"
    );
}

#[test]
fn hand_edits_that_widen_are_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = pair(tmp.path(), |_, _| {});
    edit(&new.dir, Artifact::NetworkPolicy, "  - Egress\n", "");
    edit(
        &new.dir,
        Artifact::SecurityContext,
        "allowPrivilegeEscalation: false",
        "allowPrivilegeEscalation: true",
    );
    edit(
        &new.dir,
        Artifact::Seccomp,
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_LOG",
    );
    edit(&new.dir, Artifact::AppArmor, "flags=(", "flags=(complain,");
    let new = load(&new.dir).unwrap();
    let d = diff_sets(&old, &new, false).unwrap();
    let sections: Vec<(Artifact, String)> = added(&d).into_iter().map(|(a, s, _)| (a, s)).collect();
    for want in [
        (Artifact::NetworkPolicy, "egress"),
        (Artifact::SecurityContext, "allowPrivilegeEscalation"),
        (Artifact::Seccomp, "defaultAction"),
        (Artifact::AppArmor, "flags"),
    ] {
        assert!(
            sections.contains(&(want.0, want.1.to_owned())),
            "{want:?} not in {sections:?}"
        );
    }
}

#[test]
fn a_syscall_allowed_only_with_arguments_is_narrower() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = pair(tmp.path(), |_, _| {});
    let with_args = r#""syscalls": [
    {
      "names": ["ptrace"],
      "action": "SCMP_ACT_ALLOW",
      "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]
    },"#;
    edit(&new.dir, Artifact::Seccomp, r#""syscalls": ["#, with_args);
    let new = load(&new.dir).unwrap();
    let d = diff_sets(&old, &new, false).unwrap();
    assert_eq!(
        added(&d),
        [(
            Artifact::Seccomp,
            "x86_64".into(),
            "ptrace (only if arg0 == 0x10)".into()
        )]
    );
    // Allowed outright in OLD: the conditional rule adds nothing.
    edit(
        &old.dir,
        Artifact::Seccomp,
        r#""read","#,
        r#""read", "ptrace","#,
    );
    let old = load(&old.dir).unwrap();
    let d = diff_sets(&old, &new, false).unwrap();
    assert_eq!(added(&d), []);
    assert_eq!(d.count(Change::Removed), 1, "{d:#?}");
}

#[test]
fn argument_rules_from_recorded_values_narrow_a_names_only_set() {
    let tmp = tempfile::tempdir().unwrap();
    let calls = [WEB_SYSCALLS, &["socket"]].concat();
    let names_only = web_recording(&calls, web_activity());
    let mut with_values = names_only.clone();
    let family = crate::model::ArgValues {
        values: [2, 10].into(),
        overflowed: false,
    };
    with_values.cgroups[0].args.insert(
        crate::model::Abi::X86_64,
        [("socket".to_owned(), [(0u8, family)].into())].into(),
    );
    let old = load(write_set(&tmp.path().join("old"), "web", &names_only)).unwrap();
    let new = load(write_set(&tmp.path().join("new"), "web", &with_values)).unwrap();
    let d = diff_sets(&old, &new, false).unwrap();
    assert_eq!(added(&d), []);
    let removed: Vec<&str> = d
        .items
        .iter()
        .filter(|i| i.change == Change::Removed)
        .map(|i| i.what.as_str())
        .collect();
    assert_eq!(removed, ["socket"]);
    // The other way round, allowing every family is a widening.
    let d = diff_sets(&new, &old, false).unwrap();
    assert_eq!(
        added(&d),
        [(Artifact::Seccomp, "x86_64".into(), "socket".into())]
    );
}

#[test]
fn sets_of_different_workloads_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = web_recording(WEB_SYSCALLS, web_activity());
    let old = load(write_set(&tmp.path().join("web"), "web", &rec)).unwrap();
    let new = load(write_set(&tmp.path().join("api"), "api", &rec)).unwrap();
    let err = diff_sets(&old, &new, false).unwrap_err().to_string();
    assert!(
        err.contains("AppArmor profile web vs api") && err.contains("--force"),
        "{err}"
    );
    let d = diff_sets(&old, &new, true).unwrap();
    assert!(d.notes[0].contains("different workloads"), "{d:#?}");

    // Same AppArmor name, other pods selected.
    edit(&new.dir, Artifact::AppArmor, "profile api ", "profile web ");
    let new = load(&new.dir).unwrap();
    let err = diff_sets(&old, &new, false).unwrap_err().to_string();
    assert!(
        err.contains("podSelector default/{app=web} vs default/{app=api}"),
        "{err}"
    );
}

#[test]
fn recordings_differ_by_what_the_workload_did() {
    let old = web_recording(WEB_SYSCALLS, web_activity());
    let mut a = web_activity();
    a.files
        .push(access("/etc/app.conf", &[FileOp::Write], false));
    a.flows.clear();
    let new = web_recording(&[WEB_SYSCALLS, &["mmap"]].concat(), a);
    let d = diff_recordings(&old, &new);
    let items: Vec<(Change, &str, &str)> = d
        .items
        .iter()
        .map(|i| (i.change, i.section.as_str(), i.what.as_str()))
        .collect();
    assert_eq!(
        items,
        [
            (Change::Added, "files", "/etc/app.conf: write"),
            (Change::Removed, "flows", "egress TCP to 10.0.0.9 port 5432"),
            (
                Change::Removed,
                "flows",
                "ingress TCP from 10.0.0.2 to port 8080"
            ),
            (Change::Added, "syscalls x86_64", "mmap"),
        ]
    );
}

#[test]
fn output_is_deterministic_and_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = pair(tmp.path(), |_, a| {
        a.files.push(access("/srv/a|b", &[FileOp::Read], false));
    });
    let d = diff_sets(&old, &new, false).unwrap();
    let md = render::diff_markdown(&d, "profgen diff");
    assert_eq!(
        md,
        render::diff_markdown(&diff_sets(&old, &new, false).unwrap(), "profgen diff")
    );
    assert!(
        md.contains("**NEW allows more than OLD**: 1 added, 0 removed, 0 changed."),
        "{md}"
    );
    assert!(
        md.contains("| `apparmor.profile` | `file` | `added` | `/srv/a\\x7cb r` |"),
        "{md}"
    );
    assert_eq!(render::md_cell("a|b`c"), "``a\\|b`c``");
    let table = render::diff_table(&d);
    assert!(
        table.contains("apparmor.profile") && table.contains("1 added"),
        "{table}"
    );
}

use super::*;
use crate::{
    model::{Abi, Direction, FileOp, Process},
    profile_set::{fixtures::*, load},
};

/// The set synthesized from the web recording.
fn web_set(tmp: &std::path::Path) -> LoadedSet {
    let rec = web_recording(WEB_SYSCALLS, web_activity());
    load(write_set(tmp, "web", &rec)).unwrap()
}

#[test]
fn a_recording_inside_the_set_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let set = web_set(tmp.path());
    let rec = set.recording.clone().unwrap();
    let report = check(&set, &rec, None).unwrap();
    assert!(report.passes(), "{}", table(&report));
    assert_eq!(report.with_arguments, []);
    // Less than what was recorded passes too; a failed access is not a need.
    let mut a = web_activity();
    a.files.truncate(2);
    let mut shadow = access("/etc/shadow", &[FileOp::Read], false);
    shadow.failed = true;
    a.files.push(shadow);
    let report = check(&set, &web_recording(&["read"], a), None).unwrap();
    assert!(report.passes(), "{}", table(&report));
}

#[test]
fn what_the_set_does_not_allow_is_named_with_who_did_it() {
    let tmp = tempfile::tempdir().unwrap();
    let set = web_set(tmp.path());
    let mut a = web_activity();
    a.files.push(access("/etc/shadow", &[FileOp::Read], false));
    a.files.push(access("/bin/sh", &[FileOp::Exec], false));
    a.files
        .push(access("/etc/app.conf", &[FileOp::Write], false));
    a.capabilities.as_mut().unwrap().insert("sys_admin".into());
    a.flows.insert(flow(Direction::Egress, "10.0.0.10", 443));
    a.processes.insert(Process {
        exe: "/bin/sh".into(),
        uid: 101,
        gid: 101,
    });
    let mut rec = web_recording(&[WEB_SYSCALLS, &["ptrace"]].concat(), a);
    rec.cgroups[0]
        .syscalls
        .insert(Abi::I386, ["read".to_owned()].into());
    let report = check(&set, &rec, None).unwrap();
    let got: Vec<(Kind, &str)> = report
        .outside
        .iter()
        .map(|f| (f.kind, f.what.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Kind::Syscall, "ptrace (x86_64)"),
            (Kind::Syscall, "read (i386)"),
            (Kind::File, "/etc/app.conf"),
            (Kind::File, "/etc/shadow"),
            (Kind::Exec, "/bin/sh"),
            (Kind::Capability, "sys_admin"),
            (Kind::Capability, "sys_admin"),
            (Kind::Flow, "egress TCP to 10.0.0.10 port 443"),
        ],
        "{}",
        table(&report)
    );
    let conf = &report.outside[2];
    assert!(
        conf.why == "needs w: apparmor.profile grants only r (lacks w)",
        "{}",
        conf.why
    );
    let caps: Vec<&str> = report.outside[5..7]
        .iter()
        .map(|f| f.why.as_str())
        .collect();
    assert!(
        caps[0].starts_with("no `capability sys_admin,`"),
        "{caps:?}"
    );
    assert!(
        caps[1].contains("securitycontext.yaml: capabilities drops ALL"),
        "{caps:?}"
    );
    let by = &report.outside[0].by;
    assert_eq!(by[0].cgroup, "/kubepods/web/c1");
    assert_eq!(by[0].exes, ["/bin/sh", "/usr/sbin/app"]);
    let text = table(&report);
    assert!(
        text.contains("/kubepods/web/c1 (/bin/sh, /usr/sbin/app)"),
        "{text}"
    );
    assert!(
        text.contains("8 thing(s) the recording did are outside the profile set"),
        "{text}"
    );
}

#[test]
fn a_syscall_allowed_only_with_arguments_is_shown_not_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let set = web_set(tmp.path());
    let with_args = r#""syscalls": [
    {
      "names": ["ptrace"],
      "action": "SCMP_ACT_ALLOW",
      "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]
    },"#;
    edit(&set.dir, Artifact::Seccomp, r#""syscalls": ["#, with_args);
    let set = load(&set.dir).unwrap();
    let rec = web_recording(&[WEB_SYSCALLS, &["ptrace"]].concat(), web_activity());
    let report = check(&set, &rec, None).unwrap();
    assert!(report.passes(), "{}", table(&report));
    assert_eq!(report.with_arguments.len(), 1);
    assert_eq!(report.with_arguments[0].what, "ptrace (x86_64)");
    assert!(report.with_arguments[0]
        .why
        .contains("only if arg0 == 0x10"));
}

#[test]
fn recorded_argument_values_outside_the_rules_fail_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let set = web_set(tmp.path());
    let with_args = r#""syscalls": [
    {
      "names": ["socket"],
      "action": "SCMP_ACT_ALLOW",
      "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]
    },"#;
    edit(&set.dir, Artifact::Seccomp, r#""syscalls": ["#, with_args);
    let set = load(&set.dir).unwrap();
    let with_family = |families: &[u64]| {
        let mut rec = web_recording(&[WEB_SYSCALLS, &["socket"]].concat(), web_activity());
        let values = crate::model::ArgValues {
            values: families.iter().copied().collect(),
            overflowed: false,
        };
        rec.cgroups[0].args.insert(
            Abi::X86_64,
            [("socket".to_owned(), [(0u8, values)].into())].into(),
        );
        rec
    };
    // AF_INET only: inside the rules, neither failed nor listed.
    let report = check(&set, &with_family(&[2]), None).unwrap();
    assert!(report.passes(), "{}", table(&report));
    assert_eq!(report.with_arguments, []);
    // AF_PACKET too: outside, with the value named.
    let report = check(&set, &with_family(&[2, 17]), None).unwrap();
    assert!(!report.passes());
    assert_eq!(report.outside.len(), 1, "{}", table(&report));
    assert_eq!(report.outside[0].what, "socket (x86_64)");
    assert!(
        report.outside[0]
            .why
            .ends_with("only if arg0 == 0x2; it was made with arg0 = 0x11"),
        "{}",
        report.outside[0].why
    );
}

#[test]
fn clone3_answering_enosys_is_judged_by_clones_rules() {
    const THREAD: u64 = 0x003d_0f00;
    const CLONE_NEWUSER: u64 = 0x1000_0000;
    let with_flags = |clone3: &[u64]| {
        let mut rec = web_recording(
            &[WEB_SYSCALLS, &["clone", "clone3"]].concat(),
            web_activity(),
        );
        let flags = |v: &[u64]| -> crate::model::CallArgs {
            [(
                0u8,
                crate::model::ArgValues {
                    values: v.iter().copied().collect(),
                    overflowed: false,
                },
            )]
            .into()
        };
        rec.cgroups[0].args.insert(
            Abi::X86_64,
            [
                ("clone".to_owned(), flags(&[0x0120_0011])),
                ("clone3".to_owned(), flags(clone3)),
            ]
            .into(),
        );
        rec
    };
    let tmp = tempfile::tempdir().unwrap();
    let set = load(write_set(tmp.path(), "web", &with_flags(&[THREAD]))).unwrap();
    // The set's own recording: clone3 answers ENOSYS, its flags pass clone's rules.
    let report = check(&set, &with_flags(&[THREAD]), None).unwrap();
    assert!(report.passes(), "{}", table(&report));
    assert_eq!(report.with_arguments, []);
    // A clone3 into a new user namespace would go through clone and be refused.
    let report = check(&set, &with_flags(&[THREAD, CLONE_NEWUSER]), None).unwrap();
    assert_eq!(report.outside.len(), 1, "{}", table(&report));
    assert_eq!(report.outside[0].what, "clone3 (x86_64)");
    assert!(
        report.outside[0].why.contains("ENOSYS")
            && report.outside[0]
                .why
                .ends_with("it was made with arg0 = 0x10000000"),
        "{}",
        report.outside[0].why
    );
}

#[test]
fn artifacts_absent_are_noted_not_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let set = web_set(tmp.path());
    std::fs::remove_file(set.dir.join(Artifact::NetworkPolicy.file_name())).unwrap();
    let set = load(&set.dir).unwrap();
    let mut a = web_activity();
    a.flows.insert(flow(Direction::Egress, "10.0.0.10", 443));
    let report = check(&set, &web_recording(WEB_SYSCALLS, a), None).unwrap();
    assert!(report.passes(), "{}", table(&report));
    assert_eq!(
        report.notes,
        ["networkpolicy.yaml absent: flows not checked"]
    );
}

#[test]
fn the_committed_demo_set_allows_its_own_recording() {
    // Whatever the demo holds after a re-recording, a set allows the recording it was
    // synthesized from.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/demo-nginx");
    let set = load(dir).unwrap();
    let Some(rec) = &set.recording else { return };
    let report = check(&set, rec, None).unwrap();
    assert!(report.passes(), "{}", table(&report));
}

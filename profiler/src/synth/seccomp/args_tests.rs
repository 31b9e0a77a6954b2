use std::collections::BTreeSet;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use super::*;
use crate::{
    model::{
        fixtures::{cgroup, recording},
        ArgValues, CgroupRecord,
    },
    synth::seccomp::{seccomp, synthesize},
};

const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
/// glibc's fork(): CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD.
const FORK: u64 = 0x0120_0011;
/// glibc's pthread_create through clone3.
const THREAD: u64 = 0x003d_0f00;
const CLONE_NEWUSER: u64 = 0x1000_0000;

/// A cgroup that made `calls` (x86_64) with `args` as (name, index, values, overflowed).
fn cg(calls: &[&str], args: &[(&str, u8, &[u64], bool)]) -> CgroupRecord {
    let mut c = cgroup(1, "/c", &[(Abi::X86_64, calls)]);
    for (name, index, values, overflowed) in args {
        c.args
            .entry(Abi::X86_64)
            .or_default()
            .entry(name.to_string())
            .or_default()
            .insert(
                *index,
                ArgValues {
                    values: values.iter().copied().collect(),
                    overflowed: *overflowed,
                },
            );
    }
    c
}

fn nginx_like() -> Recording {
    recording(vec![cg(
        &["read", "socket", "clone", "accept4", "ioctl"],
        &[
            ("socket", 0, &[AF_INET, AF_UNIX], false),
            ("socket", 1, &[SOCK_STREAM, SOCK_DGRAM], false),
            ("clone", 0, &[FORK], false),
            ("ioctl", 1, &[0x5401, 0x5421], false),
        ],
    )])
}

/// Equivalents on, no runtime: the recording's own arguments only.
fn no_runtime() -> SeccompOptions {
    SeccompOptions {
        runtimes: Vec::new(),
        ..SeccompOptions::default()
    }
}

fn plain_names(p: &LinuxSeccomp) -> BTreeSet<String> {
    p.syscalls().as_ref().unwrap()[0]
        .names()
        .iter()
        .cloned()
        .collect()
}

/// (name, action, errno, conditions as text) of every rule after the plain allow rule.
fn arg_rules(p: &LinuxSeccomp) -> Vec<(String, LinuxSeccompAction, Option<u32>, String)> {
    p.syscalls().as_ref().unwrap()[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.names().len(), 1, "one name per argument rule");
            let args = r.args().as_deref().unwrap_or(&[]);
            (
                r.names()[0].clone(),
                r.action(),
                r.errno_ret(),
                crate::profile_set::seccomp::args_text(args),
            )
        })
        .collect()
}

fn texts(p: &LinuxSeccomp, name: &str) -> Vec<String> {
    arg_rules(p)
        .into_iter()
        .filter(|r| r.0 == name && r.1 == LinuxSeccompAction::ScmpActAllow)
        .map(|r| r.3)
        .collect()
}

#[test]
fn socket_clone_and_ioctl_are_allowed_with_the_recorded_values_only() {
    let p = seccomp(&nginx_like(), &no_runtime()).unwrap();
    let plain = plain_names(&p);
    for filtered in ["socket", "clone", "ioctl", "clone3"] {
        assert!(!plain.contains(filtered), "{filtered} allowed outright");
    }
    assert!(plain.contains("read") && plain.contains("accept4") && plain.contains("fork"));
    // Family × type, with the fd flags masked off the type.
    assert_eq!(
        texts(&p, "socket"),
        [
            "arg0 == 0x1 && arg1 & 0xfff7f7ff == 0x1",
            "arg0 == 0x1 && arg1 & 0xfff7f7ff == 0x2",
            "arg0 == 0x2 && arg1 & 0xfff7f7ff == 0x1",
            "arg0 == 0x2 && arg1 & 0xfff7f7ff == 0x2",
        ]
    );
    assert_eq!(texts(&p, "clone"), ["arg0 & 0x7e020000 == 0x0"]);
    assert_eq!(texts(&p, "ioctl"), ["arg1 == 0x5401", "arg1 == 0x5421"]);
    // clone3 answers ENOSYS so that glibc falls back to the filtered clone.
    let enosys: Vec<_> = arg_rules(&p)
        .into_iter()
        .filter(|r| r.1 == LinuxSeccompAction::ScmpActErrno)
        .collect();
    assert_eq!(
        enosys,
        [(
            "clone3".to_owned(),
            LinuxSeccompAction::ScmpActErrno,
            Some(38),
            String::new()
        )]
    );
    // The OCI form runc reads: MASKED_EQ with value the mask and valueTwo the result.
    let json = serde_json::to_value(&p).unwrap();
    let clone = json["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["names"][0] == "clone")
        .unwrap();
    assert_eq!(
        clone["args"],
        serde_json::json!([{"index": 0, "value": 0x7e020000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}])
    );
}

#[test]
fn namespace_flags_seen_are_allowed_exactly_and_plain_clone_always() {
    let rec = recording(vec![cg(
        &["clone"],
        &[("clone", 0, &[CLONE_NEWUSER | 17], false)],
    )]);
    let p = seccomp(&rec, &no_runtime()).unwrap();
    assert_eq!(
        texts(&p, "clone"),
        [
            "arg0 & 0x7e020000 == 0x0",
            "arg0 & 0x7e020000 == 0x10000000"
        ]
    );
}

#[test]
fn clone3_flags_filter_clone_and_equivalents_do_not_bring_clone3_back() {
    // glibc ≥2.34 made its threads with clone3: clone is its equivalent, filtered by the
    // same flags, and clone3 answers ENOSYS.
    let rec = recording(vec![cg(&["clone3"], &[("clone3", 0, &[THREAD], false)])]);
    let (p, s) = synthesize(&rec, &no_runtime()).unwrap();
    assert_eq!(texts(&p, "clone"), ["arg0 & 0x7e020000 == 0x0"]);
    assert!(!plain_names(&p).contains("clone3"));
    assert_eq!(s.args.enosys, BTreeSet::from(["clone3".to_owned()]));
    assert!(
        !s.equivalent_names().contains(&"clone3".to_owned()),
        "{s:?}"
    );
    // With --exact, clone is not allowed: clone3 cannot be filtered and stays allowed.
    let p = seccomp(&rec, &SeccompOptions::exact()).unwrap();
    assert!(plain_names(&p).contains("clone3"));
    assert!(arg_rules(&p).is_empty());
}

#[test]
fn what_is_not_known_is_not_filtered() {
    struct Case {
        what: &'static str,
        rec: Recording,
        unfiltered: &'static [&'static str],
        overflowed: &'static [&'static str],
    }
    let mut on_i386 = nginx_like();
    on_i386.cgroups[0]
        .syscalls
        .insert(Abi::I386, ["socket".to_owned()].into());
    let cases = [
        Case {
            what: "overflowed ioctl; socket's type overflowed, its family filtered",
            rec: recording(vec![cg(
                &["socket", "ioctl"],
                &[
                    ("socket", 0, &[AF_INET], false),
                    ("socket", 1, &[1, 2, 3, 5, 6, 10, 11, 12], true),
                    ("ioctl", 1, &[1, 2, 3, 4, 5, 6, 7, 8], true),
                ],
            )]),
            unfiltered: &["ioctl"],
            overflowed: &["ioctl arg1 (request)", "socket arg1 (type)"],
        },
        Case {
            what: "an older recording: no values at all",
            rec: recording(vec![cg(&["socket", "clone", "clone3"], &[])]),
            unfiltered: &["socket", "clone", "clone3"],
            overflowed: &[],
        },
        Case {
            what: "one cgroup without values makes them unknown",
            rec: recording(vec![
                nginx_like().cgroups[0].clone(),
                cg(&["socket", "read"], &[]),
            ]),
            unfiltered: &["socket"],
            overflowed: &[],
        },
        Case {
            what: "clone3's flags unreadable: clone stays unfiltered",
            rec: recording(vec![cg(
                &["clone", "clone3"],
                &[("clone", 0, &[FORK], false), ("clone3", 0, &[], true)],
            )]),
            unfiltered: &["clone", "clone3"],
            overflowed: &["clone3 arg0 (flags)"],
        },
        Case {
            what: "socket also made by i386, whose arguments are not recorded",
            rec: on_i386,
            unfiltered: &["socket"],
            overflowed: &[],
        },
    ];
    for c in cases {
        let (p, s) = synthesize(&c.rec, &no_runtime()).unwrap();
        let plain = plain_names(&p);
        for name in c.unfiltered {
            assert!(
                plain.contains(*name),
                "{}: {name} not allowed outright",
                c.what
            );
            assert!(texts(&p, name).is_empty(), "{}: {name} filtered", c.what);
        }
        let overflowed: Vec<&str> = s.args.overflowed.iter().map(String::as_str).collect();
        assert_eq!(overflowed, c.overflowed, "{}", c.what);
    }
    // The family alone when the type overflowed.
    let (p, _) = synthesize(&cases_first(), &no_runtime()).unwrap();
    assert_eq!(texts(&p, "socket"), ["arg0 == 0x2"]);
}

fn cases_first() -> Recording {
    recording(vec![cg(
        &["socket"],
        &[("socket", 0, &[AF_INET], false), ("socket", 1, &[1], true)],
    )])
}

#[test]
fn too_many_combinations_keep_the_first_argument() {
    let families: Vec<u64> = (1..=8).collect();
    let rec = recording(vec![cg(
        &["socket"],
        &[
            ("socket", 0, &families, false),
            ("socket", 1, &[1, 2, 3], false),
        ],
    )]);
    let (p, s) = synthesize(&rec, &no_runtime()).unwrap();
    assert_eq!(texts(&p, "socket").len(), 8);
    assert!(texts(&p, "socket").iter().all(|t| !t.contains("arg1")));
    assert_eq!(
        s.args.overflowed.iter().collect::<Vec<_>>(),
        ["socket arg1 (type): too many combinations"]
    );
    assert!(s.args.rules <= MAX_RULES_PER_NAME);
}

#[test]
fn runtime_calls_keep_their_arguments() {
    // PR_SET_NAME by the workload; runc and crun drop capabilities with prctl after the
    // filter, and runc marks fds close-on-exec with fcntl.
    let rec = recording(vec![cg(&["prctl", "read"], &[("prctl", 0, &[15], false)])]);
    let p = seccomp(&rec, &SeccompOptions::default()).unwrap();
    assert_eq!(
        texts(&p, "prctl"),
        ["arg0 == 0x8", "arg0 == 0xf", "arg0 == 0x18", "arg0 == 0x2f"]
    );
    assert_eq!(
        texts(&p, "fcntl"),
        ["arg1 == 0x2", "arg1 == 0x3", "arg1 == 0x4"]
    );
    // Without runtimes (or with --exact) only the recording's.
    let p = seccomp(&rec, &SeccompOptions::exact()).unwrap();
    assert_eq!(texts(&p, "prctl"), ["arg0 == 0xf"]);
    assert!(!plain_names(&p).contains("fcntl"));
    // crun does not call fcntl after its filter; its prctl options are known.
    let crun = SeccompOptions {
        runtimes: vec!["crun".into()],
        ..SeccompOptions::default()
    };
    let p = seccomp(&rec, &crun).unwrap();
    assert_eq!(texts(&p, "prctl").len(), 4);
    assert!(!plain_names(&p).contains("fcntl") && texts(&p, "fcntl").is_empty());
}

#[test]
fn no_args_writes_names_only() {
    let opts = SeccompOptions {
        no_args: true,
        ..no_runtime()
    };
    let (p, s) = synthesize(&nginx_like(), &opts).unwrap();
    assert_eq!(p.syscalls().as_ref().unwrap().len(), 1);
    for name in ["socket", "clone", "clone3", "ioctl"] {
        assert!(plain_names(&p).contains(name), "{name}");
    }
    assert_eq!(s.args, Default::default());
}

#[test]
fn summary_rows_say_what_is_filtered() {
    let (_, s) = synthesize(&nginx_like(), &no_runtime()).unwrap();
    assert_eq!(s.args.rules, 4 + 1 + 2);
    let rows = s.args.rows();
    let text: Vec<String> = rows.iter().map(|(a, b)| format!("{a}: {b}")).collect();
    let text = text.join("\n");
    for want in [
        "rules with arguments: 7",
        "values allowed, socket: arg0 in {0x1, 0x2}, arg1 & 0xfff7f7ff in {0x1, 0x2}",
        "values allowed, clone: arg0 & 0x7e020000 == 0 (no namespace flags)",
        "values allowed, ioctl: arg1 in {0x5401, 0x5421}",
        "clone3 answers: ENOSYS",
        "arguments not filtered (overflowed): 0",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    // The names count stays the names with an allowing rule: clone3 is not one.
    assert!(!s.equivalent_names().iter().any(|n| *n == "clone3"));
}

#[test]
fn rules_per_name_are_bounded() {
    // Every watched argument at the kernel side's bound.
    let eight: Vec<u64> = (1..=8).collect();
    let names = [
        "socket",
        "clone",
        "clone3",
        "unshare",
        "setns",
        "ioctl",
        "prctl",
        "personality",
        "fcntl",
        "setsockopt",
        "bpf",
        "ptrace",
    ];
    let args: Vec<(&str, u8, &[u64], bool)> = profiler_common::args::WATCHED
        .iter()
        .map(|w| (w.name, w.index, &eight[..], false))
        .collect();
    let rec = recording(vec![cg(&names, &args)]);
    let (p, s) = synthesize(&rec, &SeccompOptions::default()).unwrap();
    let mut per_name: std::collections::BTreeMap<String, usize> = Default::default();
    for (name, ..) in arg_rules(&p) {
        *per_name.entry(name).or_default() += 1;
    }
    assert!(
        per_name.values().all(|n| *n <= MAX_RULES_PER_NAME),
        "{per_name:?}"
    );
    assert!(
        s.args.rules + s.args.enosys.len() <= MAX_ARG_RULES,
        "{}",
        s.args.rules
    );
    let ops: BTreeSet<String> = p
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|r| r.args().iter().flatten().map(|a| format!("{:?}", a.op())))
        .collect();
    let want = [
        LinuxSeccompOperator::ScmpCmpEq,
        LinuxSeccompOperator::ScmpCmpMaskedEq,
    ]
    .map(|op| format!("{op:?}"));
    assert_eq!(ops, want.into_iter().collect());
}

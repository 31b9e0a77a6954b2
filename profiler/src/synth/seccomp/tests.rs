use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::*;
use crate::model::{
    fixtures::{cgroup, recording},
    CgroupRecord,
};

fn profile_json(rec: &Recording) -> Value {
    serde_json::to_value(seccomp(rec, &SeccompOptions::exact()).unwrap()).unwrap()
}

/// Small recordings and the profile each must give with `--exact`.
#[test]
fn recordings_become_expected_profiles() {
    let cases: Vec<(&str, Vec<CgroupRecord>, Value)> = vec![
        (
            "one x86_64 cgroup",
            vec![cgroup(
                1,
                "/a",
                &[(Abi::X86_64, &["write", "read", "exit_group"])],
            )],
            json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {"names": ["exit_group", "read", "write"], "action": "SCMP_ACT_ALLOW"}
                ]
            }),
        ),
        (
            "cgroups are unioned and deduplicated",
            vec![
                cgroup(1, "/a", &[(Abi::X86_64, &["read", "openat"])]),
                cgroup(2, "/b", &[(Abi::X86_64, &["read", "close"])]),
            ],
            json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {"names": ["close", "openat", "read"], "action": "SCMP_ACT_ALLOW"}
                ]
            }),
        ),
        (
            "a 32-bit helper adds its architecture and names",
            vec![cgroup(
                1,
                "/a",
                &[
                    (Abi::X86_64, &["read", "execve"]),
                    (Abi::I386, &["read", "socketcall", "mmap2"]),
                ],
            )],
            json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [
                    {"names": ["execve", "mmap2", "read", "socketcall"], "action": "SCMP_ACT_ALLOW"}
                ]
            }),
        ),
        (
            "x32 only",
            vec![cgroup(1, "/a", &[(Abi::X32, &["rt_sigaction", "read"])])],
            json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X32"],
                "syscalls": [
                    {"names": ["read", "rt_sigaction"], "action": "SCMP_ACT_ALLOW"}
                ]
            }),
        ),
    ];
    for (what, cgroups, expected) in cases {
        assert_eq!(profile_json(&recording(cgroups)), expected, "{what}");
    }
}

#[test]
fn runtime_setup_stays_out() {
    let mut cg = cgroup(1, "/a", &[(Abi::X86_64, &["read"])]);
    cg.excluded_before_filter = crate::model::fixtures::set(&[(Abi::X86_64, &["mount"])]);
    let names = profile_json(&recording(vec![cg]))["syscalls"][0]["names"].clone();
    assert_eq!(names, json!(["read"]));
}

#[test]
fn serializes_with_oci_field_names() {
    let rec = recording(vec![cgroup(1, "/a", &[(Abi::X86_64, &["read"])])]);
    let text =
        String::from_utf8(to_json(&seccomp(&rec, &SeccompOptions::exact()).unwrap()).unwrap())
            .unwrap();
    for field in [
        "\"defaultAction\": \"SCMP_ACT_ERRNO\"",
        "\"defaultErrnoRet\": 1",
        "\"architectures\": [",
        "\"SCMP_ARCH_X86_64\"",
        "\"syscalls\": [",
        "\"names\": [",
        "\"action\": \"SCMP_ACT_ALLOW\"",
    ] {
        assert!(text.contains(field), "{field} missing from:\n{text}");
    }
    let value: Value = serde_json::from_str(&text).unwrap();
    let mut top: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    top.sort_unstable();
    assert_eq!(
        top,
        [
            "architectures",
            "defaultAction",
            "defaultErrnoRet",
            "syscalls"
        ]
    );
    assert!(text.ends_with("}\n"));
}

#[test]
fn json_round_trips() {
    let rec = recording(vec![cgroup(
        1,
        "/a",
        &[(Abi::X86_64, &["read", "write"]), (Abi::I386, &["read"])],
    )]);
    let profile = seccomp(&rec, &SeccompOptions::exact()).unwrap();
    let text = to_json(&profile).unwrap();
    let back: LinuxSeccomp = serde_json::from_slice(&text).unwrap();
    assert_eq!(back, profile);
    assert_eq!(to_json(&back).unwrap(), text);
}

#[test]
fn unknown_name_is_refused() {
    let rec = recording(vec![cgroup(
        1,
        "/a",
        &[(Abi::X86_64, &["read", "frobnicate"])],
    )]);
    let err = seccomp(&rec, &SeccompOptions::default()).unwrap_err();
    assert!(matches!(err, SynthError::UnknownSyscall { .. }), "{err:?}");
    assert!(err.to_string().contains("`frobnicate` for x86_64"), "{err}");

    // A name of another ABI is not enough: socketcall does not exist on x86_64.
    let rec = recording(vec![cgroup(1, "/a", &[(Abi::X86_64, &["socketcall"])])]);
    assert!(matches!(
        seccomp(&rec, &SeccompOptions::default()),
        Err(SynthError::UnknownSyscall { .. })
    ));
}

#[test]
fn unknown_numbers_are_refused_by_number() {
    let mut cg = cgroup(1, "/a", &[(Abi::X86_64, &["read"])]);
    cg.unknown_numbers =
        BTreeMap::from([(Abi::X86_64, [470, 471].into()), (Abi::I386, [999].into())]);
    let err = seccomp(&recording(vec![cg]), &SeccompOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("x86_64: 470, 471; i386: 999"), "{msg}");
    assert!(msg.contains("upgrade profgen"), "{msg}");
}

#[test]
fn empty_recording_is_refused() {
    assert!(matches!(
        seccomp(&recording(vec![]), &SeccompOptions::default()),
        Err(SynthError::NothingRecorded)
    ));
    let empty = cgroup(1, "/a", &[]);
    assert!(matches!(
        seccomp(&recording(vec![empty]), &SeccompOptions::default()),
        Err(SynthError::NothingRecorded)
    ));
}

#[test]
fn summary_counts_per_abi() {
    let mut rec = recording(vec![
        cgroup(
            1,
            "/a",
            &[
                (Abi::X86_64, &["read", "write"]),
                (Abi::I386, &["read", "mmap2"]),
            ],
        ),
        cgroup(2, "/b", &[(Abi::X86_64, &["close"])]),
    ]);
    rec.events_lost.insert("ringbuf_full".into(), 4);
    let s = SeccompSummary::of(&rec, &SeccompOptions::exact()).unwrap();
    assert_eq!(
        s.per_abi,
        BTreeMap::from([(Abi::X86_64, 3), (Abi::I386, 2)])
    );
    assert_eq!(s.total, 4, "read counts once");
    assert_eq!(s.events_lost, 4);
    assert_eq!(s.docker_default_x86_64, DOCKER_DEFAULT_X86_64);
    let ratio = s.x86_64_vs_docker().unwrap();
    assert!((ratio - 3.0 / 309.0).abs() < 1e-12);
    let only32 = recording(vec![cgroup(1, "/a", &[(Abi::I386, &["read"])])]);
    assert_eq!(
        SeccompSummary::of(&only32, &SeccompOptions::exact())
            .unwrap()
            .x86_64_vs_docker(),
        None
    );
}

/// Every name an allowing rule names (a runtime-only `prctl` is allowed with arguments).
fn names(profile: &LinuxSeccomp) -> Vec<String> {
    let all: BTreeSet<String> = profile
        .syscalls()
        .iter()
        .flatten()
        .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
        .flat_map(|r| r.names().iter().cloned())
        .collect();
    all.into_iter().collect()
}

/// Equivalents alone: no runtime calls.
fn equivalents_only() -> SeccompOptions {
    SeccompOptions {
        exact: false,
        runtimes: Vec::new(),
        no_args: false,
    }
}

/// What each recording allows with equivalents on (and no runtime), per ABI.
#[test]
fn equivalents_are_added_per_abi() {
    type Case<'a> = (
        &'a str,
        Vec<(Abi, &'a [&'a str])>,
        Vec<(Abi, &'a [&'a str])>,
    );
    let cases: Vec<Case> = vec![
        (
            "epoll_wait brings the other waits on x86_64",
            vec![(Abi::X86_64, &["epoll_wait"])],
            vec![(Abi::X86_64, &["epoll_pwait", "epoll_pwait2", "epoll_wait"])],
        ),
        (
            "a call in no group stays alone",
            vec![(Abi::X86_64, &["getpid", "exit_group"])],
            vec![(Abi::X86_64, &["exit_group", "getpid"])],
        ),
        (
            "read and write bring their vector forms, not the positional ones",
            vec![(Abi::X86_64, &["read", "write"])],
            vec![(Abi::X86_64, &["read", "readv", "write", "writev"])],
        ),
        (
            "i386 gets its own stat names and never newfstatat",
            vec![(Abi::I386, &["fstat64"])],
            vec![(
                Abi::I386,
                &[
                    "fstat",
                    "fstat64",
                    "fstatat64",
                    "lstat",
                    "lstat64",
                    "stat",
                    "stat64",
                    "statx",
                ],
            )],
        ),
        (
            "each ABI is expanded from its own recording",
            vec![(Abi::X86_64, &["fstat"]), (Abi::I386, &["mmap2"])],
            vec![
                (
                    Abi::X86_64,
                    &["fstat", "lstat", "newfstatat", "stat", "statx"],
                ),
                (Abi::I386, &["mmap", "mmap2"]),
            ],
        ),
        (
            "fork does not bring clone: clone can create namespaces",
            vec![(Abi::X86_64, &["fork"])],
            vec![(Abi::X86_64, &["fork", "vfork"])],
        ),
        (
            "clone brings clone3 and the weaker fork and vfork",
            vec![(Abi::X86_64, &["clone"])],
            vec![(Abi::X86_64, &["clone", "clone3", "fork", "vfork"])],
        ),
        (
            "setrlimit does not bring prlimit64, which reaches other processes",
            vec![(Abi::X86_64, &["setrlimit"])],
            vec![(Abi::X86_64, &["setrlimit"])],
        ),
        (
            "prlimit64 brings getrlimit and setrlimit (and ugetrlimit on i386)",
            vec![(Abi::X86_64, &["prlimit64"]), (Abi::I386, &["prlimit64"])],
            vec![
                (Abi::X86_64, &["getrlimit", "prlimit64", "setrlimit"]),
                (
                    Abi::I386,
                    &["getrlimit", "prlimit64", "setrlimit", "ugetrlimit"],
                ),
            ],
        ),
    ];
    for (what, recorded, expected) in cases {
        let rec = recording(vec![cgroup(1, "/a", &recorded)]);
        let got = allowed(&rec, &equivalents_only()).unwrap().per_abi;
        let expected: BTreeMap<Abi, BTreeSet<String>> = expected
            .into_iter()
            .map(|(abi, n)| (abi, n.iter().map(|s| s.to_string()).collect()))
            .collect();
        assert_eq!(got, expected, "{what}");
    }
}

#[test]
fn exact_gives_only_the_recorded_set() {
    let recorded: &[&str] = &["clone", "epoll_wait", "fstat", "openat", "read", "write"];
    let rec = recording(vec![cgroup(1, "/a", &[(Abi::X86_64, recorded)])]);
    assert_eq!(
        names(&seccomp(&rec, &SeccompOptions::exact()).unwrap()),
        recorded
    );
    // `exact` wins over runtimes asked for.
    let opts = SeccompOptions {
        exact: true,
        runtimes: vec!["runc".into()],
        no_args: false,
    };
    assert_eq!(names(&seccomp(&rec, &opts).unwrap()), recorded);
    let (_, summary) = synthesize(&rec, &SeccompOptions::exact()).unwrap();
    assert!(summary.added_as_equivalents.is_empty());
    assert!(summary.added_for_runtimes.is_empty());
    assert_eq!(summary.total, recorded.len());

    // The default allows strictly more.
    let default = names(&seccomp(&rec, &SeccompOptions::default()).unwrap());
    assert!(recorded.iter().all(|n| default.contains(&n.to_string())));
    assert!(default.len() > recorded.len());
}

#[test]
fn runtimes_add_their_calls_on_x86_64() {
    let rec = recording(vec![cgroup(1, "/a", &[(Abi::X86_64, &["read", "close"])])]);
    let opts = SeccompOptions {
        exact: false,
        runtimes: vec!["crun".into()],
        no_args: false,
    };
    let (profile, summary) = synthesize(&rec, &opts).unwrap();
    let crun: BTreeSet<String> = runtime::find("crun")
        .unwrap()
        .calls
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    // close was recorded, readv is an equivalent of read: neither is credited to crun.
    let mut expected = crun.clone();
    expected.remove("close");
    expected.remove("read");
    assert_eq!(summary.added_for_runtimes["crun"], expected);
    assert!(!summary.added_for_runtimes.contains_key("runc"));
    let all = names(&profile);
    assert!(crun.iter().all(|n| all.contains(n)));
    assert!(all.contains(&"readv".to_string()));

    // An i386-only recording still gets the runtime's x86_64 calls, and the architecture.
    let rec32 = recording(vec![cgroup(1, "/a", &[(Abi::I386, &["read"])])]);
    let profile = seccomp(&rec32, &SeccompOptions::default()).unwrap();
    assert_eq!(
        profile.architectures().clone().unwrap(),
        [Arch::ScmpArchX86_64, Arch::ScmpArchX86]
    );
    assert!(names(&profile).contains(&"execve".to_string()));
}

#[test]
fn unknown_runtime_is_one_line_naming_the_known_ones() {
    let rec = recording(vec![cgroup(1, "/a", &[(Abi::X86_64, &["read"])])]);
    let opts = SeccompOptions {
        exact: false,
        runtimes: vec!["runc".into(), "kata".into()],
        no_args: false,
    };
    let err = seccomp(&rec, &opts).unwrap_err().to_string();
    assert!(
        err.contains("`kata`") && err.contains("runc, crun"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn the_summary_says_what_was_added_and_why() {
    let rec = recording(vec![cgroup(
        1,
        "/a",
        &[(Abi::X86_64, &["epoll_wait", "read", "execve"])],
    )]);
    let no_runtime = SeccompOptions {
        exact: false,
        runtimes: Vec::new(),
        no_args: false,
    };
    let (_, s) = synthesize(&rec, &no_runtime).unwrap();
    assert_eq!(s.recorded, 3);
    assert_eq!(
        s.added_as_equivalents,
        BTreeMap::from([
            (
                "epoll wait",
                BTreeSet::from(["epoll_pwait".to_string(), "epoll_pwait2".to_string()])
            ),
            ("read", BTreeSet::from(["readv".to_string()])),
        ])
    );

    let (profile, s) = synthesize(&rec, &SeccompOptions::default()).unwrap();
    // runc's Go runtime needs epoll_pwait, not recorded here: credited to the runtime, not
    // to an equivalence. execve was recorded: credited to neither.
    assert!(s.added_for_runtimes["runc"].contains("epoll_pwait"));
    for added in s.added_for_runtimes.values() {
        assert!(!added.contains("execve"));
    }
    assert!(!s.equivalent_names().iter().any(|n| *n == "epoll_pwait"));
    // A runtime call's equivalents are added too: Go preempts with tgkill, another build
    // may use tkill, and the profile must not depend on which runs recorded it.
    assert!(s.added_as_equivalents["tgkill"].contains("tkill"));
    assert!(s.added_for_runtimes["runc"].contains("getdents64"));
    assert!(s.added_for_runtimes["crun"].contains("close_range"));
    let runtime_names: BTreeSet<&String> = s.added_for_runtimes.values().flatten().collect();
    assert_eq!(
        s.total,
        s.recorded + s.equivalent_names().len() + runtime_names.len()
    );
    assert_eq!(s.total, names(&profile).len());
    assert_eq!(s.per_abi[&Abi::X86_64], s.total);
}

/// The same recorded facts give the same bytes, whatever order they came in.
#[test]
fn profiles_are_deterministic() {
    let a = recording(vec![
        cgroup(1, "/a", &[(Abi::X86_64, &["write", "epoll_wait", "fstat"])]),
        cgroup(2, "/b", &[(Abi::I386, &["mmap2", "read"])]),
    ]);
    let b = recording(vec![
        cgroup(2, "/b", &[(Abi::I386, &["read", "mmap2"])]),
        cgroup(1, "/a", &[(Abi::X86_64, &["fstat", "epoll_wait", "write"])]),
    ]);
    let opts = SeccompOptions::default();
    let first = to_json(&seccomp(&a, &opts).unwrap()).unwrap();
    for rec in [&a, &b, &a] {
        assert_eq!(to_json(&seccomp(rec, &opts).unwrap()).unwrap(), first);
    }
    let list = names(&seccomp(&a, &opts).unwrap());
    let mut sorted = list.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(list, sorted);
}

/// The demo's recordings differ run to run in `epoll_pwait` (runc's Go runtime, after the
/// filter): with equivalents, a recording with it and one without give one profile.
#[test]
fn the_demo_recordings_with_and_without_epoll_pwait_agree() {
    let with: Recording = serde_json::from_str(include_str!(
        "../../../../profiles/demo-nginx/recording.json"
    ))
    .unwrap();
    let mut without = with.clone();
    for cg in &mut without.cgroups {
        for names in cg.syscalls.values_mut() {
            names.remove("epoll_pwait");
        }
    }
    assert_ne!(with.allowed_syscalls(), without.allowed_syscalls());
    let opts = SeccompOptions::default();
    assert_eq!(
        seccomp(&with, &opts).unwrap(),
        seccomp(&without, &opts).unwrap()
    );
    assert_ne!(
        seccomp(&with, &SeccompOptions::exact()).unwrap(),
        seccomp(&without, &SeccompOptions::exact()).unwrap()
    );
}

/// `docs/seccomp.md` shows the code's tables, so the two cannot drift apart.
#[test]
fn docs_show_the_tables() {
    let docs = include_str!("../../../../docs/seccomp.md");
    for (what, table) in [
        ("equivalence groups", equivalents::markdown_table()),
        ("runtimes", runtime::markdown_table()),
    ] {
        assert!(
            docs.contains(&table),
            "docs/seccomp.md does not show the {what} table as the code has it; paste this:\n{table}"
        );
    }
}

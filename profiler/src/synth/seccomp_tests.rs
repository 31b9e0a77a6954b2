use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::model::{
    fixtures::{cgroup, recording},
    CgroupRecord,
};

fn profile_json(rec: &Recording) -> Value {
    serde_json::to_value(seccomp(rec).unwrap()).unwrap()
}

/// Small recordings and the exact profile each must give.
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
    let text = String::from_utf8(to_json(&seccomp(&rec).unwrap()).unwrap()).unwrap();
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
    let profile = seccomp(&rec).unwrap();
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
    let err = seccomp(&rec).unwrap_err();
    assert!(matches!(err, SynthError::UnknownSyscall { .. }), "{err:?}");
    assert!(err.to_string().contains("`frobnicate` for x86_64"), "{err}");

    // A name of another ABI is not enough: socketcall does not exist on x86_64.
    let rec = recording(vec![cgroup(1, "/a", &[(Abi::X86_64, &["socketcall"])])]);
    assert!(matches!(
        seccomp(&rec),
        Err(SynthError::UnknownSyscall { .. })
    ));
}

#[test]
fn unknown_numbers_are_refused_by_number() {
    let mut cg = cgroup(1, "/a", &[(Abi::X86_64, &["read"])]);
    cg.unknown_numbers =
        BTreeMap::from([(Abi::X86_64, [470, 471].into()), (Abi::I386, [999].into())]);
    let err = seccomp(&recording(vec![cg])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("x86_64: 470, 471; i386: 999"), "{msg}");
    assert!(msg.contains("upgrade profgen"), "{msg}");
}

#[test]
fn empty_recording_is_refused() {
    assert!(matches!(
        seccomp(&recording(vec![])),
        Err(SynthError::NothingRecorded)
    ));
    let empty = cgroup(1, "/a", &[]);
    assert!(matches!(
        seccomp(&recording(vec![empty])),
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
    let s = SeccompSummary::of(&rec);
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
    assert_eq!(SeccompSummary::of(&only32).x86_64_vs_docker(), None);
}

use std::{collections::BTreeMap, fs, path::Path};

use super::{
    fixtures::{cgroup, recording, set},
    *,
};

fn sample() -> Recording {
    let mut web = cgroup(
        42,
        "/kubepods/pod1/web",
        &[
            (Abi::X86_64, &["read", "write", "epoll_wait"]),
            (Abi::I386, &["read"]),
        ],
    );
    web.excluded_before_filter = set(&[(Abi::X86_64, &["mount", "pivot_root"])]);
    let mut rec = recording(vec![
        cgroup(
            7,
            "/kubepods/pod1/sidecar",
            &[(Abi::X86_64, &["read", "nanosleep"])],
        ),
        web,
    ]);
    rec.events_lost.insert("ringbuf_full".into(), 3);
    rec
}

/// Writes `text` to a file named `recording.json` in a fresh directory and loads it.
fn load_text(text: &str) -> Result<Recording, ModelError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recording.json");
    fs::write(&path, text).unwrap();
    Recording::load(&path)
}

fn message(err: ModelError) -> String {
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "not one line: {msg}");
    msg
}

#[test]
fn save_then_load_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recording.json");
    let rec = sample();
    rec.save(&path).unwrap();
    assert_eq!(Recording::load(&path).unwrap(), rec);
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "temporary file left behind"
    );
}

#[test]
fn serialization_is_deterministic_and_sorted() {
    let rec = sample();
    let mut shuffled = rec.clone();
    shuffled.cgroups.reverse();
    assert_eq!(rec.to_json().unwrap(), shuffled.to_json().unwrap());

    let text = String::from_utf8(rec.to_json().unwrap()).unwrap();
    assert!(text.ends_with("}\n"));
    let sidecar = text.find("/kubepods/pod1/sidecar").unwrap();
    let web = text.find("/kubepods/pod1/web").unwrap();
    assert!(sidecar < web, "cgroups not sorted by path");
    let epoll = text.find("\"epoll_wait\"").unwrap();
    let write = text.find("\"write\"").unwrap();
    assert!(epoll < write, "names not sorted");
    // Empty optional parts stay out of the document.
    assert!(!text.contains("unknown_numbers"));
    assert!(!text.contains("runtime"));
}

#[test]
fn missing_file_says_how_to_get_one() {
    let err = Recording::load(Path::new("/nonexistent/recording.json")).unwrap_err();
    assert!(matches!(err, ModelError::Missing { .. }));
    assert_eq!(
        message(err),
        "/nonexistent/recording.json: no such file (write one with `profgen record`)"
    );
}

#[test]
fn corrupt_json_gives_line_and_column() {
    let err = load_text("{\n  \"schema_version\": 1,\n  \"host\": ,\n}").unwrap_err();
    let msg = message(err);
    assert!(
        msg.contains("recording.json: line 3, column 11: not valid JSON"),
        "{msg}"
    );
}

#[test]
fn truncated_file_says_so() {
    let text = String::from_utf8(sample().to_json().unwrap()).unwrap();
    let msg = message(load_text(&text[..text.len() / 2]).unwrap_err());
    assert!(msg.contains("ends early (truncated?)"), "{msg}");
    let msg = message(load_text("").unwrap_err());
    assert!(msg.contains("line 1, column 0: ends early"), "{msg}");
}

#[test]
fn wrong_shape_gives_line_and_column() {
    let mut value = serde_json::to_value(sample()).unwrap();
    value.as_object_mut().unwrap().remove("host");
    let text = serde_json::to_string_pretty(&value).unwrap();
    let msg = message(load_text(&text).unwrap_err());
    assert!(
        msg.contains("not a valid recording: missing field `host`"),
        "{msg}"
    );
    assert!(msg.contains(", column "), "{msg}");
}

#[test]
fn unknown_version_says_which_are_supported() {
    // A future format may change everything else too: the version is what must be reported.
    let err = load_text(r#"{"schema_version": 7, "syscalls": "elsewhere"}"#).unwrap_err();
    assert!(matches!(err, ModelError::UnsupportedVersion { .. }));
    let msg = message(err);
    assert!(
        msg.ends_with(
            "recording.json: schema_version 7 is not supported (this profgen reads 1); re-record or upgrade profgen"
        ),
        "{msg}"
    );
    let msg = message(load_text(r#""a string""#).unwrap_err());
    assert!(
        msg.contains(
            "not a valid recording: invalid type: string \"a string\", expected a profgen recording (a JSON object)"
        ),
        "{msg}"
    );
    let msg = message(load_text(r#"{"cgroups": []}"#).unwrap_err());
    assert!(
        msg.ends_with("recording.json: no schema_version; not a profgen recording"),
        "{msg}"
    );
}

#[test]
fn allowed_syscalls_is_the_union_over_cgroups() {
    let rec = sample();
    assert_eq!(
        rec.allowed_syscalls(),
        set(&[
            (Abi::X86_64, &["epoll_wait", "nanosleep", "read", "write"]),
            (Abi::I386, &["read"]),
        ])
    );
    assert_eq!(rec.events_lost_total(), 3);
    assert!(rec.unknown_numbers().is_empty());
    assert!(recording(vec![]).allowed_syscalls().is_empty());
}

#[test]
fn merge_unions_syscalls_and_sums_losses() {
    let mut a = sample();
    let mut b = recording(vec![
        cgroup(
            9,
            "/kubepods/pod2/web",
            &[(Abi::X86_64, &["accept4", "read"])],
        ),
        // The same cgroup as in `a`, seen again by another run.
        cgroup(
            42,
            "/kubepods/pod1/web",
            &[(Abi::X86_64, &["mount", "sendfile"])],
        ),
    ]);
    b.host.kernel_release = "6.12.0".into();
    a.host.event_exits = Some(EventExits::Fexit);
    b.host.event_exits = Some(EventExits::Tracepoint);
    b.started_at = "2025-12-31T23:00:00Z".into();
    b.events_lost.insert("ringbuf_full".into(), 2);
    b.events_lost.insert("cgroup_map_full".into(), 1);
    b.cgroups[0].unknown_numbers = BTreeMap::from([(Abi::X86_64, [470].into())]);

    let merged = Recording::merge(&[a.clone(), b]).unwrap();
    assert_eq!(merged.events_lost_total(), 6);
    assert_eq!(merged.events_lost["ringbuf_full"], 5);
    assert_eq!(merged.events_lost["cgroup_map_full"], 1);
    assert_eq!(merged.host.kernel_release, "6.12.0, 6.18.0");
    // Merged recordings made with different exit hooks name none; the same, that one.
    assert_eq!(merged.host.event_exits, None);
    let same = Recording::merge(&[a.clone(), a.clone()]).unwrap();
    assert_eq!(same.host.event_exits, Some(EventExits::Fexit));
    assert_eq!(merged.started_at, "2025-12-31T23:00:00Z");
    assert_eq!(merged.ended_at, a.ended_at);
    assert_eq!(merged.target, a.target);
    assert_eq!(
        merged
            .cgroups
            .iter()
            .map(|c| c.path.as_deref().unwrap())
            .collect::<Vec<_>>(),
        [
            "/kubepods/pod1/sidecar",
            "/kubepods/pod1/web",
            "/kubepods/pod2/web"
        ]
    );
    let web = &merged.cgroups[1];
    assert_eq!(
        web.syscalls[&Abi::X86_64].iter().collect::<Vec<_>>(),
        ["epoll_wait", "mount", "read", "sendfile", "write"]
    );
    // mount was allowed in the second run, so it is no longer set-up only.
    assert_eq!(
        web.excluded_before_filter,
        set(&[(Abi::X86_64, &["pivot_root"])])
    );
    assert_eq!(
        merged.unknown_numbers(),
        BTreeMap::from([(Abi::X86_64, [470].into())])
    );

    // Merging one recording changes nothing that matters downstream.
    let alone = Recording::merge(std::slice::from_ref(&a)).unwrap();
    assert_eq!(alone.cgroups, a.cgroups);
    assert_eq!(alone.events_lost, a.events_lost);
}

#[test]
fn merge_refuses_nothing_and_mixed_machines() {
    assert!(matches!(
        Recording::merge(&[]),
        Err(ModelError::MergeNothing)
    ));
    let mut arm = sample();
    arm.host.machine = "aarch64".into();
    let err = Recording::merge(&[sample(), arm]).unwrap_err();
    assert!(matches!(err, ModelError::MergeMachines { .. }));
    assert!(message(err).contains("x86_64 and aarch64"));
}

#[test]
fn merge_unions_activity_of_the_same_cgroup() {
    let file = |path: &str, op: FileOp| FileAccess {
        path: path.into(),
        ops: [op].into(),
        failed: false,
        owned: false,
    };
    let mut a = recording(vec![cgroup(1, "/web", &[(Abi::X86_64, &["read"])])]);
    a.cgroups[0].activity.files = vec![file("/etc/nginx/nginx.conf", FileOp::Read)];
    a.cgroups[0].activity.uids = [101].into();
    let mut b = a.clone();
    b.cgroups[0].activity.files = vec![
        file("/etc/nginx/nginx.conf", FileOp::Lock),
        file("/var/log/nginx/access.log", FileOp::Append),
    ];
    b.cgroups[0].activity.capabilities = Some(["net_bind_service".to_owned()].into());
    b.cgroups[0].activity.privilege_gained = true;

    let merged = Recording::merge(&[a, b]).unwrap();
    let act = &merged.cgroups[0].activity;
    assert_eq!(act.files.len(), 2);
    assert_eq!(act.files[0].ops, [FileOp::Read, FileOp::Lock].into());
    assert_eq!(act.uids, [101].into());
    assert_eq!(
        act.capabilities,
        Some(["net_bind_service".to_owned()].into())
    );
    assert!(act.privilege_gained);
}

/// An agent checkpoint taken between the runtime's filter and its exec of the entrypoint
/// holds the runtime's last steps (runc dropping the bounding set needs setpcap); merged
/// with the later snapshot of the same cgroup, its syscalls stay (they ran under the
/// filter) and its activity goes.
#[test]
fn merge_keeps_only_the_entrypoints_activity() {
    let mut before_exec = recording(vec![cgroup(
        1,
        "/pod/c",
        &[(Abi::X86_64, &["prctl", "getdents64"])],
    )]);
    before_exec.cgroups[0].entrypoint_seen = false;
    before_exec.cgroups[0].activity.capabilities = Some(["setpcap".to_owned()].into());
    let mut after = recording(vec![cgroup(1, "/pod/c", &[(Abi::X86_64, &["accept4"])])]);
    after.cgroups[0].activity.capabilities = Some(["setuid".to_owned()].into());

    for pair in [
        [before_exec.clone(), after.clone()],
        [after.clone(), before_exec.clone()],
    ] {
        let merged = Recording::merge(&pair).unwrap();
        let c = &merged.cgroups[0];
        assert!(c.entrypoint_seen);
        assert_eq!(c.activity.capabilities, Some(["setuid".to_owned()].into()));
        assert_eq!(
            c.syscalls[&Abi::X86_64],
            ["accept4", "getdents64", "prctl"]
                .map(String::from)
                .into_iter()
                .collect()
        );
    }
}

/// Where a path held its writer's pid: kept by a merge, absent from old recordings (which
/// still load) and from the JSON when there is none.
#[test]
fn pid_in_names_merge_and_load() {
    let pid = |path: &str, start: u32, end: u32| PidInName {
        path: path.into(),
        start,
        end,
    };
    let mut a = recording(vec![cgroup(1, "/db", &[(Abi::X86_64, &["read"])])]);
    let text = serde_json::to_string(&a).unwrap();
    assert!(!text.contains("pid_in_names"), "{text}");
    let mut b = a.clone();
    a.cgroups[0].activity.pid_in_names = [pid("/var/lib/redis/temp-23.rdb", 20, 22)].into();
    b.cgroups[0].activity.pid_in_names = [pid("/srv/db/xlogtemp.31", 17, 19)].into();
    let merged = Recording::merge(&[a, b]).unwrap();
    let act = &merged.cgroups[0].activity;
    assert_eq!(act.pid_in_names.len(), 2);
    let back: Recording = serde_json::from_str(&serde_json::to_string(&merged).unwrap()).unwrap();
    assert_eq!(back.cgroups[0].activity.pid_in_names, act.pid_in_names);
    let old: Recording = serde_json::from_str(&text).unwrap();
    assert!(old.cgroups[0].activity.pid_in_names.is_empty());
}

#[test]
fn paths_round_trip_as_text_or_hex() {
    use super::FsPath;
    for bytes in [&b"/etc/nginx.conf"[..], b"/tmp/\xff\xfe name", b""] {
        let path = FsPath(bytes.to_vec());
        let json = serde_json::to_string(&path).unwrap();
        assert_eq!(
            serde_json::from_str::<FsPath>(&json).unwrap(),
            path,
            "{json}"
        );
    }
    assert_eq!(
        serde_json::from_str::<FsPath>(r#"{"hex": "2f61"}"#).unwrap(),
        FsPath(b"/a".to_vec())
    );
    for bad in [
        r#"{"hex": "2f6"}"#,
        r#"{"hex": "zz"}"#,
        r#"{"hx": "2f"}"#,
        "{}",
        "7",
    ] {
        assert!(serde_json::from_str::<FsPath>(bad).is_err(), "{bad}");
    }
}

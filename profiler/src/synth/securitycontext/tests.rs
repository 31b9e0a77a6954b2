use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;

use super::*;
use crate::model::activity::{FileAccess, Process};

fn file(path: &str, ops: &[FileOp]) -> FileAccess {
    FileAccess {
        path: FsPath::from(path),
        ops: ops.iter().copied().collect(),
        failed: false,
        owned: false,
    }
}

fn proc_(exe: &str, uid: u32, gid: u32) -> Process {
    Process {
        exe: FsPath::from(exe),
        uid,
        gid,
    }
}

fn caps(names: &[&str]) -> Option<BTreeSet<String>> {
    Some(names.iter().map(|s| s.to_string()).collect())
}

/// nginx as the official image runs it: the master as root, workers as uid 101, pid file and
/// temp directories on the root filesystem, port 80.
fn nginx() -> Activity {
    Activity {
        files: vec![
            file("/etc/nginx/nginx.conf", &[FileOp::Read]),
            file("/var/cache/nginx/client_temp", &[FileOp::Mkdir]),
            file(
                "/var/cache/nginx/proxy_temp",
                &[FileOp::Mkdir, FileOp::Chown],
            ),
            file("/var/run/nginx.pid", &[FileOp::Create, FileOp::Write]),
            file("/dev/stdout", &[FileOp::Write]),
            file("/usr/sbin/nginx", &[FileOp::Exec]),
        ],
        capabilities: caps(&["chown", "setgid", "setuid", "net_bind_service"]),
        uids: [0, 101].into(),
        gids: [0, 101].into(),
        processes: [
            proc_("/usr/sbin/nginx", 0, 0),
            proc_("/usr/sbin/nginx", 101, 101),
        ]
        .into(),
        ..Default::default()
    }
}

/// A static server started as uid 1000, writing only to an emptyDir at /tmp.
fn unprivileged() -> Activity {
    Activity {
        files: vec![
            file("/srv/index.html", &[FileOp::Read]),
            file("/tmp/cache/a", &[FileOp::Create, FileOp::Write]),
            file("/etc/resolv.conf", &[FileOp::Read]),
            // A failed write is something it did without: no evidence against read-only.
            FileAccess {
                failed: true,
                ..file("/srv/.lock", &[FileOp::Create])
            },
            file("pipe:[1234]", &[FileOp::Write]),
        ],
        capabilities: caps(&[]),
        uids: [1000].into(),
        gids: [1000].into(),
        processes: [proc_("/bin/server", 1000, 1000)].into(),
        ..Default::default()
    }
}

#[test]
fn table() {
    use Verdict::*;
    struct Case {
        name: &'static str,
        activity: Activity,
        opts: Options,
        verdicts: [Verdict; 4],
        sc: SecurityContext,
    }
    let cases = [
        Case {
            name: "nginx master as root",
            activity: nginx(),
            opts: Options::default(),
            verdicts: [Blocked, Blocked, Suggested, Suggested],
            sc: SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    add: Some(vec![
                        "CHOWN".into(),
                        "NET_BIND_SERVICE".into(),
                        "SETGID".into(),
                        "SETUID".into(),
                    ]),
                }),
                ..Default::default()
            },
        },
        Case {
            name: "nginx with emptyDirs for its writes",
            activity: nginx(),
            opts: Options::with_volumes(["/var/cache/nginx", "/var/run"]),
            verdicts: [Blocked, Suggested, Suggested, Suggested],
            sc: SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    add: Some(vec![
                        "CHOWN".into(),
                        "NET_BIND_SERVICE".into(),
                        "SETGID".into(),
                        "SETUID".into(),
                    ]),
                }),
                ..Default::default()
            },
        },
        Case {
            name: "unprivileged server with /tmp volume",
            activity: unprivileged(),
            opts: Options::with_volumes(["/tmp"]),
            verdicts: [Suggested, Suggested, Suggested, Suggested],
            sc: SecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(1000),
                run_as_group: Some(1000),
                read_only_root_filesystem: Some(true),
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    add: None,
                }),
                ..Default::default()
            },
        },
        Case {
            name: "unprivileged server without the /tmp volume",
            activity: unprivileged(),
            opts: Options::default(),
            verdicts: [Suggested, Blocked, Suggested, Suggested],
            sc: SecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(1000),
                run_as_group: Some(1000),
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    add: None,
                }),
                ..Default::default()
            },
        },
        Case {
            name: "kernel without capability events",
            activity: Activity {
                capabilities: None,
                ..unprivileged()
            },
            opts: Options::with_volumes(["/tmp"]),
            verdicts: [Suggested, Suggested, Suggested, NoEvidence],
            sc: SecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(1000),
                run_as_group: Some(1000),
                read_only_root_filesystem: Some(true),
                allow_privilege_escalation: Some(false),
                ..Default::default()
            },
        },
        Case {
            name: "setuid exec",
            activity: Activity {
                privilege_gained: true,
                ..unprivileged()
            },
            opts: Options::with_volumes(["/tmp"]),
            verdicts: [Suggested, Suggested, Blocked, Suggested],
            sc: SecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(1000),
                run_as_group: Some(1000),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    add: None,
                }),
                ..Default::default()
            },
        },
        Case {
            name: "several non-root uids",
            activity: Activity {
                uids: [1000, 1001].into(),
                gids: [1000].into(),
                processes: [proc_("/bin/a", 1000, 1000), proc_("/bin/b", 1001, 1000)].into(),
                capabilities: caps(&["CAP_SETUID"]),
                ..Default::default()
            },
            opts: Options::default(),
            verdicts: [Suggested, Suggested, Suggested, Suggested],
            sc: SecurityContext {
                run_as_non_root: Some(true),
                run_as_group: Some(1000),
                read_only_root_filesystem: Some(true),
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    add: Some(vec!["SETUID".into()]),
                }),
                ..Default::default()
            },
        },
        Case {
            name: "nothing recorded",
            activity: Activity::default(),
            opts: Options::default(),
            verdicts: [NoEvidence, NoEvidence, NoEvidence, NoEvidence],
            sc: SecurityContext::default(),
        },
    ];
    let fields = [
        Field::RunAsNonRoot,
        Field::ReadOnlyRootFilesystem,
        Field::AllowPrivilegeEscalation,
        Field::Capabilities,
    ];
    for case in cases {
        let s = security_context(&case.activity, &case.opts);
        let got: Vec<Verdict> = fields.iter().map(|f| s.verdict(*f).unwrap()).collect();
        assert_eq!(got, case.verdicts, "{}:\n{s}", case.name);
        assert_eq!(s.security_context, case.sc, "{}:\n{s}", case.name);
        for e in &s.evidence {
            assert!(!e.facts.is_empty(), "{}: {e:?}", case.name);
            assert_eq!(
                e.remedy.is_some(),
                e.verdict != Suggested,
                "{}: {e:?}",
                case.name
            );
        }
    }
}

#[test]
fn blocked_fields_name_the_fact_and_the_change() {
    let s = security_context(&nginx(), &Options::default());
    let text = s.to_string();
    assert!(text.contains("/usr/sbin/nginx ran as uid 0"), "{text}");
    assert!(text.contains("runAsUser: 101"), "{text}");
    assert!(
        text.contains("wrote /var/run/nginx.pid (write, create)"),
        "{text}"
    );
    assert!(
        text.contains("emptyDir volume at /var/cache/nginx, /var/run"),
        "{text}"
    );
    // Writes to /dev are not the root filesystem.
    assert!(!text.contains("/dev/stdout"), "{text}");
}

#[test]
fn patch_wires_profiles_and_deserializes_as_a_pod_spec() {
    let target = PatchTarget {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: "web".into(),
        name: "it-tools".into(),
    };
    let c = ContainerPatch {
        name: "nginx".into(),
        suggestion: security_context(
            &nginx(),
            &Options::with_volumes(["/var/cache/nginx", "/var/run"]),
        ),
        seccomp_localhost: Some(seccomp_localhost_path("web", "it-tools", None)),
        apparmor_profile: Some("profgen-web-it-tools".into()),
    };
    let patch = workload_patch(&target, &[c]);
    assert_eq!(patch["metadata"]["name"], "it-tools");
    let spec: PodSpec = serde_json::from_value(patch["spec"]["template"]["spec"].clone()).unwrap();
    let sc = spec.containers[0].security_context.clone().unwrap();
    assert_eq!(
        sc.seccomp_profile.unwrap().localhost_profile.as_deref(),
        Some("profgen/web/it-tools/seccomp.json")
    );
    let aa = sc.app_armor_profile.unwrap();
    assert_eq!(
        (aa.type_.as_str(), aa.localhost_profile.as_deref()),
        ("Localhost", Some("profgen-web-it-tools"))
    );
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.run_as_non_root, None);

    let cron = workload_patch(
        &PatchTarget {
            kind: "CronJob".into(),
            api_version: "batch/v1".into(),
            ..target.clone()
        },
        &[],
    );
    assert!(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"].is_array());
    let entry = kustomization_entry(&target, "it-tools.securitycontext.yaml");
    assert_eq!(entry["target"]["kind"], "Deployment");
}

//! Every manifest in `deploy/` and every object profgen generates for Kubernetes is checked
//! against the Kubernetes types: it must deserialize, and no field may be lost on the way
//! (k8s-openapi ignores unknown fields, so a typo like `readOnlyRootFileSystem` would
//! otherwise pass silently and be dropped by the API server).

use std::path::{Path, PathBuf};

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment},
    core::v1::{Namespace, PodSecurityContext, SecurityContext, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding},
};
use profgen::{
    model::activity::{Activity, FileAccess, FileOp, FsPath, Process},
    synth::securitycontext::{
        seccomp_localhost_path, security_context, workload_patch, ContainerPatch, Options,
        PatchTarget,
    },
};
use profgen_demo::image;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Paths present in `orig` but not in `back` (nulls aside): fields the type does not know.
fn lost_fields(orig: &Value, back: &Value, at: &str, out: &mut Vec<String>) {
    match (orig, back) {
        (Value::Object(o), Value::Object(b)) => {
            for (k, v) in o {
                match b.get(k) {
                    Some(bv) => lost_fields(v, bv, &format!("{at}.{k}"), out),
                    None if v.is_null() => {}
                    None => out.push(format!("{at}.{k}")),
                }
            }
        }
        (Value::Array(o), Value::Array(b)) => {
            for (i, (v, bv)) in o.iter().zip(b).enumerate() {
                lost_fields(v, bv, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Deserializes into `T` and fails on any field `T` does not have.
fn strict<T: DeserializeOwned + serde::Serialize>(v: &Value, what: &str) -> T {
    let t: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = serde_json::to_value(&t).unwrap();
    let mut lost = Vec::new();
    lost_fields(v, &back, "", &mut lost);
    assert!(lost.is_empty(), "{what}: unknown fields {lost:?}");
    t
}

fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| {
            serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn check_object(v: &Value, what: &str) -> &'static str {
    match v["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no kind"))
    {
        "Namespace" => {
            strict::<Namespace>(v, what);
            "Namespace"
        }
        "ServiceAccount" => {
            strict::<ServiceAccount>(v, what);
            "ServiceAccount"
        }
        "ClusterRole" => {
            let role: ClusterRole = strict(v, what);
            // Read-only: no verb that changes anything.
            for rule in role.rules.iter().flatten() {
                for verb in &rule.verbs {
                    assert!(
                        ["get", "list", "watch"].contains(&verb.as_str()),
                        "{what}: verb {verb}"
                    );
                }
            }
            "ClusterRole"
        }
        "ClusterRoleBinding" => {
            strict::<ClusterRoleBinding>(v, what);
            "ClusterRoleBinding"
        }
        "DaemonSet" => {
            let ds: DaemonSet = strict(v, what);
            let pod = ds.spec.unwrap().template.spec.unwrap();
            assert_ne!(pod.host_pid, Some(true), "{what}: hostPID");
            for c in &pod.containers {
                let sc = c.security_context.as_ref().expect("securityContext");
                assert_ne!(sc.privileged, Some(true), "{what}: privileged");
                assert_eq!(sc.read_only_root_filesystem, Some(true));
                assert_eq!(sc.allow_privilege_escalation, Some(false));
                let caps = sc.capabilities.as_ref().unwrap();
                assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
                assert_eq!(
                    caps.add.as_deref(),
                    Some(&["BPF".to_owned(), "PERFMON".to_owned()][..]),
                    "{what}: what loading eBPF needs on Linux 5.11 and later"
                );
                // The image `cargo xtask image` builds, by its versioned tag.
                assert_eq!(
                    c.image.as_deref(),
                    Some(format!("{}:{}", image::REPOSITORY, image::TAG).as_str()),
                    "{what}: image"
                );
                let res = c.resources.as_ref().expect("resources");
                assert!(
                    res.requests.is_some() && res.limits.is_some(),
                    "{what}: requests and limits"
                );
            }
            "DaemonSet"
        }
        "Deployment" => {
            // A strategic-merge patch is a partial Deployment: check what it sets.
            if v["spec"]["selector"].is_null() {
                let psc = &v["spec"]["template"]["spec"]["securityContext"];
                if !psc.is_null() {
                    strict::<PodSecurityContext>(psc, what);
                }
                for c in v["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    strict::<SecurityContext>(&c["securityContext"], what);
                }
                "Deployment patch"
            } else {
                strict::<Deployment>(v, what);
                "Deployment"
            }
        }
        "Kustomization" => {
            let dir_keys = [
                "apiVersion",
                "kind",
                "namespace",
                "resources",
                "images",
                "patches",
            ];
            for k in v.as_object().unwrap().keys() {
                assert!(dir_keys.contains(&k.as_str()), "{what}: unexpected key {k}");
            }
            "Kustomization"
        }
        other => panic!("{what}: no check for kind {other}"),
    }
}

#[test]
fn every_deploy_manifest_is_a_valid_kubernetes_object() {
    let mut seen = Vec::new();
    let mut stack = vec![deploy_dir()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_some_and(|x| x == "yaml") {
                for (i, doc) in yaml_docs(&path).iter().enumerate() {
                    let what = format!("{}#{i}", path.display());
                    let kind = check_object(doc, &what);
                    if kind == "Kustomization" {
                        // Every file it names exists next to it.
                        let base = path.parent().unwrap();
                        for r in doc["resources"].as_array().into_iter().flatten() {
                            assert!(base.join(r.as_str().unwrap()).is_file(), "{what}: {r}");
                        }
                        for p in doc["patches"].as_array().into_iter().flatten() {
                            assert!(
                                base.join(p["path"].as_str().unwrap()).is_file(),
                                "{what}: {p}"
                            );
                        }
                    }
                    seen.push(kind);
                }
            }
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "DaemonSet",
            "Deployment",
            "Deployment patch",
            "Kustomization",
            "Kustomization",
            "Namespace",
            "ServiceAccount",
        ]
    );
}

#[test]
fn learning_profile_is_a_permissive_oci_seccomp_profile() {
    let text = std::fs::read_to_string(deploy_dir().join("learning-seccomp.json")).unwrap();
    let profile: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(&text).unwrap();
    assert_eq!(
        profile.default_action(),
        oci_spec::runtime::LinuxSeccompAction::ScmpActAllow
    );
    assert_eq!(text, profgen::k8s::agent::LEARNING_PROFILE);
}

/// containerd's RuntimeDefault for the agent's capabilities (provenance in
/// `deploy/runtime-default-seccomp.md`): bpf(2) and perf_event_open(2) allowed through the
/// CAP_BPF / CAP_PERFMON entries, what needs CAP_SYS_ADMIN refused.
#[test]
fn runtime_default_profile_is_containerds_for_the_agents_capabilities() {
    use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};
    let text = std::fs::read_to_string(deploy_dir().join("runtime-default-seccomp.json")).unwrap();
    let profile: LinuxSeccomp = serde_json::from_str(&text).unwrap();
    assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
    let rules = profile.syscalls().clone().unwrap_or_default();
    let allowed_alone = |name: &str| {
        rules.iter().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow
                && r.args().as_ref().is_none_or(|a| a.is_empty())
                && r.names().iter().any(|n| n == name)
        })
    };
    for call in ["bpf", "perf_event_open", "read", "openat", "uname"] {
        assert!(allowed_alone(call), "{call} is not allowed");
    }
    for call in [
        "mount",
        "unshare",
        "setns",
        "clone",
        "socket",
        "personality",
        "clone3",
    ] {
        assert!(!allowed_alone(call), "{call} is allowed without conditions");
    }
    let clone3 = rules
        .iter()
        .find(|r| r.names().iter().any(|n| n == "clone3"))
        .expect("a clone3 rule");
    assert_eq!(clone3.errno_ret(), Some(38), "clone3 fails with ENOSYS");
}

#[test]
fn generated_securitycontext_patch_is_valid() {
    let activity = Activity {
        files: vec![FileAccess {
            path: FsPath::from("/var/run/nginx.pid"),
            ops: [FileOp::Create, FileOp::Write].into(),
            failed: false,
            owned: false,
        }],
        capabilities: Some(["net_bind_service".to_owned()].into()),
        uids: [101].into(),
        gids: [101].into(),
        processes: [Process {
            exe: FsPath::from("/usr/sbin/nginx"),
            uid: 101,
            gid: 101,
        }]
        .into(),
        ..Default::default()
    };
    let target = PatchTarget {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: "web".into(),
        name: "it-tools".into(),
    };
    let patch = workload_patch(
        &target,
        &[ContainerPatch {
            name: "nginx".into(),
            suggestion: security_context(&activity, &Options::with_volumes(["/var/run"])),
            seccomp_localhost: Some(seccomp_localhost_path("web", "it-tools", None)),
            apparmor_profile: Some("profgen-web-it-tools".into()),
        }],
    );
    let sc: SecurityContext = strict(
        &patch["spec"]["template"]["spec"]["containers"][0]["securityContext"],
        "patch",
    );
    assert_eq!(sc.run_as_user, Some(101));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(check_object(&patch, "generated patch"), "Deployment patch");
}

#[test]
#[should_panic(expected = "unknown fields [\".readOnlyRootFileSystem\"]")]
fn a_misspelt_field_is_caught() {
    let v = serde_json::json!({"readOnlyRootFileSystem": true, "runAsUser": 1});
    strict::<SecurityContext>(&v, "typo");
}

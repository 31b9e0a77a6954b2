use super::{fixtures::*, *};
use crate::model::ModelError;

#[test]
fn a_synthesized_set_loads_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = web_recording(WEB_SYSCALLS, web_activity());
    let dir = write_set(&tmp.path().join("web"), "web", &rec);
    let set = load(&dir).unwrap();
    assert!(set.present.contains(&Artifact::Kustomization));
    assert!(!set.present.contains(&Artifact::SpoSeccompProfile));
    assert_eq!(set.apparmor.as_ref().unwrap().name, "web");
    assert!(set.apparmor.as_ref().unwrap().includes_base());
    assert_eq!(set.network_policies.as_ref().unwrap().len(), 1);
    // The comment line before the YAML does not hide the fields.
    let sc = set.security_context.as_ref().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(set.recording.as_ref(), Some(&rec));
    assert_eq!(
        seccomp::allowed(set.seccomp.as_ref().unwrap())["x86_64"].len(),
        WEB_SYSCALLS.len()
    );
}

#[test]
fn the_committed_demo_set_loads() {
    // Its contents change with every re-recording: only that it reads back is asserted.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/demo-nginx");
    let set = load(dir).unwrap();
    assert!(set.apparmor.is_some() && set.seccomp.is_some());
}

#[test]
fn a_directory_without_a_set_names_the_files_expected() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("README"), "not a set").unwrap();
    let err = load(tmp.path()).unwrap_err();
    assert!(matches!(err, SetError::NoSet { .. }), "{err}");
    let msg = err.to_string();
    for f in [
        "seccomp.json",
        "apparmor.profile",
        "networkpolicy.yaml",
        "securitycontext.yaml",
    ] {
        assert!(msg.contains(f), "{msg}");
    }
    let err = load(tmp.path().join("nowhere")).unwrap_err();
    assert!(matches!(err, SetError::MissingDir { .. }), "{err}");
    let err = load(tmp.path().join("README")).unwrap_err();
    assert!(matches!(err, SetError::NotADir { .. }), "{err}");
}

#[test]
fn a_corrupt_artifact_is_named_on_one_line() {
    let cases: &[(Artifact, &str, &str)] = &[
        (
            Artifact::Seccomp,
            "{\"defaultAction\": \"SCMP_ACT_NOPE\"}",
            "not a seccomp profile",
        ),
        (
            Artifact::AppArmor,
            "profile web {\n  /etc/passwd r\n}\n",
            "line 2",
        ),
        (
            Artifact::AppArmor,
            "profile web {\n  /etc/{a,b r,\n}\n",
            "unbalanced",
        ),
        (
            Artifact::NetworkPolicy,
            "kind: NetworkPolicy\nspec: [1, 2\n",
            "not a NetworkPolicy",
        ),
        (
            Artifact::SecurityContext,
            "runAsNonRoot: maybe\n",
            "not a securityContext",
        ),
        (Artifact::Kustomization, "a: [\n", "not YAML"),
    ];
    for (artifact, text, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let rec = web_recording(WEB_SYSCALLS, web_activity());
        let dir = write_set(tmp.path(), "web", &rec);
        std::fs::write(dir.join(artifact.file_name()), text).unwrap();
        let err = load(&dir).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SetError::Corrupt { .. }), "{artifact}: {msg}");
        assert!(
            msg.contains(artifact.file_name()) && msg.contains(want),
            "{artifact}: {msg}"
        );
        assert!(!msg.contains('\n'), "{msg}");
    }
}

#[test]
fn a_recording_from_a_newer_profgen_gets_the_version_error() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = web_recording(WEB_SYSCALLS, web_activity());
    let dir = write_set(tmp.path(), "web", &rec);
    let path = dir.join(Artifact::Recording.file_name());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("\"schema_version\": 1", "\"schema_version\": 99", 1),
    )
    .unwrap();
    let err = load(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            SetError::Recording(ModelError::UnsupportedVersion { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("schema_version 99 is not supported"),
        "{err}"
    );
}

use std::collections::{BTreeMap, BTreeSet};

use super::{fixtures::*, *};
use crate::{
    model::{Abi, Recording},
    naming::SetNames,
    synth::{apparmor::AppArmorError, netpol::NetpolError, SeccompOptions, SynthError},
    verify::apparmor::parser::{self, ParserError},
};

fn compiles(_: &str) -> Result<(), ParserError> {
    Ok(())
}

fn refuses(_: &str) -> Result<(), ParserError> {
    Err(ParserError::Rejected {
        stderr: "AppArmor parser error at line 7: syntax error".into(),
    })
}

fn absent(_: &str) -> Result<(), ParserError> {
    Err(ParserError::Absent("not on PATH".into()))
}

fn cannot_run(_: &str) -> Result<(), ParserError> {
    Err(ParserError::Io(std::io::Error::other("no memory")))
}

fn web() -> Recording {
    web_recording(WEB_SYSCALLS, web_activity())
}

/// `profgen synth --name web_v2 --namespace shop --labels app=web`, with a parser that
/// compiles everything.
fn opts(mode: Mode) -> BuildOptions<'static> {
    BuildOptions {
        labels: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
        apparmor_check: compiles,
        ..BuildOptions::new(
            SetNames::for_workload("web_v2", Some("shop"), None, None).unwrap(),
            mode,
        )
    }
}

fn text(set: &BuiltSet, a: Artifact) -> String {
    let bytes = set
        .file(a)
        .unwrap_or_else(|| panic!("no {a} in {:?}", set.file_names()));
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn seccomp_names(set: &BuiltSet) -> Vec<String> {
    let profile: serde_json::Value =
        serde_json::from_slice(&set.file(Artifact::Seccomp).unwrap()).unwrap();
    serde_json::from_value(profile["syscalls"][0]["names"].clone()).unwrap()
}

#[test]
fn every_artifact_is_named_and_wired_in() {
    let rec = web();
    let set = build(&rec, &opts(Mode::Strict)).unwrap();
    assert_eq!(
        set.file_names(),
        Artifact::ALL
            .iter()
            .filter(|a| **a != Artifact::SpoSeccompProfile)
            .map(|a| a.file_name())
            .collect::<Vec<_>>()
    );
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    assert!(text(&set, Artifact::AppArmor).contains("profile web_v2 flags="));
    let np = text(&set, Artifact::NetworkPolicy);
    assert!(
        np.contains("name: web-v2") && np.contains("namespace: shop"),
        "{np}"
    );
    let patch = text(&set, Artifact::SecurityContextPatch);
    assert!(
        patch.starts_with("# Strategic-merge patch: `kubectl patch deployment web-v2 -n shop --type strategic --patch-file securitycontext-patch.yaml`.\n# Needs profgen/shop/web-v2/seccomp.json on every node below /var/lib/kubelet/seccomp/ and apparmor.profile loaded (apparmor_parser -r).\n"),
        "{patch}"
    );
    assert!(
        patch.contains("localhostProfile: profgen/shop/web-v2/seccomp.json")
            && patch.contains("localhostProfile: web_v2"),
        "{patch}"
    );
    let k = text(&set, Artifact::Kustomization);
    assert!(
        k.contains("kind: Component") && k.contains("- networkpolicy.yaml"),
        "{k}"
    );
    let md = text(&set, Artifact::SecurityContextEvidence);
    assert!(
        md.starts_with("# securityContext for shop/web-v2 (container web-v2)\n"),
        "{md}"
    );
    assert!(md.contains("(1 run)"), "{md}");
    assert_eq!(
        Recording::from_json(
            std::path::Path::new("recording.json"),
            &text(&set, Artifact::Recording)
        )
        .unwrap(),
        web()
    );
    // What the tables show.
    assert_eq!(set.seccomp.as_ref().unwrap().recorded, WEB_SYSCALLS.len());
    assert_eq!(
        set.apparmor.as_ref().unwrap().parser,
        ParserVerdict::Compiled
    );
    assert!(set.policy.is_some() && set.suggestion.is_some());
}

#[test]
fn both_modes_make_the_same_bytes() {
    let rec = web();
    let strict = build(&rec, &opts(Mode::Strict)).unwrap();
    let lenient = build(&rec, &opts(Mode::Lenient)).unwrap();
    assert_eq!(strict.files, lenient.files);
    assert_eq!(strict.notes, lenient.notes);
}

#[test]
fn the_installed_parser_compiles_the_profile() {
    let o = BuildOptions {
        apparmor_check: parser::check,
        ..opts(Mode::Strict)
    };
    let rec = web();
    let set = build(&rec, &o).unwrap();
    let want = match parser::parser_path() {
        Some(_) => ParserVerdict::Compiled,
        None => ParserVerdict::NotValidated("not on PATH".into()),
    };
    assert_eq!(set.apparmor.unwrap().parser, want);

    let o = BuildOptions {
        apparmor_check: absent,
        ..opts(Mode::Strict)
    };
    let verdict = build(&web(), &o).unwrap().apparmor.unwrap().parser;
    assert_eq!(verdict.to_string(), "not validated: not on PATH");
}

#[test]
fn without_labels_there_is_no_network_policy() {
    let o = BuildOptions {
        labels: BTreeMap::new(),
        ..opts(Mode::Strict)
    };
    let rec = web();
    let set = build(&rec, &o).unwrap();
    assert!(!set.has(Artifact::NetworkPolicy));
    assert_eq!(set.problems, [NO_LABELS]);
    assert!(!text(&set, Artifact::Kustomization).contains("networkpolicy.yaml"));
    assert!(set.has(Artifact::AppArmor));
}

#[test]
fn exact_and_runtimes_choose_what_is_added() {
    let rec = web_recording(&["read", "write"], web_activity());
    let with = |seccomp: SeccompOptions| {
        let o = BuildOptions {
            seccomp,
            ..opts(Mode::Strict)
        };
        build(&rec, &o).map(|set| seccomp_names(&set))
    };
    assert_eq!(with(SeccompOptions::exact()).unwrap(), ["read", "write"]);
    let all = with(SeccompOptions::default()).unwrap();
    for n in ["readv", "writev", "getdents64", "rt_sigaction"] {
        assert!(all.iter().any(|x| x == n), "{n} missing from {all:?}");
    }
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    // runc alone: crun's signal reset is not needed.
    let runc = with(SeccompOptions {
        exact: false,
        runtimes: vec!["runc".into()],
        ..Default::default()
    })
    .unwrap();
    assert!(runc.iter().any(|n| n == "getdents64"), "{runc:?}");
    assert!(!runc.iter().any(|n| n == "rt_sigaction"), "{runc:?}");
    let err = with(SeccompOptions {
        exact: false,
        runtimes: vec!["kata".into()],
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(err, BuildError::Synth(SynthError::UnknownRuntime { .. })),
        "{err}"
    );
}

#[test]
fn the_spo_object_is_made_only_when_asked() {
    let rec = web();
    assert!(build(&rec, &opts(Mode::Strict))
        .unwrap()
        .file(Artifact::SpoSeccompProfile)
        .is_none());
    let o = BuildOptions {
        spo: true,
        seccomp: SeccompOptions::exact(),
        ..opts(Mode::Strict)
    };
    let set = build(&rec, &o).unwrap();
    let yaml = text(&set, Artifact::SpoSeccompProfile);
    assert!(
        yaml.contains("localhostProfile: operator/web-v2.json"),
        "{yaml}"
    );
    let object: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(object["kind"], "SeccompProfile");
    assert_eq!(
        object["metadata"],
        serde_json::json!({"name": "web-v2", "namespace": "shop"})
    );
    let oci: serde_json::Value =
        serde_json::from_slice(&set.file(Artifact::Seccomp).unwrap()).unwrap();
    assert_eq!(object["spec"]["syscalls"], oci["syscalls"]);
    assert_eq!(object["spec"]["defaultAction"], "SCMP_ACT_ERRNO");
}

#[test]
fn a_syscalls_only_recording_gets_the_seccomp_profile_and_its_patch() {
    let mut rec = web();
    rec.syscalls_only = true;
    for mode in [Mode::Strict, Mode::Lenient] {
        let set = build(&rec, &opts(mode)).unwrap();
        assert_eq!(
            set.file_names(),
            [
                "seccomp.json",
                "securitycontext-patch.yaml",
                "kustomization.yaml",
                "recording.json"
            ]
        );
        assert_eq!(set.problems, [SYSCALLS_ONLY]);
        let patch = text(&set, Artifact::SecurityContextPatch);
        assert!(
            patch.contains("# Needs profgen/shop/web-v2/seccomp.json on every node below /var/lib/kubelet/seccomp/.\n"),
            "{patch}"
        );
        assert!(
            !patch.contains("apparmor") && !patch.contains("appArmor"),
            "{patch}"
        );
    }
}

#[test]
fn strict_mode_fails_on_any_artifact() {
    let rec = web();
    let bad_name = BuildOptions {
        names: SetNames::for_workload("no/slashes", None, None, None).unwrap(),
        ..opts(Mode::Strict)
    };
    assert!(matches!(
        build(&rec, &bad_name),
        Err(BuildError::Synth(SynthError::AppArmor(
            AppArmorError::InvalidName { .. }
        )))
    ));
    let bad_label = BuildOptions {
        labels: BTreeMap::from([("app".to_owned(), "not valid".to_owned())]),
        ..opts(Mode::Strict)
    };
    assert!(matches!(
        build(&rec, &bad_label),
        Err(BuildError::Synth(SynthError::NetworkPolicy(
            NetpolError::InvalidLabel { .. }
        )))
    ));
    let refused = BuildOptions {
        apparmor_check: refuses,
        ..opts(Mode::Strict)
    };
    let err = build(&rec, &refused).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("apparmor_parser refused the synthesized profile web_v2: AppArmor parser error at line 7"),
        "{err}"
    );
    let broken = BuildOptions {
        apparmor_check: cannot_run,
        ..opts(Mode::Strict)
    };
    let err = build(&rec, &broken).unwrap_err();
    assert!(
        matches!(err, BuildError::Parser(ParserError::Io(_))),
        "{err}"
    );
    let mut unknown = web();
    unknown.cgroups[0].unknown_numbers = BTreeMap::from([(Abi::X86_64, BTreeSet::from([470]))]);
    let err = build(&unknown, &opts(Mode::Strict)).unwrap_err();
    assert!(err.to_string().contains("x86_64: 470"), "{err}");
}

#[test]
fn lenient_mode_leaves_out_what_failed_and_makes_the_rest() {
    // The parser refuses the AppArmor profile and a label is invalid: the seccomp profile,
    // the securityContext and the patch (wiring seccomp alone) are still made.
    let o = BuildOptions {
        apparmor_check: refuses,
        labels: BTreeMap::from([("app".to_owned(), "not valid".to_owned())]),
        ..opts(Mode::Lenient)
    };
    let rec = web();
    let set = build(&rec, &o).unwrap();
    assert!(!set.has(Artifact::AppArmor) && set.apparmor.is_none());
    assert!(!set.has(Artifact::NetworkPolicy) && set.policy.is_none());
    assert_eq!(set.problems.len(), 2, "{:?}", set.problems);
    assert!(
        set.problems[0].starts_with(
            "apparmor.profile not made: apparmor_parser refused the synthesized profile web_v2"
        ),
        "{:?}",
        set.problems
    );
    assert!(
        set.problems[1].starts_with("networkpolicy.yaml not made: label \"app\"=\"not valid\""),
        "{:?}",
        set.problems
    );
    let patch = text(&set, Artifact::SecurityContextPatch);
    assert!(
        patch.contains("seccomp.json") && !patch.contains("appArmorProfile"),
        "{patch}"
    );
    assert!(!patch.contains("apparmor.profile loaded"), "{patch}");
    for a in [
        Artifact::Seccomp,
        Artifact::SecurityContext,
        Artifact::SecurityContextEvidence,
        Artifact::Kustomization,
        Artifact::Recording,
    ] {
        assert!(set.has(a), "{a} missing: {:?}", set.file_names());
    }

    // A parser that cannot run: the problem says why, causes and all, on one line.
    let o = BuildOptions {
        apparmor_check: cannot_run,
        ..opts(Mode::Lenient)
    };
    let rec = web();
    let set = build(&rec, &o).unwrap();
    assert_eq!(
        set.problems,
        ["apparmor.profile not made: validating the AppArmor profile: cannot run apparmor_parser: no memory"]
    );

    // A refused seccomp profile: the rest is made, the patch wires AppArmor alone, and the
    // SPO object that would hold its rules names why it is missing.
    let mut unknown = web();
    unknown.cgroups[0].unknown_numbers = BTreeMap::from([(Abi::X86_64, BTreeSet::from([470]))]);
    let o = BuildOptions {
        spo: true,
        ..opts(Mode::Lenient)
    };
    let set = build(&unknown, &o).unwrap();
    assert!(!set.has(Artifact::Seccomp) && set.seccomp.is_none());
    assert!(set.has(Artifact::AppArmor));
    assert_eq!(set.problems.len(), 2, "{:?}", set.problems);
    assert!(set.problems[0].starts_with("seccomp.json not made: "));
    assert!(set.problems[0].contains("x86_64: 470"));
    assert!(set.problems[1].starts_with("spo-seccompprofile.yaml not made: "));
    let patch = text(&set, Artifact::SecurityContextPatch);
    assert!(
        patch.contains("# Needs apparmor.profile loaded (apparmor_parser -r).\n"),
        "{patch}"
    );
    assert!(!patch.contains("seccompProfile"), "{patch}");
}

#[test]
fn a_written_set_replaces_the_earlier_one_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("web");
    let full = BuildOptions {
        spo: true,
        ..opts(Mode::Strict)
    };
    write(&dir, &build(&web(), &full).unwrap()).unwrap();
    std::fs::write(dir.join("README.md"), "ours").unwrap();
    std::fs::write(dir.join("securitycontext.txt"), "an earlier agent's").unwrap();
    for f in Artifact::ALL {
        assert!(dir.join(f.file_name()).is_file(), "{f}");
    }

    let mut rec = web();
    rec.syscalls_only = true;
    let set = build(&rec, &opts(Mode::Strict)).unwrap();
    write(&dir, &set).unwrap();
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "README.md",
            "kustomization.yaml",
            "recording.json",
            "seccomp.json",
            "securitycontext-patch.yaml"
        ]
    );
    for f in &set.files {
        assert_eq!(
            std::fs::read(dir.join(f.name())).unwrap(),
            f.bytes().as_ref(),
            "{}",
            f.name()
        );
    }
    let loaded = load(&dir).unwrap();
    assert!(loaded.apparmor.is_none() && loaded.security_context.is_none());
    assert_eq!(loaded.recording, Some(rec));
}

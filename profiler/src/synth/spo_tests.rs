use oci_spec::runtime::{
    LinuxSeccompArgBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use serde_json::{json, Value};

use super::*;
use crate::{
    model::{
        fixtures::{cgroup, recording},
        Abi, Recording,
    },
    synth::{seccomp::SeccompOptions, SynthError},
};

/// The exact profile: these tests are about the operator's object, not about what a profile
/// allows beyond the recording.
fn seccomp(rec: &Recording) -> Result<LinuxSeccomp, SynthError> {
    crate::synth::seccomp::seccomp(rec, &SeccompOptions::exact())
}

/// The part of the operator's `SeccompProfile` v1beta1 schema (`openAPIV3Schema` of the
/// `seccompprofiles.security-profiles-operator.x-k8s.io` CRD) that the objects profgen writes
/// touch: property names, types, enums and constraints, as the CRD states them.
fn crd_schema() -> Value {
    let actions = json!([
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY"
    ]);
    json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["defaultAction"],
                "properties": {
                    "defaultAction": {"type": "string", "enum": actions},
                    "architectures": {
                        "type": "array",
                        "x-kubernetes-list-type": "set",
                        "items": {"type": "string", "enum": [
                            "SCMP_ARCH_NATIVE", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64",
                            "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
                            "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
                            "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
                            "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE",
                            "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
                            "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64"
                        ]}
                    },
                    "flags": {
                        "type": "array",
                        "x-kubernetes-list-type": "set",
                        "items": {"type": "string", "enum": [
                            "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                        ]}
                    },
                    "syscalls": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["action", "names"],
                            "properties": {
                                "action": {"type": "string", "enum": actions},
                                "errnoRet": {"type": "integer", "format": "int32", "minimum": 0},
                                "args": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["index", "op"],
                                        "properties": {
                                            "index": {"type": "integer", "format": "int32", "minimum": 0},
                                            "value": {"type": "integer", "format": "int64", "minimum": 0},
                                            "valueTwo": {"type": "integer", "format": "int64", "minimum": 0},
                                            "op": {"type": "string", "enum": [
                                                "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",
                                                "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
                                                "SCMP_CMP_MASKED_EQ"
                                            ]}
                                        }
                                    }
                                },
                                "names": {
                                    "type": "array",
                                    "minItems": 1,
                                    "x-kubernetes-list-type": "set",
                                    "items": {"type": "string"}
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// Every way `value` breaks `schema` (the structural subset used in [`crd_schema`]): a field
/// the schema does not have, a wrong type, a value outside an enum, a missing required field,
/// too few items, a repeated item of a set, an integer out of range. Empty: it validates.
fn violations(value: &Value, schema: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    let ty = schema["type"].as_str().unwrap_or("");
    let type_ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        other => panic!("{at}: the excerpt has type {other:?}, unknown to the checker"),
    };
    if !type_ok {
        out.push(format!("{at}: expected {ty}, got {value}"));
        return out;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            out.push(format!("{at}: {value} is not one of {}", schema["enum"]));
        }
    }
    match value {
        Value::Object(fields) => {
            for req in schema["required"].as_array().into_iter().flatten() {
                let req = req.as_str().unwrap_or_default();
                if !fields.contains_key(req) {
                    out.push(format!("{at}.{req}: required, missing"));
                }
            }
            // An object schema without properties (metadata) takes any field.
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in fields {
                    match props.get(k) {
                        Some(s) => out.extend(violations(v, s, &format!("{at}.{k}"))),
                        None => out.push(format!("{at}.{k}: not a field of the CRD")),
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema["minItems"].as_u64() {
                if (items.len() as u64) < min {
                    out.push(format!("{at}: {} items, at least {min}", items.len()));
                }
            }
            if schema["x-kubernetes-list-type"] == "set" {
                for (i, item) in items.iter().enumerate() {
                    if items[..i].contains(item) {
                        out.push(format!("{at}[{i}]: {item} repeated in a set"));
                    }
                }
            }
            for (i, item) in items.iter().enumerate() {
                out.extend(violations(item, &schema["items"], &format!("{at}[{i}]")));
            }
        }
        Value::Number(n) => {
            let min = schema["minimum"].as_i64().unwrap_or(i64::MIN);
            let max = if schema["format"] == "int32" {
                i64::from(i32::MAX)
            } else {
                i64::MAX
            };
            match n.as_i64() {
                Some(v) if v >= min && v <= max => {}
                _ => out.push(format!("{at}: {n} outside {min}..={max}")),
            }
        }
        _ => {}
    }
    out
}

fn object_json(profile: &LinuxSeccomp, name: &str, namespace: Option<&str>) -> Value {
    serde_json::to_value(seccomp_profile(profile, name, namespace).unwrap()).unwrap()
}

/// Recordings, through the OCI profile, to the operator object: identity, and the same rules.
#[test]
fn objects_carry_the_oci_profile() {
    /// What was recorded, the object's name and namespace, and its expected metadata.
    type Case = (&'static str, Vec<(Abi, &'static [&'static str])>);
    let cases: Vec<(Case, &str, Option<&str>, Value)> = vec![
        (
            (
                "x86_64, in a namespace",
                vec![(Abi::X86_64, &["write", "read", "exit_group"])],
            ),
            "web",
            Some("shop"),
            json!({"name": "web", "namespace": "shop"}),
        ),
        (
            (
                "x86_64 and i386, namespace unknown",
                vec![
                    (Abi::X86_64, &["read", "execve"]),
                    (Abi::I386, &["read", "socketcall"]),
                ],
            ),
            "run-tests.sh",
            None,
            json!({"name": "run-tests.sh"}),
        ),
        (
            ("x32", vec![(Abi::X32, &["rt_sigaction"])]),
            "a",
            Some("kube-system"),
            json!({"name": "a", "namespace": "kube-system"}),
        ),
    ];
    for ((what, syscalls), name, namespace, metadata) in cases {
        let oci = seccomp(&recording(vec![cgroup(1, "/a", &syscalls)])).unwrap();
        let oci_json = serde_json::to_value(&oci).unwrap();
        let object = object_json(&oci, name, namespace);
        assert_eq!(
            object["apiVersion"], "security-profiles-operator.x-k8s.io/v1beta1",
            "{what}"
        );
        assert_eq!(object["kind"], "SeccompProfile", "{what}");
        assert_eq!(object["metadata"], metadata, "{what}");
        let spec = &object["spec"];
        assert_eq!(spec["defaultAction"], oci_json["defaultAction"], "{what}");
        assert_eq!(spec["defaultAction"], "SCMP_ACT_ERRNO", "{what}");
        assert_eq!(spec["architectures"], oci_json["architectures"], "{what}");
        assert_eq!(spec["syscalls"], oci_json["syscalls"], "{what}");
        let mut fields: Vec<&String> = spec.as_object().unwrap().keys().collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            ["architectures", "defaultAction", "syscalls"],
            "{what}: defaultErrnoRet (EPERM) is the runtime's default, not a field"
        );
        assert!(violations(&object, &crd_schema(), "").is_empty(), "{what}");
    }
}

#[test]
fn architectures_are_the_operators_names() {
    let cases = [
        (Abi::X86_64, "SCMP_ARCH_X86_64"),
        (Abi::I386, "SCMP_ARCH_X86"),
        (Abi::X32, "SCMP_ARCH_X32"),
    ];
    for (abi, name) in cases {
        let oci = seccomp(&recording(vec![cgroup(1, "/a", &[(abi, &["read"])])])).unwrap();
        let object = seccomp_profile(&oci, "a", None).unwrap();
        assert_eq!(object.spec.architectures, [name], "{abi}");
    }
}

/// Every OCI action, architecture and flag has the same name in the operator's API, and that
/// name is one the CRD accepts.
#[test]
fn every_oci_name_is_one_the_crd_accepts() {
    use LinuxSeccompAction as A;
    let schema = crd_schema();
    let spec = &schema["properties"]["spec"]["properties"];
    let accepts = |field: &str, name: &str| -> bool {
        let list = if field == "defaultAction" {
            &spec[field]["enum"]
        } else {
            &spec[field]["items"]["enum"]
        };
        list.as_array().unwrap().contains(&json!(name))
    };
    for a in [
        A::ScmpActKill,
        A::ScmpActKillThread,
        A::ScmpActKillProcess,
        A::ScmpActTrap,
        A::ScmpActErrno,
        A::ScmpActNotify,
        A::ScmpActTrace,
        A::ScmpActLog,
        A::ScmpActAllow,
    ] {
        assert_eq!(json!(action(a)), serde_json::to_value(a).unwrap());
        assert!(accepts("defaultAction", action(a)), "{a:?}");
    }
    for a in [
        Arch::ScmpArchNative,
        Arch::ScmpArchX86,
        Arch::ScmpArchX86_64,
        Arch::ScmpArchX32,
        Arch::ScmpArchArm,
        Arch::ScmpArchAarch64,
        Arch::ScmpArchMips,
        Arch::ScmpArchMips64,
        Arch::ScmpArchMips64n32,
        Arch::ScmpArchMipsel,
        Arch::ScmpArchMipsel64,
        Arch::ScmpArchMipsel64n32,
        Arch::ScmpArchPpc,
        Arch::ScmpArchPpc64,
        Arch::ScmpArchPpc64le,
        Arch::ScmpArchS390,
        Arch::ScmpArchS390x,
        Arch::ScmpArchRiscv64,
    ] {
        assert_eq!(json!(arch(a)), serde_json::to_value(a).unwrap());
        assert!(accepts("architectures", arch(a)), "{a:?}");
    }
    for f in [
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
    ] {
        assert_eq!(json!(flag(f)), serde_json::to_value(f).unwrap());
        assert!(accepts("flags", flag(f)), "{f:?}");
    }
}

/// A hand-made profile using what profgen's own do not (other actions, per-rule errno, flags)
/// still validates, rule for rule.
#[test]
fn the_object_validates_against_the_crd_schema() {
    let rec = recording(vec![cgroup(
        1,
        "/a",
        &[(Abi::X86_64, &["read", "write"]), (Abi::I386, &["read"])],
    )]);
    let mut oci = seccomp(&rec).unwrap();
    let mut rules = oci.syscalls().clone().unwrap_or_default();
    rules.push(
        LinuxSyscallBuilder::default()
            .names(vec!["ptrace".to_string()])
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(38u32)
            .build()
            .unwrap(),
    );
    rules.push(
        LinuxSyscallBuilder::default()
            .names(vec!["personality".to_string()])
            .action(LinuxSeccompAction::ScmpActLog)
            .build()
            .unwrap(),
    );
    oci.set_syscalls(Some(rules))
        .set_flags(Some(vec![LinuxSeccompFilterFlag::SeccompFilterFlagLog]));
    let object = object_json(&oci, "web.v2", Some("shop"));
    assert_eq!(violations(&object, &crd_schema(), ""), Vec::<String>::new());
    assert_eq!(
        object["spec"]["syscalls"],
        serde_json::to_value(oci.syscalls()).unwrap()
    );
    assert_eq!(object["spec"]["flags"], json!(["SECCOMP_FILTER_FLAG_LOG"]));
}

/// The checker itself: it finds each kind of violation it looks for.
#[test]
fn the_schema_checker_finds_violations() {
    let oci = seccomp(&recording(vec![cgroup(
        1,
        "/a",
        &[(Abi::X86_64, &["read"])],
    )]))
    .unwrap();
    let good = object_json(&oci, "a", None);
    /// Spoils a valid object.
    type Spoil = fn(&mut Value);
    let cases: Vec<(&str, Spoil, &str)> = vec![
        (
            "the OCI field the CRD lacks",
            |o| o["spec"]["defaultErrnoRet"] = json!(1),
            ".spec.defaultErrnoRet: not a field of the CRD",
        ),
        (
            "an action outside the enum",
            |o| o["spec"]["syscalls"][0]["action"] = json!("SCMP_ACT_BOGUS"),
            ".spec.syscalls[0].action: \"SCMP_ACT_BOGUS\" is not one of",
        ),
        (
            "a wrong type",
            |o| o["spec"]["architectures"] = json!("SCMP_ARCH_X86_64"),
            ".spec.architectures: expected array",
        ),
        (
            "a missing required field",
            |o| {
                o["spec"].as_object_mut().unwrap().remove("defaultAction");
            },
            ".spec.defaultAction: required, missing",
        ),
        (
            "an empty names list",
            |o| o["spec"]["syscalls"][0]["names"] = json!([]),
            ".spec.syscalls[0].names: 0 items, at least 1",
        ),
        (
            "a repeated set item",
            |o| o["spec"]["architectures"] = json!(["SCMP_ARCH_X86", "SCMP_ARCH_X86"]),
            ".spec.architectures[1]: \"SCMP_ARCH_X86\" repeated in a set",
        ),
        (
            "a negative errno",
            |o| o["spec"]["syscalls"][0]["errnoRet"] = json!(-1),
            ".spec.syscalls[0].errnoRet: -1 outside 0..=2147483647",
        ),
    ];
    assert!(violations(&good, &crd_schema(), "").is_empty());
    for (what, break_it, expected) in cases {
        let mut bad = good.clone();
        break_it(&mut bad);
        let found = violations(&bad, &crd_schema(), "");
        assert!(
            found.iter().any(|v| v.starts_with(expected)),
            "{what}: {found:?}"
        );
    }
}

#[test]
fn what_the_object_cannot_say_is_refused() {
    let base = seccomp(&recording(vec![cgroup(
        1,
        "/a",
        &[(Abi::X86_64, &["read"])],
    )]))
    .unwrap();
    let with_rule = |rule: LinuxSyscall| {
        let mut p = base.clone();
        p.set_syscalls(Some(vec![rule]));
        p
    };
    let rule = |names: &[&str]| {
        LinuxSyscallBuilder::default()
            .names(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .action(LinuxSeccompAction::ScmpActAllow)
    };
    let mut errno = base.clone();
    errno.set_default_errno_ret(Some(38));
    let mut listener = base.clone();
    listener.set_listener_path(Some("/run/agent.sock".into()));
    let cases: Vec<(&str, LinuxSeccomp, &str, Option<&str>, &str)> = vec![
        (
            "upper case name",
            base.clone(),
            "Web",
            None,
            "not a valid Kubernetes name",
        ),
        (
            "underscore",
            base.clone(),
            "web_v2",
            None,
            "SeccompProfile name \"web_v2\"",
        ),
        (
            "empty name",
            base.clone(),
            "",
            None,
            "not a valid Kubernetes name",
        ),
        (
            "bad namespace",
            base.clone(),
            "web",
            Some("a.b"),
            "namespace \"a.b\"",
        ),
        ("default errno", errno, "web", None, "errno 38"),
        ("listener", listener, "web", None, "listenerPath"),
        (
            "empty rule",
            with_rule(rule(&[]).build().unwrap()),
            "web",
            None,
            "without syscall names",
        ),
        (
            "argument beyond int64",
            with_rule(
                rule(&["ioctl"])
                    .args(vec![LinuxSeccompArgBuilder::default()
                        .index(1usize)
                        .value(0xffff_ffff_c004_0000u64)
                        .op(LinuxSeccompOperator::ScmpCmpEq)
                        .build()
                        .unwrap()])
                    .build()
                    .unwrap(),
            ),
            "web",
            None,
            "ioctl with 0xffffffffc0040000",
        ),
        (
            "errno beyond int32",
            with_rule(rule(&["read"]).errno_ret(u32::MAX).build().unwrap()),
            "web",
            None,
            "errnoRet 4294967295",
        ),
    ];
    for (what, profile, name, namespace, expected) in cases {
        let err = seccomp_profile(&profile, name, namespace).unwrap_err();
        assert!(err.to_string().contains(expected), "{what}: {err}");
    }
}

fn rule(names: &[&str]) -> LinuxSyscallBuilder {
    LinuxSyscallBuilder::default()
        .names(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActAllow)
}

#[test]
fn argument_conditions_are_carried() {
    let masked = LinuxSeccompArgBuilder::default()
        .index(0usize)
        .value(0x7e02_0000u64)
        .value_two(0u64)
        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
        .build()
        .unwrap();
    let equal = LinuxSeccompArgBuilder::default()
        .index(1usize)
        .value(0x5401u64)
        .op(LinuxSeccompOperator::ScmpCmpEq)
        .build()
        .unwrap();
    let mut oci = LinuxSeccomp::default();
    oci.set_default_action(LinuxSeccompAction::ScmpActErrno)
        .set_syscalls(Some(vec![
            rule(&["clone"]).args(vec![masked]).build().unwrap(),
            rule(&["ioctl"]).args(vec![equal]).build().unwrap(),
        ]));
    let object = seccomp_profile(&oci, "web", None).unwrap();
    let yaml = serde_json::to_value(&object).unwrap();
    assert_eq!(
        yaml["spec"]["syscalls"][0]["args"],
        serde_json::json!([{"index": 0, "value": 0x7e020000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}])
    );
    assert_eq!(
        yaml["spec"]["syscalls"][1]["args"],
        serde_json::json!([{"index": 1, "value": 0x5401, "op": "SCMP_CMP_EQ"}])
    );
}

#[test]
fn pods_find_it_at_the_operators_path() {
    let oci = seccomp(&recording(vec![cgroup(
        1,
        "/a",
        &[(Abi::X86_64, &["read"])],
    )]))
    .unwrap();
    let object = seccomp_profile(&oci, "web", Some("shop")).unwrap();
    assert_eq!(localhost_profile(&object), "operator/web.json");
}

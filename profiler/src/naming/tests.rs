use super::*;
use crate::synth::{apparmor::validate_name, securitycontext::PatchTarget};

#[test]
fn names_fit_kubernetes() {
    for (input, want) in [
        ("coredns-coredns", "coredns-coredns"),
        ("Web_V2-app", "web-v2-app"),
        ("Web_App.v2", "web-app-v2"),
        ("-x-", "x"),
    ] {
        assert_eq!(kube_name(input), want);
    }
    assert_eq!(kube_name(&"a".repeat(80)).len(), 63);
}

#[test]
fn names_come_from_the_target() {
    let cg = |c: &str| Target::Cgroup { cgroup: c.into() };
    assert_eq!(default_name(&cg("/profgen-demo")), "profgen-demo");
    assert_eq!(
        default_name(&cg("/kubepods/pod1/cri-containerd-ab12.scope/")),
        "cri-containerd-ab12.scope"
    );
    assert_eq!(default_name(&cg("/")), "workload");
    let cmd = Target::Command {
        argv: vec!["./run tests.sh".into()],
        cgroup: "/x".into(),
    };
    assert_eq!(default_name(&cmd), "run-tests.sh");
    for n in ["profgen-demo", "run-tests.sh", "workload"] {
        validate_name(n).unwrap();
    }
}

#[test]
fn labels_as_the_api_server_checks_them() {
    for (k, v) in [
        ("app", "-web"),
        ("app", "web app"),
        ("", "web"),
        ("Example.com/app", "web"),
        ("app", &"x".repeat(64)),
        ("a/b/c", "x"),
        ("/app", "x"),
    ] {
        assert!(check_label(k, v).is_err(), "{k}={v}");
    }
    for (k, v) in [
        ("app.kubernetes.io/name", "web"),
        ("tier", ""),
        ("a_b.c", "x_y.z"),
    ] {
        check_label(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
    }
    assert!(check_dns_label("shop").is_ok());
    for bad in ["", "Shop", "-shop", "shop-", "a.b", &"x".repeat(64)] {
        assert!(check_dns_label(bad).is_err(), "{bad:?}");
    }
    assert!(check_subdomain("web.v2").is_ok());
    assert!(check_subdomain(&"a.".repeat(130)).is_err());
}

#[test]
fn a_synth_set_is_named_after_its_workload() {
    let names = SetNames::for_workload("web_v2", Some("shop"), None, None).unwrap();
    assert_eq!(
        names,
        SetNames {
            apparmor: "web_v2".into(),
            object: "web-v2".into(),
            namespace: Some("shop".into()),
            target: PatchTarget {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: "shop".into(),
                name: "web-v2".into(),
            },
            container: "web-v2".into(),
            seccomp_localhost: "profgen/shop/web-v2/seccomp.json".into(),
        }
    );
    let names = SetNames::for_workload("web", None, Some("CronJob/nightly"), Some("job")).unwrap();
    assert_eq!(names.namespace, None);
    assert_eq!(names.target.namespace, "default");
    assert_eq!(
        (
            names.target.api_version.as_str(),
            names.target.name.as_str()
        ),
        ("batch/v1", "nightly")
    );
    assert_eq!(names.container, "job");
    assert_eq!(
        names.seccomp_localhost,
        "profgen/default/nightly/seccomp.json"
    );
    for (bad, want) in [
        ("web", "expected KIND/NAME"),
        ("Deployment/", "expected KIND/NAME"),
        ("Service/web", "expected Deployment, StatefulSet"),
    ] {
        let err = SetNames::for_workload("web", None, Some(bad), None).unwrap_err();
        assert!(err.to_string().contains(want), "{bad}: {err}");
    }
}

#[test]
fn an_agent_set_is_named_after_its_workload_container() {
    let target = parse_workload("Deployment/coredns", "kube-system").unwrap();
    let names = SetNames::for_container(target.clone(), "coredns");
    assert_eq!(names.apparmor, "profgen-kube-system-coredns-coredns");
    assert_eq!(names.object, "coredns-coredns");
    assert_eq!(names.namespace.as_deref(), Some("kube-system"));
    assert_eq!(names.target, target);
    assert_eq!(
        names.seccomp_localhost,
        "profgen/kube-system/coredns/coredns/seccomp.json"
    );
}

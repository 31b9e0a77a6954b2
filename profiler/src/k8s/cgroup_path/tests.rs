use std::collections::BTreeMap;

use super::*;
use crate::k8s::test_fixtures;

/// A fixture group header: `# runtime=…, driver=…, cgroup=…, source=…`.
#[derive(Default)]
struct Header {
    runtime: String,
    driver: String,
}

fn header(line: &str) -> Option<Header> {
    let body = line.strip_prefix("# runtime=")?;
    let mut h = Header {
        runtime: String::new(),
        driver: String::new(),
    };
    for (i, field) in body.split(", ").enumerate() {
        if i == 0 {
            h.runtime = field.to_lowercase();
        } else if let Some(d) = field.strip_prefix("driver=") {
            h.driver = d.to_lowercase();
        }
    }
    Some(h)
}

/// The pod UID written in the line, found without the parser: the last `pod` followed by a
/// UUID (dashes or underscores) or a 32-hex hash.
fn uid_in(line: &str) -> Option<(usize, String)> {
    let mut found = None;
    for (at, _) in line.match_indices("pod") {
        let tail = &line[at + 3..];
        let run: String = tail
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || *c == '-' || *c == '_')
            .collect();
        let uid = run.replace('_', "-");
        let dashed = uid.len() == 36 && uid.matches('-').count() == 4;
        let hash = uid.len() == 32 && !uid.contains('-');
        if dashed || hash {
            found = Some((at + 3 + run.len(), uid));
        }
    }
    found
}

/// Maximal runs of exactly 64 hex digits, with their start offsets.
fn ids_in(line: &str) -> Vec<(usize, &str)> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_hexdigit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
                i += 1;
            }
            if i - start == 64 {
                out.push((start, &line[start..i]));
            }
        } else {
            i += 1;
        }
    }
    out
}

fn runtime_before(line: &str, at: usize) -> (ContainerRuntime, ContainerRole) {
    let before = &line[..at];
    if before.ends_with("cri-containerd-") || before.ends_with(":cri-containerd:") {
        (ContainerRuntime::Containerd, ContainerRole::Container)
    } else if before.ends_with("crio-conmon-") {
        (ContainerRuntime::CriO, ContainerRole::Monitor)
    } else if before.ends_with("crio-") {
        (ContainerRuntime::CriO, ContainerRole::Container)
    } else if before.ends_with("docker-") {
        (ContainerRuntime::Docker, ContainerRole::Container)
    } else {
        (ContainerRuntime::Unknown, ContainerRole::Container)
    }
}

#[test]
fn every_fixture_path_gives_its_pod_container_runtime_qos_and_driver() {
    let text = test_fixtures::read("cgroup/paths.txt");
    let mut head = Header::default();
    let mut lines = 0;
    let mut pod_containers: BTreeMap<String, usize> = BTreeMap::new();
    let mut pod_level = 0;
    let mut monitors = 0;
    let mut plain_docker = 0;
    let mut nothing = 0;
    let mut nested = 0;
    let mut by_driver: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_qos: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        if let Some(h) = header(line) {
            head = h;
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        lines += 1;
        let info = parse(line);
        let ctx = format!("line {line:?} parsed as {info:#?}");

        // The version comes from the `/proc` line prefix, when there is one.
        if let Some((n, _)) = line.split_once(':') {
            if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() {
                let want = if n == "0" {
                    CgroupVersion::V2
                } else {
                    CgroupVersion::V1
                };
                assert_eq!(info.version, Some(want), "{ctx}");
            }
        }

        let ids = ids_in(line);
        match uid_in(line) {
            Some((uid_end, uid)) => {
                let pod = info
                    .pod
                    .as_ref()
                    .unwrap_or_else(|| panic!("pod not found: {ctx}"));
                assert_eq!(pod.uid, uid, "{ctx}");
                // QoS from the words in the path; Guaranteed when the pod sits right under
                // the kubepods root; unknown for a cgroupns-relative path.
                let want_qos = if line.contains("besteffort") {
                    Some(QosClass::BestEffort)
                } else if line.contains("burstable") {
                    Some(QosClass::Burstable)
                } else if line.contains("/../") {
                    None
                } else {
                    Some(QosClass::Guaranteed)
                };
                assert_eq!(pod.qos, want_qos, "{ctx}");
                if head.driver.starts_with("cgroupfs") {
                    assert_eq!(pod.driver, CgroupDriver::Cgroupfs, "{ctx}");
                } else if head.driver.starts_with("systemd") || head.driver.starts_with("slice:") {
                    assert_eq!(pod.driver, CgroupDriver::Systemd, "{ctx}");
                }
                *by_driver.entry(format!("{:?}", pod.driver)).or_default() += 1;
                *by_qos.entry(format!("{:?}", pod.qos)).or_default() += 1;
                if !info.prefix.is_empty() {
                    nested += 1;
                }
                // The container is the first 64-hex id after the pod UID.
                match ids.iter().find(|(at, _)| *at > uid_end) {
                    Some(&(at, id)) => {
                        let c = info
                            .container
                            .as_ref()
                            .unwrap_or_else(|| panic!("container not found: {ctx}"));
                        assert_eq!(c.id, id, "{ctx}");
                        let (rt, role) = runtime_before(line, at);
                        assert_eq!((c.runtime, c.role), (rt, role), "{ctx}");
                        // The runtime the path names is the one the group header names.
                        let named = head.runtime.starts_with("mixed")
                            || match rt {
                                ContainerRuntime::Containerd => head.runtime.contains("containerd"),
                                ContainerRuntime::CriO => {
                                    head.runtime.contains("cri-o") || head.runtime.contains("crio")
                                }
                                ContainerRuntime::Docker => head.runtime.contains("docker"),
                                ContainerRuntime::Unknown => {
                                    head.runtime.contains("containerd")
                                        || head.runtime.contains("docker")
                                        || head.runtime.starts_with("unknown")
                                }
                            };
                        assert!(
                            named,
                            "runtime {rt} not in header {:?}: {ctx}",
                            head.runtime
                        );
                        if role == ContainerRole::Monitor {
                            monitors += 1;
                            assert!(!info.is_pod_container(), "{ctx}");
                        } else {
                            assert!(info.is_pod_container(), "{ctx}");
                            *pod_containers.entry(rt.to_string()).or_default() += 1;
                        }
                    }
                    None => {
                        assert_eq!(info.container, None, "{ctx}");
                        pod_level += 1;
                    }
                }
            }
            None => {
                assert_eq!(info.pod, None, "{ctx}");
                match ids.first() {
                    Some(&(at, id)) if !line.contains(".mount") => {
                        let c = info
                            .container
                            .as_ref()
                            .unwrap_or_else(|| panic!("container not found: {ctx}"));
                        assert_eq!(c.id, id, "{ctx}");
                        let (rt, role) = runtime_before(line, at);
                        if role == ContainerRole::Monitor {
                            monitors += 1;
                        } else {
                            // `/docker/<id>` or `docker-<id>.scope`: Docker outside Kubernetes.
                            assert_eq!(c.runtime, ContainerRuntime::Docker, "{ctx}");
                            assert!(
                                rt == ContainerRuntime::Docker || line.contains("/docker/"),
                                "{ctx}"
                            );
                            plain_docker += 1;
                        }
                    }
                    _ => {
                        assert_eq!(info.container, None, "{ctx}");
                        nothing += 1;
                    }
                }
            }
        }
    }
    eprintln!(
        "{lines} lines: pod containers {pod_containers:?}, pod-level {pod_level}, monitors {monitors}, \
         docker outside pods {plain_docker}, neither {nothing}, nested {nested}, drivers {by_driver:?}, qos {by_qos:?}"
    );
    assert_eq!(lines, 220);
    let counts: Vec<(&str, usize)> = pod_containers
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        counts, EXPECTED_POD_CONTAINERS,
        "pod containers per runtime"
    );
    assert_eq!(
        (pod_level, monitors, plain_docker, nothing),
        EXPECTED_OTHERS,
        "(pod-level, conmon monitors, docker outside pods, neither)"
    );
}

/// Checked against `grep` over `paths.txt`: 13 `cri-containerd` lines, 7 `crio-` (not
/// conmon), 8 pod `docker-<id>.scope`, and 115 bare 64-hex ids under cgroupfs, whose runtime
/// only the pod status can tell. Then 28 pod-level cgroups, 2 `crio-conmon` monitors, 21
/// Docker containers outside pods (plain Docker and kind/minikube node containers, whose
/// services sit below them), and 26 lines naming neither (roots, QoS levels, `.mount` units,
/// host services).
const EXPECTED_POD_CONTAINERS: &[(&str, usize)] = &[
    ("containerd", 13),
    ("cri-o", 7),
    ("docker", 8),
    ("unknown", 115),
];
const EXPECTED_OTHERS: (usize, usize, usize, usize) = (28, 2, 21, 26);

#[test]
fn systemd_pod_and_container() {
    let info = parse("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod121157b5_c67d_4c3e_9052_cb27bbb711fb.slice/cri-containerd-1cd3449e930b8a28c7595240fa32ba20c84f36d059e5fbe63104ad40057992d1.scope");
    let pod = info.pod.unwrap();
    assert_eq!(pod.uid, "121157b5-c67d-4c3e-9052-cb27bbb711fb");
    assert_eq!(pod.qos, Some(QosClass::Burstable));
    assert_eq!(pod.driver, CgroupDriver::Systemd);
    assert_eq!(
        pod.path,
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod121157b5_c67d_4c3e_9052_cb27bbb711fb.slice"
    );
    let c = info.container.unwrap();
    assert_eq!(c.runtime, ContainerRuntime::Containerd);
    assert_eq!(info.prefix, "");
}

#[test]
fn kind_node_seen_from_host_keeps_the_node_as_prefix() {
    let info = parse("0::/system.slice/docker-c1146e7ccca9ab4436abd69923c07d097b37b762ed21cc3f24584c2f84e77c57.scope/kubelet/kubepods/pod55db13a1-c151-4cdd-a48b-e002a2b1fb58/21e677e6fe95215ea48bcb5609c10e67ba8e76a7a3ea749af704e72260eb93fe");
    assert_eq!(
        info.prefix,
        "/system.slice/docker-c1146e7ccca9ab4436abd69923c07d097b37b762ed21cc3f24584c2f84e77c57.scope/kubelet"
    );
    assert_eq!(info.pod.unwrap().qos, Some(QosClass::Guaranteed));
    assert_eq!(info.container.unwrap().runtime, ContainerRuntime::Unknown);
}

#[test]
fn crio_sub_cgroup_and_sysfs_paths() {
    let info = parse("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podea19ff5d_943a_4466_a07e_a71e9e50cc62.slice/crio-21572039dd8398ff8272b031fa5422a40165145ab37f2f8794e1e7f844fe8118.scope/container");
    assert_eq!(info.below_container.as_deref(), Some("container"));
    assert!(info.is_pod_container());
    let info = parse("/sys/fs/cgroup/cpu,cpuacct/kubepods/burstable/podc458de04-9784-4f7a-990e-cefe26b511f0/01aa0bfe91e8a58da5f1f4db469fa999fe9263c702111e611445cde2b9cb0c1a/cgroup.procs");
    assert_eq!(info.path, "/kubepods/burstable/podc458de04-9784-4f7a-990e-cefe26b511f0/01aa0bfe91e8a58da5f1f4db469fa999fe9263c702111e611445cde2b9cb0c1a");
    assert!(info.is_pod_container());
}

#[test]
fn negatives_name_no_pod_container() {
    for line in [
        "/",
        "0::/podruntime/runtime",
        "/system.slice/kubelet.service",
        "/kubepods/burstable",
        "/system.slice/run-containerd-io.containerd.runtime.v1.linux-k8s.io-14ae50f1d3ada102aec3ab00168fdafb2dc0986d79ca9e8d5b75581fa89e9fea-rootfs.mount",
        "0::/system.slice/crio-conmon-5819a498721cf8bb7e334809c9e48aa310bfc98801eb8017034ad17fb0749920.scope",
    ] {
        assert!(!parse(line).is_pod_container(), "{line}");
    }
}

#[test]
fn kubelet_paths_round_trip() {
    let uid = "87c52d60-fefd-45a9-a420-895256fc03b5";
    let id = "a126df15fba5713f57f1abad9c484cb75569e9f48f1169bd9710f63bb8af0e46";
    for driver in [CgroupDriver::Systemd, CgroupDriver::Cgroupfs] {
        for qos in [
            QosClass::Guaranteed,
            QosClass::Burstable,
            QosClass::BestEffort,
        ] {
            for rt in [ContainerRuntime::Containerd, ContainerRuntime::CriO] {
                let path = format!(
                    "{}/{}",
                    kubelet_pod_cgroup(driver, qos, uid),
                    runtime_container_cgroup(driver, rt, id)
                );
                let info = parse(&path);
                let pod = info.pod.as_ref().unwrap();
                assert_eq!(
                    (pod.uid.as_str(), pod.qos, pod.driver),
                    (uid, Some(qos), driver),
                    "{path}"
                );
                let c = info.container.unwrap();
                assert_eq!(c.id, id);
                let want = if driver == CgroupDriver::Cgroupfs && rt == ContainerRuntime::Containerd
                {
                    ContainerRuntime::Unknown
                } else {
                    rt
                };
                assert_eq!(c.runtime, want, "{path}");
            }
        }
    }
}

//! The agent's planning on a real node: the minikube capture's kubelet `/pods` reply and the
//! cAdvisor cgroup ids of the same node (`paths.txt`), laid out as a cgroup tree in a
//! temporary directory.

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::Pod, List};

use super::*;
use crate::{
    k8s::{
        owner::{self, Parent},
        profiles::{self, PodRecord},
        test_fixtures,
    },
    model::{fixtures, Abi},
};

const GROUP: &str = "nri-kubernetes:internal/testutil/data/1_35";

/// The cgroup paths of the minikube node, from its group in `paths.txt`.
fn minikube_paths(paths: &str) -> Vec<&str> {
    let mut lines = paths
        .lines()
        .skip_while(|l| !(l.starts_with("# runtime=") && l.contains(GROUP)));
    lines.next();
    lines
        .take_while(|l| !l.starts_with("# runtime="))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn pods_with_workloads(list: &str) -> Vec<(Pod, Workload)> {
    let list: List<Pod> = serde_json::from_str(list).unwrap();
    list.items
        .into_iter()
        .map(|p| {
            let w = owner::workload(&p, Parent::Unknown);
            (p, w)
        })
        .collect()
}

#[test]
fn plans_attributes_and_merges_a_real_node() {
    let (paths, list) = (
        test_fixtures::read("cgroup/paths.txt"),
        test_fixtures::read("k8s/minikube-v1.35-containerd-kubelet-pods-podlist.json"),
    );
    let node = minikube_paths(&paths);
    assert_eq!(node.len(), 58);
    let root = tempfile::tempdir().unwrap();
    for p in &node {
        fs::create_dir_all(root.path().join(p.trim_start_matches('/'))).unwrap();
    }
    let pods = pods_with_workloads(&list);
    assert_eq!(pods.len(), 24);

    let pod_cgroups = find_pod_cgroups(root.path());
    assert_eq!(pod_cgroups.len(), 18);
    let (targets, waiting) = plan(pods.iter().map(|(p, _)| (pod::key(p), p)), &pod_cgroups);
    // Every running pod has its cgroup; the six finished Job pods have none left.
    assert_eq!(targets.len(), 18);
    assert_eq!(waiting.len(), 6);
    assert!(
        waiting
            .iter()
            .all(|k| k.contains("failjob") || k.contains("cronjob")),
        "{waiting:?}"
    );
    // A static pod: its cgroup is named by the config hash, not the mirror pod's UID.
    let (_, etcd) = targets
        .iter()
        .find(|(key, _)| key == "kube-system/etcd-datagen-1-35")
        .unwrap();
    assert!(etcd.starts_with("/kubepods/burstable/pod"), "{etcd}");

    // Every container cgroup of the node: app containers by name, the rest are sandboxes.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut records: BTreeMap<String, PodRecord> = BTreeMap::new();
    for (i, p) in node.iter().enumerate() {
        let info = cgroup_path::parse(p);
        if info.container.is_none() {
            continue;
        }
        let a = attribute(p, &pods);
        *counts
            .entry(match &a {
                Attribution::Container { .. } => "container",
                Attribution::Infrastructure { .. } => "infrastructure",
                Attribution::Unknown { .. } => "unknown",
            })
            .or_default() += 1;
        // What the engine keeps of each pod: the cgroups recorded, those named.
        let Attribution::Container { pod, container, .. } = a else {
            continue;
        };
        let record = records.entry(pod.clone()).or_insert_with(|| {
            let (p, w) = pods.iter().find(|(p, _)| pod::key(p) == pod).unwrap();
            PodRecord {
                pod: p.clone(),
                workload: w.clone(),
                containers: BTreeMap::new(),
                recording: fixtures::recording(Vec::new()),
            }
        });
        record.containers.insert(p.to_string(), container);
        record
            .recording
            .cgroups
            .push(fixtures::cgroup(i as u64, p, &[(Abi::X86_64, &["read"])]));
    }
    assert_eq!(
        counts,
        BTreeMap::from([("container", 17), ("infrastructure", 18)])
    );

    // Replicas merge: two Deployment pods and two StatefulSet pods give one set each.
    let records: Vec<PodRecord> = records.into_values().collect();
    let sets = profiles::sets(&records);
    assert_eq!(sets.len(), 15);
    let merged: Vec<String> = sets
        .iter()
        .filter(|s| s.pods.len() > 1)
        .map(|s| {
            let w = &s.workload;
            format!(
                "{}/{}/{} {} x{}",
                w.namespace,
                w.kind,
                w.name,
                s.container,
                s.recording.cgroups.len()
            )
        })
        .collect();
    assert_eq!(
        merged,
        [
            "scraper/Deployment/e2e-deployment compute-pi-digits x2",
            "scraper/StatefulSet/e2e-statefulset compute-pi-digits x2",
        ]
    );
    let dir = sets[0].dir();
    assert_eq!(dir.components().count(), 3, "{dir:?}");
    assert!(dir.ends_with(&sets[0].container), "{dir:?}");
}

#[test]
fn state_survives_a_restart_and_never_holds_half_a_document() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    state
        .save("web/it-tools/nginx", &vec!["read", "write"])
        .unwrap();
    state
        .save("web/it-tools/nginx", &vec!["read", "write", "openat"])
        .unwrap();
    // A new process (the restarted agent) finds what the old one saved.
    let again = StateDir::open(dir.path()).unwrap();
    assert_eq!(again.keys().unwrap(), ["web/it-tools/nginx"]);
    let v: Vec<String> = again.load("web/it-tools/nginx").unwrap().unwrap();
    assert_eq!(v, ["read", "write", "openat"]);
    assert_eq!(again.load::<Vec<String>>("absent").unwrap(), None);
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn learning_profile_is_installed_where_localhost_profile_points() {
    let root = tempfile::tempdir().unwrap();
    let path = install_learning_profile(root.path()).unwrap();
    assert_eq!(path, root.path().join(LEARNING_PROFILE_PATH));
    assert_eq!(fs::read_to_string(&path).unwrap(), LEARNING_PROFILE);
    // Idempotent: the agent installs it at every start.
    install_learning_profile(root.path()).unwrap();
    assert_eq!(
        fs::read_dir(root.path().join("profgen")).unwrap().count(),
        1
    );
}

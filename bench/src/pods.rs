//! The pods of section e): N replicas of a coredns pod captured from a real kind cluster, as
//! the API server would send them to `profgen agent`, and the cgroups the kubelet would put
//! them and their container in.
//!
//! Each replica is the captured pod object with three fields changed and nothing else:
//! `metadata.name`, `metadata.uid` and the container's `containerID` (one pod of the capture
//! cannot stand for twenty: the agent tells pods apart by UID and containers by runtime id).
//! Labels, owner, node, QoS class, container name and runtime scheme stay as captured.

use anyhow::{bail, Context as _, Result};
use profgen::k8s::cgroup_path::{
    kubelet_pod_cgroup, runtime_container_cgroup, CgroupDriver, ContainerRuntime, QosClass,
};
use serde_json::Value;

/// `GET …/pods?watch=true&sendInitialEvents=true…` of kind v1.36's kube-system namespace:
/// one `ADDED` event per pod, then the bookmark ending the initial events (provenance in
/// `tests/fixtures/SOURCES.md`).
pub const WATCH_CAPTURE: &str = include_str!(
    "../../tests/fixtures/k8s/kind-v1.36-kube-system-pods-watch-sendInitialEvents-bookmark.jsonl"
);

/// The captured pod the replicas are made from.
pub const TEMPLATE_POD: &str = "coredns-589f44dc88-4fpns";

/// One replica: its object as the API sends it, and where its container runs.
#[derive(Clone, Debug)]
pub struct BenchPod {
    pub object: Value,
    /// `namespace/name`, as the agent names the pods it records.
    pub key: String,
    /// Below the cgroup2 mount, starting with `/`, as the kubelet's systemd driver makes it.
    pub pod_cgroup: String,
    /// The container's cgroup, below the pod's (what runc is given as `cgroupsPath`).
    pub container_cgroup: String,
}

/// What the agent is told to select, from the captured pod: namespace, a label selector that
/// matches it, and its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub namespace: String,
    pub selector: String,
    pub node: String,
}

/// `n` replicas of [`TEMPLATE_POD`] from `capture` (a watch stream); `tag` keeps their UIDs
/// and container ids apart from another run's.
pub fn replicas(capture: &str, n: usize, tag: u32) -> Result<(Vec<BenchPod>, Selection)> {
    let template = capture
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|ev| ev["object"].clone())
        .find(|o| o["metadata"]["name"] == TEMPLATE_POD)
        .with_context(|| format!("no pod {TEMPLATE_POD} in the watch capture"))?;
    let text = |v: &Value, what: &str| -> Result<String> {
        v.as_str()
            .map(str::to_owned)
            .with_context(|| format!("the captured pod has no {what}"))
    };
    let selection = Selection {
        namespace: text(&template["metadata"]["namespace"], "namespace")?,
        selector: format!(
            "k8s-app={}",
            text(&template["metadata"]["labels"]["k8s-app"], "k8s-app label")?
        ),
        node: text(&template["spec"]["nodeName"], "spec.nodeName")?,
    };
    let qos = template["status"]["qosClass"]
        .as_str()
        .and_then(QosClass::parse)
        .context("the captured pod has no status.qosClass")?;
    let generate_name = text(&template["metadata"]["generateName"], "generateName")?;
    let status_id = text(
        &template["status"]["containerStatuses"][0]["containerID"],
        "containerID",
    )?;
    let Some((scheme, _)) = status_id.split_once("://") else {
        bail!("the captured containerID {status_id} has no scheme");
    };
    let runtime = ContainerRuntime::from_status_scheme(scheme);
    let pods = (0..n)
        .map(|i| {
            let name = format!("{generate_name}bench{i}");
            let uid = format!("{tag:08x}-0000-4000-8000-{i:012x}");
            let id = format!("{tag:016x}{i:048x}");
            let mut object = template.clone();
            object["metadata"]["name"] = name.clone().into();
            object["metadata"]["uid"] = uid.clone().into();
            object["status"]["containerStatuses"][0]["containerID"] =
                format!("{scheme}://{id}").into();
            let pod_cgroup = kubelet_pod_cgroup(CgroupDriver::Systemd, qos, &uid);
            let container_cgroup = format!(
                "{pod_cgroup}/{}",
                runtime_container_cgroup(CgroupDriver::Systemd, runtime, &id)
            );
            BenchPod {
                object,
                key: format!("{}/{name}", selection.namespace),
                pod_cgroup,
                container_cgroup,
            }
        })
        .collect();
    Ok((pods, selection))
}

/// The watch stream the API server sends for `pods`: an `ADDED` event each, then the
/// captured bookmark that ends the initial events.
pub fn watch_body(capture: &str, pods: &[BenchPod]) -> Result<String> {
    let bookmark = capture
        .lines()
        .find(|l| l.contains(r#""type":"BOOKMARK""#))
        .context("no BOOKMARK event in the watch capture")?;
    let mut body = String::new();
    for p in pods {
        body += &serde_json::json!({"type": "ADDED", "object": p.object}).to_string();
        body.push('\n');
    }
    body += bookmark;
    body.push('\n');
    Ok(body)
}

#[cfg(test)]
mod tests {
    use profgen::k8s::cgroup_path;

    use super::*;

    #[test]
    fn replicas_keep_the_capture_and_are_found_where_the_kubelet_puts_them() {
        let (pods, sel) = replicas(WATCH_CAPTURE, 3, 0xabc).unwrap();
        assert_eq!(
            sel,
            Selection {
                namespace: "kube-system".into(),
                selector: "k8s-app=kube-dns".into(),
                node: "v1.36-control-plane".into(),
            }
        );
        assert_eq!(pods.len(), 3);
        let uids: std::collections::BTreeSet<_> = pods
            .iter()
            .map(|p| p.object["metadata"]["uid"].to_string())
            .collect();
        assert_eq!(uids.len(), 3, "one UID per replica");
        let p = &pods[1];
        assert_eq!(p.key, "kube-system/coredns-589f44dc88-bench1");
        assert_eq!(
            p.pod_cgroup,
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod00000abc_0000_4000_8000_000000000001.slice"
        );
        // The library's parser, which the agent attributes cgroups with, reads back the pod's
        // UID and the container id its status names.
        let info = cgroup_path::parse(&p.container_cgroup);
        assert_eq!(
            info.pod.map(|pc| pc.uid).as_deref(),
            p.object["metadata"]["uid"].as_str()
        );
        let id = info.container.map(|c| c.id).unwrap();
        assert_eq!(
            p.object["status"]["containerStatuses"][0]["containerID"],
            format!("containerd://{id}")
        );
        assert_eq!(id.len(), 64);
        // Everything else is the captured pod's.
        let template = WATCH_CAPTURE
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["object"].clone())
            .find(|o| o["metadata"]["name"] == TEMPLATE_POD)
            .unwrap();
        assert_eq!(p.object["spec"], template["spec"]);
        assert_eq!(
            p.object["metadata"]["labels"],
            template["metadata"]["labels"]
        );
        assert_eq!(
            p.object["metadata"]["ownerReferences"],
            template["metadata"]["ownerReferences"]
        );
    }

    #[test]
    fn watch_body_ends_the_initial_events() {
        let (pods, _) = replicas(WATCH_CAPTURE, 2, 1).unwrap();
        let body = watch_body(WATCH_CAPTURE, &pods).unwrap();
        let types: Vec<String> = body
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].to_string())
            .collect();
        assert_eq!(types, [r#""ADDED""#, r#""ADDED""#, r#""BOOKMARK""#]);
        assert!(body.contains("k8s.io/initial-events-end"));
    }

    #[test]
    fn a_capture_without_the_pod_is_one_error() {
        let err = replicas("{\"type\":\"BOOKMARK\"}\n", 1, 0).unwrap_err();
        assert!(err.to_string().contains(TEMPLATE_POD), "{err}");
    }
}

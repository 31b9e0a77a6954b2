//! The client against a local server replaying real API responses (see `replay`).

use futures::StreamExt;
use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
use serde_json::Value;

use super::{
    client::{Cluster, PodEvent, PodSelector},
    error::K8sError,
    owner::{self, Parent},
    pod,
    replay::{forbidden, serve, Route},
    test_fixtures,
};

const KIND_PODS: &str = "k8s/kind-v1.36-kube-system-podlist.json";
const KS: &str = "/api/v1/namespaces/kube-system/pods";

fn cluster(url: &str) -> Cluster {
    Cluster::from_config(kube::Config::new(url.parse().unwrap())).unwrap()
}

/// One item of a captured list, as a GET of that object returns it.
fn item(list: &str, name: &str) -> String {
    let v: Value = serde_json::from_str(list).unwrap();
    let mut it = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == name)
        .unwrap()
        .clone();
    it["kind"] = "Pod".into();
    it["apiVersion"] = "v1".into();
    it.to_string()
}

#[tokio::test]
async fn lists_by_namespace_labels_and_node() {
    let list = test_fixtures::read(KIND_PODS);
    let server = serve(vec![Route::get(KS, list)]).await;
    let sel = PodSelector {
        namespace: Some("kube-system".into()),
        labels: Some("k8s-app=kube-dns".into()),
        node: Some("v1.36-control-plane".into()),
    };
    let pods = cluster(&server.url).pods(&sel).await.unwrap();
    assert_eq!(pods.len(), 8);
    assert!(pods
        .iter()
        .all(|p| pod::node(p) == Some("v1.36-control-plane")));
    let req = server.requests.lock().unwrap()[0].clone();
    assert_eq!((req.method.as_str(), req.path.as_str()), ("GET", KS));
    assert!(
        req.query.contains("labelSelector=k8s-app%3Dkube-dns"),
        "{req:?}"
    );
    assert!(
        req.query
            .contains("fieldSelector=spec.nodeName%3Dv1.36-control-plane"),
        "{req:?}"
    );

    // Static pods carry the config hash their cgroups are named by.
    let etcd = pods
        .iter()
        .find(|p| pod::name(p) == "etcd-v1.36-control-plane")
        .unwrap();
    assert_eq!(
        pod::cgroup_uids(etcd),
        [
            "cb900117-5e77-4015-9a6a-60501bac2b2a",
            "20f9018d807840ff071547850441a737"
        ]
    );
    let containers = pod::containers(etcd);
    assert_eq!(containers.len(), 1);
    assert_eq!(
        containers[0].runtime,
        super::cgroup_path::ContainerRuntime::Containerd
    );
    assert_eq!(containers[0].id.len(), 64);
}

#[tokio::test]
async fn pod_typo_suggests_close_names() {
    let list = test_fixtures::read(KIND_PODS);
    let server = serve(vec![
        Route::get(format!("{KS}/kindnet-4pxt7"), item(&list, "kindnet-4pxt7")),
        Route::get(KS, list),
    ])
    .await;
    let c = cluster(&server.url);
    let p = c.pod("kube-system", "kindnet-4pxt7").await.unwrap();
    assert_eq!(pod::name(&p), "kindnet-4pxt7");
    let err = c.pod("kube-system", "kindnet-4pxt8").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "pod kube-system/kindnet-4pxt8 not found; did you mean kindnet-4pxt7?"
    );
    let err = c.pod("kube-system", "coredns").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "pod kube-system/coredns not found; did you mean one of coredns-589f44dc88-4fpns, coredns-589f44dc88-lxdzt?"
    );
}

#[tokio::test]
async fn forbidden_is_one_line_naming_the_permission() {
    let server = serve(vec![Route::get(
        KS,
        forbidden("list", "pods", "kube-system"),
    )
    .status(403)])
    .await;
    let sel = PodSelector {
        namespace: Some("kube-system".into()),
        ..Default::default()
    };
    let err = cluster(&server.url).pods(&sel).await.unwrap_err();
    assert!(matches!(err, K8sError::Forbidden { .. }), "{err:?}");
    let line = err.to_string();
    assert!(!line.contains('\n'));
    assert!(
        line.starts_with("not allowed to list pods in namespace kube-system: pods is forbidden"),
        "{line}"
    );
}

#[tokio::test]
async fn pod_on_another_node_is_refused() {
    let list = test_fixtures::read(KIND_PODS);
    let p: Pod = serde_json::from_str(&item(&list, "kindnet-4pxt7")).unwrap();
    assert!(super::ensure_on_node(&p, "v1.36-control-plane").is_ok());
    let err = super::ensure_on_node(&p, "worker-2")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "pod kube-system/kindnet-4pxt7 runs on node v1.36-control-plane, not on this node (worker-2): run profgen there, or use the agent DaemonSet"
    );
    let pending = test_fixtures::read(
        "k8s/kind-v1.36-default-pending-replicaset-pods-deletecollection-podlist.json",
    );
    let v: Value = serde_json::from_str(&pending).unwrap();
    for it in v["items"].as_array().unwrap() {
        let p: Pod = serde_json::from_value(it.clone()).unwrap();
        // Pending pods may have no container id yet; that is not an error.
        let _ = pod::containers(&p);
    }
}

async fn collect(c: &Cluster, rv: Option<&str>, ns: &str) -> Vec<PodEvent> {
    let sel = PodSelector {
        namespace: Some(ns.into()),
        ..Default::default()
    };
    let stream = c.watch_pods(&sel, rv).await.unwrap();
    stream.map(|e| e.unwrap()).collect().await
}

fn summary(events: &[PodEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            PodEvent::Applied(p) => format!("applied {}", pod::name(p)),
            PodEvent::Deleted(p) => format!("deleted {}", pod::name(p)),
            PodEvent::InitialListDone { resource_version } => {
                format!("initial done {resource_version}")
            }
            PodEvent::Bookmark { resource_version } => format!("bookmark {resource_version}"),
            PodEvent::Expired => "expired".into(),
        })
        .collect()
}

#[tokio::test]
async fn watch_with_send_initial_events_ends_the_initial_list_at_the_bookmark() {
    let stream = test_fixtures::read(
        "k8s/kind-v1.36-kube-system-pods-watch-sendInitialEvents-bookmark.jsonl",
    );
    let server = serve(vec![Route::get(KS, stream)
        .with_query("watch=true")
        .with_query("sendInitialEvents=true")
        .with_query("allowWatchBookmarks=true")])
    .await;
    let events = summary(&collect(&cluster(&server.url), None, "kube-system").await);
    assert_eq!(events.len(), 9, "{events:?}");
    assert!(
        events[..8].iter().all(|e| e.starts_with("applied ")),
        "{events:?}"
    );
    assert_eq!(events[8], "initial done 550");
}

#[tokio::test]
async fn watch_falls_back_to_list_then_watch_on_servers_without_streaming_lists() {
    let (list, stream) = (
        test_fixtures::read(KIND_PODS),
        test_fixtures::read("k8s/kind-v1.36-kube-system-pods-watch.jsonl"),
    );
    let rv = serde_json::from_str::<Value>(&list).unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let status422 = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled","reason":"Invalid","code":422}"#;
    let server = serve(vec![
        Route::get(KS, status422)
            .with_query("sendInitialEvents=true")
            .status(422),
        Route::get(KS, stream).with_query("watch=true"),
        Route::get(KS, list),
    ])
    .await;
    let events = summary(&collect(&cluster(&server.url), None, "kube-system").await);
    assert_eq!(events.len(), 8 + 1 + 5, "{events:?}");
    assert_eq!(events[8], format!("initial done {rv}"));
    let reqs = server.requests.lock().unwrap().clone();
    assert!(
        reqs[2].query.contains(&format!("resourceVersion={rv}")),
        "{reqs:?}"
    );
}

#[tokio::test]
async fn watch_from_a_version_sees_modified_and_deleted() {
    let stream = test_fixtures::read("k8s/kind-2023-default-pods-watch-delete-lifecycle.jsonl");
    let server =
        serve(vec![Route::get("/api/v1/namespaces/default/pods", stream)
            .with_query("resourceVersion=770715")])
        .await;
    let events = collect(&cluster(&server.url), Some("770715"), "default").await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            PodEvent::Applied(_) => "applied",
            PodEvent::Deleted(_) => "deleted",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["applied", "applied", "applied", "applied", "applied", "deleted"]
    );
}

#[tokio::test]
async fn workloads_of_kind_pods() {
    let list = test_fixtures::read(KIND_PODS);
    // No ReplicaSet route: the server answers 404, and the Deployment is named from the
    // pod-template-hash.
    let server = serve(vec![Route::get(KS, list)]).await;
    let c = cluster(&server.url);
    let pods = c
        .pods(&PodSelector {
            namespace: Some("kube-system".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut names = Vec::new();
    for p in &pods {
        let w = c.workload(p).await.unwrap();
        names.push(format!("{}/{} {}", w.kind, w.name, pod::name(p)));
    }
    names.sort();
    names.dedup();
    assert_eq!(
        names,
        [
            "DaemonSet/kindnet kindnet-4pxt7",
            "DaemonSet/kube-proxy kube-proxy-hsdvx",
            "Deployment/coredns coredns-589f44dc88-4fpns",
            "Deployment/coredns coredns-589f44dc88-lxdzt",
            "Pod/etcd etcd-v1.36-control-plane",
            "Pod/kube-apiserver kube-apiserver-v1.36-control-plane",
            "Pod/kube-controller-manager kube-controller-manager-v1.36-control-plane",
            "Pod/kube-scheduler kube-scheduler-v1.36-control-plane",
        ]
    );
}

#[test]
fn replicaset_owner_names_the_deployment_and_statefulset_pods_their_set() {
    let rs_list = test_fixtures::read("k8s/kubeadm-v1.28-kube-system-replicasetlist.json");
    let v: Value = serde_json::from_str(&rs_list).unwrap();
    let mut rs = v["items"][0].clone();
    rs["kind"] = "ReplicaSet".into();
    rs["apiVersion"] = "apps/v1".into();
    let rs: ReplicaSet = serde_json::from_value(rs).unwrap();
    let up = owner::controller(rs.metadata.owner_references.as_ref()).unwrap();
    assert_eq!(
        (up.kind.as_str(), up.name.as_str()),
        ("Deployment", "coredns")
    );

    let os = test_fixtures::read("k8s/openshift-crio-pod-alertmanager-main-0-statefulset.json");
    // The insights archive drops kind/apiVersion; the object is otherwise a Pod.
    let p: Pod = serde_json::from_str(&os).unwrap();
    let w = owner::workload(&p, Parent::Unknown);
    assert_eq!(
        (w.kind.as_str(), w.name.as_str()),
        ("StatefulSet", "alertmanager-main")
    );
    let cs = pod::containers(&p);
    assert!(
        !cs.is_empty()
            && cs
                .iter()
                .all(|c| c.runtime == super::cgroup_path::ContainerRuntime::CriO)
    );
}

#[tokio::test]
async fn kubeconfig_token_is_sent_and_missing_kubeconfig_is_one_line() {
    let list = test_fixtures::read(KIND_PODS);
    let server = serve(vec![Route::get(KS, list)]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kind\n  cluster:\n    server: {}\ncontexts:\n- name: kind\n  context:\n    cluster: kind\n    user: profgen\ncurrent-context: kind\nusers:\n- name: profgen\n  user:\n    token: t0k3n\n",
            server.url
        ),
    )
    .unwrap();
    let c = Cluster::from_kubeconfig(&path).await.unwrap();
    c.pods(&PodSelector {
        namespace: Some("kube-system".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        server.requests.lock().unwrap()[0].authorization.as_deref(),
        Some("Bearer t0k3n")
    );

    let err = Cluster::from_kubeconfig(&dir.path().join("missing"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.starts_with("no Kubernetes credentials:"), "{err}");
    assert!(!err.contains('\n'));
}

//! The Kubernetes API, as far as profgen needs it: find pods (by name, label selector, node),
//! watch them, and name their workload. `kube` does the transport (kubeconfig or in-cluster
//! service account, TLS via rustls); this module turns its errors into one clear line each.

use std::path::Path;

use futures::{stream::BoxStream, StreamExt};
use k8s_openapi::api::{apps::v1::ReplicaSet, batch::v1::Job, core::v1::Pod};
use kube::{
    api::{ListParams, WatchEvent, WatchParams},
    config::{KubeConfigOptions, Kubeconfig},
    Api, Client, Config,
};

use super::{
    error::{close_names, K8sError},
    owner::{self, Parent, Workload},
    pod,
};

/// Which pods: a namespace (`None` for all), a label selector, and a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodSelector {
    pub namespace: Option<String>,
    /// As `kubectl -l` takes it: `app=web,tier!=db`.
    pub labels: Option<String>,
    /// Only pods scheduled on this node (`spec.nodeName=NODE` field selector).
    pub node: Option<String>,
}

impl PodSelector {
    fn field_selector(&self) -> Option<String> {
        self.node.as_ref().map(|n| format!("spec.nodeName={n}"))
    }
}

/// One change to the watched set of pods.
#[derive(Clone, Debug)]
pub enum PodEvent {
    /// Added or modified: the pod as it is now.
    Applied(Box<Pod>),
    Deleted(Box<Pod>),
    /// Every pod that existed when the watch started has been sent (the `sendInitialEvents`
    /// bookmark, or the end of the initial list).
    InitialListDone {
        resource_version: String,
    },
    /// Progress marker; resume a broken watch from here.
    Bookmark {
        resource_version: String,
    },
    /// The resource version is too old (410 Gone): start again with a fresh watch.
    Expired,
}

/// The annotation of the bookmark that ends the initial events of a streaming list.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

#[derive(Clone)]
pub struct Cluster {
    client: Client,
}

impl Cluster {
    /// `KUBECONFIG` / `~/.kube/config`, else the in-cluster service account.
    pub async fn infer() -> Result<Self, K8sError> {
        let config = Config::infer().await.map_err(|e| K8sError::NoConfig {
            kubeconfig: match std::env::var("KUBECONFIG") {
                Ok(path) => format!(
                    "KUBECONFIG={path}: {}",
                    std::error::Error::source(&e)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                ),
                Err(_) => "~/.kube/config is missing".into(),
            },
        })?;
        Self::from_config(config)
    }

    /// A kubeconfig file, with its current context.
    pub async fn from_kubeconfig(path: &Path) -> Result<Self, K8sError> {
        let bad = |message: String| K8sError::BadConfig {
            path: path.display().to_string(),
            message,
        };
        if !path.exists() {
            return Err(K8sError::NoConfig {
                kubeconfig: format!("{} does not exist", path.display()),
            });
        }
        let kubeconfig = Kubeconfig::read_from(path).map_err(|e| bad(e.to_string()))?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| bad(e.to_string()))?;
        Self::from_config(config)
    }

    pub fn from_config(config: Config) -> Result<Self, K8sError> {
        let url = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| K8sError::BadConfig {
            path: url,
            message: e.to_string(),
        })?;
        Ok(Self { client })
    }

    fn pods_api(&self, namespace: Option<&str>) -> Api<Pod> {
        match namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// One pod. A 404 lists close names from the namespace so a typo is one step from fixed.
    pub async fn pod(&self, namespace: &str, name: &str) -> Result<Pod, K8sError> {
        match self.pods_api(Some(namespace)).get(name).await {
            Ok(p) => Ok(p),
            Err(e) if K8sError::is_not_found(&e) => {
                // Best effort: without list permission the error still names the pod.
                let names = self
                    .pods_api(Some(namespace))
                    .list(&ListParams::default())
                    .await
                    .map(|l| {
                        l.items
                            .iter()
                            .map(|p| pod::name(p).to_owned())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                Err(K8sError::PodNotFound {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    suggestions: close_names(name, names.iter().map(String::as_str)),
                })
            }
            Err(e) => Err(K8sError::from_kube(e, "get", "pods", Some(namespace))),
        }
    }

    pub async fn pods(&self, sel: &PodSelector) -> Result<Vec<Pod>, K8sError> {
        let mut lp = ListParams::default();
        if let Some(l) = &sel.labels {
            lp = lp.labels(l);
        }
        if let Some(f) = sel.field_selector() {
            lp = lp.fields(&f);
        }
        self.pods_api(sel.namespace.as_deref())
            .list(&lp)
            .await
            .map(|l| l.items)
            .map_err(|e| K8sError::from_kube(e, "list", "pods", sel.namespace.as_deref()))
    }

    /// Watches pods. With `resource_version: None` the watch starts with every existing pod
    /// (`sendInitialEvents`, ended by an [`PodEvent::InitialListDone`]); servers without
    /// streaming lists get a list followed by a watch from its resource version, which yields
    /// the same events.
    pub async fn watch_pods(
        &self,
        sel: &PodSelector,
        resource_version: Option<&str>,
    ) -> Result<BoxStream<'static, Result<PodEvent, K8sError>>, K8sError> {
        let api = self.pods_api(sel.namespace.as_deref());
        let ns = sel.namespace.clone();
        let params = |wp: WatchParams| {
            let wp = match &sel.labels {
                Some(l) => wp.labels(l),
                None => wp,
            };
            match sel.field_selector() {
                Some(f) => wp.fields(&f),
                None => wp,
            }
        };
        let map_ns = ns.clone();
        let convert =
            move |ev: Result<WatchEvent<Pod>, kube::Error>| -> Result<PodEvent, K8sError> {
                match ev.map_err(|e| K8sError::from_kube(e, "watch", "pods", map_ns.as_deref()))? {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                        Ok(PodEvent::Applied(Box::new(p)))
                    }
                    WatchEvent::Deleted(p) => Ok(PodEvent::Deleted(Box::new(p))),
                    WatchEvent::Bookmark(b) => {
                        let resource_version = b.metadata.resource_version;
                        if b.metadata
                            .annotations
                            .get(INITIAL_EVENTS_END)
                            .map(String::as_str)
                            == Some("true")
                        {
                            Ok(PodEvent::InitialListDone { resource_version })
                        } else {
                            Ok(PodEvent::Bookmark { resource_version })
                        }
                    }
                    WatchEvent::Error(s) if s.code == 410 => Ok(PodEvent::Expired),
                    WatchEvent::Error(s) => Err(K8sError::Api {
                        verb: "watch",
                        resource: "pods",
                        message: format!("{} ({})", s.message, s.code),
                    }),
                }
            };
        if let Some(rv) = resource_version {
            let stream = api
                .watch(&params(WatchParams::default()), rv)
                .await
                .map_err(|e| K8sError::from_kube(e, "watch", "pods", ns.as_deref()))?;
            return Ok(stream.map(convert).boxed());
        }
        match api
            .watch(&params(WatchParams::streaming_lists()), "0")
            .await
        {
            Ok(stream) => Ok(stream.map(convert).boxed()),
            Err(kube::Error::Api(s)) if matches!(s.code, 400 | 422) => {
                // No WatchList on this server: list, then watch from the list's version.
                let mut lp = ListParams::default();
                if let Some(l) = &sel.labels {
                    lp = lp.labels(l);
                }
                if let Some(f) = sel.field_selector() {
                    lp = lp.fields(&f);
                }
                let list = api
                    .list(&lp)
                    .await
                    .map_err(|e| K8sError::from_kube(e, "list", "pods", ns.as_deref()))?;
                let rv = list.metadata.resource_version.clone().unwrap_or_default();
                let stream = api
                    .watch(&params(WatchParams::default()), &rv)
                    .await
                    .map_err(|e| K8sError::from_kube(e, "watch", "pods", ns.as_deref()))?;
                let initial = list
                    .items
                    .into_iter()
                    .map(|p| Ok(PodEvent::Applied(Box::new(p))))
                    .chain(std::iter::once(Ok(PodEvent::InitialListDone {
                        resource_version: rv,
                    })));
                Ok(futures::stream::iter(initial)
                    .chain(stream.map(convert))
                    .boxed())
            }
            Err(e) => Err(K8sError::from_kube(e, "watch", "pods", ns.as_deref())),
        }
    }

    /// The pod's workload. ReplicaSets and Jobs are looked up for their own owner; without
    /// permission (403) or when gone (404) the name is inferred from the pod alone.
    pub async fn workload(&self, p: &Pod) -> Result<Workload, K8sError> {
        let ns = pod::namespace(p);
        let Some(ctl) = owner::controller(p.metadata.owner_references.as_ref()) else {
            return Ok(owner::workload(p, Parent::Unknown));
        };
        let parent = match ctl.kind.as_str() {
            "ReplicaSet" => {
                let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
                api.get(&ctl.name)
                    .await
                    .map(|rs| rs.metadata.owner_references)
            }
            "Job" => {
                let api: Api<Job> = Api::namespaced(self.client.clone(), ns);
                api.get(&ctl.name)
                    .await
                    .map(|j| j.metadata.owner_references)
            }
            _ => return Ok(owner::workload(p, Parent::Unknown)),
        };
        match parent {
            Ok(refs) => Ok(owner::workload(
                p,
                Parent::Known(owner::controller(refs.as_ref())),
            )),
            Err(kube::Error::Api(s)) if matches!(s.code, 403 | 404) => {
                log::warn!(
                    "cannot read {} {ns}/{} ({}): naming the workload from the pod alone",
                    ctl.kind,
                    ctl.name,
                    s.reason
                );
                Ok(owner::workload(p, Parent::Unknown))
            }
            Err(e) => Err(K8sError::from_kube(e, "get", "replicasets", Some(ns))),
        }
    }
}

/// Fails unless the pod is scheduled on `this_node`.
pub fn ensure_on_node(p: &Pod, this_node: &str) -> Result<(), K8sError> {
    match pod::node(p) {
        Some(n) if n == this_node => Ok(()),
        Some(n) => Err(K8sError::NotOnThisNode {
            namespace: pod::namespace(p).to_owned(),
            name: pod::name(p).to_owned(),
            pod_node: n.to_owned(),
            this_node: this_node.to_owned(),
        }),
        None => Err(K8sError::NotScheduled {
            namespace: pod::namespace(p).to_owned(),
            name: pod::name(p).to_owned(),
        }),
    }
}

/// This node's name as the API knows it: `$NODE_NAME` (the DaemonSet sets it from
/// `spec.nodeName`), else the host name, which is what the kubelet registers by default.
pub fn this_node_name() -> String {
    if let Ok(n) = std::env::var("NODE_NAME") {
        if !n.is_empty() {
            return n;
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

//! A cluster snapshot: the pods, services and namespaces that `kubectl get
//! pods,services,namespaces -A -o json` prints. The NetworkPolicy synthesizer uses it to name
//! peers by labels instead of addresses; the NetworkPolicy evaluator uses it as the world in
//! which a policy is judged.
//!
//! Only the fields those two need are read, and unknown fields are ignored, so captures from
//! any Kubernetes version parse. Accepted shapes: a `List` of mixed kinds, a
//! `PodList`/`ServiceList`/`NamespaceList` (whose items carry no `kind`), a single object, a
//! stream of JSON values (JSON Lines, including watch events) or YAML documents.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::model::Protocol;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read the cluster snapshot {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is neither JSON nor YAML, or an object lacks a field every object of its
    /// kind has.
    #[error("malformed cluster snapshot{}: {message}", origin.as_deref().map(|o| format!(" {o}")).unwrap_or_default())]
    Malformed {
        origin: Option<String>,
        message: String,
    },
}

/// A port a container declared: what named ports in a NetworkPolicy resolve to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
    pub controller: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// `status.podIPs`, or `status.podIP` when the list is absent. Empty while pending.
    pub ips: Vec<IpAddr>,
    pub node: Option<String>,
    /// A host-network pod shares its node's address: its IP does not identify it.
    pub host_network: bool,
    /// `status.phase`; a finished pod's address may already belong to another pod.
    pub phase: Option<String>,
    pub owners: Vec<OwnerRef>,
    pub ports: Vec<ContainerPort>,
}

impl Pod {
    /// Whether its IP still identifies it: running or about to, and not on the host network.
    pub fn owns_its_ip(&self) -> bool {
        !self.host_network && !matches!(self.phase.as_deref(), Some("Succeeded" | "Failed"))
    }
}

/// `targetPort`: a number, or the name of a container port of the selected pods.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub name: Option<String>,
    pub protocol: Protocol,
    pub port: u16,
    /// Defaults to `port`, as the API server does.
    pub target_port: TargetPort,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub namespace: String,
    /// `None`: no selector (endpoints managed by hand), so the backing pods are unknown.
    pub selector: Option<BTreeMap<String, String>>,
    /// `clusterIPs` (or `clusterIP`), `None` addresses left out.
    pub cluster_ips: Vec<IpAddr>,
    pub ports: Vec<ServicePort>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// The label the API server puts on every namespace (since 1.21): what
/// `namespaceSelector`s name a namespace by.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cluster {
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub namespaces: Vec<Namespace>,
}

impl Cluster {
    /// Reads one snapshot file (JSON, JSON Lines or YAML).
    pub fn from_file(path: &Path) -> Result<Self, ClusterError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClusterError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| e.with_origin(path))
    }

    /// Reads several files (for example pods, services and namespaces captured apart) into
    /// one snapshot.
    pub fn from_files<P: AsRef<Path>>(paths: &[P]) -> Result<Self, ClusterError> {
        let mut cluster = Cluster::default();
        for path in paths {
            cluster.merge(Self::from_file(path.as_ref())?);
        }
        Ok(cluster)
    }

    pub fn parse(text: &str) -> Result<Self, ClusterError> {
        let docs: Vec<_> = parse_documents(text)?
            .into_iter()
            .filter(|d| !d.is_null())
            .collect();
        if docs.is_empty() {
            return Err(malformed("no document in it"));
        }
        let mut cluster = Cluster::default();
        for doc in docs {
            cluster.add_value(doc, None)?;
        }
        Ok(cluster)
    }

    /// Later objects replace earlier ones with the same kind, namespace and name.
    pub fn merge(&mut self, other: Cluster) {
        for pod in other.pods {
            self.upsert_pod(pod);
        }
        for svc in other.services {
            self.services
                .retain(|s| !(s.name == svc.name && s.namespace == svc.namespace));
            self.services.push(svc);
        }
        for ns in other.namespaces {
            self.namespaces.retain(|n| n.name != ns.name);
            self.namespaces.push(ns);
        }
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<&Pod> {
        self.pods
            .iter()
            .find(|p| p.namespace == namespace && p.name == name)
    }

    /// The one live pod with this address. `None` when no pod has it, or when several do
    /// (a reused address): an ambiguous answer must not name a peer.
    pub fn pod_by_ip(&self, ip: IpAddr) -> Option<&Pod> {
        let ip = ip.to_canonical();
        let mut found = self
            .pods
            .iter()
            .filter(|p| p.owns_its_ip() && p.ips.contains(&ip));
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }

    pub fn service_by_ip(&self, ip: IpAddr) -> Option<&Service> {
        let ip = ip.to_canonical();
        self.services.iter().find(|s| s.cluster_ips.contains(&ip))
    }

    /// A namespace's labels. A namespace absent from the snapshot still has the name label
    /// the API server always sets, so selectors by name keep working on partial snapshots.
    pub fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        let mut labels = self
            .namespaces
            .iter()
            .find(|n| n.name == namespace)
            .map(|n| n.labels.clone())
            .unwrap_or_default();
        labels
            .entry(NAMESPACE_NAME_LABEL.to_owned())
            .or_insert_with(|| namespace.to_owned());
        labels
    }

    /// Live pods a service selects.
    pub fn service_pods<'a>(&'a self, svc: &'a Service) -> impl Iterator<Item = &'a Pod> + 'a {
        self.pods.iter().filter(move |p| {
            p.namespace == svc.namespace
                && p.owns_its_ip()
                && svc
                    .selector
                    .as_ref()
                    .is_some_and(|sel| sel.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
        })
    }

    fn upsert_pod(&mut self, pod: Pod) {
        self.pods
            .retain(|p| !(p.name == pod.name && p.namespace == pod.namespace));
        self.pods.push(pod);
    }

    fn remove(&mut self, kind: &str, namespace: &str, name: &str) {
        match kind {
            "Pod" => self
                .pods
                .retain(|p| !(p.name == name && p.namespace == namespace)),
            "Service" => self
                .services
                .retain(|s| !(s.name == name && s.namespace == namespace)),
            "Namespace" => self.namespaces.retain(|n| n.name != name),
            _ => {}
        }
    }

    /// `implied_kind`: the kind of a list's items, which `PodList` items do not state.
    fn add_value(
        &mut self,
        value: serde_json::Value,
        implied_kind: Option<&str>,
    ) -> Result<(), ClusterError> {
        if value.is_null() {
            return Ok(());
        }
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .map(str::to_owned)
            .or_else(|| implied_kind.map(str::to_owned))
            .or_else(|| guess_kind(&value).map(str::to_owned));
        match kind.as_deref() {
            Some(list) if list == "List" || list.ends_with("List") => {
                let item_kind = list.strip_suffix("List").filter(|k| !k.is_empty());
                let items = match value.get("items") {
                    Some(serde_json::Value::Array(items)) => items.clone(),
                    Some(serde_json::Value::Null) | None => Vec::new(),
                    Some(_) => return Err(malformed(format!("`items` of a {list} is not a list"))),
                };
                for (i, item) in items.into_iter().enumerate() {
                    self.add_value(item, item_kind)
                        .map_err(|e| e.within(&format!("{list} item {i}")))?;
                }
                Ok(())
            }
            Some("Pod") => {
                let pod = raw::Pod::deserialize(value)
                    .map_err(|e| malformed(format!("a Pod: {e}")))?
                    .into_pod()?;
                self.upsert_pod(pod);
                Ok(())
            }
            Some("Service") => {
                let svc = raw::Service::deserialize(value)
                    .map_err(|e| malformed(format!("a Service: {e}")))?
                    .into_service()?;
                self.merge(Cluster {
                    services: vec![svc],
                    ..Default::default()
                });
                Ok(())
            }
            Some("Namespace") => {
                let ns = raw::Namespace::deserialize(value)
                    .map_err(|e| malformed(format!("a Namespace: {e}")))?;
                self.merge(Cluster {
                    namespaces: vec![Namespace {
                        name: ns.metadata.name,
                        labels: ns.metadata.labels.unwrap_or_default(),
                    }],
                    ..Default::default()
                });
                Ok(())
            }
            // Any other kind a `kubectl get all` may carry is not needed.
            Some(_) => Ok(()),
            None => self.add_watch_event(value),
        }
    }

    /// A watch event (`{"type": "ADDED", "object": {…}}`), as in `kubectl get -w -o json`.
    fn add_watch_event(&mut self, value: serde_json::Value) -> Result<(), ClusterError> {
        let (Some(kind), Some(object)) = (
            value.get("type").and_then(|t| t.as_str()),
            value.get("object"),
        ) else {
            return Err(malformed(
                "an object with neither `kind` nor the shape of a Pod, Service, Namespace or watch event",
            ));
        };
        match kind {
            "ADDED" | "MODIFIED" => self.add_value(object.clone(), None),
            "DELETED" => {
                let meta =
                    raw::Meta::deserialize(object.get("metadata").cloned().unwrap_or_default())
                        .map_err(|e| malformed(format!("a deleted object's metadata: {e}")))?;
                let object_kind = object
                    .get("kind")
                    .and_then(|k| k.as_str())
                    .or_else(|| guess_kind(object))
                    .unwrap_or_default();
                self.remove(
                    object_kind,
                    meta.namespace.as_deref().unwrap_or("default"),
                    &meta.name,
                );
                Ok(())
            }
            "BOOKMARK" => Ok(()),
            "ERROR" => Err(malformed(format!(
                "the watch stream reports an error: {object}"
            ))),
            other => Err(malformed(format!("unknown watch event type {other:?}"))),
        }
    }
}

/// Objects written without `kind` (some archivers strip it): recognised by their spec.
fn guess_kind(value: &serde_json::Value) -> Option<&'static str> {
    let spec = value.get("spec")?;
    if spec.get("containers").is_some() {
        Some("Pod")
    } else if spec.get("ports").is_some() || spec.get("clusterIP").is_some() {
        Some("Service")
    } else {
        None
    }
}

fn parse_documents(text: &str) -> Result<Vec<serde_json::Value>, ClusterError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON, or JSON Lines: a stream of values.
        return serde_json::Deserializer::from_str(text)
            .into_iter::<serde_json::Value>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| malformed(format!("invalid JSON: {e}")));
    }
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = serde_json::Value::deserialize(doc)
            .map_err(|e| malformed(format!("invalid YAML: {e}")))?;
        docs.push(value);
    }
    Ok(docs)
}

fn malformed(message: impl Into<String>) -> ClusterError {
    ClusterError::Malformed {
        origin: None,
        message: message.into(),
    }
}

impl ClusterError {
    fn with_origin(self, path: &Path) -> Self {
        match self {
            ClusterError::Malformed { message, .. } => ClusterError::Malformed {
                origin: Some(path.display().to_string()),
                message,
            },
            other => other,
        }
    }

    fn within(self, place: &str) -> Self {
        match self {
            ClusterError::Malformed { origin, message } => ClusterError::Malformed {
                origin,
                message: format!("{place}: {message}"),
            },
            other => other,
        }
    }
}

pub(crate) fn parse_protocol(text: Option<&str>) -> Result<Protocol, String> {
    match text.unwrap_or("TCP") {
        "TCP" => Ok(Protocol::Tcp),
        "UDP" => Ok(Protocol::Udp),
        "SCTP" => Ok(Protocol::Sctp),
        other => Err(format!("unknown protocol {other:?}")),
    }
}

/// The wire shapes, tolerant of every field they do not name.
mod raw {
    use std::{collections::BTreeMap, net::IpAddr};

    use serde::Deserialize;

    use super::{malformed, parse_protocol, ClusterError, ContainerPort, OwnerRef, TargetPort};

    #[derive(Deserialize, Default)]
    pub struct Meta {
        pub name: String,
        pub namespace: Option<String>,
        pub labels: Option<BTreeMap<String, String>>,
        #[serde(rename = "ownerReferences")]
        pub owner_references: Option<Vec<Owner>>,
    }

    #[derive(Deserialize)]
    pub struct Owner {
        pub kind: String,
        pub name: String,
        pub controller: Option<bool>,
    }

    #[derive(Deserialize)]
    pub struct Pod {
        pub metadata: Meta,
        #[serde(default)]
        pub spec: PodSpec,
        #[serde(default)]
        pub status: PodStatus,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct PodSpec {
        #[serde(default)]
        pub containers: Vec<Container>,
        pub node_name: Option<String>,
        pub host_network: Option<bool>,
    }

    #[derive(Deserialize)]
    pub struct Container {
        pub ports: Option<Vec<Port>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Port {
        pub name: Option<String>,
        pub container_port: i64,
        pub protocol: Option<String>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct PodStatus {
        pub phase: Option<String>,
        #[serde(rename = "podIP")]
        pub pod_ip: Option<String>,
        #[serde(rename = "podIPs")]
        pub pod_ips: Option<Vec<PodIp>>,
    }

    #[derive(Deserialize)]
    pub struct PodIp {
        pub ip: String,
    }

    fn ip(text: &str, what: &str) -> Result<IpAddr, ClusterError> {
        text.parse::<IpAddr>()
            .map(|ip| ip.to_canonical())
            .map_err(|_| malformed(format!("{what}: {text:?} is not an IP address")))
    }

    fn port(value: i64, what: &str) -> Result<u16, ClusterError> {
        u16::try_from(value)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| malformed(format!("{what}: {value} is not a port number")))
    }

    fn owners(meta: &Meta) -> Vec<OwnerRef> {
        meta.owner_references
            .iter()
            .flatten()
            .map(|o| OwnerRef {
                kind: o.kind.clone(),
                name: o.name.clone(),
                controller: o.controller.unwrap_or(false),
            })
            .collect()
    }

    impl Pod {
        pub fn into_pod(self) -> Result<super::Pod, ClusterError> {
            let what = format!("pod {}", self.metadata.name);
            let mut ips = Vec::new();
            let listed: Vec<&str> = match &self.status.pod_ips {
                Some(list) if !list.is_empty() => list.iter().map(|p| p.ip.as_str()).collect(),
                _ => self.status.pod_ip.as_deref().into_iter().collect(),
            };
            for text in listed {
                let addr = ip(text, &what)?;
                if !ips.contains(&addr) {
                    ips.push(addr);
                }
            }
            let mut ports = Vec::new();
            for c in &self.spec.containers {
                for p in c.ports.iter().flatten() {
                    ports.push(ContainerPort {
                        name: p.name.clone(),
                        port: port(p.container_port, &what)?,
                        protocol: parse_protocol(p.protocol.as_deref())
                            .map_err(|e| malformed(format!("{what}: {e}")))?,
                    });
                }
            }
            Ok(super::Pod {
                owners: owners(&self.metadata),
                namespace: self.metadata.namespace.unwrap_or_else(|| "default".into()),
                labels: self.metadata.labels.unwrap_or_default(),
                name: self.metadata.name,
                ips,
                node: self.spec.node_name,
                host_network: self.spec.host_network.unwrap_or(false),
                phase: self.status.phase,
                ports,
            })
        }
    }

    #[derive(Deserialize)]
    pub struct Service {
        pub metadata: Meta,
        #[serde(default)]
        pub spec: ServiceSpec,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub struct ServiceSpec {
        pub selector: Option<BTreeMap<String, String>>,
        #[serde(rename = "clusterIP")]
        pub cluster_ip: Option<String>,
        #[serde(rename = "clusterIPs")]
        pub cluster_ips: Option<Vec<String>>,
        pub ports: Option<Vec<SvcPort>>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum IntOrString {
        Int(i64),
        String(String),
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SvcPort {
        pub name: Option<String>,
        pub protocol: Option<String>,
        pub port: i64,
        pub target_port: Option<IntOrString>,
    }

    impl Service {
        pub fn into_service(self) -> Result<super::Service, ClusterError> {
            let what = format!("service {}", self.metadata.name);
            let texts: Vec<String> = match self.spec.cluster_ips {
                Some(list) if !list.is_empty() => list,
                _ => self.spec.cluster_ip.into_iter().collect(),
            };
            let cluster_ips = texts
                .iter()
                .filter(|t| !t.is_empty() && t.as_str() != "None")
                .map(|t| ip(t, &what))
                .collect::<Result<Vec<_>, _>>()?;
            let mut ports = Vec::new();
            for p in self.spec.ports.into_iter().flatten() {
                let number = port(p.port, &what)?;
                let target_port = match p.target_port {
                    None => TargetPort::Number(number),
                    Some(IntOrString::Int(n)) => TargetPort::Number(port(n, &what)?),
                    // kubectl prints numeric targetPorts of YAML input as strings sometimes.
                    Some(IntOrString::String(s)) => match s.parse::<i64>() {
                        Ok(n) => TargetPort::Number(port(n, &what)?),
                        Err(_) => TargetPort::Name(s),
                    },
                };
                ports.push(super::ServicePort {
                    name: p.name,
                    protocol: parse_protocol(p.protocol.as_deref())
                        .map_err(|e| malformed(format!("{what}: {e}")))?,
                    port: number,
                    target_port,
                });
            }
            Ok(super::Service {
                namespace: self.metadata.namespace.unwrap_or_else(|| "default".into()),
                name: self.metadata.name,
                selector: self.spec.selector.filter(|s| !s.is_empty()),
                cluster_ips,
                ports,
            })
        }
    }

    #[derive(Deserialize)]
    pub struct Namespace {
        pub metadata: Meta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::test_fixtures;

    fn fixture(name: &str) -> Cluster {
        let text = test_fixtures::read(&format!("k8s/{name}"));
        Cluster::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn kind_pod_list() {
        let c = fixture("kind-v1.36-kube-system-podlist.json");
        assert_eq!(c.pods.len(), 8);
        let dns = c.pod("kube-system", "coredns-589f44dc88-4fpns").unwrap();
        assert_eq!(
            dns.labels.get("k8s-app").map(String::as_str),
            Some("kube-dns")
        );
        assert_eq!(dns.ips, [ip("10.244.0.3")]);
        assert_eq!(dns.node.as_deref(), Some("v1.36-control-plane"));
        assert_eq!(dns.owners[0].kind, "ReplicaSet");
        assert!(dns.owners[0].controller);
        assert!(dns.ports.contains(&ContainerPort {
            name: Some("dns".into()),
            port: 53,
            protocol: Protocol::Udp
        }));
        assert_eq!(c.pod_by_ip(ip("10.244.0.3")).unwrap().name, dns.name);
        // Host-network pods share the node's address: it names none of them.
        assert!(
            c.pod("kube-system", "kube-proxy-hsdvx")
                .unwrap()
                .host_network
        );
        assert!(c.pod_by_ip(ip("172.18.0.3")).is_none());
        assert!(c.pod_by_ip(ip("10.9.9.9")).is_none());
    }

    #[test]
    fn minikube_lists_of_pods_services_and_namespaces() {
        let dir = test_fixtures::dir();
        let k8s = dir.join("k8s");
        let c = Cluster::from_files(&[
            k8s.join("minikube-v1.35-containerd-pods-all-namespaces.yaml"),
            k8s.join("minikube-v1.35-services-all-namespaces.yaml"),
            k8s.join("minikube-v1.35-namespaces.yaml"),
        ])
        .unwrap();
        assert_eq!(c.pods.len(), 25);
        assert_eq!(c.services.len(), 7);
        assert_eq!(c.namespaces.len(), 6);

        let api = c.services.iter().find(|s| s.name == "kubernetes").unwrap();
        assert_eq!(api.cluster_ips, [ip("10.96.0.1")]);
        assert_eq!(api.ports[0].port, 443);
        assert_eq!(api.ports[0].target_port, TargetPort::Number(8443));
        let dns = c.service_by_ip(ip("10.96.0.10")).unwrap();
        assert_eq!(dns.name, "kube-dns");
        assert_eq!(dns.ports.len(), 3);
        assert!(dns
            .ports
            .iter()
            .any(|p| p.protocol == Protocol::Udp && p.port == 53));
        let backing: Vec<&str> = c.service_pods(dns).map(|p| p.name.as_str()).collect();
        assert!(!backing.is_empty() && backing.iter().all(|n| n.starts_with("coredns")));
        let metrics = c
            .services
            .iter()
            .find(|s| s.name == "metrics-server")
            .unwrap();
        assert_eq!(
            metrics.ports[0].target_port,
            TargetPort::Name("https".into())
        );

        for ns in &c.namespaces {
            assert_eq!(
                ns.labels.get(NAMESPACE_NAME_LABEL),
                Some(&ns.name),
                "{}",
                ns.name
            );
        }
        assert_eq!(
            c.namespace_labels("not-listed")
                .get(NAMESPACE_NAME_LABEL)
                .map(String::as_str),
            Some("not-listed")
        );
        // Every live, non-host-network pod with an address is found by it.
        for pod in c
            .pods
            .iter()
            .filter(|p| p.owns_its_ip() && !p.ips.is_empty())
        {
            assert_eq!(c.pod_by_ip(pod.ips[0]).map(|p| &p.name), Some(&pod.name));
        }
        let pending: Vec<_> = c.pods.iter().filter(|p| p.ips.is_empty()).collect();
        assert!(!pending.is_empty(), "the capture has an unscheduled pod");
    }

    #[test]
    fn kubelet_pod_list_and_object_without_kind() {
        let c = fixture("minikube-v1.35-containerd-kubelet-pods-podlist.json");
        assert_eq!(c.pods.len(), 24);
        let c = fixture("openshift-crio-pod-alertmanager-main-0-statefulset.json");
        let pod = &c.pods[0];
        assert_eq!(pod.name, "alertmanager-main-0");
        assert_eq!(pod.namespace, "openshift-monitoring");
        assert_eq!(pod.owners[0].kind, "StatefulSet");
        assert!(!pod.ips.is_empty());
        assert!(pod.ports.iter().any(|p| p.name.is_some()));
    }

    #[test]
    fn watch_streams() {
        let c = fixture("kind-2023-default-pods-watch-delete-lifecycle.jsonl");
        // Two pods added, one of them deleted at the end.
        assert_eq!(
            c.pods.len(),
            1,
            "{:?}",
            c.pods.iter().map(|p| &p.name).collect::<Vec<_>>()
        );
        let c = fixture("kind-v1.36-kube-system-pods-watch-sendInitialEvents-bookmark.jsonl");
        assert_eq!(c.pods.len(), 8);
    }

    #[test]
    fn mixed_list_as_kubectl_prints_it() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"shop","labels":{"app":"web"}},
             "spec":{"containers":[{"name":"c","ports":[{"name":"http","containerPort":8080}]}]},
             "status":{"phase":"Running","podIP":"10.1.0.5","podIPs":[{"ip":"10.1.0.5"},{"ip":"fd00::5"}]}},
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"},
             "spec":{"selector":{"app":"web"},"clusterIP":"10.96.3.3","ports":[{"port":80,"targetPort":"http"}]}},
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","labels":{"kubernetes.io/metadata.name":"shop","team":"a"}}},
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ignored"}}
        ]}"#;
        let c = Cluster::parse(text).unwrap();
        assert_eq!(c.pods[0].ips, [ip("10.1.0.5"), ip("fd00::5")]);
        assert_eq!(c.pod_by_ip(ip("fd00::5")).unwrap().name, "web");
        assert_eq!(c.pods[0].ports[0].protocol, Protocol::Tcp);
        assert_eq!(
            c.services[0].ports[0].target_port,
            TargetPort::Name("http".into())
        );
        assert_eq!(
            c.namespace_labels("shop").get("team").map(String::as_str),
            Some("a")
        );
    }

    #[test]
    fn malformed_snapshots_are_one_clear_error() {
        let cases = [
            ("", "no document"),
            ("{\"kind\":\"List\",\"items\":{}}", "not a list"),
            ("{\"kind\": ", "invalid JSON"),
            ("kind: List\nitems: [\n", "invalid YAML"),
            (
                r#"{"kind":"PodList","items":[{"metadata":{"name":"p"},"spec":{"containers":[]},"status":{"podIP":"10.0.0.300"}}]}"#,
                "not an IP address",
            ),
            (
                r#"{"kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"ports":[{"containerPort":70000}]}]}}"#,
                "not a port number",
            ),
            (r#"{"kind":"Pod","spec":{"containers":[]}}"#, "a Pod"),
            (r#"{"hello":"world"}"#, "neither `kind`"),
        ];
        for (text, want) in cases {
            let err = match Cluster::parse(text) {
                Ok(c) => panic!("{text:?} parsed: {c:?}"),
                Err(e) => e.to_string(),
            };
            assert!(err.starts_with("malformed cluster snapshot"), "{err}");
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let err = Cluster::from_file(Path::new("/nonexistent/snapshot.json")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/snapshot.json"));
    }
}

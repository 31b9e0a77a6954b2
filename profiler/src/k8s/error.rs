//! What can go wrong talking to the cluster, one clear line each: the CLI prints the
//! `Display` form and exits non-zero.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error(
        "no Kubernetes credentials: no kubeconfig ({kubeconfig}) and not running in a pod \
         (KUBERNETES_SERVICE_HOST unset); set KUBECONFIG or run inside the cluster"
    )]
    NoConfig { kubeconfig: String },
    #[error("invalid kubeconfig {path}: {message}")]
    BadConfig { path: String, message: String },
    #[error(
        "not allowed to {verb} {resource}{}: {message} (grant get, list and watch on it; see deploy/rbac.yaml)",
        in_ns(namespace)
    )]
    Forbidden {
        verb: &'static str,
        resource: &'static str,
        namespace: Option<String>,
        message: String,
    },
    #[error("pod {namespace}/{name} not found{}", Suggestions(suggestions))]
    PodNotFound {
        namespace: String,
        name: String,
        /// Close names in that namespace, best first.
        suggestions: Vec<String>,
    },
    #[error("pod {namespace}/{name} runs on node {pod_node}, not on this node ({this_node}): run profgen there, or use the agent DaemonSet")]
    NotOnThisNode {
        namespace: String,
        name: String,
        pod_node: String,
        this_node: String,
    },
    #[error("pod {namespace}/{name} is not scheduled on a node yet")]
    NotScheduled { namespace: String, name: String },
    #[error("the API server refused to {verb} {resource}: {message}")]
    Api {
        verb: &'static str,
        resource: &'static str,
        message: String,
    },
    #[error("cannot reach the API server to {verb} {resource}: {source}")]
    Transport {
        verb: &'static str,
        resource: &'static str,
        #[source]
        source: kube::Error,
    },
}

fn in_ns(ns: &Option<String>) -> String {
    ns.as_deref()
        .map(|n| format!(" in namespace {n}"))
        .unwrap_or_else(|| " cluster-wide".into())
}

struct Suggestions<'a>(&'a [String]);

impl fmt::Display for Suggestions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => Ok(()),
            [one] => write!(f, "; did you mean {one}?"),
            many => write!(f, "; did you mean one of {}?", many.join(", ")),
        }
    }
}

impl K8sError {
    /// Maps a client error for one request to the line the user should see.
    pub(crate) fn from_kube(
        err: kube::Error,
        verb: &'static str,
        resource: &'static str,
        namespace: Option<&str>,
    ) -> Self {
        match err {
            kube::Error::Api(status) if status.code == 403 => Self::Forbidden {
                verb,
                resource,
                namespace: namespace.map(str::to_owned),
                message: status.message,
            },
            kube::Error::Api(status) => Self::Api {
                verb,
                resource,
                message: format!("{} ({})", status.message, status.code),
            },
            other => Self::Transport {
                verb,
                resource,
                source: other,
            },
        }
    }

    /// A 404 from the server (the caller decides what was missing).
    pub(crate) fn is_not_found(err: &kube::Error) -> bool {
        matches!(err, kube::Error::Api(s) if s.code == 404)
    }
}

/// Names in `candidates` close to `wanted`: same prefix (a Deployment name typed for one of
/// its pods) or a small edit distance (a typo), best first, at most three.
pub fn close_names<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let limit = (wanted.len() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            if c.starts_with(wanted) || wanted.starts_with(c) {
                return Some((0, c));
            }
            let d = edit_distance(wanted, c);
            (d <= limit).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_owned())
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_and_prefixes_are_suggested() {
        let pods = [
            "coredns-589f44dc88-4fpns",
            "coredns-589f44dc88-lxdzt",
            "kindnet-4pxt7",
            "etcd-v1.36-control-plane",
        ];
        assert_eq!(close_names("kindnet-4pxt8", pods), ["kindnet-4pxt7"]);
        assert_eq!(
            close_names("coredns", pods),
            ["coredns-589f44dc88-4fpns", "coredns-589f44dc88-lxdzt"]
        );
        assert!(close_names("nginx", pods).is_empty());
        let err = K8sError::PodNotFound {
            namespace: "kube-system".into(),
            name: "kindnet-4pxt8".into(),
            suggestions: vec!["kindnet-4pxt7".into()],
        };
        assert_eq!(
            err.to_string(),
            "pod kube-system/kindnet-4pxt8 not found; did you mean kindnet-4pxt7?"
        );
    }
}

//! A container `securityContext` from what the container did, each field backed by evidence.
//!
//! A field is suggested only when the recording supports it; when it does not, the report says
//! which recorded fact blocks it and what the user could change. Nothing here guesses: a
//! recording without process or capability data gives "no evidence", never a default.
//!
//! [`workload_patch`] wires the result into a workload as a strategic-merge patch (also usable
//! as a kustomize `patches:` entry), together with the Localhost seccomp and AppArmor profiles.

use std::{collections::BTreeSet, fmt};

use k8s_openapi::api::core::v1::{AppArmorProfile, Capabilities, SeccompProfile, SecurityContext};
use serde::Serialize;
use serde_json::{json, Value};

use crate::model::activity::{Activity, FileOp, FsPath};

/// Mounts every Kubernetes container has that are not its root filesystem: writes below them
/// never block `readOnlyRootFilesystem`. The kubelet bind-mounts the three `/etc` files.
pub const KUBELET_MOUNTS: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Mount points that are not the root filesystem: [`KUBELET_MOUNTS`] plus the pod's
    /// volumes (`volumeMounts[].mountPath`: emptyDir, tmpfs, PVCs).
    pub writable_mounts: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            writable_mounts: KUBELET_MOUNTS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Options {
    /// The defaults plus the container's own volume mount paths.
    pub fn with_volumes<I: IntoIterator<Item = S>, S: Into<String>>(volumes: I) -> Self {
        let mut opts = Self::default();
        opts.writable_mounts
            .extend(volumes.into_iter().map(Into::into));
        opts
    }
}

/// The securityContext fields profgen reasons about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Field {
    #[serde(rename = "runAsNonRoot")]
    RunAsNonRoot,
    #[serde(rename = "readOnlyRootFilesystem")]
    ReadOnlyRootFilesystem,
    #[serde(rename = "allowPrivilegeEscalation")]
    AllowPrivilegeEscalation,
    #[serde(rename = "capabilities")]
    Capabilities,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RunAsNonRoot => "runAsNonRoot",
            Self::ReadOnlyRootFilesystem => "readOnlyRootFilesystem",
            Self::AllowPrivilegeEscalation => "allowPrivilegeEscalation",
            Self::Capabilities => "capabilities",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The recording supports the hardening; it is in the suggested securityContext.
    Suggested,
    /// A recorded fact contradicts it.
    Blocked,
    /// The recording does not hold the facts needed to decide.
    NoEvidence,
}

/// Why one field is (or is not) in the suggestion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub field: Field,
    pub verdict: Verdict,
    /// Recorded facts, one sentence each.
    pub facts: Vec<String>,
    /// What the user could change to get the field (for `Blocked`/`NoEvidence`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Suggestion {
    /// Only the fields the evidence supports.
    pub security_context: SecurityContext,
    /// One entry per [`Field`], in order.
    pub evidence: Vec<Evidence>,
}

impl Suggestion {
    pub fn verdict(&self, field: Field) -> Option<Verdict> {
        self.evidence
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.verdict)
    }
}

impl fmt::Display for Suggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.evidence {
            let verdict = match e.verdict {
                Verdict::Suggested => "suggested",
                Verdict::Blocked => "blocked",
                Verdict::NoEvidence => "no evidence",
            };
            writeln!(f, "{}: {verdict}", e.field)?;
            for fact in &e.facts {
                writeln!(f, "  - {fact}")?;
            }
            if let Some(remedy) = &e.remedy {
                writeln!(f, "  to change: {remedy}")?;
            }
        }
        Ok(())
    }
}

/// Suggests a container securityContext from one container's activity.
pub fn security_context(activity: &Activity, opts: &Options) -> Suggestion {
    let mut sc = SecurityContext::default();
    let evidence = vec![
        run_as(activity, &mut sc),
        read_only_root(activity, opts, &mut sc),
        privilege_escalation(activity, &mut sc),
        capabilities(activity, &mut sc),
    ];
    Suggestion {
        security_context: sc,
        evidence,
    }
}

fn show(path: &FsPath) -> String {
    path.to_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(path.as_bytes()).into_owned())
}

fn run_as(a: &Activity, sc: &mut SecurityContext) -> Evidence {
    let uids: BTreeSet<u32> = a
        .uids
        .iter()
        .copied()
        .chain(a.processes.iter().map(|p| p.uid))
        .collect();
    let gids: BTreeSet<u32> = a
        .gids
        .iter()
        .copied()
        .chain(a.processes.iter().map(|p| p.gid))
        .collect();
    let field = Field::RunAsNonRoot;
    if uids.is_empty() {
        return Evidence {
            field,
            verdict: Verdict::NoEvidence,
            facts: vec!["the recording holds no process or uid".into()],
            remedy: Some("record with a profgen that records processes (exec events)".into()),
        };
    }
    let list = |set: &BTreeSet<u32>| {
        set.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if uids.contains(&0) {
        let mut facts: Vec<String> = a
            .processes
            .iter()
            .filter(|p| p.uid == 0)
            .map(|p| format!("{} ran as uid 0", show(&p.exe)))
            .collect();
        if facts.is_empty() {
            facts.push("a task ran as uid 0".into());
        }
        let others: BTreeSet<u32> = uids.iter().copied().filter(|u| *u != 0).collect();
        let remedy = if let Some(&target) = others.iter().next() {
            facts.push(format!("other tasks ran as uid {}", list(&others)));
            format!(
                "it starts as root and switches to uid {target}: start it as uid {target} instead \
                 (runAsUser: {target}; an unprivileged image variant, ports >= 1024, pid and temp \
                 files in paths that uid can write), then record again"
            )
        } else {
            "run it as a non-root user (an image with a USER, or runAsUser), then record again"
                .into()
        };
        return Evidence {
            field,
            verdict: Verdict::Blocked,
            facts,
            remedy: Some(remedy),
        };
    }
    sc.run_as_non_root = Some(true);
    let mut facts = vec![format!("every task ran as uid {} (never 0)", list(&uids))];
    if let [uid] = uids.iter().copied().collect::<Vec<_>>()[..] {
        sc.run_as_user = Some(i64::from(uid));
    } else {
        facts.push("more than one uid: runAsUser left to the image".into());
    }
    if let [gid] = gids.iter().copied().collect::<Vec<_>>()[..] {
        sc.run_as_group = Some(i64::from(gid));
        facts.push(format!("every task ran as gid {gid}"));
    }
    Evidence {
        field,
        verdict: Verdict::Suggested,
        facts,
        remedy: None,
    }
}

fn is_write(op: FileOp) -> bool {
    use FileOp::*;
    matches!(
        op,
        Write
            | Append
            | Create
            | Truncate
            | Link
            | Symlink
            | Rename
            | Unlink
            | Mkdir
            | Rmdir
            | Chmod
            | Chown
    )
}

fn below(path: &str, mount: &str) -> bool {
    let mount = mount.trim_end_matches('/');
    path == mount
        || path
            .strip_prefix(mount)
            .is_some_and(|rest| rest.starts_with('/'))
        || mount.is_empty()
}

fn read_only_root(a: &Activity, opts: &Options, sc: &mut SecurityContext) -> Evidence {
    let field = Field::ReadOnlyRootFilesystem;
    if a.files.is_empty() && a.processes.is_empty() {
        return Evidence {
            field,
            verdict: Verdict::NoEvidence,
            facts: vec!["the recording holds no file accesses".into()],
            remedy: Some("record with a profgen that records file events".into()),
        };
    }
    let written = |path: String, ops: &BTreeSet<FileOp>| {
        let ops: Vec<FileOp> = ops.iter().copied().filter(|op| is_write(*op)).collect();
        // Sockets, pipes and anonymous files have no absolute path: not the root fs.
        (!ops.is_empty() && path.starts_with('/')).then_some((path, ops))
    };
    // A directory aggregated by the recorder stands for every name in it: `dir/*`.
    let writes: Vec<(String, Vec<FileOp>)> = a
        .files
        .iter()
        .filter(|f| !f.failed)
        .filter_map(|f| written(show(&f.path), &f.ops))
        .chain(
            a.aggregated_dirs
                .iter()
                .filter_map(|d| written(format!("{}/*", show(&d.dir)), &d.ops)),
        )
        .collect();
    let (on_mounts, on_root): (Vec<_>, Vec<_>) = writes
        .into_iter()
        .partition(|(p, _)| opts.writable_mounts.iter().any(|m| below(p, m)));
    if on_root.is_empty() {
        sc.read_only_root_filesystem = Some(true);
        let facts = if on_mounts.is_empty() {
            vec![format!(
                "no file was written ({} file accesses recorded)",
                a.files.len()
            )]
        } else {
            vec![format!(
                "{} files written, all on volumes or kernel filesystems: {}",
                on_mounts.len(),
                on_mounts
                    .iter()
                    .map(|(p, _)| p.as_str())
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(", ")
            )]
        };
        return Evidence {
            field,
            verdict: Verdict::Suggested,
            facts,
            remedy: None,
        };
    }
    let mut facts: Vec<String> = on_root
        .iter()
        .take(MAX_LISTED)
        .map(|(p, ops)| format!("wrote {p} ({}) on the root filesystem", op_names(ops)))
        .collect();
    if on_root.len() > MAX_LISTED {
        facts.push(format!(
            "and {} more files written on the root filesystem",
            on_root.len() - MAX_LISTED
        ));
    }
    let dirs = emptydir_candidates(on_root.iter().map(|(p, _)| p.as_str()));
    Evidence {
        field,
        verdict: Verdict::Blocked,
        facts,
        remedy: Some(format!(
            "mount an emptyDir volume at {} (or move those files to a volume), then record again",
            dirs.join(", ")
        )),
    }
}

fn op_names(ops: &[FileOp]) -> String {
    ops.iter()
        .map(|op| {
            serde_json::to_value(op)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The directories that would have to be volumes: each written file's parent, minus those
/// below another candidate.
fn emptydir_candidates<'a>(paths: impl Iterator<Item = &'a str>) -> Vec<String> {
    let parents: BTreeSet<String> = paths
        .map(|p| match p.rsplit_once('/') {
            Some(("", _)) | None => "/".to_owned(),
            Some((dir, _)) => dir.to_owned(),
        })
        .collect();
    // A candidate is dropped when one of its ancestors (but `/`) is a candidate: each
    // ancestor is looked up, rather than every pair compared (20 000 directories of created
    // files would be 400 million comparisons).
    parents
        .iter()
        .filter(|d| {
            let mut up = d.as_str();
            while let Some((anc, _)) = up.rsplit_once('/') {
                if anc.is_empty() {
                    break;
                }
                if parents.contains(anc) {
                    return false;
                }
                up = anc;
            }
            true
        })
        .cloned()
        .collect()
}

/// Written files listed one by one in the evidence; the rest are counted (a recording of a
/// million files must not make a document of a million lines).
const MAX_LISTED: usize = 50;

fn privilege_escalation(a: &Activity, sc: &mut SecurityContext) -> Evidence {
    let field = Field::AllowPrivilegeEscalation;
    if a.privilege_gained {
        return Evidence {
            field,
            verdict: Verdict::Blocked,
            facts: vec![
                "a setuid/setgid program ran or a task gained a capability it did not have".into(),
            ],
            remedy: Some(
                "find the setuid/setgid exec among the recorded processes and avoid it (run that \
                 step as the right user from the start), then record again"
                    .into(),
            ),
        };
    }
    if a.processes.is_empty() {
        return Evidence {
            field,
            verdict: Verdict::NoEvidence,
            facts: vec!["the recording holds no exec events".into()],
            remedy: Some("record with a profgen that records processes (exec events)".into()),
        };
    }
    sc.allow_privilege_escalation = Some(false);
    Evidence {
        field,
        verdict: Verdict::Suggested,
        facts: vec![format!(
            "no setuid/setgid exec and no capability gained ({} programs recorded)",
            a.processes.len()
        )],
        remedy: None,
    }
}

fn capabilities(a: &Activity, sc: &mut SecurityContext) -> Evidence {
    let field = Field::Capabilities;
    let Some(used) = &a.capabilities else {
        return Evidence {
            field,
            verdict: Verdict::NoEvidence,
            facts: vec!["the kernel did not report capability use (the capability:cap_capable tracepoint needs Linux 6.14)".into()],
            remedy: Some("record on a kernel with capability:cap_capable to get `drop: [ALL]` plus what is used".into()),
        };
    };
    // Kubernetes spells capabilities without `CAP_`, upper case.
    let add: Vec<String> = used
        .iter()
        .map(|c| {
            c.trim_start_matches("cap_")
                .trim_start_matches("CAP_")
                .to_uppercase()
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut facts = vec![if add.is_empty() {
        "no capability was used".to_owned()
    } else {
        format!("capabilities used: {}", add.join(", "))
    }];
    if !add.is_empty() && sc.run_as_non_root == Some(true) {
        facts.push(
            "the container runs as non-root: added capabilities take effect only through file \
             capabilities on the binary"
                .into(),
        );
    }
    sc.capabilities = Some(Capabilities {
        drop: Some(vec!["ALL".into()]),
        add: (!add.is_empty()).then_some(add),
    });
    Evidence {
        field,
        verdict: Verdict::Suggested,
        facts,
        remedy: None,
    }
}

/// The seccomp profile's path relative to the kubelet's seccomp root
/// (`/var/lib/kubelet/seccomp`), as `localhostProfile` wants it. One profile per container
/// when the workload has several.
pub fn seccomp_localhost_path(namespace: &str, workload: &str, container: Option<&str>) -> String {
    match container {
        Some(c) => format!("profgen/{namespace}/{workload}/{c}/seccomp.json"),
        None => format!("profgen/{namespace}/{workload}/seccomp.json"),
    }
}

/// The workload a patch applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchTarget {
    /// `apps/v1`, `batch/v1`, `v1`.
    pub api_version: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `ReplicaSet`, `Job`, `CronJob` or `Pod`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// What to wire into one container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerPatch {
    pub name: String,
    pub suggestion: Suggestion,
    /// `localhostProfile` of a Localhost seccomp profile, see [`seccomp_localhost_path`].
    pub seccomp_localhost: Option<String>,
    /// Name of an AppArmor profile loaded on every node.
    pub apparmor_profile: Option<String>,
}

/// The container securityContext with the profiles wired in.
pub fn wired_security_context(c: &ContainerPatch) -> SecurityContext {
    let mut sc = c.suggestion.security_context.clone();
    sc.seccomp_profile = c.seccomp_localhost.as_ref().map(|p| SeccompProfile {
        type_: "Localhost".into(),
        localhost_profile: Some(p.clone()),
    });
    sc.app_armor_profile = c.apparmor_profile.as_ref().map(|p| AppArmorProfile {
        type_: "Localhost".into(),
        localhost_profile: Some(p.clone()),
    });
    sc
}

/// A strategic-merge patch for the workload: containers are merged by name, so only the
/// `securityContext` of the named containers changes. Apply with `kubectl patch --type
/// strategic --patch-file`, or list it under a kustomization's `patches:` (see
/// [`kustomization_entry`]).
pub fn workload_patch(target: &PatchTarget, containers: &[ContainerPatch]) -> Value {
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "securityContext": serde_json::to_value(wired_security_context(c)).unwrap_or(Value::Null),
            })
        })
        .collect();
    let pod_spec = json!({ "containers": containers });
    let spec = match target.kind.as_str() {
        "Pod" => pod_spec,
        "CronJob" => json!({ "jobTemplate": { "spec": { "template": { "spec": pod_spec } } } }),
        _ => json!({ "template": { "spec": pod_spec } }),
    };
    json!({
        "apiVersion": target.api_version,
        "kind": target.kind,
        "metadata": { "name": target.name, "namespace": target.namespace },
        "spec": spec,
    })
}

/// A kustomization `patches:` entry applying `patch_file` to the target.
pub fn kustomization_entry(target: &PatchTarget, patch_file: &str) -> Value {
    json!({
        "path": patch_file,
        "target": { "kind": target.kind, "name": target.name, "namespace": target.namespace },
    })
}

#[cfg(test)]
mod tests;

//! The text of the artifacts that wrap a synthesizer's output: the comment lines that say
//! how to use a file, the patch, the kustomization and the evidence report.

use std::fmt::Write as _;

use oci_spec::runtime::LinuxSeccomp;

use super::{Artifact, BuildError};
use crate::{
    model::Recording,
    synth::{
        securitycontext::{self as sc, ContainerPatch, PatchTarget, Suggestion, Verdict},
        spo, SynthError,
    },
};

fn to_yaml<T: serde::Serialize>(artifact: Artifact, v: &T) -> Result<String, BuildError> {
    serde_norway::to_string(v).map_err(|e| BuildError::Serialize {
        artifact,
        message: e.to_string(),
    })
}

/// `securitycontext.yaml`: the suggestion alone, as `profgen verify --security-context` reads
/// it.
pub(super) fn security_context(s: &Suggestion) -> Result<String, BuildError> {
    Ok(format!(
        "# The securityContext the recording supports; evidence in {}.\n{}",
        Artifact::SecurityContextEvidence,
        to_yaml(Artifact::SecurityContext, &s.security_context)?
    ))
}

/// `securitycontext-patch.yaml`: the strategic-merge patch, headed by how to apply it and
/// what it needs on the nodes (only what it wires in).
pub(super) fn patch(target: &PatchTarget, c: &ContainerPatch) -> Result<String, BuildError> {
    let patch = sc::workload_patch(target, std::slice::from_ref(c));
    let file = Artifact::SecurityContextPatch;
    let apparmor = Artifact::AppArmor;
    let seccomp_needs = |p: &str| format!("{p} on every node below /var/lib/kubelet/seccomp/");
    let apparmor_needs = format!("{apparmor} loaded (apparmor_parser -r)");
    let needs = match (&c.seccomp_localhost, &c.apparmor_profile) {
        (Some(p), Some(_)) => format!("# Needs {} and {apparmor_needs}.\n", seccomp_needs(p)),
        (Some(p), None) => format!("# Needs {}.\n", seccomp_needs(p)),
        (None, Some(_)) => format!("# Needs {apparmor_needs}.\n"),
        (None, None) => String::new(),
    };
    Ok(format!(
        "# Strategic-merge patch: `kubectl patch {} {} -n {} --type strategic --patch-file {file}`.\n{needs}{}",
        target.kind.to_lowercase(),
        target.name,
        target.namespace,
        to_yaml(file, &patch)?
    ))
}

/// `kustomization.yaml`: a kustomize Component; an overlay lists the set's directory under
/// `components:` and gets the NetworkPolicy and the patch applied to its own resources.
pub(super) fn kustomization(target: &PatchTarget, with_netpol: bool) -> Result<String, BuildError> {
    let mut k = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "patches": [sc::kustomization_entry(target, Artifact::SecurityContextPatch.file_name())],
    });
    if with_netpol {
        k["resources"] = serde_json::json!([Artifact::NetworkPolicy.file_name()]);
    }
    to_yaml(Artifact::Kustomization, &k)
}

/// `spo-seccompprofile.yaml`: the seccomp profile as a Security Profiles Operator object.
pub(super) fn spo(
    profile: &LinuxSeccomp,
    name: &str,
    namespace: Option<&str>,
) -> Result<String, BuildError> {
    let object = spo::seccomp_profile(profile, name, namespace).map_err(SynthError::from)?;
    let file = Artifact::SpoSeccompProfile;
    Ok(format!(
        "# Security Profiles Operator SeccompProfile with the rules of {}: `kubectl apply -f {file}`.\n# The operator installs it on every node; pods use it as localhostProfile: {} ({} names profgen's own path).\n{}",
        Artifact::Seccomp,
        spo::localhost_profile(&object),
        Artifact::SecurityContextPatch,
        to_yaml(file, &object)?
    ))
}

/// "1 run", "3 runs": what an artifact may say of its recording (not where it lies).
fn runs(rec: &Recording) -> String {
    match rec.coverage.runs() {
        1 => "1 run".into(),
        n => format!("{n} runs"),
    }
}

/// `securitycontext.md`: each field's verdict with the facts behind it, and what the patch
/// sets.
pub(super) fn evidence(
    s: &Suggestion,
    c: &ContainerPatch,
    target: &PatchTarget,
    rec: &Recording,
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# securityContext for {}/{} (container {})\n",
        target.namespace, target.name, c.name
    );
    let _ = writeln!(
        md,
        "Synthesized by profgen from the recording beside this file ({}). A field is suggested only when the recording supports it.\n",
        runs(rec)
    );
    for e in &s.evidence {
        let verdict = match e.verdict {
            Verdict::Suggested => "suggested",
            Verdict::Blocked => "blocked",
            Verdict::NoEvidence => "no evidence",
        };
        let _ = writeln!(md, "## {}: {verdict}\n", e.field);
        for f in &e.facts {
            let _ = writeln!(md, "- {f}");
        }
        if let Some(r) = &e.remedy {
            let _ = writeln!(md, "\nTo change: {r}");
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "## Wiring\n\n`{}` sets, for container `{}`:\n",
        Artifact::SecurityContextPatch,
        c.name
    );
    let wired = to_yaml(
        Artifact::SecurityContextEvidence,
        &sc::wired_security_context(c),
    );
    let _ = writeln!(md, "```yaml\n{}```", wired.unwrap_or_default());
    md
}

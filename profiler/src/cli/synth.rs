//! `profgen synth`: turn a recording into profiles.
//!
//! Writes into DIR: `seccomp.json`, `apparmor.profile`, `networkpolicy.yaml`,
//! `securitycontext.yaml` (the suggestion), `securitycontext.md` (its evidence),
//! `securitycontext-patch.yaml` (a strategic-merge patch wiring the seccomp profile, the
//! AppArmor profile and the securityContext into the workload) and `kustomization.yaml` (a
//! kustomize Component holding the NetworkPolicy and that patch); with `--spo`, also
//! `spo-seccompprofile.yaml` (the seccomp profile as a Security Profiles Operator object).
//! Every artifact is made and checked in memory first; files are written only when all of
//! them succeeded, each one atomically, so a failure leaves DIR as it was.

use std::{collections::BTreeMap, fmt::Write as _, path::PathBuf};

use anyhow::{bail, Context as _};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use profgen::{
    cluster::Cluster,
    model::{coverage, Abi, Recording, Target},
    output::write_atomic,
    synth::{
        self,
        apparmor::{self, AppArmorOptions},
        kube_name,
        netpol::{self, NetpolOptions, PodRef},
        securitycontext::{self as sc, ContainerPatch, PatchTarget, Verdict},
        spo, SeccompOptions, SeccompSummary, SynthError,
    },
    verify::apparmor::parser,
};
use tabled::{settings::Style, Table, Tabled};

/// Turn recordings into a seccomp profile, an AppArmor profile, a NetworkPolicy and a
/// securityContext (with the patch wiring them into the workload).
///
/// Several cgroups in the recordings (the containers of a pod, sub-cgroups of a command) are
/// merged into one set of artifacts that allows what any of them did; record or synthesize
/// per container to get per-container artifacts.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// The recording, as written by `profgen record`. Several (replicas of a workload, or
    /// runs of its tests) are merged: what any of them did is allowed.
    #[arg(value_name = "RECORDING", required = true, num_args = 1..)]
    recordings: Vec<PathBuf>,
    /// Where to write the profiles (created if missing). Default: the directory of the
    /// (single) recording, so it stays beside what was made from it.
    #[arg(long, short, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The AppArmor profile's name (what `appArmorProfile.localhostProfile` refers to); also
    /// names the NetworkPolicy, the workload and the container unless given. Default: derived
    /// from the recording's target (the cgroup's or the command's last path component).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The workload's pod labels, for the NetworkPolicy's podSelector. Without them (or
    /// --pod), no NetworkPolicy is written: an empty selector would select every pod.
    #[arg(long, value_name = "KEY=VALUE,…", value_delimiter = ',')]
    labels: Vec<String>,
    /// The workload's namespace (NetworkPolicy, patch, seccomp path). Default: the --pod's,
    /// else `default`.
    #[arg(long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// A cluster snapshot (`kubectl get pods,services,namespaces -A -o json`): peers are named
    /// by labels, Service addresses become their pods and target ports.
    #[arg(long, value_name = "FILE")]
    cluster: Option<PathBuf>,
    /// The workload's pod in the --cluster snapshot: its labels and namespace are used.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pod: Option<String>,
    /// Widen ingress: any source may reach the ports that were reached (a public service
    /// behind a load balancer whose addresses the recording did not see).
    #[arg(long)]
    ingress_from_anywhere: bool,
    /// Widen DNS egress: UDP and TCP 53 to anywhere (a cluster DNS that is not
    /// k8s-app=kube-dns in kube-system).
    #[arg(long)]
    egress_dns_anywhere: bool,
    /// The workload the securityContext patch applies to. Default: Deployment/NAME.
    #[arg(long, value_name = "KIND/NAME")]
    workload: Option<String>,
    /// The container the patch applies to (containers are merged by name). Default: NAME.
    #[arg(long, value_name = "NAME")]
    container: Option<String>,
    /// The container's writable volume mount paths (emptyDir, tmpfs, PVC): writes below them
    /// do not block readOnlyRootFilesystem.
    #[arg(long, value_name = "PATH,…", value_delimiter = ',')]
    volumes: Vec<String>,
    /// Also write `spo-seccompprofile.yaml`: the seccomp profile as a Security Profiles
    /// Operator `SeccompProfile` (named like the NetworkPolicy, in the workload's namespace
    /// when known). `kubectl apply -f` it and the operator installs it on every node; pods
    /// then use `localhostProfile: operator/NAME.json`. No AppArmorProfile is written: the
    /// operator's takes no profile text since its 0.9 release.
    #[arg(long)]
    spo: bool,
    /// Allow exactly the recorded syscalls in seccomp.json: no equivalents (the same
    /// operation by another call, as another libc or kernel makes it) and no runtime calls.
    #[arg(long, conflicts_with = "runtime")]
    exact: bool,
    /// The container runtimes whose own calls after installing the filter seccomp.json
    /// allows, so that the container starts under any of them (see docs/seccomp.md).
    #[arg(
        long,
        value_name = "RUNTIME,…",
        value_delimiter = ',',
        default_values_t = synth::seccomp::runtime::default_names()
    )]
    runtime: Vec<String>,
    /// Allow syscall names only in seccomp.json: no rules on the argument values the
    /// recording holds (`socket` families, `clone` namespace flags, `ioctl` requests, …).
    #[arg(long)]
    no_args: bool,
}

/// One file to write, made in full before anything is written.
struct Artifact {
    file: &'static str,
    bytes: Vec<u8>,
}

pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let dir = match (&args.out, args.recordings.as_slice()) {
        (Some(dir), _) => dir.clone(),
        (None, [one]) => match one.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        },
        (None, _) => anyhow::bail!("several recordings: say where the profiles go with --out DIR"),
    };
    let recordings = args
        .recordings
        .iter()
        .map(Recording::load)
        .collect::<Result<Vec<_>, _>>()?;
    // One recording is used as it is; several become one that keeps how many runs saw each
    // rule.
    let rec = match <[Recording; 1]>::try_from(recordings) {
        Ok([one]) => one,
        Err(several) => Recording::merge(&several).context("merging the recordings")?,
    };
    let source = describe(&args.recordings);
    let mut artifacts = Vec::new();
    let mut report = String::new();

    // seccomp
    let opts = SeccompOptions {
        exact: args.exact,
        runtimes: args.runtime.clone(),
        no_args: args.no_args,
    };
    let (profile, summary) = synth::seccomp::synthesize(&rec, &opts)
        .with_context(|| format!("synthesizing a seccomp profile from {source}"))?;
    artifacts.push(Artifact {
        file: "seccomp.json",
        bytes: synth::seccomp::to_json(&profile)?,
    });
    writeln!(report, "{}", summary_table(&summary))?;

    // AppArmor, compiled by the real parser when it is installed.
    let name = match &args.name {
        Some(n) => n.clone(),
        None => default_name(&rec.target),
    };
    let pod = args.pod.as_deref().map(parse_pod).transpose()?;
    let namespace = args
        .namespace
        .clone()
        .or_else(|| pod.as_ref().map(|p| p.namespace.clone()));
    let notes = if rec.syscalls_only {
        vec![SYSCALLS_ONLY.to_string()]
    } else {
        let workload = Workload {
            name: &name,
            namespace: namespace.as_deref(),
            pod,
        };
        activity_artifacts(&args, &rec, workload, &mut artifacts, &mut report)?
    };

    // The Security Profiles Operator's copy of the seccomp profile.
    if args.spo {
        let object = spo::seccomp_profile(&profile, &kube_name(&name), namespace.as_deref())
            .map_err(SynthError::from)?;
        artifacts.push(Artifact {
            file: "spo-seccompprofile.yaml",
            bytes: format!(
                "# Security Profiles Operator SeccompProfile with the rules of seccomp.json: `kubectl apply -f spo-seccompprofile.yaml`.\n# The operator installs it on every node; pods use it as localhostProfile: {} (securitycontext-patch.yaml names profgen's own path).\n{}",
                spo::localhost_profile(&object),
                to_yaml(&object)?
            )
            .into_bytes(),
        });
    }

    // The recording beside what was made from it, so the set can be made again (and checked
    // to be made again byte for byte) without recording.
    artifacts.push(Artifact {
        file: "recording.json",
        bytes: rec.to_json()?,
    });

    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the output directory {}", dir.display()))?;
    for a in &artifacts {
        write_atomic(&dir.join(a.file), &a.bytes)?;
    }

    print!("{report}");
    let partial = coverage::partial_lines(&rec);
    if !partial.is_empty() {
        eprintln!(
            "profgen: seen in only some of the {} runs (allowed: each was needed at least once; a profile from fewer runs could break on them):",
            rec.coverage.runs()
        );
        for line in &partial {
            eprintln!("profgen:   {line}");
        }
    }
    for n in &notes {
        eprintln!("profgen: note: {n}");
    }
    let files: Vec<&str> = artifacts.iter().map(|a| a.file).collect();
    eprintln!(
        "profgen: wrote {} into {} from {source}",
        files.join(", "),
        dir.display()
    );
    if summary.events_lost > 0 {
        eprintln!("{}", lost_warning(&rec, &source));
    }
    Ok(())
}

/// Said when the recording holds syscalls only.
const SYSCALLS_ONLY: &str = "the recording holds syscalls only (`record --syscalls-only`): apparmor.profile, networkpolicy.yaml and the securityContext need a recording of files, network and capabilities too, so only the seccomp profile was written";

/// What the artifacts are named after.
struct Workload<'a> {
    name: &'a str,
    namespace: Option<&'a str>,
    /// `--pod`, for the NetworkPolicy.
    pod: Option<PodRef>,
}

/// AppArmor, NetworkPolicy and securityContext: what needs the recorded activity. Returns the
/// notes for the terminal.
fn activity_artifacts(
    args: &SynthArgs,
    rec: &Recording,
    workload: Workload,
    artifacts: &mut Vec<Artifact>,
    report: &mut String,
) -> anyhow::Result<Vec<String>> {
    let Workload {
        name,
        namespace,
        pod,
    } = workload;
    let activity = synth::workload_activity(rec);
    let aa = apparmor::apparmor(name, &activity, &AppArmorOptions::default())
        .map_err(SynthError::from)?;
    let parser_verdict = match parser::check(&aa.text) {
        Ok(()) => "apparmor_parser -Q -K: compiled".to_string(),
        Err(parser::ParserError::Absent(why)) => format!("not validated: {why}"),
        Err(parser::ParserError::Rejected { stderr }) => {
            return Err(SynthError::AppArmorRejected {
                name: name.to_owned(),
                reason: stderr,
            }
            .into())
        }
        Err(e) => return Err(e).context("validating the AppArmor profile"),
    };
    artifacts.push(Artifact {
        file: "apparmor.profile",
        bytes: aa.text.clone().into_bytes(),
    });
    writeln!(report, "{}", apparmor_table(&aa, &parser_verdict))?;
    let mut notes: Vec<String> = aa
        .warnings
        .iter()
        .chain(&aa.not_expressible)
        .map(|w| format!("apparmor: {w}"))
        .chain(rec.late_join_warnings())
        .collect();

    // NetworkPolicy
    let cluster = match &args.cluster {
        Some(path) => Some(
            Cluster::from_file(path)
                .with_context(|| format!("reading the cluster snapshot {}", path.display()))?,
        ),
        None => None,
    };
    let labels = parse_labels(&args.labels)?;
    let netpol = if labels.is_empty() && pod.is_none() {
        notes.push(
            "networkpolicy.yaml not written: no labels to select the workload by (give --labels KEY=VALUE,… or --pod NS/NAME with --cluster FILE)"
                .into(),
        );
        None
    } else {
        let opts = NetpolOptions {
            name: kube_name(name),
            namespace: namespace.map(str::to_owned),
            labels,
            pod,
            cluster: cluster.as_ref(),
            ingress_from_anywhere: args.ingress_from_anywhere,
            egress_dns_anywhere: args.egress_dns_anywhere,
        };
        let s = netpol::synthesize(&activity, &opts).map_err(SynthError::from)?;
        notes.extend(s.notes.iter().map(|n| format!("networkpolicy: {n}")));
        artifacts.push(Artifact {
            file: "networkpolicy.yaml",
            bytes: netpol::to_yaml(&s.policy)
                .map_err(SynthError::from)?
                .into_bytes(),
        });
        writeln!(report, "{}", netpol_table(&s.policy))?;
        Some(s.policy)
    };

    // securityContext, its evidence, and the patch wiring everything into the workload.
    let suggestion = sc::security_context(&activity, &sc::Options::with_volumes(&args.volumes));
    let target = patch_target(args.workload.as_deref(), name, namespace)?;
    let seccomp_path = sc::seccomp_localhost_path(&target.namespace, &target.name, None);
    let container = ContainerPatch {
        name: args.container.clone().unwrap_or_else(|| kube_name(name)),
        suggestion: suggestion.clone(),
        seccomp_localhost: Some(seccomp_path.clone()),
        apparmor_profile: Some(name.to_owned()),
    };
    let patch = sc::workload_patch(&target, std::slice::from_ref(&container));
    artifacts.push(Artifact {
        file: "securitycontext.yaml",
        bytes: format!(
            "# The securityContext the recording supports; evidence in securitycontext.md.\n{}",
            to_yaml(&suggestion.security_context)?
        )
        .into_bytes(),
    });
    artifacts.push(Artifact {
        file: "securitycontext-patch.yaml",
        bytes: format!(
            "# Strategic-merge patch: `kubectl patch {} {} -n {} --type strategic --patch-file securitycontext-patch.yaml`.\n# Needs {seccomp_path} on every node below /var/lib/kubelet/seccomp/ and apparmor.profile loaded (apparmor_parser -r).\n{}",
            target.kind.to_lowercase(),
            target.name,
            target.namespace,
            to_yaml(&patch)?
        )
        .into_bytes(),
    });
    artifacts.push(Artifact {
        file: "kustomization.yaml",
        bytes: to_yaml(&kustomization(&target, netpol.is_some()))?.into_bytes(),
    });
    artifacts.push(Artifact {
        file: "securitycontext.md",
        bytes: evidence_report(&suggestion, &container, &target, rec).into_bytes(),
    });
    writeln!(report, "{}", security_context_table(&suggestion))?;
    Ok(notes)
}

/// The recordings, as messages name them.
/// "1 run", "3 runs": what an artifact may say of its recording (not where it lies).
fn runs(rec: &Recording) -> String {
    match rec.coverage.runs() {
        1 => "1 run".into(),
        n => format!("{n} runs"),
    }
}

fn describe(paths: &[PathBuf]) -> String {
    match paths {
        [one] => one.display().to_string(),
        many => format!("{} merged recordings", many.len()),
    }
}

/// A profile name from what was recorded: the command's or the cgroup's last component,
/// with the characters AppArmor and Kubernetes refuse replaced by `-`.
fn default_name(target: &Target) -> String {
    let source = match target {
        Target::Command { argv, .. } => argv.first().map(String::as_str).unwrap_or(""),
        Target::Cgroup { cgroup } | Target::Pid { cgroup, .. } => cgroup.as_str(),
    };
    let last = source
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut name: String = cleaned.chars().take(200).collect();
    if name.is_empty() {
        name = "workload".into();
    }
    name
}

/// A Kubernetes object name (DNS-1123) for the profile name: lower case, `_` and `.` as `-`.
fn parse_pod(text: &str) -> anyhow::Result<PodRef> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(PodRef {
                namespace: ns.into(),
                name: name.into(),
            })
        }
        _ => bail!("--pod {text:?}: expected NAMESPACE/NAME"),
    }
}

fn parse_labels(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for item in items.iter().filter(|i| !i.trim().is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            bail!("--labels {item:?}: expected KEY=VALUE");
        };
        labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(labels)
}

fn patch_target(
    workload: Option<&str>,
    name: &str,
    namespace: Option<&str>,
) -> anyhow::Result<PatchTarget> {
    let (kind, wname) = match workload {
        None => ("Deployment".to_string(), kube_name(name)),
        Some(w) => match w.split_once('/') {
            Some((k, n)) if !k.is_empty() && !n.is_empty() => (k.to_string(), n.to_string()),
            _ => bail!("--workload {w:?}: expected KIND/NAME, e.g. Deployment/web"),
        },
    };
    let api_version = match kind.as_str() {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps/v1",
        "Job" | "CronJob" => "batch/v1",
        "Pod" => "v1",
        other => bail!(
            "--workload kind {other:?}: expected Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod"
        ),
    };
    Ok(PatchTarget {
        api_version: api_version.into(),
        kind,
        namespace: namespace.unwrap_or("default").into(),
        name: wname,
    })
}

/// A kustomize Component: an overlay lists this directory under `components:` and gets the
/// NetworkPolicy and the securityContext patch applied to its own resources.
fn kustomization(target: &PatchTarget, with_netpol: bool) -> serde_json::Value {
    let mut k = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "patches": [sc::kustomization_entry(target, "securitycontext-patch.yaml")],
    });
    if with_netpol {
        k["resources"] = serde_json::json!(["networkpolicy.yaml"]);
    }
    k
}

fn to_yaml<T: serde::Serialize>(v: &T) -> anyhow::Result<String> {
    serde_norway::to_string(v).context("serializing YAML")
}

fn evidence_report(
    s: &sc::Suggestion,
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
        "## Wiring\n\n`securitycontext-patch.yaml` sets, for container `{}`:\n",
        c.name
    );
    let _ = writeln!(
        md,
        "```yaml\n{}```",
        to_yaml(&sc::wired_security_context(c)).unwrap_or_default()
    );
    md
}

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "seccomp")]
    what: String,
    #[tabled(rename = "syscalls")]
    count: String,
}

fn row(what: impl Into<String>, count: impl ToString) -> Row {
    Row {
        what: what.into(),
        count: count.to_string(),
    }
}

/// A two-column table with the given headers.
fn table(headers: [&str; 2], rows: Vec<(String, String)>) -> String {
    let mut b = tabled::builder::Builder::default();
    b.push_record(headers);
    for (a, c) in rows {
        b.push_record([a, c]);
    }
    b.build().with(Style::sharp()).to_string()
}

fn summary_table(s: &SeccompSummary) -> String {
    let mut rows: Vec<Row> = Abi::ALL
        .iter()
        .filter_map(|abi| {
            s.per_abi
                .get(abi)
                .map(|n| row(format!("allowed, {abi}"), n))
        })
        .collect();
    rows.push(row("allowed, total (distinct names)", s.total));
    rows.push(row("recorded", s.recorded));
    rows.push(row("added as equivalents", name_list(s.equivalent_names())));
    for (runtime, added) in &s.added_for_runtimes {
        rows.push(row(format!("added for {runtime}"), name_list(added)));
    }
    rows.extend(s.args.rows().into_iter().map(|(what, v)| row(what, v)));
    rows.push(row(
        "Docker default profile, x86_64",
        s.docker_default_x86_64,
    ));
    if let Some(ratio) = s.x86_64_vs_docker() {
        rows.push(row(
            "x86_64 allowed vs Docker default",
            format!("{:.0}%", ratio * 100.0),
        ));
    }
    Table::new(rows).with(Style::sharp()).to_string()
}

/// "3 (a, b, c)", or "0"; broken into lines of about 60 characters so the table stays
/// readable in a terminal.
fn name_list<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
    if names.is_empty() {
        return "0".into();
    }
    let mut text = format!("{} (", names.len());
    let mut line = text.len();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            text.push(',');
            if line + name.len() > 60 {
                text.push('\n');
                line = 0;
            } else {
                text.push(' ');
                line += 2;
            }
        }
        text.push_str(name);
        line += name.len();
    }
    text.push(')');
    text
}

fn apparmor_table(p: &apparmor::Profile, parser_verdict: &str) -> String {
    let mut rows: Vec<(String, String)> = p
        .summary
        .rows()
        .into_iter()
        .map(|(what, n)| (what.to_string(), n.to_string()))
        .collect();
    rows.push(("parser".into(), parser_verdict.into()));
    table([&format!("AppArmor {}", p.name), "rules"], rows)
}

fn port_list(ports: Option<&Vec<k8s_openapi::api::networking::v1::NetworkPolicyPort>>) -> String {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return "any port".into();
    };
    ports
        .iter()
        .map(|p| {
            let port = match &p.port {
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
                    n.to_string()
                }
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => {
                    s.clone()
                }
                None => "any".into(),
            };
            format!("{}/{port}", p.protocol.as_deref().unwrap_or("TCP"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn netpol_table(policy: &NetworkPolicy) -> String {
    let spec = policy.spec.clone().unwrap_or_default();
    let mut rows = vec![(
        "policyTypes".to_string(),
        spec.policy_types.unwrap_or_default().join(", "),
    )];
    let ingress = spec.ingress.unwrap_or_default();
    rows.push(("ingress rules".into(), ingress.len().to_string()));
    for (i, r) in ingress.iter().enumerate() {
        let from = r.from.as_ref().map_or(0, Vec::len);
        let peers = if from == 0 {
            "any source".to_string()
        } else {
            format!("{from} peer(s)")
        };
        rows.push((
            format!("  ingress {}", i + 1),
            format!("{}, from {peers}", port_list(r.ports.as_ref())),
        ));
    }
    let egress = spec.egress.unwrap_or_default();
    rows.push(("egress rules".into(), egress.len().to_string()));
    for (i, r) in egress.iter().enumerate() {
        let to = r.to.as_ref().map_or(0, Vec::len);
        let peers = if to == 0 {
            "any destination".to_string()
        } else {
            format!("{to} peer(s)")
        };
        rows.push((
            format!("  egress {}", i + 1),
            format!("{}, to {peers}", port_list(r.ports.as_ref())),
        ));
    }
    let name = policy.metadata.name.clone().unwrap_or_default();
    table([&format!("NetworkPolicy {name}"), "allows"], rows)
}

fn security_context_table(s: &sc::Suggestion) -> String {
    let rows = s
        .evidence
        .iter()
        .map(|e| {
            let v = match e.verdict {
                Verdict::Suggested => "suggested",
                Verdict::Blocked => "blocked (see securitycontext.md)",
                Verdict::NoEvidence => "no evidence",
            };
            (e.field.to_string(), v.to_string())
        })
        .collect();
    table(["securityContext", "verdict"], rows)
}

/// One loud line: a profile from a lossy recording may refuse something the workload does.
fn lost_warning(rec: &Recording, source: &str) -> String {
    let reasons: Vec<String> = rec
        .events_lost
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| format!("{reason}={n}"))
        .collect();
    format!(
        "profgen: WARNING: {} events were lost while recording {} ({}); the profiles may miss what the workload does: verify them, or record again",
        rec.events_lost_total(),
        source,
        reasons.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn args(recordings: Vec<PathBuf>, out: Option<PathBuf>) -> SynthArgs {
        SynthArgs {
            recordings,
            out,
            name: None,
            labels: Vec::new(),
            namespace: None,
            cluster: None,
            pod: None,
            ingress_from_anywhere: false,
            egress_dns_anywhere: false,
            workload: None,
            container: None,
            volumes: Vec::new(),
            spo: false,
            exact: false,
            runtime: synth::seccomp::runtime::default_names(),
            no_args: false,
        }
    }

    #[test]
    fn table_shows_each_abi_total_and_docker() {
        let s = SeccompSummary {
            per_abi: BTreeMap::from([(Abi::X86_64, 62), (Abi::I386, 3)]),
            total: 63,
            recorded: 55,
            added_as_equivalents: BTreeMap::from([
                ("epoll wait", ["epoll_pwait".to_string()].into()),
                ("read", ["readv".to_string()].into()),
            ]),
            added_for_runtimes: BTreeMap::from([
                ("crun".to_string(), ["close_range".to_string()].into()),
                ("runc".to_string(), Default::default()),
            ]),
            events_lost: 0,
            docker_default_x86_64: 309,
            args: Default::default(),
        };
        let table = summary_table(&s);
        for line in [
            "allowed, x86_64",
            "allowed, i386",
            "63",
            "309",
            "20%",
            "recorded",
            "55",
            "added as equivalents",
            "2 (epoll_pwait, readv)",
            "added for crun",
            "1 (close_range)",
            "added for runc",
        ] {
            assert!(table.contains(line), "{line} missing from:\n{table}");
        }
        assert!(!table.contains("x32"));
        let long: Vec<String> = (0..30).map(|i| format!("call_{i:02}")).collect();
        let wrapped = name_list(&long);
        assert!(wrapped.starts_with("30 (call_00, call_01"), "{wrapped}");
        assert!(wrapped.lines().all(|l| l.len() <= 70), "{wrapped}");
        assert_eq!(wrapped.matches("call_").count(), 30);
        assert_eq!(name_list(&[]), "0");
    }

    #[test]
    fn lost_events_warning_names_count_and_reasons() {
        let rec: Recording = serde_json::from_value(serde_json::json!({
            "schema_version": 1,
            "profgen_version": "0.1.0",
            "host": {"kernel_release": "6.18.0", "machine": "x86_64"},
            "started_at": "2026-01-01T00:00:00Z",
            "ended_at": "2026-01-01T00:01:00Z",
            "target": {"kind": "cgroup", "cgroup": "/a"},
            "events_lost": {"map_full": 0, "ringbuf_full": 12},
            "cgroups": []
        }))
        .unwrap();
        let line = lost_warning(&rec, "rec.json");
        assert!(
            line.starts_with(
                "profgen: WARNING: 12 events were lost while recording rec.json (ringbuf_full=12)"
            ),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    fn write_recording(dir: &std::path::Path, unknown: bool) -> PathBuf {
        let mut cgroup = serde_json::json!({
            "id": 5, "path": "/a", "seccomp_filter_seen": true,
            "syscalls": {"x86_64": ["write", "read"]}
        });
        if unknown {
            cgroup["unknown_numbers"] = serde_json::json!({"x86_64": [470]});
        }
        let rec = serde_json::json!({
            "schema_version": 1,
            "profgen_version": "0.1.0",
            "host": {"kernel_release": "6.18.0", "machine": "x86_64"},
            "started_at": "2026-01-01T00:00:00Z",
            "ended_at": "2026-01-01T00:01:00Z",
            "target": {"kind": "cgroup", "cgroup": "/a"},
            "events_lost": {},
            "cgroups": [cgroup]
        });
        let path = dir.join("recording.json");
        std::fs::write(&path, rec.to_string()).unwrap();
        path
    }

    #[test]
    fn writes_the_profile_into_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let recording = write_recording(dir.path(), false);
        let out = dir.path().join("profiles/web");
        run(args(vec![recording], Some(out.clone()))).unwrap();
        let names = seccomp_names(&out);
        // The recorded calls, their equivalents, and both runtimes' calls after the filter.
        for n in [
            "read",
            "write",
            "readv",
            "writev",
            "getdents64",
            "rt_sigaction",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    }

    fn seccomp_names(dir: &std::path::Path) -> Vec<String> {
        let profile: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("seccomp.json")).unwrap()).unwrap();
        serde_json::from_value(profile["syscalls"][0]["names"].clone()).unwrap()
    }

    #[test]
    fn exact_and_runtime_choose_what_is_added() {
        let dir = tempfile::tempdir().unwrap();
        let recording = write_recording(dir.path(), false);
        let out = dir.path().join("exact");
        let mut a = args(vec![recording.clone()], Some(out.clone()));
        a.exact = true;
        run(a).unwrap();
        assert_eq!(seccomp_names(&out), ["read", "write"]);

        // runc alone: crun's signal reset is not needed.
        let out = dir.path().join("runc");
        let mut a = args(vec![recording.clone()], Some(out.clone()));
        a.runtime = vec!["runc".into()];
        run(a).unwrap();
        let names = seccomp_names(&out);
        assert!(names.contains(&"getdents64".to_string()), "{names:?}");
        assert!(!names.contains(&"rt_sigaction".to_string()), "{names:?}");

        let mut a = args(vec![recording], Some(dir.path().join("kata")));
        a.runtime = vec!["kata".into()];
        let err = format!("{:#}", run(a).unwrap_err());
        assert!(
            err.contains("`kata`") && err.contains("runc, crun"),
            "{err}"
        );
        assert!(!dir.path().join("kata").exists());
    }

    #[test]
    fn exact_conflicts_with_runtime_on_the_command_line() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            synth: SynthArgs,
        }
        use clap::Parser as _;
        let parsed = Cli::try_parse_from(["synth", "r.json"]).unwrap().synth;
        assert_eq!(parsed.runtime, ["runc", "crun"]);
        assert!(!parsed.exact);
        let parsed = Cli::try_parse_from(["synth", "r.json", "--runtime", "crun,runc"])
            .unwrap()
            .synth;
        assert_eq!(parsed.runtime, ["crun", "runc"]);
        assert!(
            Cli::try_parse_from(["synth", "r.json", "--exact"])
                .unwrap()
                .synth
                .exact
        );
        assert!(Cli::try_parse_from(["synth", "r.json", "--exact", "--runtime", "runc"]).is_err());
    }

    #[test]
    fn a_syscalls_only_recording_gives_the_seccomp_profile_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_recording(dir.path(), false);
        let mut rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        rec["syscalls_only"] = serde_json::json!(true);
        std::fs::write(&path, rec.to_string()).unwrap();
        let out = dir.path().join("profiles");
        run(args(vec![path.clone()], Some(out.clone()))).unwrap();
        // No activity was recorded: an AppArmor profile, policy or securityContext made from
        // none would deny what the workload needs.
        assert_eq!(dir_files(&out), ["recording.json", "seccomp.json"]);

        // Merged with a full recording, the activity is still incomplete.
        let full = dir.path().join("full");
        std::fs::create_dir(&full).unwrap();
        let full = write_recording(&full, false);
        let merged = dir.path().join("merged");
        run(args(vec![full, path], Some(merged.clone()))).unwrap();
        assert_eq!(dir_files(&merged), ["recording.json", "seccomp.json"]);
    }

    fn dir_files(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn spo_objects_are_written_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let recording = write_recording(dir.path(), false);
        let out = dir.path().join("plain");
        run(args(vec![recording.clone()], Some(out.clone()))).unwrap();
        assert!(out.join("seccomp.json").is_file());
        assert!(!out.join("spo-seccompprofile.yaml").exists());
        assert!(!out.join("spo-apparmorprofile.yaml").exists());

        let out = dir.path().join("spo");
        let mut a = args(vec![recording], Some(out.clone()));
        a.spo = true;
        a.exact = true;
        a.name = Some("web_v2".into());
        a.namespace = Some("shop".into());
        run(a).unwrap();
        let text = std::fs::read_to_string(out.join("spo-seccompprofile.yaml")).unwrap();
        assert!(
            text.contains("localhostProfile: operator/web-v2.json"),
            "{text}"
        );
        let object: serde_json::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(
            object["apiVersion"],
            "security-profiles-operator.x-k8s.io/v1beta1"
        );
        assert_eq!(object["kind"], "SeccompProfile");
        assert_eq!(
            object["metadata"],
            serde_json::json!({"name": "web-v2", "namespace": "shop"})
        );
        let oci: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("seccomp.json")).unwrap()).unwrap();
        assert_eq!(object["spec"]["syscalls"], oci["syscalls"]);
        assert_eq!(
            object["spec"]["syscalls"][0]["names"],
            serde_json::json!(["read", "write"])
        );
        assert_eq!(object["spec"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(
            object["spec"]["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64"])
        );
        assert!(!out.join("spo-apparmorprofile.yaml").exists());
    }

    #[test]
    fn a_refused_recording_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let recording = write_recording(dir.path(), true);
        let err = run(args(vec![recording], None)).unwrap_err();
        assert!(format!("{err:#}").contains("x86_64: 470"), "{err:#}");
        assert!(!dir.path().join("seccomp.json").exists());
    }

    #[test]
    fn several_recordings_are_merged_into_one_profile() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = write_recording(a.path(), false);
        let second = b.path().join("recording.json");
        let text = std::fs::read_to_string(&first)
            .unwrap()
            .replace(r#"["write","read"]"#, r#"["close"]"#);
        std::fs::write(&second, text).unwrap();

        let recordings = vec![first, second];
        let err = run(args(recordings.clone(), None)).unwrap_err();
        assert!(err.to_string().contains("--out"), "{err}");

        let out = a.path().join("merged");
        let mut merged = args(recordings, Some(out.clone()));
        merged.exact = true;
        run(merged).unwrap();
        let profile: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("seccomp.json")).unwrap()).unwrap();
        assert_eq!(
            profile["syscalls"][0]["names"],
            serde_json::json!(["close", "read", "write"])
        );
    }

    #[test]
    fn writes_every_artifact_with_labels() {
        let dir = tempfile::tempdir().unwrap();
        let recording = write_recording(dir.path(), false);
        let out = dir.path().join("out");
        let mut a = args(vec![recording], Some(out.clone()));
        a.name = Some("web_v2".into());
        a.labels = vec!["app=web".into()];
        a.namespace = Some("shop".into());
        run(a).unwrap();
        let profile = std::fs::read_to_string(out.join("apparmor.profile")).unwrap();
        assert!(profile.contains("profile web_v2 flags="), "{profile}");
        let np = std::fs::read_to_string(out.join("networkpolicy.yaml")).unwrap();
        assert!(
            np.contains("name: web-v2") && np.contains("namespace: shop"),
            "{np}"
        );
        let patch = std::fs::read_to_string(out.join("securitycontext-patch.yaml")).unwrap();
        assert!(
            patch.contains("localhostProfile: profgen/shop/web-v2/seccomp.json")
                && patch.contains("localhostProfile: web_v2"),
            "{patch}"
        );
        let k = std::fs::read_to_string(out.join("kustomization.yaml")).unwrap();
        assert!(
            k.contains("kind: Component") && k.contains("networkpolicy.yaml"),
            "{k}"
        );
        for f in ["seccomp.json", "securitycontext.yaml", "securitycontext.md"] {
            assert!(out.join(f).is_file(), "{f}");
        }
    }

    #[test]
    fn without_labels_no_network_policy_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let recording = write_recording(dir.path(), false);
        run(args(vec![recording], None)).unwrap();
        assert!(dir.path().join("apparmor.profile").is_file());
        assert!(!dir.path().join("networkpolicy.yaml").exists());
        let k = std::fs::read_to_string(dir.path().join("kustomization.yaml")).unwrap();
        assert!(!k.contains("networkpolicy.yaml"), "{k}");
    }

    #[test]
    fn a_bad_name_or_label_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let recording = write_recording(dir.path(), false);
        let mut a = args(vec![recording.clone()], None);
        a.name = Some("no/slashes".into());
        let err = run(a).unwrap_err();
        assert!(
            format!("{err:#}").contains("invalid AppArmor profile name"),
            "{err:#}"
        );
        let mut a = args(vec![recording], None);
        a.labels = vec!["app=not valid".into()];
        let err = run(a).unwrap_err();
        assert!(
            format!("{err:#}").contains("not a valid Kubernetes label"),
            "{err:#}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("recording.json")]);
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
        assert_eq!(kube_name("Web_App.v2"), "web-app-v2");
        for n in ["profgen-demo", "run-tests.sh", "workload"] {
            apparmor::validate_name(n).unwrap();
        }
    }
}

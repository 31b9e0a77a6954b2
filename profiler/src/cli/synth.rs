//! `profgen synth`: turn a recording into profiles.
//!
//! Writes into DIR: `seccomp.json`, `apparmor.profile`, `networkpolicy.yaml`,
//! `securitycontext.yaml` (the suggestion), `securitycontext.md` (its evidence),
//! `securitycontext-patch.yaml` (a strategic-merge patch wiring the seccomp profile, the
//! AppArmor profile and the securityContext into the workload) and `kustomization.yaml` (a
//! kustomize Component holding the NetworkPolicy and that patch); with `--spo`, also
//! `spo-seccompprofile.yaml` (the seccomp profile as a Security Profiles Operator object).
//! The set is made by [`profile_set::build`] in strict mode: every artifact is made and
//! checked in memory first, and files are written only when all of them succeeded.

mod tables;

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{bail, Context as _};
use profgen::{
    cluster::Cluster,
    model::{coverage, Recording},
    naming::{default_name, SetNames},
    profile_set::{self, BuildOptions, BuiltSet, Mode, NO_LABELS},
    synth::{self, netpol::PodRef, SeccompOptions},
};

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
        Err(several) => {
            let merged = Recording::merge(&several).context("merging the recordings")?;
            // The runs are not needed again: their memory goes back before synthesis.
            drop(several);
            profgen::memory::release_freed();
            merged
        }
    };
    let source = describe(&args.recordings);
    let cluster = match &args.cluster {
        Some(path) => Some(
            Cluster::from_file(path)
                .with_context(|| format!("reading the cluster snapshot {}", path.display()))?,
        ),
        None => None,
    };
    let opts = options(&args, &rec, cluster.as_ref())?;
    let set = profile_set::build(&rec, &opts)
        .with_context(|| format!("synthesizing profiles from {source}"))?;
    profile_set::write(&dir, &set)?;
    report(&set, &rec);
    eprintln!(
        "profgen: wrote {} into {} from {source}",
        set.file_names().join(", "),
        dir.display()
    );
    if rec.events_lost_total() > 0 {
        eprintln!("{}", lost_warning(&rec, &source));
    }
    Ok(())
}

/// The builder's options from the command line.
fn options<'a>(
    args: &SynthArgs,
    rec: &Recording,
    cluster: Option<&'a Cluster>,
) -> anyhow::Result<BuildOptions<'a>> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => default_name(&rec.target),
    };
    let pod = args.pod.as_deref().map(parse_pod).transpose()?;
    let namespace = args
        .namespace
        .clone()
        .or_else(|| pod.as_ref().map(|p| p.namespace.clone()));
    let names = SetNames::for_workload(
        &name,
        namespace.as_deref(),
        args.workload.as_deref(),
        args.container.as_deref(),
    )?;
    Ok(BuildOptions {
        labels: parse_labels(&args.labels)?,
        pod,
        cluster,
        ingress_from_anywhere: args.ingress_from_anywhere,
        egress_dns_anywhere: args.egress_dns_anywhere,
        volumes: args.volumes.clone(),
        spo: args.spo,
        seccomp: SeccompOptions {
            exact: args.exact,
            runtimes: args.runtime.clone(),
            no_args: args.no_args,
        },
        ..BuildOptions::new(names, Mode::Strict)
    })
}

/// The tables on stdout; the notes, and the rules only some runs saw, on stderr.
fn report(set: &BuiltSet, rec: &Recording) {
    let tables = [
        set.seccomp.as_ref().map(tables::summary_table),
        set.apparmor.as_ref().map(tables::apparmor_table),
        set.policy.as_ref().map(tables::netpol_table),
        set.suggestion.as_ref().map(tables::security_context_table),
    ];
    for table in tables.into_iter().flatten() {
        println!("{table}");
    }
    let partial = coverage::partial_lines(rec);
    if !partial.is_empty() {
        eprintln!(
            "profgen: seen in only some of the {} runs (allowed: each was needed at least once; a profile from fewer runs could break on them):",
            rec.coverage.runs()
        );
        for line in &partial {
            eprintln!("profgen:   {line}");
        }
    }
    for n in set.notes.iter().chain(&set.problems) {
        eprintln!("profgen: note: {n}");
        if n == NO_LABELS {
            eprintln!("profgen: note: for a NetworkPolicy, give --labels KEY=VALUE,… or --pod NS/NAME with --cluster FILE");
        }
    }
}

fn describe(paths: &[PathBuf]) -> String {
    match paths {
        [one] => one.display().to_string(),
        many => format!("{} merged recordings", many.len()),
    }
}

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

    fn seccomp_names(dir: &std::path::Path) -> Vec<String> {
        let profile: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("seccomp.json")).unwrap()).unwrap();
        serde_json::from_value(profile["syscalls"][0]["names"].clone()).unwrap()
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
    fn writes_the_set_into_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let recording = write_recording(dir.path(), false);
        let out = dir.path().join("profiles/web");
        let mut a = args(vec![recording], Some(out.clone()));
        a.runtime = vec!["runc".into()];
        run(a).unwrap();
        // The options reach the builder: runc alone, so crun's signal reset is not added.
        let names = seccomp_names(&out);
        assert!(names.contains(&"getdents64".to_string()), "{names:?}");
        assert!(!names.contains(&"rt_sigaction".to_string()), "{names:?}");
        assert_eq!(
            dir_files(&out),
            [
                "apparmor.profile",
                "kustomization.yaml",
                "recording.json",
                "seccomp.json",
                "securitycontext-patch.yaml",
                "securitycontext.md",
                "securitycontext.yaml"
            ]
        );
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
    fn merged_with_a_syscalls_only_recording_the_activity_is_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_recording(dir.path(), false);
        let mut rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        rec["syscalls_only"] = serde_json::json!(true);
        std::fs::write(&path, rec.to_string()).unwrap();
        let full = dir.path().join("full");
        std::fs::create_dir(&full).unwrap();
        let full = write_recording(&full, false);
        let merged = dir.path().join("merged");
        run(args(vec![full, path], Some(merged.clone()))).unwrap();
        assert!(!merged.join("apparmor.profile").exists());
        assert!(!merged.join("securitycontext.yaml").exists());
        assert!(merged.join("seccomp.json").is_file());
    }

    #[test]
    fn a_refused_recording_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let recording = write_recording(dir.path(), true);
        let err = run(args(vec![recording], None)).unwrap_err();
        assert!(format!("{err:#}").contains("x86_64: 470"), "{err:#}");
        assert_eq!(dir_files(dir.path()), ["recording.json"]);

        let recording = write_recording(dir.path(), false);
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
        assert_eq!(seccomp_names(&out), ["close", "read", "write"]);
    }

    #[test]
    fn a_bad_name_label_pod_or_workload_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let recording = write_recording(dir.path(), false);
        type Change = fn(&mut SynthArgs);
        let cases: [(Change, &str); 5] = [
            (
                |a| a.name = Some("no/slashes".into()),
                "invalid AppArmor profile name",
            ),
            (
                |a| a.labels = vec!["app=not valid".into()],
                "not a valid Kubernetes label",
            ),
            (|a| a.labels = vec!["app".into()], "expected KEY=VALUE"),
            (|a| a.pod = Some("web".into()), "expected NAMESPACE/NAME"),
            (
                |a| a.workload = Some("Service/web".into()),
                "expected Deployment, StatefulSet",
            ),
        ];
        for (change, want) in cases {
            let mut a = args(vec![recording.clone()], None);
            change(&mut a);
            let err = format!("{:#}", run(a).unwrap_err());
            assert!(err.contains(want), "{want}: {err}");
        }
        assert_eq!(dir_files(dir.path()), ["recording.json"]);
    }
}

//! Making a profile set from a recording, in memory: the one builder behind `profgen synth`,
//! `profgen record --pod` and the agent.
//!
//! [`Mode::Strict`] (`profgen synth`) turns any failure into an error, so nothing is written;
//! [`Mode::Lenient`] (the agent, recording many workloads unattended) records a failed
//! artifact in [`BuiltSet::problems`] and makes the others. Either way the same recording and
//! options give the same bytes.

use std::{borrow::Cow, collections::BTreeMap};

use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::{render, Artifact};
use crate::{
    cluster::Cluster,
    model::{Activity, Recording},
    naming::SetNames,
    synth::{
        self,
        apparmor::{self, AppArmorOptions},
        netpol::{self, NetpolOptions, PodRef},
        securitycontext::{self as sc, ContainerPatch, Suggestion},
        SeccompOptions, SeccompSummary, SynthError,
    },
    verify::apparmor::parser::{self, ParserError},
};

/// What a failure of one artifact does to the set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The whole set fails: nothing is to be written.
    Strict,
    /// The artifact is left out and the failure is one of [`BuiltSet::problems`].
    Lenient,
}

/// Compiles an AppArmor profile's text, as [`parser::check`] does.
pub type AppArmorCheck = fn(&str) -> Result<(), ParserError>;

/// How to make a set. [`BuildOptions::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct BuildOptions<'a> {
    pub names: SetNames,
    /// The workload's pod labels, the NetworkPolicy's podSelector. Without them (or `pod`),
    /// no NetworkPolicy is made: an empty selector would select every pod.
    pub labels: BTreeMap<String, String>,
    /// The workload's pod in `cluster`: its labels and namespace are used.
    pub pod: Option<PodRef>,
    /// Names peers by labels rather than addresses.
    pub cluster: Option<&'a Cluster>,
    pub ingress_from_anywhere: bool,
    pub egress_dns_anywhere: bool,
    /// The container's writable volume mount paths: writes there do not block
    /// readOnlyRootFilesystem.
    pub volumes: Vec<String>,
    /// Also make the Security Profiles Operator's SeccompProfile.
    pub spo: bool,
    pub seccomp: SeccompOptions,
    pub mode: Mode,
    /// Run on every AppArmor profile made; a refusal fails the profile.
    pub apparmor_check: AppArmorCheck,
}

impl<'a> BuildOptions<'a> {
    /// No labels, cluster, widening, volumes or SPO object; the default seccomp options; the
    /// installed `apparmor_parser`.
    pub fn new(names: SetNames, mode: Mode) -> Self {
        BuildOptions {
            names,
            labels: BTreeMap::new(),
            pod: None,
            cluster: None,
            ingress_from_anywhere: false,
            egress_dns_anywhere: false,
            volumes: Vec::new(),
            spo: false,
            seccomp: SeccompOptions::default(),
            mode,
            apparmor_check: parser::check,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Synth(#[from] SynthError),
    #[error("validating the AppArmor profile")]
    Parser(#[source] ParserError),
    #[error("cannot serialize {artifact}: {message}")]
    Serialize { artifact: Artifact, message: String },
}

/// One file of a set, made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File<'r> {
    pub artifact: Artifact,
    pub contents: Contents<'r>,
}

/// What a file of a set holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contents<'r> {
    Bytes(Vec<u8>),
    /// The recording the set was made from, serialized as the file is written: the JSON of a
    /// recording of a million files is larger than the recording, and is never whole in
    /// memory.
    Recording(&'r Recording),
}

impl File<'_> {
    pub fn name(&self) -> &'static str {
        self.artifact.file_name()
    }

    /// The file's bytes (a recording is serialized to give them).
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match &self.contents {
            Contents::Bytes(b) => Cow::Borrowed(b),
            Contents::Recording(rec) => {
                let mut bytes = Vec::new();
                // Only writing can fail, and a Vec takes every byte: the maps of a recording
                // are keyed by names, ABIs and argument indexes, which JSON keys hold.
                rec.write_json(&mut bytes).expect("a recording serializes");
                Cow::Owned(bytes)
            }
        }
    }

    /// Writes the file's bytes to `w`.
    pub fn write_to(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        match &self.contents {
            Contents::Bytes(b) => w.write_all(b),
            Contents::Recording(rec) => rec.write_json(w).map_err(std::io::Error::from),
        }
    }
}

/// What `apparmor_parser` said of the AppArmor profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParserVerdict {
    Compiled,
    /// The parser is not installed: why.
    NotValidated(String),
}

impl std::fmt::Display for ParserVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParserVerdict::Compiled => f.write_str("apparmor_parser -Q -K: compiled"),
            ParserVerdict::NotValidated(why) => write!(f, "not validated: {why}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct AppArmorMade {
    pub profile: apparmor::Profile,
    pub parser: ParserVerdict,
}

/// A set made in memory: its files, and what a report shows of them.
#[derive(Clone, Debug)]
pub struct BuiltSet<'r> {
    /// In [`Artifact::ALL`] order.
    pub files: Vec<File<'r>>,
    /// What the reader should know about how the artifacts were made.
    pub notes: Vec<String>,
    /// Artifacts the set lacks, and why.
    pub problems: Vec<String>,
    pub seccomp: Option<SeccompSummary>,
    pub apparmor: Option<AppArmorMade>,
    pub policy: Option<NetworkPolicy>,
    pub suggestion: Option<Suggestion>,
}

impl BuiltSet<'_> {
    pub fn file_names(&self) -> Vec<&'static str> {
        self.files.iter().map(File::name).collect()
    }

    /// Whether the set holds `artifact`'s file (without making its bytes).
    pub fn has(&self, artifact: Artifact) -> bool {
        self.files.iter().any(|f| f.artifact == artifact)
    }

    /// The bytes of `artifact`'s file. The recording's are serialized for the call: hundreds
    /// of megabytes for a recording of a million files ([`BuiltSet::has`] asks only whether
    /// the set holds it; [`super::write`] streams it to disk).
    pub fn file(&self, artifact: Artifact) -> Option<Cow<'_, [u8]>> {
        self.files
            .iter()
            .find(|f| f.artifact == artifact)
            .map(File::bytes)
    }
}

/// Why a set from a `record --syscalls-only` recording has no activity artifacts.
pub const SYSCALLS_ONLY: &str = "the recording holds syscalls only (`record --syscalls-only`): apparmor.profile, networkpolicy.yaml and the securityContext need a recording of files, network and capabilities too, so only the seccomp profile, the patch wiring it in and its kustomization were made";

/// Why a set has no NetworkPolicy.
pub const NO_LABELS: &str = "networkpolicy.yaml not made: no labels to select the workload by (an empty podSelector would select every pod of the namespace)";

/// Makes every artifact of the set for `rec`.
pub fn build<'r>(rec: &'r Recording, opts: &BuildOptions) -> Result<BuiltSet<'r>, BuildError> {
    let mut m = Making {
        mode: opts.mode,
        set: BuiltSet {
            files: Vec::new(),
            notes: Vec::new(),
            problems: Vec::new(),
            seccomp: None,
            apparmor: None,
            policy: None,
            suggestion: None,
        },
    };
    let names = &opts.names;
    let seccomp = m.attempt(Artifact::Seccomp, seccomp(rec, &opts.seccomp))?;
    if let Some((_, summary, json)) = &seccomp {
        m.add(Artifact::Seccomp, json.clone());
        m.set.seccomp = Some(summary.clone());
    }
    if rec.syscalls_only {
        m.set.problems.push(SYSCALLS_ONLY.to_owned());
    } else {
        activity_artifacts(&mut m, rec, &synth::workload_activity(rec), opts)?;
    }

    let container = ContainerPatch {
        name: names.container.clone(),
        suggestion: m.set.suggestion.clone().unwrap_or(Suggestion {
            security_context: Default::default(),
            evidence: Vec::new(),
        }),
        seccomp_localhost: seccomp.is_some().then(|| names.seccomp_localhost.clone()),
        apparmor_profile: m.set.apparmor.is_some().then(|| names.apparmor.clone()),
    };
    if let Some(patch) = m.attempt(
        Artifact::SecurityContextPatch,
        render::patch(&names.target, &container),
    )? {
        m.add(Artifact::SecurityContextPatch, patch);
        let k = render::kustomization(&names.target, m.set.policy.is_some());
        if let Some(k) = m.attempt(Artifact::Kustomization, k)? {
            m.add(Artifact::Kustomization, k);
        }
    }
    if let Some(s) = &m.set.suggestion {
        let md = render::evidence(s, &container, &names.target, rec);
        m.add(Artifact::SecurityContextEvidence, md);
    }

    if opts.spo {
        match &seccomp {
            Some((profile, ..)) => {
                let object = render::spo(profile, &names.object, names.namespace.as_deref());
                if let Some(object) = m.attempt(Artifact::SpoSeccompProfile, object)? {
                    m.add(Artifact::SpoSeccompProfile, object);
                }
            }
            // Lenient only: strict stopped at the seccomp failure.
            None => m.set.problems.push(format!(
                "{} not made: it holds the rules of {}, which was not made",
                Artifact::SpoSeccompProfile,
                Artifact::Seccomp
            )),
        }
    }

    // The recording beside what was made from it, so the set can be made again (and checked
    // to be made again byte for byte) without recording.
    m.set.files.push(File {
        artifact: Artifact::Recording,
        contents: Contents::Recording(rec),
    });
    m.set.files.sort_by_key(|f| f.artifact);
    Ok(m.set)
}

/// AppArmor, NetworkPolicy and securityContext: what needs the recorded activity.
///
/// `apparmor_parser` takes seconds on the profile of a recording of many files: it compiles
/// the profile on another thread while the other artifacts are made. They are added to the
/// set in the same order, with the same failures, as one after the other.
fn activity_artifacts(
    m: &mut Making,
    rec: &Recording,
    activity: &Activity,
    opts: &BuildOptions,
) -> Result<(), BuildError> {
    let name = &opts.names.apparmor;
    let check = opts.apparmor_check;
    let (made, policy, suggestion) = std::thread::scope(|s| {
        let checking = apparmor::apparmor(name, activity, &AppArmorOptions::default())
            .map(|profile| s.spawn(move || checked(name, profile, check)));
        let policy =
            (!opts.labels.is_empty() || opts.pod.is_some()).then(|| network_policy(activity, opts));
        let suggestion = sc::security_context(activity, &sc::Options::with_volumes(&opts.volumes));
        let made = match checking {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            Err(e) => Err(SynthError::from(e).into()),
        };
        (made, policy, suggestion)
    });
    if let Some(aa) = m.attempt(Artifact::AppArmor, made)? {
        m.add(Artifact::AppArmor, aa.profile.text.clone());
        let p = &aa.profile;
        let notes = p.warnings.iter().chain(&p.not_expressible);
        m.set.notes.extend(notes.map(|w| format!("apparmor: {w}")));
        m.set.apparmor = Some(aa);
    }
    m.set.notes.extend(rec.late_join_warnings());

    match policy {
        None => m.set.problems.push(NO_LABELS.to_owned()),
        Some(policy) => {
            if let Some((s, yaml)) = m.attempt(Artifact::NetworkPolicy, policy)? {
                m.set
                    .notes
                    .extend(s.notes.iter().map(|n| format!("networkpolicy: {n}")));
                m.add(Artifact::NetworkPolicy, yaml);
                m.set.policy = Some(s.policy);
            }
        }
    }

    if let Some(yaml) = m.attempt(
        Artifact::SecurityContext,
        render::security_context(&suggestion),
    )? {
        m.add(Artifact::SecurityContext, yaml);
        m.set.suggestion = Some(suggestion);
    }
    Ok(())
}

/// The set as it is being made, and what a failure does to it.
struct Making<'r> {
    mode: Mode,
    set: BuiltSet<'r>,
}

impl Making<'_> {
    /// `made`'s value; a failure is the build's error (strict), or a problem and `None`
    /// (lenient).
    fn attempt<T>(
        &mut self,
        artifact: Artifact,
        made: Result<T, BuildError>,
    ) -> Result<Option<T>, BuildError> {
        match (made, self.mode) {
            (Ok(v), _) => Ok(Some(v)),
            (Err(e), Mode::Strict) => Err(e),
            (Err(e), Mode::Lenient) => {
                self.set
                    .problems
                    .push(format!("{artifact} not made: {}", one_line(&e)));
                Ok(None)
            }
        }
    }

    fn add(&mut self, artifact: Artifact, bytes: impl Into<Vec<u8>>) {
        self.set.files.push(File {
            artifact,
            contents: Contents::Bytes(bytes.into()),
        });
    }
}

/// The error and its causes on one line, as the command line prints them; a cause the text
/// already holds (an error that displays its source too) is not said twice.
fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        source = cause.source();
    }
    text
}

type Seccomp = (oci_spec::runtime::LinuxSeccomp, SeccompSummary, Vec<u8>);

fn seccomp(rec: &Recording, opts: &SeccompOptions) -> Result<Seccomp, BuildError> {
    let (profile, summary) = synth::seccomp::synthesize(rec, opts)?;
    let json = synth::seccomp::to_json(&profile)?;
    Ok((profile, summary, json))
}

/// The profile `name`, compiled by the check (the real parser when it is installed): a
/// profile the parser refuses is a bug in profgen, never something to load.
fn checked(
    name: &str,
    profile: apparmor::Profile,
    check: AppArmorCheck,
) -> Result<AppArmorMade, BuildError> {
    let parser = match check(&profile.text) {
        Ok(()) => ParserVerdict::Compiled,
        Err(ParserError::Absent(why)) => ParserVerdict::NotValidated(why),
        Err(ParserError::Rejected { stderr }) => {
            return Err(SynthError::AppArmorRejected {
                name: name.to_owned(),
                reason: stderr,
            }
            .into())
        }
        Err(e) => return Err(BuildError::Parser(e)),
    };
    Ok(AppArmorMade { profile, parser })
}

fn network_policy(
    activity: &Activity,
    opts: &BuildOptions,
) -> Result<(netpol::Synthesis, String), BuildError> {
    let names = &opts.names;
    let np = NetpolOptions {
        name: names.object.clone(),
        namespace: names.namespace.clone(),
        labels: opts.labels.clone(),
        pod: opts.pod.clone(),
        cluster: opts.cluster,
        ingress_from_anywhere: opts.ingress_from_anywhere,
        egress_dns_anywhere: opts.egress_dns_anywhere,
    };
    let s = netpol::synthesize(activity, &np).map_err(SynthError::from)?;
    let yaml = netpol::to_yaml(&s.policy).map_err(SynthError::from)?;
    Ok((s, yaml))
}

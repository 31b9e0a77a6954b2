//! What to verify: the artifacts named by --profiles and the file flags, read and checked
//! before anything slow runs, so bad input fails in a second with exit code 1.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use k8s_openapi::api::{core::v1::SecurityContext, networking::v1::NetworkPolicy};
use oci_spec::runtime::LinuxSeccomp;
use profgen::{
    cluster::Cluster,
    model::{Activity, Recording},
    synth::workload_activity,
    verify::{self, apparmor, netpol, set::Artifact},
};

use super::VerifyArgs;

pub struct Inputs {
    pub seccomp: Option<(PathBuf, LinuxSeccomp)>,
    pub security_context: Option<(PathBuf, SecurityContext)>,
    /// The profile's file (read again by the proof) and its name.
    pub apparmor: Option<(PathBuf, String)>,
    pub network_policy: Option<NetworkPolicyInput>,
}

pub struct NetworkPolicyInput {
    pub path: PathBuf,
    pub policies: Vec<NetworkPolicy>,
    pub recording: PathBuf,
    pub activity: Activity,
    pub cluster: Option<Cluster>,
}

impl Inputs {
    pub fn load(args: &VerifyArgs) -> anyhow::Result<Self> {
        if let Some(dir) = &args.profiles {
            if !dir.is_dir() {
                bail!("--profiles {}: not a directory", dir.display());
            }
        }
        let file = |flag: &Option<PathBuf>, artifact: Artifact| -> Option<PathBuf> {
            flag.clone().or_else(|| {
                let p = args.profiles.as_ref()?.join(artifact.file_name());
                p.is_file().then_some(p)
            })
        };
        let seccomp = file(&args.seccomp, Artifact::Seccomp)
            .map(|p| -> anyhow::Result<_> {
                let profile = verify::load_profile(&p)?;
                Ok((p, profile))
            })
            .transpose()?;
        let security_context = file(&args.security_context, Artifact::SecurityContext)
            .map(|p| -> anyhow::Result<_> {
                let sc = verify::security_context::load(&p)?;
                Ok((p, sc))
            })
            .transpose()?;
        let apparmor = file(&args.apparmor, Artifact::AppArmor)
            .map(|p| -> anyhow::Result<_> {
                let (_, name) = apparmor::load_profile(&p)?;
                Ok((p, name))
            })
            .transpose()?;
        let network_policy = file(&args.network_policy, Artifact::NetworkPolicy)
            .map(|p| network_policy(args, p))
            .transpose()?;
        let inputs = Self {
            seccomp,
            security_context,
            apparmor,
            network_policy,
        };
        if inputs.is_empty() {
            match &args.profiles {
                Some(dir) => bail!(
                    "{} holds none of seccomp.json, securitycontext.yaml, apparmor.profile, networkpolicy.yaml: nothing to verify",
                    dir.display()
                ),
                None => bail!(
                    "nothing to verify: give --profiles DIR, or --seccomp, --security-context, --apparmor or --network-policy"
                ),
            }
        }
        if inputs.needs_bundle() {
            if args.bundle.is_none() {
                bail!(
                    "--bundle DIR is needed to verify {}",
                    inputs.enforced().join(", ")
                );
            }
            if args.test.is_empty() {
                bail!(
                    "a suite is needed to verify {}: add `-- SUITE [ARGS…]` (a command that exercises the workload and exits 0)",
                    inputs.enforced().join(", ")
                );
            }
        }
        Ok(inputs)
    }

    fn is_empty(&self) -> bool {
        self.seccomp.is_none()
            && self.security_context.is_none()
            && self.apparmor.is_none()
            && self.network_policy.is_none()
    }

    /// The artifacts proven by running the bundle.
    fn enforced(&self) -> Vec<&'static str> {
        [
            (self.seccomp.is_some(), Artifact::Seccomp),
            (self.security_context.is_some(), Artifact::SecurityContext),
            (self.apparmor.is_some(), Artifact::AppArmor),
        ]
        .into_iter()
        .filter(|(given, _)| *given)
        .map(|(_, a)| a.name())
        .collect()
    }

    fn needs_bundle(&self) -> bool {
        !self.enforced().is_empty()
    }
}

fn network_policy(args: &VerifyArgs, path: PathBuf) -> anyhow::Result<NetworkPolicyInput> {
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let policies = netpol::parse_policies(&text).with_context(|| path.display().to_string())?;
    let recording = args
        .recording
        .clone()
        .or_else(|| {
            let p = args.profiles.as_ref()?.join("recording.json");
            p.is_file().then_some(p)
        })
        .with_context(|| {
            format!(
                "{}: the NetworkPolicy proof replays the recorded flows: give --recording FILE (the recording it was made from)",
                path.display()
            )
        })?;
    let rec = Recording::load(&recording)?;
    let cluster = args
        .cluster
        .as_deref()
        .map(Cluster::from_file)
        .transpose()?;
    Ok(NetworkPolicyInput {
        path,
        policies,
        recording,
        activity: workload_activity(&rec).into_owned(),
        cluster,
    })
}

/// `path` for a header line.
pub fn shown(path: &Path) -> String {
    path.display().to_string()
}

//! Running each proof, one block of output per artifact, then the summary line.

use std::{net::IpAddr, path::Path};

use anyhow::anyhow;
use profgen::verify::{
    self,
    apparmor::{self, AppArmorCheck, VmOptions},
    netpol::{self, NetpolCheck},
    probe,
    runc::Runc,
    set::{self, Artifact, Verdict},
    Report, SeccompCheck, VerifyFailed,
};

use super::{
    inputs::{shown, Inputs, NetworkPolicyInput},
    VerifyArgs,
};

pub fn all(args: &VerifyArgs, inputs: &Inputs) -> anyhow::Result<()> {
    let mut outcomes: Vec<(Artifact, Verdict)> = Vec::new();
    if inputs.seccomp.is_some() || inputs.security_context.is_some() {
        outcomes.extend(runc_proof(args, inputs));
    }
    if let Some((path, name)) = &inputs.apparmor {
        outcomes.push((Artifact::AppArmor, apparmor_proof(args, path, name)));
    }
    if let Some(np) = &inputs.network_policy {
        outcomes.push((Artifact::NetworkPolicy, netpol_proof(args, np)));
    }
    outcomes.sort_by_key(|(a, _)| *a);

    eprintln!("profgen: verify: {}", set::summary(&outcomes));
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Failed(_)))
        .map(|(a, _)| a.name())
        .collect();
    if !failed.is_empty() {
        return Err(VerifyFailed(failed.join(", ")).into());
    }
    let not_run = set::not_run(&outcomes);
    if !not_run.is_empty() {
        return Err(anyhow!("could not verify {}", not_run.join(", ")));
    }
    Ok(())
}

fn header(what: &str) {
    println!("== {what}");
}

/// An error as one line: the chain, outermost first.
fn one_line(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !parts.last().is_some_and(|l| l.contains(&s)) {
            parts.push(s);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// Seccomp and the securityContext: one runc run with both; a second under the seccomp
/// profile alone when the joint run fails on a fact about neither.
fn runc_proof(args: &VerifyArgs, inputs: &Inputs) -> Vec<(Artifact, Verdict)> {
    let seccomp = inputs.seccomp.as_ref();
    let sc = inputs.security_context.as_ref();
    let bundle = args.bundle.as_deref().expect("checked by Inputs::load");
    let mut what = Vec::new();
    if let Some((p, _)) = seccomp {
        what.push(format!("seccomp ({})", shown(p)));
    }
    if let Some((p, _)) = sc {
        what.push(format!("securitycontext ({})", shown(p)));
    }
    // The named syscalls, then the argument probes of what the profile filters by argument.
    let probes = match seccomp {
        Some((_, profile)) if !args.no_probe => {
            let mut probes = args.probe.clone();
            if args.probe_path.is_none() {
                probes.extend(
                    probe::argument_probes_for(profile)
                        .into_iter()
                        .filter(|p| !args.probe.iter().any(|q| q == p))
                        .map(str::to_owned),
                );
            }
            probes
        }
        _ => Vec::new(),
    };
    header(&format!(
        "{}: {} under runc, the suite on the host{}",
        what.join(", "),
        shown(bundle),
        match (probes.is_empty(), &args.probe_path) {
            (true, _) => String::new(),
            (false, None) => format!(", profgen's probe: {}", probes.join(", ")),
            (false, Some(p)) => format!(", the bundle's probe {p}: {}", probes.join(", ")),
        }
    ));
    let check = |with_sc: bool| SeccompCheck {
        bundle: bundle.to_owned(),
        profile: seccomp.map(|(_, p)| p.clone()),
        test_command: args.test.clone(),
        wait_tcp: args.wait_tcp,
        probe_path: args.probe_path.clone(),
        probes: probes.clone(),
        test_timeout: args.timeout,
        runc: Runc::new(&args.runc),
        security_context: if with_sc {
            sc.map(|(_, s)| s.clone())
        } else {
            None
        },
    };
    let together = match run_once(&check(true)) {
        Ok(report) => report,
        Err(why) => {
            println!("ERROR {why}");
            let v = Verdict::NotRun(why);
            return given(seccomp.is_some(), sc.is_some(), v.clone(), v);
        }
    };
    let alone = if set::needs_seccomp_alone(&together, seccomp.is_some(), sc.is_some()) {
        header("seccomp alone, to tell which of the two the failure is due to");
        match run_once(&check(false)) {
            Ok(report) => Some(report),
            Err(why) => {
                println!("ERROR {why}");
                None
            }
        }
    } else {
        None
    };
    let (s, c) = set::attribute_run(&together, seccomp.is_some(), sc.is_some(), alone.as_ref());
    s.map(|v| (Artifact::Seccomp, v))
        .into_iter()
        .chain(c.map(|v| (Artifact::SecurityContext, v)))
        .collect()
}

fn given(seccomp: bool, sc: bool, a: Verdict, b: Verdict) -> Vec<(Artifact, Verdict)> {
    let mut out = Vec::new();
    if seccomp {
        out.push((Artifact::Seccomp, a));
    }
    if sc {
        out.push((Artifact::SecurityContext, b));
    }
    out
}

/// One runc run, its report printed; `Err` when it could not run at all.
fn run_once(check: &SeccompCheck) -> Result<Report, String> {
    match verify::enforce(check) {
        Ok(report) => {
            print!("{report}");
            Ok(report)
        }
        Err(err) => Err(one_line(&err)),
    }
}

fn apparmor_proof(args: &VerifyArgs, path: &Path, name: &str) -> Verdict {
    let bundle = args.bundle.as_deref().expect("checked by Inputs::load");
    header(&format!(
        "apparmor ({}): profile {name} enforced by a kernel under qemu, {} as its root, the suite inside the VM",
        shown(path),
        shown(bundle)
    ));
    let check = AppArmorCheck {
        profile: path.to_owned(),
        bundle: bundle.to_owned(),
        wait_tcp: args.wait_tcp,
        suite: args.test.clone(),
        suite_timeout: args.timeout,
        vm: VmOptions {
            kernel: args.kernel.clone(),
            ..VmOptions::default()
        },
    };
    match apparmor::prove(&check) {
        Ok(proof) => {
            print!("{proof}");
            match proof.short_reason() {
                None => Verdict::Passed,
                Some(why) => Verdict::Failed(why),
            }
        }
        Err(err) => {
            let why = one_line(&err);
            println!("ERROR {why}");
            Verdict::NotRun(why)
        }
    }
}

fn netpol_proof(args: &VerifyArgs, np: &NetworkPolicyInput) -> Verdict {
    header(&format!(
        "networkpolicy ({}): the evaluator, the flows of {} and probes",
        shown(&np.path),
        shown(&np.recording)
    ));
    let check = NetpolCheck {
        policies: &np.policies,
        activity: &np.activity,
        pod_ips: args.pod_ip.iter().map(IpAddr::to_canonical).collect(),
        cluster: np.cluster.as_ref(),
    };
    match netpol::prove(&check) {
        Ok(proof) => {
            print!("{proof}");
            match proof.short_reason() {
                None => Verdict::Passed,
                Some(why) => Verdict::Failed(why),
            }
        }
        Err(err) => {
            let why = one_line(&err);
            println!("ERROR {why}");
            Verdict::NotRun(why)
        }
    }
}

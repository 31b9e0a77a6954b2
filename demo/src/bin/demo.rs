//! `cargo xtask demo`: the main job on the built-in workload, the way a user runs it.
//!
//! 1. build the OCI bundle (nginx + static site + probe) with a permissive seccomp filter,
//! 2. `profgen record --cgroup` a parent cgroup, start the container below it under runc,
//! 3. run the HTTP test suite against it, stop the container, stop the recording,
//! 4. `profgen synth` the recording into `profiles/demo-nginx/`: seccomp, AppArmor,
//!    NetworkPolicy, securityContext,
//! 5. `profgen verify`: the same container under the synthesized seccomp profile, the same
//!    suite, and a probe outside the profile that must get EPERM,
//! 6. the AppArmor profile enforced by a real AppArmor kernel (Debian's, under qemu): the
//!    suite with zero DENIED lines, probes outside the profile DENIED,
//! 7. the NetworkPolicy judged by the evaluator: every recorded flow admitted, a stranger,
//!    another port and an egress connection denied,
//! 8. the securityContext evidence.
//!
//! The container gets its own network namespace joined to the host by a veth pair, as a pod
//! is to its node: the suite reaches nginx from a non-loopback address, so the recorded flows
//! are what a NetworkPolicy governs (loopback traffic never leaves a pod and is left out).

use std::{
    collections::BTreeMap,
    fmt::Display,
    fs,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    process::{Child, Command},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};
use profgen::{
    cgroup::Cgroup,
    model::Recording,
    synth::workload_activity,
    verify::{
        apparmor::{self, AppArmorCheck, VmOptions},
        netpol::{self, parse_policies, NetpolCheck},
        runc::{unique_id, Runc},
    },
};
use profgen_demo::{
    build_bundle, config, netns::PodNetwork, seccomp, suite, synth_args, BundleOptions,
};

/// The veth pair's addresses (TEST-NET-2, never routed): the node's end and the pod's.
const NODE_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const POD_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// nginx's port. Fixed, so the NetworkPolicy is the same from run to run: nginx has the pod's
/// network namespace to itself, so nothing else can hold it.
const PORT: u16 = 8080;
/// Runs recorded and merged: a syscall or file that only some runs need is still allowed.
const RUNS: u32 = 3;

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("locating the workspace")?
        .to_owned();
    let out_dir = root.join("profiles/demo-nginx");
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("locating the build directory")?
        .to_owned();
    let profgen = bin_dir.join("profgen");
    let suite_bin = bin_dir.join("demo-suite");
    for bin in [&profgen, &suite_bin] {
        ensure!(
            bin.is_file(),
            "{} is missing: run `cargo xtask demo`, which builds it",
            bin.display()
        );
    }
    // Beside the build (CARGO_TARGET_DIR when set), never in /tmp: bundles are large.
    let target_dir = bin_dir.parent().unwrap_or(&bin_dir);
    let work = tempfile::Builder::new()
        .prefix("profgen-demo-")
        .tempdir_in(target_dir)
        .with_context(|| format!("creating a work directory under {}", target_dir.display()))?;

    step("building the OCI bundle: the host's nginx and its libraries, the site, the probe");
    let parent = Cgroup::root()?.path().join("profgen-demo");
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let cgroups_path = format!("/profgen-demo/nginx-{}", std::process::id());
    let mut bundle = build_bundle(
        &work.path().join("bundle"),
        &BundleOptions {
            cgroups_path: Some(cgroups_path.clone()),
            seccomp: Some(seccomp::recording()),
            ..BundleOptions::new(PORT)
        },
    )?;
    let net = PodNetwork::create("profgen-demo", "pgd", std::process::id(), NODE_IP, POD_IP)
        .map_err(anyhow::Error::msg)?;
    join(&net, &mut bundle)?;
    eprintln!(
        "    nginx gets its own network namespace: {POD_IP}:{PORT}, reached from the node's end {NODE_IP}"
    );

    let mut recordings = Vec::new();
    for run in 1..=RUNS {
        step(&format!(
            "run {run} of {RUNS}: recording cgroup {} (containers below it included) while nginx serves the suite",
            parent.display()
        ));
        let recording = work.path().join(format!("run-{run}.json"));
        record_one_run(&profgen, &parent, &bundle, &recording, work.path())?;
        recordings.push(recording);
    }

    let fresh = work.path().join("profiles");
    step(&format!(
        "synthesizing the {RUNS} runs into one profile set"
    ));
    run(Command::new(&profgen)
        .arg("synth")
        .args(&recordings)
        .arg("--out")
        .arg(&fresh)
        .args(synth_args()))?;
    update_committed(&fresh, &out_dir)?;

    step("verifying: the same container under the seccomp profile and the suggested securityContext, the same suite, a probe outside it");
    run(Command::new(&profgen)
        .args(["verify", "--bundle"])
        .arg(&bundle.dir)
        .arg("--seccomp")
        .arg(out_dir.join("seccomp.json"))
        .arg("--security-context")
        .arg(out_dir.join("securitycontext.yaml"))
        .args(["--probe", "unshare,ptrace,personality", "--wait-tcp"])
        .arg(bundle.addr.to_string())
        .arg("--")
        .arg(&suite_bin)
        .args(["--url", &bundle.url()]))?;
    drop(net);
    let _ = fs::remove_dir(&parent);

    // The same proofs `profgen verify --apparmor`/`--network-policy` run.
    step("AppArmor: the profile enforced by Debian's kernel under qemu, the same suite, probes");
    let proof = apparmor::prove(&AppArmorCheck {
        profile: out_dir.join("apparmor.profile"),
        bundle: bundle.dir.clone(),
        wait_tcp: Some(bundle.addr),
        suite: vec![
            suite_bin.clone().into(),
            "--url".into(),
            bundle.url().into(),
        ],
        suite_timeout: Duration::from_secs(120),
        vm: VmOptions::default(),
    })
    .context("running the AppArmor VM")?;
    indented(&proof);
    let failures = proof.failures();
    ensure!(
        failures.is_empty(),
        "the AppArmor profile is not proven: {}",
        failures.join("; ")
    );
    let aa = format!("in the VM ({})", proof.passed_phrase());

    step("NetworkPolicy: recorded flows and probes judged by the evaluator");
    let rec = Recording::load(out_dir.join("recording.json"))?;
    let policies = parse_policies(&fs::read_to_string(out_dir.join("networkpolicy.yaml"))?)?;
    let proof = netpol::prove(&NetpolCheck {
        policies: &policies,
        activity: &workload_activity(&rec),
        pod_ips: vec![IpAddr::V4(POD_IP)],
        cluster: None,
    })?;
    indented(&proof);
    let failures = proof.failures();
    ensure!(
        failures.is_empty(),
        "the NetworkPolicy is not proven: {}",
        failures.join("; ")
    );
    ensure!(
        !proof.recorded.is_empty(),
        "no recorded flow to judge: the recording saw no connection to nginx"
    );
    let np = format!("by the evaluator ({})", proof.passed_phrase());

    step("securityContext: what the recording supports, with the evidence");
    let evidence = fs::read_to_string(out_dir.join("securitycontext.md"))?;
    for line in evidence.lines().filter(|l| !l.is_empty()) {
        println!("    {line}");
    }

    step(&format!(
        "done: {} holds the recording and four artifacts, each proven: seccomp and the securityContext under runc; AppArmor {aa}; NetworkPolicy {np}",
        out_dir.display()
    ));
    Ok(())
}

/// One run: `profgen record --cgroup PARENT`, nginx started below it under runc, the suite,
/// a graceful stop (shutting down is part of what the workload does: nginx's workers and
/// master exit through exit_group), then the recording stopped.
fn record_one_run(
    profgen: &Path,
    parent: &Path,
    bundle: &profgen_demo::Bundle,
    recording: &Path,
    work: &Path,
) -> Result<()> {
    let ready = work.join("ready");
    let _ = fs::remove_file(&ready);
    let mut recorder = Command::new(profgen)
        .args(["record", "--cgroup"])
        .arg(parent)
        .arg("--out")
        .arg(recording)
        .arg("--ready-file")
        .arg(&ready)
        .spawn()
        .context("starting profgen record")?;
    wait_for(&ready, &mut recorder)?;
    let checks = {
        let container = Runc::default()
            .run_detached(&bundle.dir, &unique_id("profgen-demo"))
            .context("starting the demo container")?;
        container.wait_tcp(bundle.addr, Duration::from_secs(20))?;
        let checks = suite::run(bundle.addr, Duration::from_secs(10));
        container.stop(Duration::from_secs(10))?;
        checks
    };
    let failed = checks.iter().filter(|c| c.result.is_err()).count();
    for check in &checks {
        match &check.result {
            Ok(()) => println!("    ok    {}", check.name),
            Err(why) => println!("    FAIL  {}: {why}", check.name),
        }
    }
    // SAFETY: plain kill(2) on our child.
    unsafe { libc::kill(recorder.id() as i32, libc::SIGINT) };
    let status = recorder.wait()?;
    ensure!(failed == 0, "{failed} check(s) failed while recording");
    ensure!(status.success(), "profgen record failed ({status})");
    Ok(())
}

/// Replaces the committed set with the fresh one only when an artifact differs: the same
/// workload recorded again gives the same bytes, and then the committed recording (whose
/// times and cgroup ids differ from run to run) stays as it is.
fn update_committed(fresh: &Path, committed: &Path) -> Result<()> {
    let files = |dir: &Path| -> Result<BTreeMap<String, Vec<u8>>> {
        let mut out = BTreeMap::new();
        if !dir.is_dir() {
            return Ok(out);
        }
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_file() && name != "recording.json" {
                out.insert(name, fs::read(entry.path())?);
            }
        }
        Ok(out)
    };
    let (new, old) = (files(fresh)?, files(committed)?);
    let changed: Vec<&String> = new
        .keys()
        .chain(old.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|f| new.get(*f) != old.get(*f))
        .collect();
    if changed.is_empty() {
        step(&format!(
            "{}: unchanged (the new recording gives the same artifacts byte for byte; the committed recording is kept)",
            committed.display()
        ));
        return Ok(());
    }
    step(&format!(
        "{}: updated ({} changed)",
        committed.display(),
        changed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    fs::create_dir_all(committed)?;
    for name in old.keys().filter(|f| !new.contains_key(*f)) {
        fs::remove_file(committed.join(name))?;
    }
    for entry in fs::read_dir(fresh)? {
        let entry = entry?;
        profgen::output::write_atomic(
            &committed.join(entry.file_name()),
            &fs::read(entry.path())?,
        )?;
    }
    Ok(())
}

/// A proof's report, indented under its step.
fn indented(report: &impl Display) {
    for line in report.to_string().lines() {
        println!("    {line}");
    }
}

/// Points the bundle at the namespace and nginx at the pod's address.
fn join(net: &PodNetwork, bundle: &mut profgen_demo::Bundle) -> Result<()> {
    let mut spec: serde_json::Value = serde_json::from_slice(&fs::read(&bundle.config)?)?;
    let namespaces = spec["linux"]["namespaces"]
        .as_array_mut()
        .context("config.json has no linux.namespaces")?;
    namespaces.push(serde_json::json!({
        "type": "network",
        "path": net.path(),
    }));
    fs::write(&bundle.config, serde_json::to_vec_pretty(&spec)?)?;
    let conf = bundle
        .rootfs
        .join(config::NGINX_CONF.trim_start_matches('/'));
    let text = fs::read_to_string(&conf)?;
    ensure!(
        text.contains("listen 127.0.0.1:"),
        "{} does not listen on 127.0.0.1",
        conf.display()
    );
    fs::write(
        &conf,
        text.replace("listen 127.0.0.1:", &format!("listen {POD_IP}:")),
    )?;
    bundle.addr = SocketAddr::from((POD_IP, bundle.addr.port()));
    Ok(())
}

fn step(what: &str) {
    eprintln!("==> {what}");
}

fn wait_for(ready: &Path, recorder: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        if let Some(status) = recorder.try_wait()? {
            bail!("profgen record exited before recording started ({status})");
        }
        if Instant::now() > deadline {
            let _ = recorder.kill();
            bail!("profgen record did not start within 30 s");
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    ensure!(status.success(), "{cmd:?} failed ({status})");
    Ok(())
}

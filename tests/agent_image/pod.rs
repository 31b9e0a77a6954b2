//! The agent's container as a node would run it: the image written and unpacked, the
//! DaemonSet's config (`spec.rs`) with the test's API, credentials and host directories.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use profgen::verify::runc::{unique_id, Container, Runc};
use profgen_demo::image::{self, layout, AgentImage};
use serde_json::Value;

use super::spec::{self, agent_spec, AgentSpec, DaemonSetAgent};
use crate::support::{
    assert_success,
    cluster::{
        cgroup2_mount, fixtures, free_port, kubeconfig_with_ca, serve_api, Replay, NODE, NS,
    },
    output, profgen_binary,
};

pub struct AgentPod {
    pub tmp: tempfile::TempDir,
    pub image: AgentImage,
    pub bundle: PathBuf,
    /// The agent's listener, on the host's loopback.
    pub port: u16,
    /// What the test mounts for the hostPaths /var/lib/profgen and /var/lib/kubelet/seccomp.
    pub var_lib_profgen: PathBuf,
    pub kubelet_seccomp: PathBuf,
    _api: Replay,
}

impl AgentPod {
    /// Writes the image (twice: the same binary must make the same digest), unpacks it and
    /// writes the bundle's config.json.
    pub fn prepare(daemonset: &DaemonSetAgent) -> AgentPod {
        let tmp = tempfile::tempdir().unwrap();
        let profgen = profgen_binary();
        let built = image::write_agent_image(&profgen, &tmp.path().join("layout")).unwrap();
        let again = image::write_agent_image(&profgen, &tmp.path().join("layout2")).unwrap();
        assert_eq!(
            built.written.manifest.digest, again.written.manifest.digest,
            "two builds of the image differ"
        );
        let bundle = tmp.path().join("agent");
        let unpacked = layout::unpack(&built.dir, image::TAG, &bundle.join("rootfs")).unwrap();
        assert_eq!(unpacked.manifest_digest, built.written.manifest.digest);

        let api = serve_api(&fixtures());
        let credentials = tmp.path().join("credentials");
        fs::create_dir(&credentials).unwrap();
        let ca = self_signed_ca(&credentials);
        kubeconfig_with_ca(
            &credentials,
            &api.url,
            &Path::new(spec::CREDENTIALS).join(ca.file_name().unwrap()),
        );
        let (var_lib_profgen, kubelet_seccomp) =
            (tmp.path().join("profgen"), tmp.path().join("seccomp"));
        for d in [&var_lib_profgen, &kubelet_seccomp] {
            fs::create_dir(d).unwrap();
        }
        let port = free_port();
        let config = agent_spec(
            daemonset,
            &AgentSpec {
                entrypoint: unpacked.config["config"]["Entrypoint"]
                    .as_array()
                    .expect("the image has an Entrypoint")
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect(),
                credentials: &credentials,
                node: NODE,
                namespace: NS,
                listen: format!("127.0.0.1:{port}"),
                host_paths: vec![
                    ("/var/lib/profgen".into(), var_lib_profgen.clone()),
                    ("/var/lib/kubelet/seccomp".into(), kubelet_seccomp.clone()),
                    ("/sys/fs/cgroup".into(), cgroup2_mount()),
                ],
                cgroups_path: format!("/{}", unique_id("profgen-agent-image")),
            },
        );
        let pod = AgentPod {
            tmp,
            image: built,
            bundle,
            port,
            var_lib_profgen,
            kubelet_seccomp,
            _api: api,
        };
        pod.write_config(&config);
        pod
    }

    fn config_path(&self) -> PathBuf {
        self.bundle.join("config.json")
    }

    fn write_config(&self, config: &Value) {
        fs::write(
            self.config_path(),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
    }

    /// Changes the bundle's config.json.
    pub fn edit_config(&self, edit: impl FnOnce(&mut Value)) {
        let mut config: Value =
            serde_json::from_slice(&fs::read(self.config_path()).unwrap()).unwrap();
        edit(&mut config);
        self.write_config(&config);
    }

    pub fn start(&self) -> Container {
        Runc::default()
            .run_detached(&self.bundle, &unique_id("profgen-agent-image"))
            .unwrap_or_else(|e| panic!("starting the agent's container: {e}"))
    }
}

/// A CA certificate for the kubeconfig, as a pod's service account has one (`ca.crt`). The
/// replayed API is plain HTTP: the CA only makes the client trust it alone rather than look
/// for a system trust store, which the image does not have, as in a pod.
fn self_signed_ca(dir: &Path) -> PathBuf {
    let (cert, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let out = output(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=profgen-replay-ca", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    assert_success("openssl req -x509", &out);
    cert
}

/// profgen's own lines from the container's stderr (`Container::logs` labels its streams).
pub fn agent_lines(agent: &Container) -> Vec<String> {
    agent
        .logs()
        .lines()
        .filter(|l| l.starts_with("profgen: "))
        .map(str::to_owned)
        .collect()
}

/// Waits until the agent's stderr holds each of `lines`; a stopped agent fails the test with
/// its own error line first.
pub fn wait_for_logs<S: AsRef<str>>(agent: &Container, lines: &[S], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let logs = agent.logs();
        if lines.iter().all(|l| logs.contains(l.as_ref())) {
            return;
        }
        let running = is_running(agent);
        if !running || Instant::now() >= deadline {
            let error = logs
                .lines()
                .find(|l| l.starts_with("profgen: error:"))
                .unwrap_or("(no error line)");
            panic!(
                "the confined agent {} before saying {:?}: {error}\n{logs}",
                if running { "timed out" } else { "stopped" },
                lines.iter().map(AsRef::as_ref).collect::<Vec<_>>()
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

pub fn is_running(agent: &Container) -> bool {
    agent.state().is_ok_and(|s| s.status == "running")
}

/// One plain HTTP/1.1 GET on the agent's listener; the reply's text.
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        sock,
        "GET {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    let _ = sock.read_to_string(&mut reply);
    reply
}

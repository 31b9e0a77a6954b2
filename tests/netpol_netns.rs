//! End-to-end proof of the NetworkPolicy path on real network namespaces.
//!
//! Topology: a hub namespace holding a bridge, and four namespaces joined to it by veth
//! pairs, each with an IPv4 and an IPv6 address:
//!
//! | namespace | role                                   | IPv4        | IPv6           |
//! |-----------|----------------------------------------|-------------|----------------|
//! | workload  | TCP server on 8080, asks DNS over UDP  | 10.231.0.10 | fd00:231::10   |
//! | client    | connects to the workload (allowed)     | 10.231.0.20 | fd00:231::20   |
//! | stranger  | never talks while recording            | 10.231.0.30 | fd00:231::30   |
//! | resolver  | answers UDP port 53                    | 10.231.0.53 | fd00:231::53   |
//!
//! The workload runs under `profgen record -- ip netns exec WORKLOAD …`; the recording is
//! turned into a NetworkPolicy, and the policy is judged by profgen's evaluator: every recorded
//! flow admitted, the stranger's connections and egress probes refused. A recording without
//! network facts fails the test: it would otherwise "prove" an empty policy.
//!
//! The helper processes (workload, client, resolver) are this test binary itself, re-run with
//! `PROFGEN_NETNS_ROLE` set, so the test needs nothing but `ip` (iproute2) and root.

#[path = "support/mod.rs"]
mod support;

use std::{
    collections::BTreeSet,
    env,
    io::{BufRead, BufReader, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use support::{is_root, profgen_binary, skip};

use profgen::{
    cluster::{Cluster, Pod},
    model::{Activity, Direction, Protocol, Recording},
    synth::netpol::{synthesize, to_yaml, NetpolOptions},
    verify::netpol::{recorded_connections, Connection, Evaluator},
};

const ROLE_ENV: &str = "PROFGEN_NETNS_ROLE";
const PORT: u16 = 8080;
const WORKLOAD: (&str, &str) = ("10.231.0.10", "fd00:231::10");
const CLIENT: (&str, &str) = ("10.231.0.20", "fd00:231::20");
const STRANGER: (&str, &str) = ("10.231.0.30", "fd00:231::30");
const RESOLVER: (&str, &str) = ("10.231.0.53", "fd00:231::53");
/// Connections the client makes, so the workload knows when to stop: one per address family.
const CLIENT_CONNECTIONS: usize = 2;
const ROLE_DEADLINE: Duration = Duration::from_secs(60);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Not a test: the entry point of the helper processes. Does nothing unless
/// `PROFGEN_NETNS_ROLE` is set, which only the harness below does.
#[test]
fn netns_helper_role() {
    let Ok(role) = env::var(ROLE_ENV) else {
        return;
    };
    match role.as_str() {
        "workload" => workload(),
        "client" => client(),
        "resolver" => resolver(),
        other => panic!("unknown role {other}"),
    }
}

/// Listens on 8080 (both families on one socket), resolves a name over UDP, serves the
/// client's connections, then exits so that the recording ends.
fn workload() {
    let listener = TcpListener::bind(("::", PORT)).expect("bind [::]:8080");
    for resolver in [RESOLVER.0, RESOLVER.1] {
        dns_query(ip(resolver));
    }
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + ROLE_DEADLINE;
    let mut served = 0;
    while served < CLIENT_CONNECTIONS {
        assert!(Instant::now() < deadline, "workload: no client in time");
        match listener.accept() {
            Ok((stream, peer)) => {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).unwrap();
                (&stream).write_all(b"ok\n").unwrap();
                eprintln!("workload: served {peer}");
                served += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("workload: accept: {e}"),
        }
    }
}

/// A DNS query for `example.test. A` and its answer; retried while the resolver starts.
fn dns_query(resolver: IpAddr) {
    let bind: SocketAddr = if resolver.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let sock = UdpSocket::bind(bind).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let query: &[u8] =
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x04test\x00\x00\x01\x00\x01";
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 512];
    loop {
        assert!(
            Instant::now() < deadline,
            "workload: no DNS answer from {resolver}"
        );
        let _ = sock.send_to(query, (resolver, 53));
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if n >= 2 && buf[..2] == query[..2] {
                return;
            }
        }
    }
}

/// Answers every datagram on port 53 (both families) until killed or the deadline.
fn resolver() {
    let sock = UdpSocket::bind(("::", 53)).expect("bind [::]:53");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + ROLE_DEADLINE;
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok((n, peer)) = sock.recv_from(&mut buf) {
            if n > 2 {
                buf[2] |= 0x80; // QR: a response
                let _ = sock.send_to(&buf[..n], peer);
            }
        }
    }
}

/// Connects to the workload once per family, retrying while it starts.
fn client() {
    for addr in [WORKLOAD.0, WORKLOAD.1] {
        let target = SocketAddr::new(ip(addr), PORT);
        let deadline = Instant::now() + ROLE_DEADLINE;
        let stream = loop {
            match TcpStream::connect_timeout(&target, Duration::from_secs(2)) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(Instant::now() < deadline, "client: {target}: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (&stream).write_all(b"hello\n").unwrap();
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).unwrap();
        assert_eq!(line, "ok\n", "client: reply from {target}");
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn ip_cmd(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// The namespaces; deleted on drop, whatever happened (deleting a namespace removes its veth
/// ends, and with the hub the bridge).
struct Topology {
    prefix: String,
    created: Vec<String>,
}

impl Topology {
    fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    fn build() -> Topology {
        let prefix = format!("pgnp{}", std::process::id() % 100_000);
        let mut topo = Topology {
            prefix,
            created: Vec::new(),
        };
        let hub = topo.ns("hub");
        for role in ["hub", "wl", "cl", "st", "dns"] {
            let name = topo.ns(role);
            ip_cmd(&["netns", "add", &name]);
            topo.created.push(name.clone());
            ip_cmd(&["-n", &name, "link", "set", "lo", "up"]);
        }
        ip_cmd(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        ip_cmd(&["-n", &hub, "link", "set", "br0", "up"]);
        for (role, (v4, v6)) in [
            ("wl", WORKLOAD),
            ("cl", CLIENT),
            ("st", STRANGER),
            ("dns", RESOLVER),
        ] {
            let ns = topo.ns(role);
            let hub_end = format!("v{role}");
            ip_cmd(&[
                "-n", &hub, "link", "add", &hub_end, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            ip_cmd(&["-n", &hub, "link", "set", &hub_end, "master", "br0", "up"]);
            ip_cmd(&["-n", &ns, "addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
            // nodad: usable at once, no duplicate-address wait.
            ip_cmd(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                "eth0",
                "nodad",
            ]);
            ip_cmd(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        topo
    }

    /// This test binary, in a namespace, in a role.
    fn helper(&self, role_ns: &str, role: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(role_ns)])
            .arg(env::current_exe().unwrap())
            .args([
                "--exact",
                "netns_helper_role",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE_ENV, role);
        cmd
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for name in self.created.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Kills a background process on drop, so a failing assertion leaves nothing running.
struct Running(Option<Child>);

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        Running(Some(cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))))
    }

    fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.0
            .as_mut()
            .expect("not waited yet")
            .try_wait()
            .expect("try_wait")
    }

    fn wait(mut self) -> std::process::Output {
        let child = self.0.take().expect("not waited yet");
        child.wait_with_output().expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every cgroup's network facts in one.
fn network_of(rec: &Recording) -> Activity {
    let mut all = Activity::default();
    for cg in &rec.cgroups {
        all.flows.extend(cg.activity.flows.iter().cloned());
        all.listens.extend(cg.activity.listens.iter().cloned());
    }
    all
}

#[test]
fn synthesized_policy_admits_recorded_flows_and_denies_strangers() {
    if env::var_os(ROLE_ENV).is_some() {
        return; // a helper process, not the harness
    }
    if !is_root() {
        return skip("network namespaces need root");
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return skip("`ip` (iproute2) is not installed");
    }
    let profgen = profgen_binary();
    let topo = Topology::build();
    let dir = tempfile::tempdir().unwrap();
    let rec_path = dir.path().join("recording.json");

    let _resolver = Running::spawn(topo.helper("dns", "resolver").stdout(Stdio::null()));
    // profgen runs `ip netns exec WORKLOAD <this binary> …`; the role travels in the
    // environment, through profgen and ip.
    let workload = topo.helper("wl", "workload");
    let log_path = dir.path().join("profgen.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut recorder = Running::spawn(
        Command::new(&profgen)
            .args(["record", "--out"])
            .arg(&rec_path)
            .arg("--")
            .arg(workload.get_program())
            .args(workload.get_args())
            .env(ROLE_ENV, "workload")
            .stdout(Stdio::null())
            .stderr(log),
    );
    let client = Running::spawn(
        topo.helper("cl", "client")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    // Whichever ends first: a recorder that gives up must not leave the client waiting.
    let deadline = Instant::now() + ROLE_DEADLINE * 2;
    let recorded = loop {
        if let Some(status) = recorder.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "profgen record did not stop in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        recorded.success(),
        "profgen record failed ({recorded}): {stderr}"
    );
    let client = client.wait();
    assert!(
        client.status.success(),
        "the client failed: {}",
        String::from_utf8_lossy(&client.stderr)
    );
    let rec = Recording::load(&rec_path).unwrap_or_else(|e| panic!("{e}\n{stderr}"));
    let net = network_of(&rec);

    // The recording must hold what the workload did; without it the policy proves nothing.
    assert!(
        !(net.flows.is_empty() && net.listens.is_empty()),
        "the recording has no network facts (no listening socket, no flow) although the \
         workload listened on {PORT}, served {CLIENT_CONNECTIONS} connections and asked DNS: \
         network recording is missing or broken.\nprofgen said: {stderr}"
    );
    let has = |dir: Direction, proto: Protocol, peer: &str, port: u16| {
        net.flows.iter().any(|f| {
            f.direction == dir
                && f.protocol == proto
                && f.peer == ip(peer)
                && match dir {
                    Direction::Ingress => f.local_port == port,
                    Direction::Egress => f.peer_port == port,
                }
        })
    };
    let expected = [
        (Direction::Ingress, Protocol::Tcp, CLIENT.0, PORT),
        (Direction::Ingress, Protocol::Tcp, CLIENT.1, PORT),
        (Direction::Egress, Protocol::Udp, RESOLVER.0, 53),
        (Direction::Egress, Protocol::Udp, RESOLVER.1, 53),
    ];
    let missing: Vec<String> = expected
        .iter()
        .filter(|(d, p, peer, port)| !has(*d, *p, peer, *port))
        .map(|e| format!("{e:?}"))
        .collect();
    assert!(
        missing.is_empty(),
        "flows missing from the recording: {missing:?}\nrecorded: {:#?}",
        net.flows
    );
    assert!(
        net.listens
            .iter()
            .any(|l| l.protocol == Protocol::Tcp && l.port == PORT),
        "no TCP listen on {PORT} recorded: {:?}",
        net.listens
    );

    // Synthesize: no cluster, so peers are addresses.
    let labels = [("app".to_string(), "netns-workload".to_string())];
    let opts = NetpolOptions {
        name: "netns-workload".into(),
        namespace: Some("default".into()),
        labels: labels.iter().cloned().collect(),
        ..Default::default()
    };
    let synthesis = synthesize(&net, &opts).expect("synthesize");
    println!("{}", to_yaml(&synthesis.policy).unwrap());
    for note in &synthesis.notes {
        println!("note: {note}");
    }
    let spec = synthesis.policy.spec.clone().unwrap();
    assert!(
        !spec.egress.as_ref().unwrap().is_empty(),
        "DNS was used: an egress rule"
    );

    // Judge: the workload is the one pod of the world; the others are outside addresses.
    let me = [ip(WORKLOAD.0), ip(WORKLOAD.1)];
    let world = Cluster {
        pods: vec![Pod {
            name: "netns-workload".into(),
            namespace: "default".into(),
            labels: labels.iter().cloned().collect(),
            ips: me.to_vec(),
            node: None,
            host_network: false,
            phase: Some("Running".into()),
            owners: Vec::new(),
            ports: Vec::new(),
        }],
        ..Default::default()
    };
    let policies = [synthesis.policy];
    let eval = Evaluator::new(&policies, &world).expect("a valid policy");
    let (recorded, unmatched) = recorded_connections(&net, &me);
    assert!(unmatched.is_empty(), "flows of no family: {unmatched:?}");
    let refused: Vec<String> = recorded
        .iter()
        .filter(|c| !eval.allowed(c))
        .map(|c| format!("{c}: {}", eval.check(c)))
        .collect();
    assert!(refused.is_empty(), "recorded flows refused: {refused:#?}");

    let conn = |from: IpAddr, to: IpAddr, protocol, port| Connection {
        from,
        to,
        protocol,
        port,
    };
    let probes = [
        // The stranger, on the workload's own port, both families.
        conn(ip(STRANGER.0), me[0], Protocol::Tcp, PORT),
        conn(ip(STRANGER.1), me[1], Protocol::Tcp, PORT),
        // The client, on another port or protocol.
        conn(ip(CLIENT.0), me[0], Protocol::Tcp, PORT + 1),
        conn(ip(CLIENT.0), me[0], Protocol::Udp, PORT),
        // Egress the workload never used: to the stranger, to the client, DNS elsewhere,
        // the resolver on another port.
        conn(me[0], ip(STRANGER.0), Protocol::Tcp, 80),
        conn(me[1], ip(CLIENT.1), Protocol::Tcp, PORT),
        conn(me[0], ip("192.0.2.53"), Protocol::Udp, 53),
        conn(me[0], ip(RESOLVER.0), Protocol::Udp, 54),
    ];
    let admitted: Vec<String> = probes
        .iter()
        .filter(|c| eval.allowed(c))
        .map(|c| format!("{c}: {}", eval.check(c)))
        .collect();
    assert!(admitted.is_empty(), "probes admitted: {admitted:#?}");
    let seen: BTreeSet<String> = recorded.iter().map(|c| c.to_string()).collect();
    println!(
        "admitted {} recorded flow(s): {seen:?}; refused {} probe(s)",
        recorded.len(),
        probes.len()
    );
    drop(topo);
}

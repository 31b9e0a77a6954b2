//! haproxy in master-worker mode in front of two backends the suite runs itself: chroot and
//! privilege drop, health checks, round robin, gzip, a stick table, the runtime API on a TCP
//! stats socket and a reload through the master CLI.
//!
//! Ports: the frontend on `port`, the master CLI on `port + 1`, the stats socket on
//! `port + 2`, the backends on `port + 3` and `port + 4`.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    thread,
    time::Duration,
};

use oci_spec::runtime::Capability;
use profgen_demo::http::Connection;

use crate::{
    backend::Backend,
    bundle::{Recipe, StateDir, User},
    oci::Process,
    suite::{wait_until, Checks},
    Check, SuiteOptions,
};

pub const BIN: &str = "/usr/sbin/haproxy";
const CONF: &str = "/etc/haproxy/haproxy.cfg";
const UID: u32 = 999;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub fn config(port: u16) -> String {
    let stats = port + 2;
    let (b1, b2) = (port + 3, port + 4);
    format!(
        "global
    master-worker
    log stdout format raw local0 info
    chroot /var/lib/haproxy
    user haproxy
    group haproxy
    pidfile /run/haproxy/haproxy.pid
    stats socket ipv4@127.0.0.1:{stats} level admin
    nbthread 2

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 2
    option redispatch

frontend fe
    bind 127.0.0.1:{port}
    stick-table type ip size 1k expire 10m store http_req_cnt
    http-request track-sc0 src
    http-request return status 200 content-type text/plain string \"pong\" if {{ path /haproxy-ping }}
    http-response set-header X-Proxy profgen
    stats enable
    stats uri /haproxy-stats
    compression algo gzip
    compression type text/plain
    default_backend be

backend be
    balance roundrobin
    option httpchk GET /health
    server b1 127.0.0.1:{b1} check inter 300ms rise 1 fall 2
    server b2 127.0.0.1:{b2} check inter 300ms rise 1 fall 2
"
    )
}

pub fn recipe(port: u16) -> Recipe {
    Recipe {
        name: "haproxy",
        package: "haproxy",
        binaries: vec![BIN.into()],
        trees: vec![],
        files: vec![(CONF.to_owned(), config(port).into_bytes(), 0o644)],
        dirs: vec!["/var/lib/haproxy"],
        users: vec![User {
            name: "haproxy",
            uid: UID,
            gid: UID,
            home: "/var/lib/haproxy",
        }],
        process: Process {
            args: vec![
                BIN.into(),
                "-W".into(),
                "-S".into(),
                format!("ipv4@127.0.0.1:{}", port + 1),
                "-f".into(),
                CONF.into(),
            ],
            env: vec![],
            uid: 0,
            gid: 0,
            capabilities: capabilities(),
        },
        tmpfs: vec![("/tmp", "mode=1777")],
        state: vec![StateDir {
            name: "run",
            destination: "/run/haproxy",
            uid: 0,
            gid: 0,
            mode: 0o755,
        }],
    }
}

/// runc's defaults, plus what the master needs to chroot the worker and switch it to the
/// haproxy user.
pub fn capabilities() -> Vec<Capability> {
    vec![
        Capability::AuditWrite,
        Capability::Kill,
        Capability::NetBindService,
        Capability::SysChroot,
        Capability::Setgid,
        Capability::Setuid,
    ]
}

/// One command on a haproxy CLI (stats socket or master CLI), the whole answer.
fn cli(addr: SocketAddr, cmd: &str) -> Result<String, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("{cmd}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    // The master CLI answers once the client has finished sending.
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("{cmd}: {e}"))?;
    Ok(out)
}

/// `show stat` as (proxy, server) → status.
fn server_status(stats: SocketAddr) -> Result<BTreeMap<(String, String), String>, String> {
    let text = cli(stats, "show stat")?;
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or("")
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let status_col = header
        .iter()
        .position(|h| *h == "status")
        .ok_or("show stat has no status column")?;
    for l in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() > status_col {
            out.insert((f[0].to_owned(), f[1].to_owned()), f[status_col].to_owned());
        }
    }
    Ok(out)
}

fn both_up(stats: SocketAddr) -> Result<bool, String> {
    let s = server_status(stats)?;
    Ok(["b1", "b2"].iter().all(|b| {
        s.get(&("be".into(), b.to_string()))
            .is_some_and(|v| v == "UP")
    }))
}

fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<profgen_demo::http::Response, String> {
    let mut c = Connection::open(addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
    c.request("GET", path, headers).map_err(|e| e.to_string())
}

/// Which backend answered each of `n` requests.
fn backends_of(addr: SocketAddr, n: usize) -> Result<BTreeMap<String, usize>, String> {
    let mut c = Connection::open(addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
    let mut seen = BTreeMap::new();
    for i in 0..n {
        let r = c.get(&format!("/item/{i}")).map_err(|e| e.to_string())?;
        if r.status() != 200 {
            return Err(format!("status {}", r.status()));
        }
        let b = r.header("x-backend").unwrap_or("none").to_owned();
        *seen.entry(b).or_insert(0) += 1;
    }
    Ok(seen)
}

pub fn suite(opts: &SuiteOptions) -> Vec<Check> {
    let addr = opts.addr();
    let master: SocketAddr = ([127, 0, 0, 1], opts.port + 1).into();
    let stats: SocketAddr = ([127, 0, 0, 1], opts.port + 2).into();
    let mut checks = Checks::default();
    let backends = [("b1", opts.port + 3), ("b2", opts.port + 4)]
        .into_iter()
        .map(|(name, port)| Backend::start(([127, 0, 0, 1], port).into(), name))
        .collect::<Result<Vec<_>, _>>();
    let started = checks.add(
        "the two backends listen",
        backends.as_ref().map(drop).map_err(|e| e.to_string()),
    );
    let up = checks.add(
        format!("haproxy at {addr} answers /haproxy-ping"),
        wait_until(opts.ready_timeout, || {
            Ok(get(addr, "/haproxy-ping", &[])
                .is_ok_and(|r| r.status() == 200 && r.body == b"pong"))
        }),
    );
    if !(up && started) {
        return checks.into_vec();
    }
    checks.add(
        "health checks bring both servers UP",
        wait_until(Duration::from_secs(10), || both_up(stats)),
    );
    checks.add(
        "20 requests are balanced round robin over both servers",
        backends_of(addr, 20).and_then(|seen| {
            if seen.get("b1") == Some(&10) && seen.get("b2") == Some(&10) {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        }),
    );
    checks.add(
        "a text response is gzip-compressed for a client that accepts it",
        get(addr, "/big", &[("Accept-Encoding", "gzip")]).and_then(|r| {
            let (_, plain) = crate::backend::body("", "/big");
            if r.header("content-encoding") == Some("gzip") && r.body.len() < plain.len() / 4 {
                Ok(())
            } else {
                Err(format!(
                    "Content-Encoding {:?}, {} bytes",
                    r.header("content-encoding"),
                    r.body.len()
                ))
            }
        }),
    );
    checks.add(
        "the stats page answers",
        get(addr, "/haproxy-stats;csv", &[]).and_then(|r| {
            if r.status() == 200 && String::from_utf8_lossy(&r.body).contains("b1") {
                Ok(())
            } else {
                Err(format!("status {}", r.status()))
            }
        }),
    );
    checks.add(
        "runtime API: a disabled server gets nothing, enabled again it does",
        (|| {
            cli(stats, "disable server be/b1")?;
            let seen = backends_of(addr, 6)?;
            cli(stats, "enable server be/b1")?;
            if seen.get("b2") != Some(&6) {
                return Err(format!("with b1 disabled: {seen:?}"));
            }
            wait_until(Duration::from_secs(10), || both_up(stats))
        })(),
    );
    checks.add(
        "the stick table counts the client's requests",
        cli(stats, "show table fe").and_then(|t| {
            if t.contains("key=127.0.0.1") && t.contains("http_req_cnt=") {
                Ok(())
            } else {
                Err(t)
            }
        }),
    );
    checks.add(
        "reload through the master CLI: a new worker serves",
        (|| {
            // The master CLI may start listening after the frontend does.
            let mut before = String::new();
            wait_until(Duration::from_secs(10), || {
                before = cli(master, "show proc")?;
                Ok(true)
            })?;
            cli(master, "reload")?;
            wait_until(Duration::from_secs(15), || {
                Ok(cli(master, "show proc").is_ok_and(|after| {
                    workers(&after) != workers(&before) && !workers(&after).is_empty()
                }))
            })?;
            wait_until(Duration::from_secs(10), || both_up(stats))?;
            backends_of(addr, 4).map(drop)
        })(),
    );
    checks.add(
        "8 connections x 25 keep-alive requests in parallel",
        parallel(addr, 8, 25),
    );
    drop(backends);
    checks.into_vec()
}

/// The worker pids of `show proc`.
fn workers(show_proc: &str) -> Vec<String> {
    show_proc
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("worker"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn parallel(addr: SocketAddr, threads: usize, per_thread: usize) -> Result<(), String> {
    let workers: Vec<_> = (0..threads)
        .map(|_| thread::spawn(move || backends_of(addr, per_thread).map(drop)))
        .collect();
    for w in workers {
        w.join()
            .map_err(|_| "a client thread panicked".to_string())??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_worker_pids_from_show_proc() {
        let text = "#<PID>          <type>          <reloads>       <uptime>        <version>\n\
                    5167            master          1 [failed: 0]   0d00h00m02s     2.6.12\n\
                    # workers\n\
                    5204            worker          0               0d00h00m01s     2.6.12\n\
                    # programs\n";
        assert_eq!(workers(text), ["5204"]);
    }

    #[test]
    fn the_config_wires_the_ports() {
        let c = config(20000);
        assert!(c.contains("bind 127.0.0.1:20000"));
        assert!(c.contains("stats socket ipv4@127.0.0.1:20002 level admin"));
        assert!(c.contains("server b1 127.0.0.1:20003"));
        assert!(c.contains("server b2 127.0.0.1:20004"));
    }
}

//! A stand-in for the Kubernetes API server, enough for `profgen agent`: each request is
//! answered by the caller's route, a watch is sent and then held open (a quiet cluster, as a
//! real watch does) until the server is dropped, and every request target is logged.

use std::{
    fs,
    io::{self, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::Duration,
};

/// What the server answers to one request.
pub enum Reply {
    /// A JSON body with its length, then the connection closes.
    Json { status: u16, body: String },
    /// A watch: the events (JSON lines), then the connection stays open with no more.
    Watch(String),
}

/// The running server; dropping it closes the watches and stops accepting.
pub struct Api {
    pub url: String,
    /// Each request's target (path and query), in the order they came.
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// Serves on a free port of 127.0.0.1; `route` answers each request from its path and
/// query (the part after `?`, empty without one).
pub fn serve(route: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> io::Result<Api> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (stopping, log, route) = (stop.clone(), requests.clone(), Arc::new(route));
    thread::spawn(move || {
        for sock in listener.incoming() {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            let Ok(sock) = sock else { continue };
            let (stopping, log, route) = (stopping.clone(), log.clone(), route.clone());
            thread::spawn(move || answer(sock, &*route, &log, &stopping));
        }
    });
    Ok(Api {
        url,
        requests,
        stop,
    })
}

fn answer(
    mut sock: TcpStream,
    route: &dyn Fn(&str, &str) -> Reply,
    log: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match sock.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("");
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(target.to_owned());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match route(path, query) {
        Reply::Json { status, body } => {
            let reply = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                reason(status),
                body.len()
            );
            let _ = sock.write_all(reply.as_bytes());
        }
        Reply::Watch(events) => {
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{events}"
            );
            let _ = sock.write_all(reply.as_bytes());
            while !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Status",
    }
}

/// The API server's body for an object that does not exist: `resource` as the URL names it
/// (`pods`, `replicasets`), `group` empty for the core group.
pub fn not_found(group: &str, resource: &str, name: &str) -> String {
    let (qualified, group_field) = match group {
        "" => (resource.to_owned(), String::new()),
        g => (format!("{resource}.{g}"), format!(r#""group":"{g}","#)),
    };
    format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{qualified} \"{name}\" not found","reason":"NotFound","details":{{"name":"{name}",{group_field}"kind":"{resource}"}},"code":404}}"#
    )
}

/// Writes `dir/kubeconfig` naming `server`, with no credentials (the stand-in asks for none);
/// `cluster_extra` is added to the cluster's entry (lines indented by four spaces, such as a
/// `certificate-authority`).
pub fn kubeconfig(dir: &Path, server: &str, cluster_extra: &str) -> io::Result<PathBuf> {
    let path = dir.join("kubeconfig");
    fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: replay\n  cluster:\n    server: {server}\n{cluster_extra}\
             contexts:\n- name: replay\n  context:\n    cluster: replay\n    user: replay\n\
             current-context: replay\nusers:\n- name: replay\n  user: {{}}\n"
        ),
    )?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str, target: &str) -> String {
        let mut sock = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
        write!(sock, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut reply = String::new();
        sock.read_to_string(&mut reply).unwrap();
        reply
    }

    #[test]
    fn answers_by_route_and_logs_each_target() {
        let api = serve(|path, query| match (path, query) {
            ("/api/v1/pods", "") => Reply::Json {
                status: 200,
                body: "{}".into(),
            },
            (path, _) => Reply::Json {
                status: 404,
                body: not_found("apps", "replicasets", path.rsplit('/').next().unwrap()),
            },
        })
        .unwrap();
        let found = get(&api.url, "/api/v1/pods");
        assert!(found.starts_with("HTTP/1.1 200 OK\r\n"), "{found}");
        assert!(found.contains("Content-Length: 2\r\n") && found.ends_with("\r\n\r\n{}"));
        let missing = get(&api.url, "/apis/apps/v1/namespaces/x/replicasets/web-1?a=b");
        assert!(
            missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{missing}"
        );
        assert!(
            missing.ends_with(
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"replicasets.apps \"web-1\" not found","reason":"NotFound","details":{"name":"web-1","group":"apps","kind":"replicasets"},"code":404}"#
            ),
            "{missing}"
        );
        assert_eq!(
            *api.requests.lock().unwrap(),
            [
                "/api/v1/pods",
                "/apis/apps/v1/namespaces/x/replicasets/web-1?a=b"
            ]
        );
    }

    #[test]
    fn a_watch_stays_open_until_the_server_is_dropped() {
        let api = serve(|_, _| Reply::Watch("{\"type\":\"ADDED\"}\n".into())).unwrap();
        let mut sock = TcpStream::connect(api.url.trim_start_matches("http://")).unwrap();
        write!(sock, "GET /w?watch=true HTTP/1.1\r\n\r\n").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        // Read until the events are in, then find the connection still open.
        while !got.ends_with(b"\"ADDED\"}\n") {
            let n = sock.read(&mut buf).unwrap();
            assert_ne!(n, 0, "closed early");
            got.extend_from_slice(&buf[..n]);
        }
        let err = sock.read(&mut buf).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{err}"
        );
        drop(api);
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(sock.read(&mut buf).unwrap(), 0, "closed once dropped");
    }

    #[test]
    fn core_objects_have_no_group() {
        assert_eq!(
            not_found("", "pods", "web"),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"web\" not found","reason":"NotFound","details":{"name":"web","kind":"pods"},"code":404}"#
        );
    }
}

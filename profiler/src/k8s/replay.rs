//! A local HTTP server that answers like an API server with captured responses, so the client
//! is tested on the real wire format (bodies byte for byte from real clusters).

use std::sync::{Arc, Mutex};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

#[derive(Clone, Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: String,
    /// Every one of these must occur in the raw query string.
    pub query_has: Vec<&'static str>,
    pub status: u16,
    pub body: String,
}

impl Route {
    pub fn get(path: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            method: "GET",
            path: path.into(),
            query_has: Vec::new(),
            status: 200,
            body: body.into(),
        }
    }
    pub fn with_query(mut self, q: &'static str) -> Self {
        self.query_has.push(q);
        self
    }
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
}

pub struct Replay {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

/// The apiserver's reply for a missing object.
pub fn not_found(kind: &str, name: &str) -> String {
    format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{kind} \"{name}\" not found","reason":"NotFound","details":{{"name":"{name}","kind":"{kind}"}},"code":404}}"#
    )
}

/// The apiserver's reply when RBAC denies a request.
pub fn forbidden(verb: &str, resource: &str, ns: &str) -> String {
    format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{resource} is forbidden: User \"system:serviceaccount:profgen:profgen\" cannot {verb} resource \"{resource}\" in API group \"\" in the namespace \"{ns}\"","reason":"Forbidden","details":{{"kind":"{resource}"}},"code":403}}"#
    )
}

/// Serves `routes` (first match wins; anything else is a 404 Status) until the runtime ends.
pub async fn serve(routes: Vec<Route>) -> Replay {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let mut lines = head.lines();
                let mut first = lines.next().unwrap_or("").split_whitespace();
                let method = first.next().unwrap_or("").to_owned();
                let target = first.next().unwrap_or("").to_owned();
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let authorization = lines
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    .map(|(_, v)| v.trim().to_owned());
                log.lock().unwrap().push(Request {
                    method: method.clone(),
                    path: path.to_owned(),
                    query: query.to_owned(),
                    authorization,
                });
                let route = routes.iter().find(|r| {
                    r.method == method
                        && r.path == path
                        && r.query_has.iter().all(|q| query.contains(q))
                });
                let (status, body) = match route {
                    Some(r) => (r.status, r.body.clone()),
                    None => (
                        404,
                        not_found("pods", path.rsplit('/').next().unwrap_or("")),
                    ),
                };
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Replay { url, requests }
}

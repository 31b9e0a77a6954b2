//! The agent's results over HTTP, and the client `profgen pull` reads them with.
//!
//! `GET /profiles` answers the output directory's `index.json`; `GET /profiles/<dir>/<file>`
//! one file of a set; `GET /healthz` is for the DaemonSet's probes. Read-only, plain HTTP/1.1
//! with one request per connection: the clients are `profgen pull` and a probe, and a full
//! HTTP stack would be most of the agent's attack surface for no gain.

use std::{
    path::{Component, Path, PathBuf},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use super::profiles::INDEX;

/// Longest request head accepted; the requests are one line and a few headers.
const MAX_HEAD: usize = 8 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `root` (the output directory) until the task is dropped.
pub async fn serve(listener: TcpListener, root: PathBuf) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let root = root.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(IO_TIMEOUT, answer(sock, &root)).await;
        });
    }
}

async fn answer(mut sock: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut chunk).await?;
        if n == 0 || buf.len() > MAX_HEAD {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, kind, body) = if method != "GET" {
        (405, "text/plain", b"only GET\n".to_vec())
    } else {
        route(root, path).await
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(&body).await?;
    sock.shutdown().await
}

async fn route(root: &Path, path: &str) -> (u16, &'static str, Vec<u8>) {
    let not_found = || (404, "text/plain", b"not found\n".to_vec());
    if path == "/healthz" {
        return (200, "text/plain", b"ok\n".to_vec());
    }
    let file = match path.trim_end_matches('/') {
        "/profiles" => root.join(INDEX),
        p => match p.strip_prefix("/profiles/").and_then(safe_relative) {
            Some(rel) => root.join(rel),
            None => return not_found(),
        },
    };
    // Profiles are small; a blocking read costs less than a thread hand-off.
    match std::fs::read(&file) {
        Ok(bytes) => {
            let kind = if file.extension().is_some_and(|e| e == "json") {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            (200, kind, bytes)
        }
        // Before the first checkpoint there is no index yet: an empty one, not an error.
        Err(_) if path.trim_end_matches('/') == "/profiles" => (
            200,
            "application/json",
            br#"{"node":"","sets":[]}"#.to_vec(),
        ),
        Err(_) => not_found(),
    }
}

/// A request path below the output root, refusing anything that would leave it.
fn safe_relative(p: &str) -> Option<PathBuf> {
    let rel = Path::new(p);
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| rel.to_owned())
        .filter(|r| !r.as_os_str().is_empty())
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "{url}: only http:// URLs are supported (the agent serves plain HTTP on the pod network)"
    )]
    Scheme { url: String },
    #[error("{url}: {source}")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: String },
    #[error("{url}: malformed HTTP response")]
    Malformed { url: String },
    #[error("{url}: no answer within {IO_TIMEOUT:?}")]
    Timeout { url: String },
}

/// `GET url` (http only), the body of a 200 answer.
pub async fn get(url: &str) -> Result<Vec<u8>, HttpError> {
    tokio::time::timeout(IO_TIMEOUT, get_inner(url))
        .await
        .map_err(|_| HttpError::Timeout { url: url.into() })?
}

async fn get_inner(url: &str) -> Result<Vec<u8>, HttpError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HttpError::Scheme { url: url.into() })?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let io = |source| HttpError::Io {
        url: url.into(),
        source,
    };
    let addr = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let mut sock = TcpStream::connect(&addr).await.map_err(io)?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    sock.write_all(req.as_bytes()).await.map_err(io)?;
    let mut reply = Vec::new();
    sock.read_to_end(&mut reply).await.map_err(io)?;
    let malformed = || HttpError::Malformed { url: url.into() };
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(malformed)?;
    let head = String::from_utf8_lossy(&reply[..split]).into_owned();
    let status = head.lines().next().ok_or_else(malformed)?;
    let code = status.split_whitespace().nth(1).ok_or_else(malformed)?;
    if code != "200" {
        return Err(HttpError::Status {
            url: url.into(),
            status: status.to_owned(),
        });
    }
    let mut body = reply[split + 4..].to_vec();
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    if let Some(n) = length {
        body.truncate(n);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_stay_below_the_root() {
        assert_eq!(
            safe_relative("web/it-tools/nginx/seccomp.json"),
            Some(PathBuf::from("web/it-tools/nginx/seccomp.json"))
        );
        assert_eq!(safe_relative("../etc/shadow"), None);
        assert_eq!(safe_relative("/etc/shadow"), None);
        assert_eq!(safe_relative("a/../../b"), None);
        assert_eq!(safe_relative(""), None);
    }

    #[tokio::test]
    async fn serves_the_index_and_files_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ns/w/c")).unwrap();
        std::fs::write(dir.path().join("ns/w/c/seccomp.json"), b"{}").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(serve(listener, dir.path().to_owned()));
        let empty = get(&format!("{base}/profiles")).await.unwrap();
        assert!(String::from_utf8_lossy(&empty).contains(r#""sets":[]"#));
        std::fs::write(dir.path().join(INDEX), b"{\"sets\":[1]}").unwrap();
        assert_eq!(
            get(&format!("{base}/profiles")).await.unwrap(),
            b"{\"sets\":[1]}"
        );
        assert_eq!(
            get(&format!("{base}/profiles/ns/w/c/seccomp.json"))
                .await
                .unwrap(),
            b"{}"
        );
        let err = get(&format!("{base}/profiles/../../etc/passwd"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
        server.abort();
    }
}

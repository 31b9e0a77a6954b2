//! A tiny HTTP/1.1 backend for haproxy's suite: answers every request with which backend it
//! is and the path, `/health` for health checks, `/big` with a compressible body. Runs on
//! its own threads until dropped.

use std::{
    io::{self, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

pub struct Backend {
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

/// The response body for `path` from backend `name`.
pub fn body(name: &str, path: &str) -> (&'static str, Vec<u8>) {
    if path == "/big" {
        let line = "haproxy compresses this line when the client accepts gzip.\n";
        return ("text/plain", line.repeat(400).into_bytes());
    }
    ("text/plain", format!("{name} {path}\n").into_bytes())
}

/// The request line's path and whether the connection stays open after the response.
pub fn parse_request(head: &str) -> Option<(String, bool)> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (_method, path, version) = (first.next()?, first.next()?, first.next()?);
    let close_header = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close")
        })
    });
    Some((path.to_owned(), version == "HTTP/1.1" && !close_header))
}

fn serve(mut stream: TcpStream, name: &str) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let Some((path, keep)) = parse_request(&head) else {
            return Ok(());
        };
        let (ctype, body) = body(name, &path);
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nX-Backend: {name}\r\n{}\r\n",
            body.len(),
            if keep { "" } else { "Connection: close\r\n" }
        )
        .into_bytes();
        resp.extend_from_slice(&body);
        stream.write_all(&resp)?;
        if !keep {
            return Ok(());
        }
    }
}

impl Backend {
    /// Listens on `addr` as backend `name`.
    pub fn start(addr: SocketAddr, name: &'static str) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let accept = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        thread::spawn(move || {
                            let _ = serve(stream, name);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(Self {
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_heads() {
        assert_eq!(
            parse_request("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("/a".into(), true))
        );
        assert_eq!(
            parse_request("GET /health HTTP/1.0\r\n\r\n"),
            Some(("/health".into(), false))
        );
        assert_eq!(
            parse_request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
            Some(("/".into(), false))
        );
        assert_eq!(parse_request("garbage"), None);
    }

    #[test]
    fn answers_and_stops() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let b = Backend::start(addr, "b1").unwrap();
        let mut c = profgen_demo::http::Connection::open(addr, Duration::from_secs(5)).unwrap();
        let r = c.get("/x").unwrap();
        assert_eq!(r.header("x-backend"), Some("b1"));
        assert_eq!(r.body, b"b1 /x\n");
        drop(b);
        // Stopped: nothing listens any more (the open keep-alive connection aside).
        let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(5));
        assert_eq!(
            refused.map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::ConnectionRefused),
            "a stopped backend still accepts connections"
        );
    }
}

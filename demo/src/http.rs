//! A minimal HTTP/1.1 client over `std::net::TcpStream`: enough to talk to nginx, check what it
//! sends byte for byte, and keep connections alive across requests.

use std::{
    io::{self, Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("connection closed before the response was complete")]
    Closed,
}

/// A response head: status line and headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub head: Head,
    pub body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The media type without parameters (`text/html; charset=utf-8` gives `text/html`).
    pub fn media_type(&self) -> Option<&str> {
        self.header("content-type")
            .map(|v| v.split(';').next().unwrap_or("").trim())
    }
}

/// Parses a response head from the start of `buf`. `Ok(None)`: not all of it has arrived.
/// On success also returns how many bytes the head took.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end])
        .map_err(|_| HttpError::Malformed("head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed(format!("status line {status_line:?}")));
    }
    let status = code
        .parse()
        .ok()
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| HttpError::Malformed(format!("status line {status_line:?}")))?;
    let headers = lines
        .map(|line| {
            line.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| HttpError::Malformed(format!("header line {line:?}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Some((Head { status, headers }, end + 4)))
}

/// How the body after a head is delimited (RFC 9112, section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLength {
    Empty,
    Exactly(usize),
    Chunked,
    UntilClose,
}

pub fn body_length(method: &str, head: &Head) -> Result<BodyLength, HttpError> {
    if method == "HEAD" || head.status == 204 || head.status == 304 || head.status < 200 {
        return Ok(BodyLength::Empty);
    }
    if head
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        return Ok(BodyLength::Chunked);
    }
    match head.header("content-length") {
        Some(v) => v
            .parse()
            .map(BodyLength::Exactly)
            .map_err(|_| HttpError::Malformed(format!("Content-Length {v:?}"))),
        None => Ok(BodyLength::UntilClose),
    }
}

/// Decodes a chunked body at the start of `buf`. `Ok(None)`: incomplete. On success also
/// returns how many bytes it took (trailers included).
pub fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = find_crlf(&buf[pos..]) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[pos..pos + eol])
            .map_err(|_| HttpError::Malformed("chunk size is not UTF-8".into()))?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| HttpError::Malformed(format!("chunk size {line:?}")))?;
        pos += eol + 2;
        if size == 0 {
            // Trailer lines until an empty one.
            loop {
                let Some(eol) = find_crlf(&buf[pos..]) else {
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(HttpError::Malformed("chunk not followed by CRLF".into()));
        }
        pos += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// One keep-alive connection. Bytes read past a response stay buffered for the next one, so
/// a server sending more than it should (a body after HEAD) breaks the next parse.
pub struct Connection {
    stream: TcpStream,
    host: String,
    buf: Vec<u8>,
}

impl Connection {
    pub fn open(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            host: addr.to_string(),
            buf: Vec::new(),
        })
    }

    /// Sends `method path` with `headers` and reads the whole response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response, HttpError> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.stream.write_all(req.as_bytes())?;
        self.read_response(method)
    }

    pub fn get(&mut self, path: &str) -> Result<Response, HttpError> {
        self.request("GET", path, &[])
    }

    /// Bytes received beyond the last complete response.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn fill(&mut self) -> Result<bool, HttpError> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    fn read_response(&mut self, method: &str) -> Result<Response, HttpError> {
        let (head, head_len) = loop {
            if let Some(parsed) = parse_head(&self.buf)? {
                break parsed;
            }
            if !self.fill()? {
                return Err(HttpError::Closed);
            }
        };
        self.buf.drain(..head_len);
        let body = match body_length(method, &head)? {
            BodyLength::Empty => Vec::new(),
            BodyLength::Exactly(n) => {
                while self.buf.len() < n {
                    if !self.fill()? {
                        return Err(HttpError::Closed);
                    }
                }
                self.buf.drain(..n).collect()
            }
            BodyLength::Chunked => loop {
                if let Some((body, used)) = decode_chunked(&self.buf)? {
                    self.buf.drain(..used);
                    break body;
                }
                if !self.fill()? {
                    return Err(HttpError::Closed);
                }
            },
            BodyLength::UntilClose => {
                while self.fill()? {}
                std::mem::take(&mut self.buf)
            }
        };
        Ok(Response { head, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"HTTP/1.1 206 Partial Content\r\nServer: nginx\r\n\
        Content-Type: text/html; charset=utf-8\r\nContent-Length: 5\r\n\
        Content-Range: bytes 0-4/10\r\n\r\nhello";

    #[test]
    fn parses_a_head_and_leaves_the_body() {
        let (head, used) = parse_head(HEAD).unwrap().unwrap();
        assert_eq!(head.status, 206);
        assert_eq!(head.header("content-range"), Some("bytes 0-4/10"));
        assert_eq!(head.header("CONTENT-LENGTH"), Some("5"));
        assert_eq!(&HEAD[used..], b"hello");
        let resp = Response {
            head,
            body: Vec::new(),
        };
        assert_eq!(resp.media_type(), Some("text/html"));
    }

    #[test]
    fn an_incomplete_head_needs_more_bytes() {
        assert_eq!(parse_head(&HEAD[..20]).unwrap(), None);
    }

    #[test]
    fn rejects_what_is_not_http() {
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").is_err());
    }

    #[test]
    fn body_length_follows_the_rules() {
        let head = |status, headers: &[(&str, &str)]| Head {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let sized = head(200, &[("Content-Length", "42")]);
        assert_eq!(body_length("GET", &sized).unwrap(), BodyLength::Exactly(42));
        assert_eq!(body_length("HEAD", &sized).unwrap(), BodyLength::Empty);
        assert_eq!(
            body_length("GET", &head(304, &[("Content-Length", "42")])).unwrap(),
            BodyLength::Empty
        );
        assert_eq!(
            body_length("GET", &head(200, &[("Transfer-Encoding", "chunked")])).unwrap(),
            BodyLength::Chunked
        );
        assert_eq!(
            body_length("GET", &head(200, &[])).unwrap(),
            BodyLength::UntilClose
        );
        assert!(body_length("GET", &head(200, &[("Content-Length", "x")])).is_err());
    }

    #[test]
    fn decodes_chunks_with_extensions_and_trailers() {
        let data = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\nNEXT";
        let (body, used) = decode_chunked(data).unwrap().unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(&data[used..], b"NEXT");
        assert_eq!(decode_chunked(&data[..12]).unwrap(), None);
        assert!(decode_chunked(b"zz\r\n").is_err());
        assert!(decode_chunked(b"2\r\nabXY").is_err());
    }

    #[test]
    fn keeps_leftover_bytes_for_the_next_response() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req).unwrap();
            // Two responses in one write: the second must be read from the buffer.
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab")
                .unwrap();
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            let _ = s.read(&mut req);
        });
        let mut conn = Connection::open(addr, Duration::from_secs(5)).unwrap();
        let first = conn.get("/").unwrap();
        assert_eq!((first.status(), first.body.as_slice()), (200, &b"ab"[..]));
        let second = conn.read_response("GET").unwrap();
        assert_eq!(second.status(), 404);
        assert_eq!(conn.buffered(), 0);
        drop(conn);
        server.join().unwrap();
    }
}

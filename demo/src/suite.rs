//! The demo's HTTP test suite: what a browser using the app needs from the server, checked
//! against the site's own bytes.

use std::{
    net::SocketAddr,
    thread,
    time::{Duration, Instant},
};

use crate::{
    http::{Connection, HttpError, Response},
    site::{self, Asset},
};

const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Concurrent keep-alive load: this many connections, each sending this many requests.
pub const THREADS: usize = 8;
pub const REQUESTS_PER_THREAD: usize = 25;

/// One named check and its outcome.
#[derive(Debug)]
pub struct Check {
    pub name: String,
    pub result: Result<(), String>,
}

type Outcome = Result<(), String>;

fn fail<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

fn http(err: HttpError) -> String {
    err.to_string()
}

/// Waits until the server answers `GET /` with any HTTP response.
pub fn wait_ready(addr: SocketAddr, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        match Connection::open(addr, IO_TIMEOUT)
            .map_err(HttpError::from)
            .and_then(|mut c| c.get("/"))
        {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        thread::sleep(Duration::from_millis(100));
    }
    fail(format!(
        "no HTTP response from {addr} within {timeout:?} (last: {last})"
    ))
}

/// Runs every check in order; readiness first, and nothing else if the server never answers.
pub fn run(addr: SocketAddr, ready_timeout: Duration) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut add = |name: String, result: Outcome| checks.push(Check { name, result });
    let ready = wait_ready(addr, ready_timeout);
    let up = ready.is_ok();
    add(format!("server at {addr} answers"), ready);
    if !up {
        return checks;
    }
    let on_fresh = |f: &dyn Fn(&mut Connection) -> Outcome| -> Outcome {
        let mut conn = Connection::open(addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
        f(&mut conn)
    };

    for asset in site::ASSETS {
        add(
            format!("GET {} is the file, as {}", asset.path, asset.content_type),
            on_fresh(&|c| {
                let r = c.get(asset.path).map_err(http)?;
                expect_asset(&r, asset)
            }),
        );
    }
    add(
        "GET / is the app shell".into(),
        on_fresh(&|c| expect_asset(&c.get("/").map_err(http)?, &site::INDEX)),
    );
    for route in site::ROUTES.iter().chain(&["/no/such/page"]) {
        add(
            format!("GET {route} falls back to the app shell"),
            on_fresh(&|c| expect_asset(&c.get(route).map_err(http)?, &site::INDEX)),
        );
    }
    add(
        "GET /assets/missing.js is a 404, not the app shell".into(),
        on_fresh(&check_missing_asset),
    );
    add(
        "HEAD /assets/app.js has the GET headers and no body".into(),
        on_fresh(&check_head),
    );
    add(
        "Range bytes=100-199 of /assets/app.js is a 206 with those bytes".into(),
        on_fresh(&|c| check_range(c, asset("/assets/app.js"), "bytes=100-199", 100, 200)),
    );
    let png = asset("/assets/favicon.png");
    let len = png.body.len();
    add(
        "Range bytes=-64 of /assets/favicon.png is a 206 with the last 64 bytes".into(),
        on_fresh(&|c| check_range(c, png, "bytes=-64", len - 64, len)),
    );
    add(
        "Range past the end of /assets/favicon.png is a 416".into(),
        on_fresh(&|c| check_unsatisfiable(c, png)),
    );
    add(
        "If-None-Match with the ETag of /assets/app.css is a 304".into(),
        on_fresh(&|c| check_not_modified(c, asset("/assets/app.css"))),
    );
    add(
        format!("{THREADS} connections x {REQUESTS_PER_THREAD} keep-alive requests"),
        check_concurrent(addr),
    );
    checks
}

fn asset(path: &str) -> &'static Asset {
    site::ASSETS
        .iter()
        .find(|a| a.path == path)
        .expect("a file of the demo site")
}

fn expect_asset(r: &Response, asset: &Asset) -> Outcome {
    if r.status() != 200 {
        return fail(format!("status {}, expected 200", r.status()));
    }
    if r.media_type() != Some(asset.content_type) {
        return fail(format!(
            "Content-Type {:?}, expected {}",
            r.header("content-type"),
            asset.content_type
        ));
    }
    if r.body != asset.body {
        return fail(format!(
            "body differs from {} ({} bytes, expected {})",
            asset.path,
            r.body.len(),
            asset.body.len()
        ));
    }
    Ok(())
}

fn check_missing_asset(c: &mut Connection) -> Outcome {
    let r = c.get("/assets/missing.js").map_err(http)?;
    if r.status() != 404 {
        return fail(format!("status {}, expected 404", r.status()));
    }
    if r.body == site::INDEX.body {
        return fail("the 404 carries the app shell");
    }
    Ok(())
}

fn check_head(c: &mut Connection) -> Outcome {
    let js = asset("/assets/app.js");
    let r = c.request("HEAD", js.path, &[]).map_err(http)?;
    if r.status() != 200 || r.media_type() != Some(js.content_type) {
        return fail(format!(
            "status {}, Content-Type {:?}",
            r.status(),
            r.media_type()
        ));
    }
    let length = js.body.len().to_string();
    if r.header("content-length") != Some(length.as_str()) {
        return fail(format!(
            "Content-Length {:?}, expected {length}",
            r.header("content-length")
        ));
    }
    // A body after HEAD would sit in front of the next response and break it.
    let next = c.get(js.path).map_err(|e| format!("GET after HEAD: {e}"))?;
    expect_asset(&next, js).map_err(|e| format!("GET after HEAD: {e}"))
}

fn check_range(c: &mut Connection, a: &Asset, range: &str, start: usize, end: usize) -> Outcome {
    let r = c
        .request("GET", a.path, &[("Range", range)])
        .map_err(http)?;
    if r.status() != 206 {
        return fail(format!("status {}, expected 206", r.status()));
    }
    let expected = format!("bytes {start}-{}/{}", end - 1, a.body.len());
    if r.header("content-range") != Some(expected.as_str()) {
        return fail(format!(
            "Content-Range {:?}, expected {expected}",
            r.header("content-range")
        ));
    }
    if r.body != a.body[start..end] {
        return fail(format!(
            "{} bytes that are not bytes {start}..{end}",
            r.body.len()
        ));
    }
    Ok(())
}

fn check_unsatisfiable(c: &mut Connection, a: &Asset) -> Outcome {
    let range = format!("bytes={}-", a.body.len() + 10);
    let r = c
        .request("GET", a.path, &[("Range", &range)])
        .map_err(http)?;
    if r.status() != 416 {
        return fail(format!("status {}, expected 416", r.status()));
    }
    let expected = format!("bytes */{}", a.body.len());
    if r.header("content-range") != Some(expected.as_str()) {
        return fail(format!(
            "Content-Range {:?}, expected {expected}",
            r.header("content-range")
        ));
    }
    Ok(())
}

fn check_not_modified(c: &mut Connection, a: &Asset) -> Outcome {
    let first = c.get(a.path).map_err(http)?;
    expect_asset(&first, a)?;
    let Some(etag) = first.header("etag").map(str::to_owned) else {
        return fail("no ETag header");
    };
    let r = c
        .request("GET", a.path, &[("If-None-Match", &etag)])
        .map_err(http)?;
    if r.status() != 304 {
        return fail(format!("status {}, expected 304", r.status()));
    }
    if !r.body.is_empty() {
        return fail("304 with a body");
    }
    Ok(())
}

/// Each thread keeps one connection and cycles through the assets; every response must be
/// the right file. One connection per thread proves keep-alive: a closed connection fails the
/// next request instead of being silently reopened.
fn check_concurrent(addr: SocketAddr) -> Outcome {
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || -> Outcome {
                let mut c = Connection::open(addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
                for i in 0..REQUESTS_PER_THREAD {
                    let a = &site::ASSETS[(t + i) % site::ASSETS.len()];
                    let r = c
                        .get(a.path)
                        .map_err(|e| format!("thread {t} request {i}: {e}"))?;
                    expect_asset(&r, a).map_err(|e| format!("thread {t} {}: {e}", a.path))?;
                }
                Ok(())
            })
        })
        .collect();
    let mut errors = Vec::new();
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a worker thread panicked".into()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        fail(errors.join("; "))
    }
}

/// Splits `http://HOST:PORT[/]` into an address; only plain HTTP to an IP literal or a
/// resolvable name.
pub fn parse_url(url: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_url("http://127.0.0.1:8080/").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_url("http://127.0.0.1").unwrap(),
            "127.0.0.1:80".parse().unwrap()
        );
        assert!(parse_url("https://127.0.0.1:443").is_err());
    }

    #[test]
    fn a_dead_server_fails_only_the_first_check() {
        // Bind and drop to get a port nobody listens on.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let checks = run(addr, Duration::from_millis(300));
        assert_eq!(checks.len(), 1);
        assert!(checks[0].result.is_err());
    }

    #[test]
    fn asset_comparison_catches_each_difference() {
        let js = asset("/assets/app.js");
        let ok = Response {
            head: crate::http::Head {
                status: 200,
                headers: vec![("Content-Type".into(), "application/javascript".into())],
            },
            body: js.body.to_vec(),
        };
        assert!(expect_asset(&ok, js).is_ok());
        let mut wrong_type = ok.clone();
        wrong_type.head.headers[0].1 = "text/plain".into();
        assert!(expect_asset(&wrong_type, js).is_err());
        let mut wrong_body = ok.clone();
        wrong_body.body.pop();
        assert!(expect_asset(&wrong_body, js).is_err());
        let mut wrong_status = ok;
        wrong_status.head.status = 404;
        assert!(expect_asset(&wrong_status, js).is_err());
    }
}

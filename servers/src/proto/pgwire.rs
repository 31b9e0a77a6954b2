//! A PostgreSQL client speaking protocol 3.0 over TCP: trust authentication, the simple query
//! protocol, `COPY … FROM STDIN` / `TO STDOUT`, and `LISTEN` notifications.

use std::{
    io::{self, Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

/// A row: one text value per column, `None` for NULL.
pub type Row = Vec<Option<String>>;

/// One statement's result: its rows and its command tag (`INSERT 0 5`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub rows: Vec<Row>,
    pub tag: String,
}

pub struct Client {
    stream: TcpStream,
    /// (channel, payload) of notifications received so far.
    pub notifications: Vec<(String, String)>,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A frontend message: type byte (none for the startup message), length, body.
pub fn message(kind: Option<u8>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    if let Some(k) = kind {
        out.push(k);
    }
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The startup message for protocol 3.0.
pub fn startup(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", database)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    message(None, &body)
}

/// `S`everity, `C`ode and `M`essage of an ErrorResponse or NoticeResponse body.
pub fn error_text(body: &[u8]) -> String {
    let mut parts = Vec::new();
    for field in body.split(|b| *b == 0) {
        if let Some((k, v)) = field.split_first() {
            if matches!(k, b'S' | b'C' | b'M') {
                parts.push(String::from_utf8_lossy(v).into_owned());
            }
        }
    }
    parts.join(" ")
}

/// The values of a DataRow body.
pub fn data_row(body: &[u8]) -> io::Result<Row> {
    let count = u16::from_be_bytes(
        body.get(..2)
            .ok_or_else(|| bad("short DataRow"))?
            .try_into()
            .expect("2 bytes"),
    );
    let mut pos = 2;
    let mut row = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = i32::from_be_bytes(
            body.get(pos..pos + 4)
                .ok_or_else(|| bad("short DataRow"))?
                .try_into()
                .expect("4 bytes"),
        );
        pos += 4;
        if len < 0 {
            row.push(None);
        } else {
            let end = pos + len as usize;
            let v = body.get(pos..end).ok_or_else(|| bad("short DataRow"))?;
            row.push(Some(String::from_utf8_lossy(v).into_owned()));
            pos = end;
        }
    }
    Ok(row)
}

fn cstr(body: &[u8]) -> (String, &[u8]) {
    let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
    (
        String::from_utf8_lossy(&body[..end]).into_owned(),
        body.get(end + 1..).unwrap_or(&[]),
    )
}

impl Client {
    /// Connects and authenticates (trust only).
    pub fn connect(
        addr: SocketAddr,
        user: &str,
        database: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut c = Client {
            stream,
            notifications: Vec::new(),
        };
        c.stream
            .write_all(&startup(user, database))
            .map_err(|e| e.to_string())?;
        loop {
            let (kind, body) = c.recv().map_err(|e| e.to_string())?;
            match kind {
                b'R' if body.get(..4) == Some(&[0, 0, 0, 0]) => {}
                b'R' => return Err("the server asks for a password; the suite uses trust".into()),
                b'E' => return Err(error_text(&body)),
                b'Z' => return Ok(c),
                _ => {}
            }
        }
    }

    fn recv(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 5];
        self.stream.read_exact(&mut head)?;
        let len = u32::from_be_bytes(head[1..5].try_into().expect("4 bytes")) as usize;
        if len < 4 {
            return Err(bad("message length below 4"));
        }
        let mut body = vec![0; len - 4];
        self.stream.read_exact(&mut body)?;
        Ok((head[0], body))
    }

    /// Runs `sql` (one or more statements) and returns each statement's outcome; the first
    /// error reply fails the whole call, after the server is ready again.
    pub fn query(&mut self, sql: &str) -> Result<Vec<Outcome>, String> {
        self.exchange(sql, None).map(|(o, _)| o)
    }

    /// The rows of the last statement of `sql`.
    pub fn rows(&mut self, sql: &str) -> Result<Vec<Row>, String> {
        Ok(self.query(sql)?.pop().unwrap_or_default().rows)
    }

    /// The first column of the first row of `sql`'s last statement.
    pub fn value(&mut self, sql: &str) -> Result<Option<String>, String> {
        Ok(self
            .rows(sql)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .flatten())
    }

    /// `COPY … FROM STDIN` with `data` as the input.
    pub fn copy_in(&mut self, sql: &str, data: &[u8]) -> Result<Vec<Outcome>, String> {
        self.exchange(sql, Some(data)).map(|(o, _)| o)
    }

    /// `COPY … TO STDOUT`: what the server sent.
    pub fn copy_out(&mut self, sql: &str) -> Result<Vec<u8>, String> {
        self.exchange(sql, None).map(|(_, d)| d)
    }

    fn exchange(
        &mut self,
        sql: &str,
        copy_data: Option<&[u8]>,
    ) -> Result<(Vec<Outcome>, Vec<u8>), String> {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        self.stream
            .write_all(&message(Some(b'Q'), &body))
            .map_err(|e| e.to_string())?;
        let mut outcomes = Vec::new();
        let mut current = Outcome::default();
        let mut copied = Vec::new();
        let mut error = None;
        loop {
            let (kind, body) = self.recv().map_err(|e| format!("{sql}: {e}"))?;
            match kind {
                b'D' => current
                    .rows
                    .push(data_row(&body).map_err(|e| e.to_string())?),
                b'C' => {
                    current.tag = cstr(&body).0;
                    outcomes.push(std::mem::take(&mut current));
                }
                b'I' => outcomes.push(std::mem::take(&mut current)),
                b'E' => error = Some(error_text(&body)),
                b'A' => self.notification(&body),
                b'G' => {
                    let data = copy_data.unwrap_or_default();
                    let mut out = Vec::new();
                    for chunk in data.chunks(8192) {
                        out.extend_from_slice(&message(Some(b'd'), chunk));
                    }
                    out.extend_from_slice(&message(Some(b'c'), &[]));
                    self.stream.write_all(&out).map_err(|e| e.to_string())?;
                }
                b'd' => copied.extend_from_slice(&body),
                b'Z' => break,
                _ => {}
            }
        }
        match error {
            Some(e) => Err(format!("{}: {e}", first_line(sql))),
            None => Ok((outcomes, copied)),
        }
    }

    fn notification(&mut self, body: &[u8]) {
        let (channel, rest) = cstr(body.get(4..).unwrap_or(&[]));
        let (payload, _) = cstr(rest);
        self.notifications.push((channel, payload));
    }

    /// Waits up to `timeout` for a notification when none has arrived yet.
    pub fn wait_notification(&mut self, timeout: Duration) -> Result<(), String> {
        if !self.notifications.is_empty() {
            return Ok(());
        }
        let old = self.stream.read_timeout().ok().flatten();
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let got = self.recv();
        let _ = self.stream.set_read_timeout(old);
        match got {
            Ok((b'A', body)) => {
                self.notification(&body);
                Ok(())
            }
            Ok((kind, _)) => Err(format!("expected a notification, got {:?}", kind as char)),
            Err(e) => Err(format!("no notification within {timeout:?}: {e}")),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.stream.write_all(&message(Some(b'X'), &[]));
    }
}

fn first_line(sql: &str) -> &str {
    let line = sql.trim().lines().next().unwrap_or("");
    &line[..line.len().min(60)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_carries_protocol_3_and_the_parameters() {
        let m = startup("postgres", "db");
        assert_eq!(&m[..4], &(m.len() as u32).to_be_bytes());
        assert_eq!(&m[4..8], &[0, 3, 0, 0]);
        assert_eq!(&m[8..], b"user\0postgres\0database\0db\0\0");
    }

    #[test]
    fn parses_data_rows_with_nulls() {
        let mut body = vec![0, 2];
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"42");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(data_row(&body).unwrap(), vec![Some("42".into()), None]);
        assert!(data_row(&body[..5]).is_err());
    }

    #[test]
    fn error_text_keeps_severity_code_and_message() {
        let body = b"SERROR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0\0";
        assert_eq!(
            error_text(body),
            "ERROR 42P01 relation \"x\" does not exist"
        );
    }
}

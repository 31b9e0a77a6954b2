//! A memcached client speaking the text protocol (classic and meta commands) over TCP.

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

/// One item of a `get`/`gets` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub key: String,
    pub flags: u32,
    pub data: Vec<u8>,
    pub cas: Option<u64>,
}

pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// `VALUE key flags bytes [cas]`: the header of one item.
pub fn parse_value_line(line: &str) -> io::Result<(String, u32, usize, Option<u64>)> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    match parts.as_slice() {
        ["VALUE", key, flags, bytes, rest @ ..] if rest.len() <= 1 => Ok((
            key.to_string(),
            flags.parse().map_err(|_| bad(line))?,
            bytes.parse().map_err(|_| bad(line))?,
            rest.first()
                .map(|c| c.parse())
                .transpose()
                .map_err(|_| bad(line))?,
        )),
        _ => Err(bad(format!("not a VALUE line: {line}"))),
    }
}

impl Client {
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// A reply line without its end; metadump lines end in `\n` alone, the others in `\r\n`.
    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if !line.ends_with('\n') {
            return Err(bad("connection closed mid-reply"));
        }
        let end = line.trim_end_matches(['\r', '\n']).len();
        line.truncate(end);
        Ok(line)
    }

    fn read_data(&mut self, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len + 2];
        self.reader.read_exact(&mut buf)?;
        if &buf[len..] != b"\r\n" {
            return Err(bad("data block not followed by CRLF"));
        }
        buf.truncate(len);
        Ok(buf)
    }

    /// A command with a one-line reply (`incr`, `delete`, `touch`, `version`, …).
    pub fn line(&mut self, cmd: &str) -> io::Result<String> {
        self.writer.write_all(format!("{cmd}\r\n").as_bytes())?;
        self.read_line()
    }

    /// A storage command (`set`, `add`, `replace`, `append`, `prepend`; `cas` with `cas_unique`).
    pub fn store(
        &mut self,
        verb: &str,
        key: &str,
        flags: u32,
        exptime: i64,
        data: &[u8],
        cas_unique: Option<u64>,
    ) -> io::Result<String> {
        let cas = cas_unique.map(|c| format!(" {c}")).unwrap_or_default();
        let mut req =
            format!("{verb} {key} {flags} {exptime} {}{cas}\r\n", data.len()).into_bytes();
        req.extend_from_slice(data);
        req.extend_from_slice(b"\r\n");
        self.writer.write_all(&req)?;
        self.read_line()
    }

    /// `get`/`gets`/`gat`/`gats` and the items returned.
    pub fn retrieve(&mut self, cmd: &str) -> io::Result<Vec<Item>> {
        self.writer.write_all(format!("{cmd}\r\n").as_bytes())?;
        let mut items = Vec::new();
        loop {
            let line = self.read_line()?;
            if line == "END" {
                return Ok(items);
            }
            let (key, flags, len, cas) = parse_value_line(&line)?;
            let data = self.read_data(len)?;
            items.push(Item {
                key,
                flags,
                data,
                cas,
            });
        }
    }

    /// `stats [ARG]`: the `STAT name value` pairs (other lines, such as a metadump's, too).
    pub fn stats(&mut self, cmd: &str) -> io::Result<Vec<(String, String)>> {
        self.writer.write_all(format!("{cmd}\r\n").as_bytes())?;
        let mut out = Vec::new();
        loop {
            let line = self.read_line()?;
            if line == "END" {
                return Ok(out);
            }
            if line.starts_with("ERROR") || line.starts_with("CLIENT_ERROR") {
                return Err(bad(format!("{cmd}: {line}")));
            }
            let line = line.strip_prefix("STAT ").unwrap_or(&line).to_owned();
            let (k, v) = line.split_once(' ').unwrap_or((&line, ""));
            out.push((k.to_owned(), v.to_owned()));
        }
    }

    /// A meta command; a `VA <len> …` reply brings its data.
    pub fn meta(
        &mut self,
        cmd: &str,
        data: Option<&[u8]>,
    ) -> io::Result<(String, Option<Vec<u8>>)> {
        let mut req = format!("{cmd}\r\n").into_bytes();
        if let Some(d) = data {
            req.extend_from_slice(d);
            req.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&req)?;
        let line = self.read_line()?;
        if let Some(rest) = line.strip_prefix("VA ") {
            let len: usize = rest
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| bad(format!("bad VA line: {line}")))?;
            let data = self.read_data(len)?;
            return Ok((line, Some(data)));
        }
        Ok((line, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_value_lines() {
        assert_eq!(
            parse_value_line("VALUE k 5 3").unwrap(),
            ("k".into(), 5, 3, None)
        );
        assert_eq!(
            parse_value_line("VALUE k 0 10 77").unwrap(),
            ("k".into(), 0, 10, Some(77))
        );
        assert!(parse_value_line("END").is_err());
        assert!(parse_value_line("VALUE k x 3").is_err());
    }
}

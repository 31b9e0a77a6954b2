//! A Redis client speaking RESP2 over TCP: commands as arrays of bulk strings, replies parsed
//! into [`Value`].

use std::{
    io::{self, BufRead, BufReader, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The reply as text, for comparisons and messages.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Status(s) => Some(s.clone()),
            Value::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bulk(Some(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    pub fn items(&self) -> &[Value] {
        match self {
            Value::Array(Some(v)) => v,
            _ => &[],
        }
    }
}

pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A command as RESP: `*N\r\n` then `$len\r\narg\r\n` per argument.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply.
pub fn read_value(r: &mut impl BufRead) -> io::Result<Value> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(bad("connection closed mid-reply"));
    }
    line.truncate(line.len() - 2);
    let (kind, rest) = line.split_first().ok_or_else(|| bad("empty reply line"))?;
    let rest = String::from_utf8_lossy(rest).into_owned();
    let num =
        |s: &str| -> io::Result<i64> { s.parse().map_err(|_| bad(format!("bad length {s}"))) };
    Ok(match kind {
        b'+' => Value::Status(rest),
        b'-' => Value::Error(rest),
        b':' => Value::Int(num(&rest)?),
        b'$' => {
            let n = num(&rest)?;
            if n < 0 {
                Value::Bulk(None)
            } else {
                let mut buf = vec![0; n as usize + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Value::Bulk(Some(buf))
            }
        }
        b'*' => {
            let n = num(&rest)?;
            if n < 0 {
                Value::Array(None)
            } else {
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(read_value(r)?);
                }
                Value::Array(Some(items))
            }
        }
        other => return Err(bad(format!("unknown reply type {:?}", *other as char))),
    })
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

    /// Sends one command and reads its reply; an error reply is an `Err`.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value, String> {
        let v = self.raw(args).map_err(|e| e.to_string())?;
        match v {
            Value::Error(e) => Err(format!(
                "{}: {e}",
                String::from_utf8_lossy(args[0].as_ref())
            )),
            v => Ok(v),
        }
    }

    /// Sends one command and returns whatever came back, error replies included.
    pub fn raw<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Value> {
        self.writer.write_all(&encode(args))?;
        read_value(&mut self.reader)
    }

    /// Sends every command, then reads every reply (pipelining).
    pub fn pipeline(&mut self, cmds: &[Vec<Vec<u8>>]) -> io::Result<Vec<Value>> {
        let mut out = Vec::new();
        for c in cmds {
            out.extend_from_slice(&encode(c));
        }
        self.writer.write_all(&out)?;
        cmds.iter().map(|_| read_value(&mut self.reader)).collect()
    }

    /// The next pushed message (pub/sub).
    pub fn read(&mut self) -> io::Result<Value> {
        read_value(&mut self.reader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands_as_bulk_arrays() {
        assert_eq!(
            encode(&["SET", "k", "v 1"]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv 1\r\n".to_vec()
        );
    }

    #[test]
    fn parses_every_reply_type() {
        let input =
            b"+OK\r\n-ERR no\r\n:42\r\n$3\r\na\r\n\r\n$-1\r\n*2\r\n:1\r\n$1\r\nx\r\n*-1\r\n";
        let mut r = &input[..];
        assert_eq!(read_value(&mut r).unwrap(), Value::Status("OK".into()));
        assert_eq!(read_value(&mut r).unwrap(), Value::Error("ERR no".into()));
        assert_eq!(read_value(&mut r).unwrap(), Value::Int(42));
        assert_eq!(
            read_value(&mut r).unwrap(),
            Value::Bulk(Some(b"a\r\n".to_vec()))
        );
        assert_eq!(read_value(&mut r).unwrap(), Value::Bulk(None));
        assert_eq!(
            read_value(&mut r).unwrap(),
            Value::Array(Some(vec![Value::Int(1), Value::Bulk(Some(b"x".to_vec()))]))
        );
        assert_eq!(read_value(&mut r).unwrap(), Value::Array(None));
        assert!(read_value(&mut r).is_err());
    }
}

//! Redis with both kinds of persistence: an append-only file fsynced on every write (so a
//! kill -9 loses nothing) and RDB snapshots, each rewritten by a forked child.

use std::{
    net::SocketAddr,
    thread,
    time::{Duration, Instant},
};

use crate::{
    bundle::{Recipe, StateDir, User},
    oci::Process,
    proto::resp::{Client, Value},
    suite::{wait_until, Checks},
    Check, SuiteOptions,
};

pub const BIN: &str = "/usr/bin/redis-server";
const CONF: &str = "/etc/redis/redis.conf";
const UID: u32 = 999;
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys each suite run writes in one pipeline.
const BULK_KEYS: usize = 2000;

pub fn config(port: u16) -> String {
    format!(
        "bind 127.0.0.1
port {port}
daemonize no
supervised no
pidfile /run/redis/redis-server.pid
unixsocket /run/redis/redis-server.sock
unixsocketperm 700
loglevel notice
logfile \"\"
always-show-logo no
databases 16
dir /var/lib/redis
dbfilename dump.rdb
save 3600 1 300 100
rdbcompression yes
rdbchecksum yes
appendonly yes
appendfilename \"appendonly.aof\"
appenddirname \"appendonlydir\"
appendfsync always
aof-use-rdb-preamble yes
auto-aof-rewrite-percentage 100
auto-aof-rewrite-min-size 64mb
maxclients 200
"
    )
}

pub fn recipe(port: u16) -> Recipe {
    Recipe {
        name: "redis",
        package: "redis-server",
        binaries: vec![BIN.into()],
        trees: vec![],
        files: vec![(CONF.to_owned(), config(port).into_bytes(), 0o644)],
        dirs: vec![],
        users: vec![User {
            name: "redis",
            uid: UID,
            gid: UID,
            home: "/var/lib/redis",
        }],
        process: Process {
            args: vec![BIN.into(), CONF.into()],
            env: vec![],
            uid: UID,
            gid: UID,
            capabilities: vec![],
        },
        tmpfs: vec![("/tmp", "mode=1777")],
        state: vec![
            StateDir {
                name: "data",
                destination: "/var/lib/redis",
                uid: UID,
                gid: UID,
                mode: 0o750,
            },
            StateDir {
                name: "run",
                destination: "/run/redis",
                uid: UID,
                gid: UID,
                mode: 0o755,
            },
        ],
    }
}

fn connect(addr: SocketAddr) -> Result<Client, String> {
    Client::connect(addr, IO_TIMEOUT).map_err(|e| format!("connecting to {addr}: {e}"))
}

fn expect(got: Value, want: &str) -> Result<(), String> {
    match got.text() {
        Some(t) if t == want => Ok(()),
        _ => Err(format!("got {got:?}, expected {want}")),
    }
}

/// A field of `INFO section`.
fn info(c: &mut Client, section: &str, field: &str) -> Result<String, String> {
    let text = c.cmd(&["INFO", section])?.text().unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| format!("INFO {section} has no {field}"))
}

/// Waits until no child (snapshot or rewrite) runs.
fn wait_no_child(c: &mut Client) -> Result<(), String> {
    wait_until(Duration::from_secs(20), || {
        Ok(info(c, "persistence", "rdb_bgsave_in_progress")? == "0"
            && info(c, "persistence", "aof_rewrite_in_progress")? == "0"
            && info(c, "persistence", "aof_rewrite_scheduled")? == "0")
    })
}

/// Starts a background job (`BGSAVE`, `BGREWRITEAOF`) once no other runs, waits for it, and
/// requires `status_field` to say ok.
fn background(c: &mut Client, cmd: &str, status_field: &str) -> Result<(), String> {
    wait_no_child(c)?;
    c.cmd(&[cmd])?;
    wait_no_child(c)?;
    let status = info(c, "persistence", status_field)?;
    if status != "ok" {
        return Err(format!("{status_field}: {status}"));
    }
    Ok(())
}

fn journal_key(run: u32, i: usize) -> String {
    format!("run{run}:key:{i}")
}

fn bulk_value(run: u32, i: usize) -> String {
    format!("value-{run}-{i}-{}", "x".repeat(i % 64))
}

pub fn suite(opts: &SuiteOptions) -> Vec<Check> {
    let addr = opts.addr();
    let mut checks = Checks::default();
    let up = checks.add(
        format!("redis at {addr} answers PING"),
        wait_until(opts.ready_timeout, || {
            // Loading the AOF answers -LOADING until done.
            Ok(connect(addr)
                .and_then(|mut c| c.cmd(&["PING"]))
                .is_ok_and(|v| v == Value::Status("PONG".into())))
        }),
    );
    if !up {
        return checks.into_vec();
    }
    let run = opts.previous;
    checks.add(
        format!("the data of the {run} earlier suite run(s) is there"),
        connect(addr).and_then(|mut c| {
            let journal = c.cmd(&["LRANGE", "profgen:journal", "0", "-1"])?;
            let got: Vec<String> = journal.items().iter().filter_map(Value::text).collect();
            let want: Vec<String> = (0..run).map(|r| format!("run-{r}")).collect();
            if got != want {
                return Err(format!("journal {got:?}, expected {want:?}"));
            }
            for r in 0..run {
                let k = journal_key(r, BULK_KEYS - 1);
                expect(c.cmd(&["GET", &k])?, &bulk_value(r, BULK_KEYS - 1))?;
            }
            Ok(())
        }),
    );
    checks.add(
        "strings: SET, GET, APPEND, INCRBY, GETRANGE, binary values",
        connect(addr).and_then(|mut c| {
            expect(c.cmd(&["SET", "s", "hello"])?, "OK")?;
            expect(c.cmd(&["APPEND", "s", " world"])?, "11")?;
            expect(c.cmd(&["GETRANGE", "s", "6", "-1"])?, "world")?;
            c.cmd(&["SET", "n", "40"])?;
            expect(c.cmd(&["INCRBY", "n", "2"])?, "42")?;
            let bin: Vec<u8> = (0..=255).collect();
            c.cmd(&[b"SET".as_slice(), b"bin", &bin])?;
            match c.cmd(&["GET", "bin"])? {
                Value::Bulk(Some(b)) if b == bin => Ok(()),
                other => Err(format!("binary value came back as {other:?}")),
            }
        }),
    );
    checks.add(
        format!("{BULK_KEYS} keys written in one pipeline and read back"),
        connect(addr).and_then(|mut c| {
            let cmds: Vec<Vec<Vec<u8>>> = (0..BULK_KEYS)
                .map(|i| {
                    vec![
                        b"SET".to_vec(),
                        journal_key(run, i).into_bytes(),
                        bulk_value(run, i).into_bytes(),
                    ]
                })
                .collect();
            let replies = c.pipeline(&cmds).map_err(|e| e.to_string())?;
            if let Some(bad) = replies.iter().find(|r| **r != Value::Status("OK".into())) {
                return Err(format!("SET replied {bad:?}"));
            }
            let keys: Vec<String> = (0..BULK_KEYS).map(|i| journal_key(run, i)).collect();
            let mut mget = vec!["MGET".to_owned()];
            mget.extend(keys);
            let got = c.cmd(&mget)?;
            let ok = got
                .items()
                .iter()
                .enumerate()
                .all(|(i, v)| v.text() == Some(bulk_value(run, i)));
            if got.items().len() != BULK_KEYS || !ok {
                return Err("MGET did not return what was written".into());
            }
            Ok(())
        }),
    );
    checks.add(
        "lists, hashes, sets and sorted sets",
        connect(addr).and_then(|mut c| {
            c.cmd(&["DEL", "l", "h", "st", "z"])?;
            c.cmd(&["RPUSH", "l", "a", "b", "c"])?;
            c.cmd(&["LPUSH", "l", "z"])?;
            let l: Vec<String> = c
                .cmd(&["LRANGE", "l", "0", "-1"])?
                .items()
                .iter()
                .filter_map(Value::text)
                .collect();
            if l != ["z", "a", "b", "c"] {
                return Err(format!("list {l:?}"));
            }
            c.cmd(&["HSET", "h", "f1", "v1", "f2", "v2"])?;
            expect(c.cmd(&["HGET", "h", "f2"])?, "v2")?;
            expect(c.cmd(&["HLEN", "h"])?, "2")?;
            c.cmd(&["SADD", "st", "x", "y", "x"])?;
            expect(c.cmd(&["SCARD", "st"])?, "2")?;
            c.cmd(&["ZADD", "z", "3", "c", "1", "a", "2", "b"])?;
            let z: Vec<String> = c
                .cmd(&["ZRANGE", "z", "0", "-1"])?
                .items()
                .iter()
                .filter_map(Value::text)
                .collect();
            if z != ["a", "b", "c"] {
                return Err(format!("sorted set {z:?}"));
            }
            Ok(())
        }),
    );
    checks.add(
        "a key with PEXPIRE 100 ms is gone after it",
        connect(addr).and_then(|mut c| {
            c.cmd(&["SET", "ttl", "1"])?;
            c.cmd(&["PEXPIRE", "ttl", "100"])?;
            thread::sleep(Duration::from_millis(250));
            expect(c.cmd(&["EXISTS", "ttl"])?, "0")
        }),
    );
    checks.add(
        "MULTI/EXEC applies a transaction",
        connect(addr).and_then(|mut c| {
            c.cmd(&["SET", "tx", "0"])?;
            c.cmd(&["MULTI"])?;
            c.cmd(&["INCR", "tx"])?;
            c.cmd(&["INCR", "tx"])?;
            let r = c.cmd(&["EXEC"])?;
            if r.items().len() != 2 {
                return Err(format!("EXEC replied {r:?}"));
            }
            expect(c.cmd(&["GET", "tx"])?, "2")
        }),
    );
    checks.add(
        "a Lua script runs with EVAL",
        connect(addr).and_then(|mut c| {
            let script =
                "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('STRLEN', KEYS[1])";
            expect(c.cmd(&["EVAL", script, "1", "lua", "abcdef"])?, "6")
        }),
    );
    checks.add(
        "PUBLISH reaches a SUBSCRIBEd connection",
        connect(addr).and_then(|mut sub| {
            sub.cmd(&["SUBSCRIBE", "news"])?;
            let mut publisher = connect(addr)?;
            expect(publisher.cmd(&["PUBLISH", "news", "hello"])?, "1")?;
            let msg = sub.read().map_err(|e| e.to_string())?;
            let items: Vec<String> = msg.items().iter().filter_map(Value::text).collect();
            if items != ["message", "news", "hello"] {
                return Err(format!("subscriber got {msg:?}"));
            }
            Ok(())
        }),
    );
    checks.add(
        "8 connections x 200 commands in parallel",
        parallel(addr, 8, 200),
    );
    checks.add(
        "BGSAVE: a forked child writes the snapshot",
        connect(addr).and_then(|mut c| background(&mut c, "BGSAVE", "rdb_last_bgsave_status")),
    );
    checks.add(
        "BGREWRITEAOF: a forked child rewrites the append-only file",
        connect(addr)
            .and_then(|mut c| background(&mut c, "BGREWRITEAOF", "aof_last_bgrewrite_status")),
    );
    checks.add(
        "SAVE writes the snapshot in the foreground",
        connect(addr).and_then(|mut c| {
            wait_no_child(&mut c)?;
            expect(c.cmd(&["SAVE"])?, "OK")
        }),
    );
    checks.add(
        "INFO, CLIENT LIST, CONFIG GET, DBSIZE and SCAN answer",
        connect(addr).and_then(|mut c| {
            let mode = info(&mut c, "server", "redis_mode")?;
            if mode != "standalone" {
                return Err(format!("redis_mode {mode}"));
            }
            c.cmd(&["CLIENT", "LIST"])?;
            let dir = c.cmd(&["CONFIG", "GET", "dir"])?;
            if dir.items().get(1).and_then(Value::text).as_deref() != Some("/var/lib/redis") {
                return Err(format!("CONFIG GET dir: {dir:?}"));
            }
            let n = c.cmd(&["DBSIZE"])?.int().unwrap_or(0);
            if n < BULK_KEYS as i64 {
                return Err(format!("DBSIZE {n}"));
            }
            c.cmd(&["SCAN", "0", "COUNT", "100"])?;
            Ok(())
        }),
    );
    checks.add(
        format!("journal entry run-{run} appended"),
        connect(addr).and_then(|mut c| {
            let len = c.cmd(&["RPUSH", "profgen:journal", &format!("run-{run}")])?;
            expect(len, &(run + 1).to_string())
        }),
    );
    checks.into_vec()
}

fn parallel(addr: SocketAddr, threads: usize, per_thread: usize) -> Result<(), String> {
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            thread::spawn(move || -> Result<(), String> {
                let mut c = connect(addr)?;
                let key = format!("par:{t}");
                c.cmd(&["DEL", &key])?;
                for _ in 0..per_thread {
                    c.cmd(&["INCR", &key])?;
                }
                expect(c.cmd(&["GET", &key])?, &per_thread.to_string())
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    for w in workers {
        w.join()
            .map_err(|_| "a client thread panicked".to_string())??;
    }
    if Instant::now() > deadline {
        return Err("took longer than 30 s".into());
    }
    Ok(())
}

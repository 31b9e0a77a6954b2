//! memcached with its restartable cache: item memory in a file (`-e`), saved with its
//! metadata on a graceful stop (SIGUSR1) and reloaded by the next start; a kill -9 leaves the
//! file and the pid file behind, and the next start begins empty.

use std::{net::SocketAddr, thread, time::Duration};

use crate::{
    bundle::{Recipe, StateDir, User},
    oci::Process,
    proto::memtext::Client,
    suite::{wait_until, Checks},
    Check, SuiteOptions,
};

pub const BIN: &str = "/usr/bin/memcached";
const UID: u32 = 999;
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const KEYS: usize = 1000;
/// Bigger than a slab page's chunk: stored as a chunked item.
const BIG: usize = 300 * 1024;

pub fn args(port: u16) -> Vec<String> {
    [
        BIN,
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "0",
        // The restartable cache needs at least 39 MB.
        "-m",
        "48",
        "-c",
        "256",
        "-t",
        "2",
        "-e",
        "/var/lib/memcached/memory_file",
        "-P",
        "/run/memcached/memcached.pid",
    ]
    .map(String::from)
    .to_vec()
}

pub fn recipe(port: u16) -> Recipe {
    Recipe {
        name: "memcached",
        package: "memcached",
        binaries: vec![BIN.into()],
        trees: vec![],
        files: vec![],
        dirs: vec![],
        users: vec![User {
            name: "memcache",
            uid: UID,
            gid: UID,
            home: "/nonexistent",
        }],
        process: Process {
            args: args(port),
            env: vec![],
            uid: UID,
            gid: UID,
            capabilities: vec![],
        },
        tmpfs: vec![("/tmp", "mode=1777")],
        state: vec![
            StateDir {
                name: "data",
                destination: "/var/lib/memcached",
                uid: UID,
                gid: UID,
                mode: 0o750,
            },
            StateDir {
                name: "run",
                destination: "/run/memcached",
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

fn io(e: std::io::Error) -> String {
    e.to_string()
}

fn expect(got: String, want: &str) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got:?}, expected {want}"))
    }
}

fn get_one(c: &mut Client, key: &str) -> Result<Option<Vec<u8>>, String> {
    Ok(c.retrieve(&format!("get {key}"))
        .map_err(io)?
        .pop()
        .map(|i| i.data))
}

fn big_value(run: u32) -> Vec<u8> {
    (0..BIG).map(|i| (i as u32 * 31 + run) as u8).collect()
}

pub fn suite(opts: &SuiteOptions) -> Vec<Check> {
    let addr = opts.addr();
    let run = opts.previous;
    let mut checks = Checks::default();
    let up = checks.add(
        format!("memcached at {addr} answers version"),
        wait_until(opts.ready_timeout, || {
            Ok(connect(addr)
                .and_then(|mut c| c.line("version").map_err(io))
                .is_ok_and(|v| v.starts_with("VERSION ")))
        }),
    );
    if !up {
        return checks.into_vec();
    }
    checks.add(
        format!("the items of the {run} earlier suite run(s) are there"),
        connect(addr).and_then(|mut c| {
            let journal = get_one(&mut c, "profgen:journal")?;
            let want = (run > 0).then(|| run.to_string().into_bytes());
            if journal != want {
                return Err(format!(
                    "profgen:journal is {:?}, expected {:?}",
                    journal.map(|j| String::from_utf8_lossy(&j).into_owned()),
                    want.map(|w| String::from_utf8_lossy(&w).into_owned())
                ));
            }
            for r in 0..run {
                if get_one(&mut c, &format!("run{r}:big"))? != Some(big_value(r)) {
                    return Err(format!("run{r}:big is missing or differs"));
                }
            }
            Ok(())
        }),
    );
    checks.add(
        "set, add, replace, append, prepend",
        connect(addr).and_then(|mut c| {
            expect(
                c.store("set", "s", 7, 0, b"mid", None).map_err(io)?,
                "STORED",
            )?;
            expect(
                c.store("add", "s", 0, 0, b"x", None).map_err(io)?,
                "NOT_STORED",
            )?;
            expect(
                c.store("append", "s", 0, 0, b"-end", None).map_err(io)?,
                "STORED",
            )?;
            expect(
                c.store("prepend", "s", 0, 0, b"start-", None).map_err(io)?,
                "STORED",
            )?;
            expect(
                c.store("replace", "nothere", 0, 0, b"x", None)
                    .map_err(io)?,
                "NOT_STORED",
            )?;
            let item = c.retrieve("get s").map_err(io)?;
            match item.as_slice() {
                [i] if i.data == b"start-mid-end" && i.flags == 7 => Ok(()),
                other => Err(format!("get s: {other:?}")),
            }
        }),
    );
    checks.add(
        "gets and cas: a stale cas unique is refused",
        connect(addr).and_then(|mut c| {
            c.store("set", "c", 0, 0, b"1", None).map_err(io)?;
            let cas = c
                .retrieve("gets c")
                .map_err(io)?
                .pop()
                .and_then(|i| i.cas)
                .ok_or("gets gave no cas")?;
            expect(
                c.store("cas", "c", 0, 0, b"2", Some(cas)).map_err(io)?,
                "STORED",
            )?;
            expect(
                c.store("cas", "c", 0, 0, b"3", Some(cas)).map_err(io)?,
                "EXISTS",
            )
        }),
    );
    checks.add(
        "incr, decr, touch, delete, an already expired item",
        connect(addr).and_then(|mut c| {
            c.store("set", "n", 0, 0, b"40", None).map_err(io)?;
            expect(c.line("incr n 5").map_err(io)?, "45")?;
            expect(c.line("decr n 3").map_err(io)?, "42")?;
            expect(c.line("touch n 3600").map_err(io)?, "TOUCHED")?;
            expect(c.line("delete n").map_err(io)?, "DELETED")?;
            expect(c.line("delete n").map_err(io)?, "NOT_FOUND")?;
            c.store("set", "gone", 0, -1, b"x", None).map_err(io)?;
            match get_one(&mut c, "gone")? {
                None => Ok(()),
                Some(v) => Err(format!("an expired item came back: {v:?}")),
            }
        }),
    );
    checks.add(
        "meta commands: ms, mg with flags, ma, md",
        connect(addr).and_then(|mut c| {
            let (line, _) = c.meta("ms meta 5 T0 F3", Some(b"hello")).map_err(io)?;
            expect(line, "HD")?;
            let (line, data) = c.meta("mg meta v f t", None).map_err(io)?;
            if !line.starts_with("VA 5") || data.as_deref() != Some(b"hello".as_slice()) {
                return Err(format!("mg: {line} {data:?}"));
            }
            c.meta("ms num 1", Some(b"7")).map_err(io)?;
            let (line, data) = c.meta("ma num v", None).map_err(io)?;
            if data.as_deref() != Some(b"8".as_slice()) {
                return Err(format!("ma: {line} {data:?}"));
            }
            expect(c.meta("md meta", None).map_err(io)?.0, "HD")?;
            expect(c.meta("mg meta v", None).map_err(io)?.0, "EN")
        }),
    );
    checks.add(
        format!("{KEYS} items set and read back with multi-key gets"),
        connect(addr).and_then(|mut c| {
            for i in 0..KEYS {
                c.store(
                    "set",
                    &format!("run{run}:key:{i}"),
                    0,
                    0,
                    format!("v{i}").as_bytes(),
                    None,
                )
                .map_err(io)?;
            }
            for chunk in (0..KEYS).collect::<Vec<_>>().chunks(100) {
                let keys: Vec<String> = chunk.iter().map(|i| format!("run{run}:key:{i}")).collect();
                let items = c.retrieve(&format!("get {}", keys.join(" "))).map_err(io)?;
                if items.len() != chunk.len() {
                    return Err(format!(
                        "{} of {} items came back",
                        items.len(),
                        chunk.len()
                    ));
                }
            }
            Ok(())
        }),
    );
    checks.add(
        format!("a {} kB item is stored in chunks and read back", BIG / 1024),
        connect(addr).and_then(|mut c| {
            let big = big_value(run);
            expect(
                c.store("set", &format!("run{run}:big"), 0, 0, &big, None)
                    .map_err(io)?,
                "STORED",
            )?;
            if get_one(&mut c, &format!("run{run}:big"))? != Some(big) {
                return Err("the big item came back different".into());
            }
            Ok(())
        }),
    );
    checks.add(
        "stats, stats slabs, stats items, stats settings",
        connect(addr).and_then(|mut c| {
            let stats = c.stats("stats").map_err(io)?;
            if !stats.iter().any(|(k, _)| k == "curr_items") {
                return Err("no curr_items in stats".into());
            }
            c.stats("stats slabs").map_err(io)?;
            c.stats("stats items").map_err(io)?;
            let settings = c.stats("stats settings").map_err(io)?;
            match settings.iter().find(|(k, _)| k == "memory_file") {
                Some((_, v)) if v == "/var/lib/memcached/memory_file" => Ok(()),
                other => Err(format!("memory_file setting {other:?}")),
            }
        }),
    );
    checks.add(
        "lru_crawler metadump lists the items",
        connect(addr).and_then(|mut c| {
            let dump = c.stats("lru_crawler metadump all").map_err(io)?;
            if dump.iter().any(|(k, _)| k.starts_with("key=")) {
                Ok(())
            } else {
                Err(format!("{} lines, no key=", dump.len()))
            }
        }),
    );
    checks.add(
        "8 connections x 200 increments in parallel",
        parallel(addr, 8, 200),
    );
    checks.add(
        format!("journal {} stored", run + 1),
        connect(addr).and_then(|mut c| {
            expect(
                c.store(
                    "set",
                    "profgen:journal",
                    0,
                    0,
                    (run + 1).to_string().as_bytes(),
                    None,
                )
                .map_err(io)?,
                "STORED",
            )
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
                c.store("set", &key, 0, 0, b"0", None).map_err(io)?;
                for _ in 0..per_thread {
                    c.line(&format!("incr {key} 1")).map_err(io)?;
                }
                expect(
                    String::from_utf8_lossy(&get_one(&mut c, &key)?.unwrap_or_default())
                        .into_owned(),
                    &per_thread.to_string(),
                )
            })
        })
        .collect();
    for w in workers {
        w.join()
            .map_err(|_| "a client thread panicked".to_string())??;
    }
    Ok(())
}

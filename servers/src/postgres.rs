//! PostgreSQL 15 in Debian's layout: the cluster in `/var/lib/postgresql/15/main` (made by
//! `initdb` in a set-up container before the first run), its config in
//! `/etc/postgresql/15/main`, the socket and its lock file in `/run/postgresql`.

use std::{net::SocketAddr, thread, time::Duration};

use crate::{
    bundle::{Recipe, StateDir, User},
    oci::Process,
    proto::pgwire::Client,
    suite::{wait_until, Checks},
    Check, SuiteOptions,
};

pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
pub const LIB_DIR: &str = "/usr/lib/postgresql/15/lib";
pub const DATA: &str = "/var/lib/postgresql/15/main";
const CONF_DIR: &str = "/etc/postgresql/15/main";
const UID: u32 = 999;
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Server modules the suite (and initdb) load.
const MODULES: [&str; 4] = ["plpgsql", "dict_snowball", "pg_stat_statements", "pgcrypto"];
const ROWS: u32 = 10_000;

/// `huge_pages = off`: with `try` (the default) the postmaster first maps its shared memory
/// from an anonymous hugetlbfs file, which AppArmor mediates as `/` (`file_mmap`, `rw`) and no
/// profile rule can name; the map is refused, postgres falls back to normal pages, and the
/// kernel logs a DENIED line. The recording cannot see it (only executable maps are file
/// accesses), and the container host had no huge pages either.
pub fn config(port: u16) -> String {
    format!(
        "data_directory = '{DATA}'
hba_file = '{CONF_DIR}/pg_hba.conf'
ident_file = '{CONF_DIR}/pg_ident.conf'
listen_addresses = '127.0.0.1'
port = {port}
max_connections = 30
unix_socket_directories = '/run/postgresql'
shared_buffers = 32MB
huge_pages = off
dynamic_shared_memory_type = posix
shared_preload_libraries = 'pg_stat_statements'
jit = off
max_wal_size = 64MB
min_wal_size = 32MB
checkpoint_timeout = 30s
autovacuum_naptime = 1s
max_parallel_workers_per_gather = 2
max_parallel_maintenance_workers = 2
log_destination = 'stderr'
logging_collector = off
log_line_prefix = '%m [%p] '
log_checkpoints = on
log_temp_files = 0
datestyle = 'iso, mdy'
timezone = 'UTC'
log_timezone = 'UTC'
lc_messages = 'C'
default_text_search_config = 'pg_catalog.english'
"
    )
}

const HBA: &str = "local all all trust\nhost all all 127.0.0.1/32 trust\n";

pub fn recipe(port: u16) -> Recipe {
    let mut binaries: Vec<std::path::PathBuf> = ["postgres", "initdb"]
        .iter()
        .map(|b| format!("{BIN_DIR}/{b}").into())
        .collect();
    // initdb finds and runs postgres through popen(3), that is /bin/sh.
    binaries.push("/bin/sh".into());
    binaries.extend(MODULES.iter().map(|m| format!("{LIB_DIR}/{m}.so").into()));
    Recipe {
        name: "postgres",
        package: "postgresql-15",
        binaries,
        trees: vec![
            "/usr/share/postgresql/15".into(),
            "/usr/share/zoneinfo".into(),
        ],
        files: vec![
            (
                format!("{CONF_DIR}/postgresql.conf"),
                config(port).into_bytes(),
                0o644,
            ),
            (format!("{CONF_DIR}/pg_hba.conf"), HBA.into(), 0o644),
            (format!("{CONF_DIR}/pg_ident.conf"), Vec::new(), 0o644),
        ],
        dirs: vec![],
        users: vec![User {
            name: "postgres",
            uid: UID,
            gid: UID,
            home: "/var/lib/postgresql",
        }],
        process: Process {
            args: vec![
                format!("{BIN_DIR}/postgres"),
                "-c".into(),
                format!("config_file={CONF_DIR}/postgresql.conf"),
            ],
            env: vec![],
            uid: UID,
            gid: UID,
            capabilities: vec![],
        },
        tmpfs: vec![("/tmp", "mode=1777")],
        state: vec![
            StateDir {
                name: "data",
                destination: DATA,
                uid: UID,
                gid: UID,
                mode: 0o700,
            },
            StateDir {
                name: "run",
                destination: "/run/postgresql",
                uid: UID,
                gid: UID,
                mode: 0o2775,
            },
        ],
    }
}

/// The one-off set-up before the first start: a cluster with trust authentication.
pub fn initdb_args() -> Vec<String> {
    [
        &format!("{BIN_DIR}/initdb"),
        "-D",
        DATA,
        "--no-locale",
        "-E",
        "UTF8",
        "-A",
        "trust",
        "-U",
        "postgres",
        "--no-sync",
    ]
    .map(String::from)
    .to_vec()
}

fn connect(addr: SocketAddr, db: &str) -> Result<Client, String> {
    Client::connect(addr, "postgres", db, IO_TIMEOUT)
}

fn expect(got: Option<String>, want: &str) -> Result<(), String> {
    if got.as_deref() == Some(want) {
        Ok(())
    } else {
        Err(format!("got {got:?}, expected {want}"))
    }
}

pub fn suite(opts: &SuiteOptions) -> Vec<Check> {
    let addr = opts.addr();
    let run = opts.previous;
    let mut checks = Checks::default();
    let up = checks.add(
        format!("postgres at {addr} accepts a session"),
        // Crash recovery answers "the database system is starting up" until done.
        wait_until(opts.ready_timeout, || {
            Ok(connect(addr, "postgres")
                .and_then(|mut c| c.value("SELECT 1"))
                .is_ok())
        }),
    );
    if !up {
        return checks.into_vec();
    }
    checks.add(
        format!("the data of the {run} earlier suite run(s) is there"),
        connect(addr, "postgres").and_then(|mut c| {
            c.query(
                "CREATE TABLE IF NOT EXISTS profgen_journal (run int PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
                 CREATE TABLE IF NOT EXISTS items (run int, id int, payload text, PRIMARY KEY (run, id))",
            )?;
            let runs = c.rows("SELECT run FROM profgen_journal ORDER BY run")?;
            let got: Vec<String> = runs.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect();
            let want: Vec<String> = (0..run).map(|r| r.to_string()).collect();
            if got != want {
                return Err(format!("journal {got:?}, expected {want:?}"));
            }
            for r in 0..run {
                expect(
                    c.value(&format!("SELECT count(*) FROM items WHERE run = {r}"))?,
                    &(ROWS - ROWS / 10).to_string(),
                )?;
            }
            // Only the last run's database is kept (each is a copy of template1).
            if let Some(r) = run.checked_sub(1) {
                let mut other = connect(addr, &format!("profgen_run_{r}"))?;
                expect(other.value("SELECT note FROM notes")?, &format!("run {r}"))?;
            }
            Ok(())
        }),
    );
    checks.add(
        format!("{ROWS} rows inserted, a tenth deleted, the rest updated"),
        connect(addr, "postgres").and_then(|mut c| {
            c.query(&format!(
                "DELETE FROM items WHERE run = {run};
                 INSERT INTO items SELECT {run}, g, md5(g::text) FROM generate_series(1, {ROWS}) g;
                 DELETE FROM items WHERE run = {run} AND id % 10 = 0;
                 UPDATE items SET payload = upper(payload) WHERE run = {run}"
            ))?;
            expect(
                c.value(&format!(
                    "SELECT count(*) FROM items WHERE run = {run} AND payload = upper(payload)"
                ))?,
                &(ROWS - ROWS / 10).to_string(),
            )
        }),
    );
    checks.add(
        "COPY FROM STDIN and COPY TO STDOUT round trip",
        connect(addr, "postgres").and_then(|mut c| {
            c.query("DROP TABLE IF EXISTS copied; CREATE TABLE copied (a int, b text)")?;
            let data: String = (0..500).map(|i| format!("{i}\trow {i}\n")).collect();
            c.copy_in("COPY copied FROM STDIN", data.as_bytes())?;
            let out = c.copy_out("COPY (SELECT * FROM copied ORDER BY a) TO STDOUT")?;
            if out != data.as_bytes() {
                return Err(format!(
                    "COPY TO STDOUT gave {} bytes, expected {}",
                    out.len(),
                    data.len()
                ));
            }
            Ok(())
        }),
    );
    checks.add(
        "a PL/pgSQL trigger fills a column",
        connect(addr, "postgres").and_then(|mut c| {
            c.query(
                "DROP TABLE IF EXISTS stamped;
                 CREATE TABLE stamped (v text, len int);
                 CREATE OR REPLACE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS
                   $$ BEGIN NEW.len := length(NEW.v); RETURN NEW; END $$;
                 CREATE TRIGGER stamp BEFORE INSERT ON stamped FOR EACH ROW EXECUTE FUNCTION stamp();
                 INSERT INTO stamped (v) VALUES ('abcd')",
            )?;
            expect(c.value("SELECT len FROM stamped")?, "4")
        }),
    );
    checks.add(
        "a sort bigger than work_mem spills to temporary files",
        connect(addr, "postgres").and_then(|mut c| {
            c.query("SET work_mem = '64kB'")?;
            let plan = c.rows(
                "EXPLAIN (ANALYZE, COSTS OFF)
                 SELECT count(*) FROM (SELECT md5(g::text) m FROM generate_series(1, 100000) g ORDER BY m) s",
            )?;
            let text: Vec<String> = plan.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect();
            if text.iter().any(|l| l.contains("external merge")) {
                Ok(())
            } else {
                Err(format!("the sort stayed in memory: {}", text.join(" | ")))
            }
        }),
    );
    checks.add(
        "a parallel scan launches workers",
        connect(addr, "postgres").and_then(|mut c| {
            c.query(
                "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
                 SET min_parallel_table_scan_size = 0",
            )?;
            let plan = c.rows("EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM items")?;
            let text: Vec<String> = plan
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect();
            let launched = text
                .iter()
                .find_map(|l| l.trim().strip_prefix("Workers Launched: "));
            match launched.and_then(|n| n.parse::<u32>().ok()) {
                Some(n) if n > 0 => Ok(()),
                _ => Err(format!("no workers launched: {}", text.join(" | "))),
            }
        }),
    );
    checks.add(
        "CREATE INDEX, ANALYZE and VACUUM",
        connect(addr, "postgres").and_then(|mut c| {
            c.query(
                "DROP INDEX IF EXISTS items_payload;
                 CREATE INDEX items_payload ON items (payload);
                 ANALYZE items",
            )?;
            // VACUUM refuses to run in the implicit transaction of a multi-statement query.
            c.query("VACUUM items")?;
            expect(
                c.value("SELECT count(*) FROM pg_indexes WHERE indexname = 'items_payload'")?,
                "1",
            )
        }),
    );
    checks.add(
        "NOTIFY reaches a LISTENing session",
        connect(addr, "postgres").and_then(|mut listener| {
            listener.query("LISTEN news")?;
            connect(addr, "postgres")?.query("NOTIFY news, 'hello'")?;
            listener.wait_notification(Duration::from_secs(5))?;
            match listener.notifications.first() {
                Some((ch, p)) if ch == "news" && p == "hello" => Ok(()),
                other => Err(format!("got {other:?}")),
            }
        }),
    );
    checks.add(
        "ROLLBACK and ROLLBACK TO SAVEPOINT undo",
        connect(addr, "postgres").and_then(|mut c| {
            c.query("DROP TABLE IF EXISTS tx; CREATE TABLE tx (v int)")?;
            c.query("BEGIN; INSERT INTO tx VALUES (1); ROLLBACK")?;
            c.query("BEGIN; INSERT INTO tx VALUES (2); SAVEPOINT s; INSERT INTO tx VALUES (3); ROLLBACK TO SAVEPOINT s; COMMIT")?;
            expect(c.value("SELECT string_agg(v::text, ',') FROM tx")?, "2")
        }),
    );
    checks.add(
        format!(
            "CREATE DATABASE profgen_run_{run} and a table in it, DROP DATABASE of an older one"
        ),
        connect(addr, "postgres").and_then(|mut c| {
            if let Some(old) = run.checked_sub(2) {
                c.query(&format!("DROP DATABASE IF EXISTS profgen_run_{old}"))?;
            }
            c.query(&format!("DROP DATABASE IF EXISTS profgen_run_{run}"))?;
            c.query(&format!("CREATE DATABASE profgen_run_{run}"))?;
            let mut db = connect(addr, &format!("profgen_run_{run}"))?;
            db.query(&format!(
                "CREATE TABLE notes (note text); INSERT INTO notes VALUES ('run {run}')"
            ))?;
            Ok(())
        }),
    );
    checks.add(
        "extensions: pgcrypto digests, pg_stat_statements counts",
        connect(addr, "postgres").and_then(|mut c| {
            c.query("CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE EXTENSION IF NOT EXISTS pg_stat_statements")?;
            expect(
                c.value("SELECT encode(digest('abc', 'sha256'), 'hex')")?,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            )?;
            let n = c.value("SELECT count(*) FROM pg_stat_statements")?;
            if n.as_deref().and_then(|n| n.parse::<i64>().ok()).unwrap_or(0) == 0 {
                return Err("pg_stat_statements is empty".into());
            }
            Ok(())
        }),
    );
    checks.add("8 sessions commit in parallel", parallel(addr, 8, 50));
    checks.add(
        "pg_reload_conf(), pg_switch_wal() and CHECKPOINT",
        connect(addr, "postgres").and_then(|mut c| {
            expect(c.value("SELECT pg_reload_conf()")?, "t")?;
            c.query("SELECT pg_switch_wal()")?;
            c.query("CHECKPOINT")?;
            Ok(())
        }),
    );
    checks.add(
        format!("journal entry {run} committed"),
        connect(addr, "postgres").and_then(|mut c| {
            c.query(&format!("INSERT INTO profgen_journal (run) VALUES ({run})"))?;
            expect(
                c.value("SELECT count(*) FROM profgen_journal")?,
                &(run + 1).to_string(),
            )
        }),
    );
    checks.into_vec()
}

fn parallel(addr: SocketAddr, sessions: usize, per_session: usize) -> Result<(), String> {
    connect(addr, "postgres")?
        .query("DROP TABLE IF EXISTS counters; CREATE TABLE counters (session int, n int)")?;
    let workers: Vec<_> = (0..sessions)
        .map(|s| {
            thread::spawn(move || -> Result<(), String> {
                let mut c = connect(addr, "postgres")?;
                for i in 0..per_session {
                    c.query(&format!(
                        "BEGIN; INSERT INTO counters VALUES ({s}, {i}); COMMIT"
                    ))?;
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join()
            .map_err(|_| "a session thread panicked".to_string())??;
    }
    expect(
        connect(addr, "postgres")?.value("SELECT count(*) FROM counters")?,
        &(sessions * per_session).to_string(),
    )
}

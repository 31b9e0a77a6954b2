//! `server-suite SERVER --port PORT [--previous N]`: a server's suite against a running
//! server on 127.0.0.1 (what `profgen verify … -- server-suite …` runs). Prints one line per
//! check and a total; exits 0 only when every check passed.
//!
//! With `--confined-by PROFILE` (inside an AppArmor VM, as root, beside the server that
//! profile confines) the suite goes on with the rest of a run: kill -9 of every confined
//! process, a start under the same profile on what the kill left, the suite again, a graceful
//! stop.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use profgen_servers::{guest, suite, Check, Server, SuiteOptions};

#[derive(Debug, Parser)]
#[command(about = "The suite of one of profgen's reference servers")]
struct Args {
    /// nginx, redis, postgres, memcached or haproxy.
    server: Server,
    /// The server's port on 127.0.0.1 (haproxy also uses the next four).
    #[arg(long)]
    port: u16,
    /// Suite runs before this one whose data the server must still hold.
    #[arg(long, default_value_t = 0)]
    previous: u32,
    /// How long to wait for the server to answer at all.
    #[arg(long, default_value_t = 60)]
    ready_secs: u64,
    /// Then kill -9 what this AppArmor profile confines, start the server under it again,
    /// run the suite, stop the server.
    #[arg(long, value_name = "PROFILE")]
    confined_by: Option<String>,
    /// Where the restarted server's output goes (a file the VM's profile allows).
    #[arg(long, default_value = "/.profgen/workload.log")]
    workload_log: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let ready = Duration::from_secs(args.ready_secs);
    let opts = |previous| SuiteOptions {
        port: args.port,
        previous,
        ready_timeout: ready,
    };
    let mut failed = report("suite", &args.server.suite(&opts(args.previous)));
    if let Some(profile) = &args.confined_by {
        failed += restart_after_kill(&args, profile, ready, opts);
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints the checks; returns how many failed.
fn report(what: &str, checks: &[Check]) -> usize {
    for line in suite::lines(checks) {
        println!("{line}");
    }
    let failed = suite::failures(checks);
    println!(
        "{what}: {} checks, {} passed, {failed} failed",
        checks.len(),
        checks.len() - failed
    );
    failed
}

fn step(what: &str, result: Result<(), String>) -> usize {
    match result {
        Ok(()) => {
            println!("ok   {what}");
            0
        }
        Err(e) => {
            println!("FAIL {what}: {e}");
            1
        }
    }
}

fn restart_after_kill(
    args: &Args,
    profile: &str,
    ready: Duration,
    opts: impl Fn(u32) -> SuiteOptions,
) -> usize {
    let killed = guest::kill_all(profile);
    if step(
        "kill -9 of every process the profile confines",
        killed.map(drop),
    ) > 0
    {
        return 1;
    }
    let mut child = match guest::launch(args.server, args.port, profile, &args.workload_log) {
        Ok(c) => c,
        Err(e) => return step("start again under the profile", Err(e.to_string())),
    };
    let addr = opts(0).addr();
    if step(
        "start again under the profile, on what the kill left",
        guest::wait_tcp(&mut child, addr, ready),
    ) > 0
    {
        let _ = child.kill();
        return 1;
    }
    // The first suite's journal entry is its last check; the kill keeps it or not.
    let previous = guest::after_kill(args.server, args.previous + 1);
    let failed = report(
        "suite after the restart",
        &args.server.suite(&opts(previous)),
    );
    if failed > 0 {
        diagnose(&args.workload_log);
    }
    failed
        + step(
            &format!("graceful stop (SIG{})", args.server.stop_signal()),
            guest::stop(args.server, &mut child, Duration::from_secs(30)),
        )
}

/// What the guest's own report cuts off: the listening ports and the server's complaints.
fn diagnose(log: &std::path::Path) {
    let listening: Vec<u16> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let port = f.get(1)?.rsplit_once(':')?.1;
                    (f.get(3) == Some(&"0A")).then(|| u16::from_str_radix(port, 16).ok())?
                })
                .collect::<Vec<_>>()
        })
        .collect();
    println!("diagnosis: listening on {listening:?}");
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            ["alert", "error", "fatal", "panic", "cannot", "failed"]
                .iter()
                .any(|w| l.contains(w))
        })
        .collect();
    for l in complaints.iter().rev().take(8).rev() {
        println!("diagnosis: {l}");
    }
}

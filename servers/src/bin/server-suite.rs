//! `server-suite SERVER --port PORT [--previous N]`: a server's suite against a running
//! server on 127.0.0.1 (what `profgen verify … -- server-suite …` runs). Prints one line per
//! check and a total; exits 0 only when every check passed.

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use profgen_servers::{suite, Server, SuiteOptions};

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
    #[arg(long, default_value_t = 30)]
    ready_secs: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let checks = args.server.suite(&SuiteOptions {
        port: args.port,
        previous: args.previous,
        ready_timeout: Duration::from_secs(args.ready_secs),
    });
    for line in suite::lines(&checks) {
        println!("{line}");
    }
    let failed = suite::failures(&checks);
    println!(
        "{} checks, {} passed, {failed} failed",
        checks.len(),
        checks.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

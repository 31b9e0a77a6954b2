//! `demo-suite --url http://127.0.0.1:PORT`: the demo site's HTTP test suite. Prints one line
//! per check and a total; exits 0 only when every check passed.

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use profgen_demo::suite;

#[derive(Debug, Parser)]
#[command(about = "HTTP test suite for profgen's demo site")]
struct Args {
    /// Where the site is served.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// How long to wait for the server to answer at all.
    #[arg(long, default_value_t = 10)]
    ready_secs: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let addr = match suite::parse_url(&args.url) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("demo-suite: {e}");
            return ExitCode::from(2);
        }
    };
    let checks = suite::run(addr, Duration::from_secs(args.ready_secs));
    let failed = checks.iter().filter(|c| c.result.is_err()).count();
    for check in &checks {
        match &check.result {
            Ok(()) => println!("ok   {}", check.name),
            Err(e) => println!("FAIL {}: {e}", check.name),
        }
    }
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

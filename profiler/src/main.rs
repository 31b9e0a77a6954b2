//! The `profgen` command line. Each subcommand lives in its own module under `cli/`.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the error and its causes, outermost first.
            let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
            eprintln!("profgen: error: {}", chain.join(": "));
            ExitCode::from(cli::exit_code(&err))
        }
    }
}

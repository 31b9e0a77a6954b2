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
            let code = cli::exit_code(&err);
            // A verdict (the new set allows more, a recording is outside the set) is the
            // answer to the question asked, not a failure to answer it.
            let label = if code == cli::exit::ALLOWS_MORE {
                ""
            } else {
                "error: "
            };
            eprintln!("profgen: {label}{}", chain.join(": "));
            ExitCode::from(code)
        }
    }
}

//! The `seawall-lab` command line: see [`seawall_lab::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = seawall_lab::cli::Cli::parse();
    match seawall_lab::cli::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("seawall-lab: {err}");
            }
            ExitCode::FAILURE
        }
    }
}

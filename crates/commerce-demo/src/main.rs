//! `cargo run --release -p commerce-demo`: the PG-outage experiment. The commerce service
//! runs three PG conditions twice each, once with its seawall-protected payment port and once
//! with a naive one, over real HTTP, and writes a Markdown table and an SVG chart.
//!
//! The experiment lives here, outside the `commerce` library, so the service ships neither
//! the demo nor the naive adapter.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line report

mod chart;
mod demo;
mod naive;

use std::process::ExitCode;

use clap::Parser;

/// The PG-outage experiment: seawall vs a naive PG client.
#[derive(Debug, Parser)]
#[command(name = "commerce-demo")]
struct Cli {
    #[command(flatten)]
    args: demo::DemoArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    commerce::telemetry::init_tracing("off");
    match demo::run(cli.args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

//! The commerce service binary: wiring only (see the library for everything else).
//!
//! - `commerce [serve] [--config FILE]`: the service (SQLite, in-process PG simulator).
//!
//! The PG-outage experiment is a binary of its own: `cargo run --release -p commerce-demo`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "commerce",
    about = "An order/payment service that survives PG outages"
)]
struct Cli {
    /// A TOML configuration file (then `APP_*` environment variables override it).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Serve) => {
            commerce::serve::main_with_config(cli.config.as_deref()).await
        }
    }
}

//! The commerce service as a child process of the system tests: the same entry point as
//! `commerce serve` (defaults, then the TOML file given as the only argument, then `APP_*`
//! variables), so a test can start several, `kill -9` one and start it again.

use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let file = std::env::args_os().nth(1).map(PathBuf::from);
    commerce::serve::main_with_config(file.as_deref()).await
}

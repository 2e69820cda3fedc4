//! The commerce service as a child process of the system tests: the same entry point as
//! `commerce serve` (defaults, then the TOML file given as the only argument, then `APP_*`
//! variables), so a test can start several, `kill -9` one and start it again.

use std::path::PathBuf;
use std::process::ExitCode;

use commerce::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    commerce::telemetry::init_tracing("commerce=info,seawall=warn,tower_http=warn");
    let file = std::env::args_os().nth(1).map(PathBuf::from);
    let result = match Settings::load(file.as_deref()) {
        Ok(loaded) => {
            loaded.warn_ignored();
            commerce::serve::run(loaded.settings).await
        }
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

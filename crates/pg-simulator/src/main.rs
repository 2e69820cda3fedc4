//! `pg-simulator` binary: parse flags, start telemetry, run until ctrl-c or SIGTERM.
//! All behaviour lives in the library so tests reach it.

use clap::Parser;
use pg_simulator::Simulator;
use pg_simulator::cli::Args;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("pg_simulator=info")),
        )
        .init();
    let config = Args::parse().into_config()?;
    let handle = Simulator::builder().config(config).spawn().await?;
    tracing::info!(api = %handle.base_url(), control = ?handle.control_url(), "ready");
    shutdown_signal().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

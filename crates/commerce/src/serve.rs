//! `cargo run -p commerce` (the `serve` command): the service on SQLite, with an in-process
//! PG simulator when no `gateway.base_url` is configured.

#![allow(clippy::print_stdout)] // this module talks to the person who started the program

use pg_simulator::Simulator;

use crate::configuration::Settings;
use crate::startup::{Application, StartupError};

/// Starts the service (and a simulator if needed), prints how to use it, serves until
/// ctrl-c / SIGTERM.
///
/// # Errors
///
/// The simulator or the service could not start, or the server failed.
pub async fn run(mut settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let simulator = if settings.gateway.base_url.is_none() {
        // The in-process simulator signs its callbacks with the configured secret, else with
        // one made for this process: nobody else can sign a callback the service accepts.
        let secret = match settings.callback.secret.clone() {
            Some(secret) => secret,
            None => crate::secrets::random_hex(32)?,
        };
        // The canonical PG (latency, 40 % failures, 1–5 s processing) with the extensions a
        // correct client uses: idempotency keys, signed callbacks, cancel.
        let sim = Simulator::builder()
            .allow_any_loopback_callback()
            .idempotency(true)
            .cancel_endpoint(true)
            .callback_secret(secret.clone())
            .spawn()
            .await?;
        settings.gateway.base_url = Some(sim.base_url());
        settings.callback.secret = Some(secret);
        Some(sim)
    } else {
        None
    };
    if settings.admin.token.is_none() {
        // Not configured: a fresh token per start from the OS RNG, printed below.
        settings.admin.token = Some(crate::secrets::random_hex(32)?);
    }
    let admin_token = settings.admin.token.clone().unwrap_or_default();
    let host = settings.application.host.clone();
    let application = match Application::build(settings).await {
        Ok(app) => app,
        Err(StartupError::Bind(e)) => {
            return Err(format!(
                "could not bind the HTTP port ({e}); set APP_APPLICATION__PORT=0 for a free one"
            )
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    let base = format!("http://{host}:{}", application.port());
    println!("commerce is up at {base}");
    if let Some(sim) = &simulator {
        println!(
            "  payment gateway: in-process pg-simulator at {} (canonical faults on)",
            sim.base_url()
        );
    }
    println!("  products:  curl -s {base}/api/v1/products");
    println!(
        "  card order: curl -s {base}/api/v1/orders -H 'X-USER-ID: 1' -H 'Content-Type: application/json' \\\n      -H 'Idempotency-Key: my-first-order' \\\n      -d '{{\"items\":[{{\"productId\":1,\"quantity\":1}}],\"payment\":{{\"method\":\"CARD\",\"cardType\":\"SAMSUNG\",\"cardNo\":\"1234-5678-9012-3456\"}}}}'"
    );
    println!("  the order: curl -s {base}/api/v1/orders/1 -H 'X-USER-ID: 1'");
    println!(
        "  breakers:  curl -s {base}/api/v1/admin/circuit-breakers -H 'Authorization: Bearer {admin_token}'"
    );
    println!("  metrics:   curl -s {base}/metrics        health: curl -s {base}/health");
    println!("ctrl-c stops it gracefully.");
    application.run_until_stopped().await?;
    if let Some(sim) = simulator {
        sim.shutdown().await;
    }
    Ok(())
}

//! `cargo run -p commerce` (the `serve` command): the service on SQLite, with an in-process
//! PG simulator when no `gateway.base_url` is configured.

#![allow(clippy::print_stdout)] // this module talks to the person who started the program

use pg_simulator::Simulator;

use crate::configuration::{PgRouteSettings, Settings};

/// The name of the second in-process PG of the default run.
const SECOND_PG: &str = "B";
use crate::startup::{Application, StartupError};

/// The service's process entry point, shared by the `commerce` binary and the system tests'
/// child processes: tracing, the settings (defaults, then `file`, then `APP_*` variables),
/// [`run`], and the exit code (an error is printed to stderr).
pub async fn main_with_config(file: Option<&std::path::Path>) -> std::process::ExitCode {
    crate::telemetry::init_tracing("commerce=info,seawall=warn,tower_http=warn");
    let result = match Settings::load(file) {
        Ok(loaded) => {
            loaded.warn_ignored();
            run(loaded.settings).await
        }
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Starts the service (and a simulator if needed), prints how to use it, serves until
/// ctrl-c / SIGTERM.
///
/// # Errors
///
/// The simulator or the service could not start, or the server failed.
pub async fn run(mut settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let local_pg = crate::local_pg::simulator_config(&settings)?;
    let local_pg_b = local_pg.clone();
    let simulator = if settings.gateway.base_url.is_none() {
        // The in-process simulator signs its callbacks with the configured secret, else with
        // one made for this process: nobody else can sign a callback the service accepts.
        let secret = match settings.callback.secret.clone() {
            Some(secret) => secret,
            None => crate::secrets::random_hex(32)?,
        };
        // The canonical PG (latency, 40 % failures, 1–5 s processing) with the extensions a
        // correct client uses (idempotency keys, signed callbacks, cancel) and its ledger in a
        // file next to the database, so a crash of this process loses no charge.
        match &local_pg.ledger.file {
            Some(file) => {
                if let Some(aside) = crate::local_pg::set_aside_orphan_ledger(&settings, &local_pg)?
                {
                    tracing::warn!(ledger = %file.display(), moved_to = %aside.display(),
                        "a PG ledger without its database was set aside");
                }
            }
            None => tracing::warn!(
                "the in-process PG keeps its ledger in memory: a crash loses it (name a file \
                 with ledger.file in gateway.simulator_config)"
            ),
        }
        let sim = Simulator::builder()
            .config(local_pg)
            .callback_secret(secret.clone())
            .spawn()
            .await?;
        settings.gateway.base_url = Some(sim.base_url());
        settings.callback.secret = Some(secret);
        Some(sim)
    } else {
        None
    };
    // A second in-process PG (B) when none is configured: charges fail over to it while A
    // provably takes nothing (refused, breaker open).
    let second = if simulator.is_some() && settings.gateway.others.is_empty() {
        let config = crate::local_pg::second_simulator_config(&local_pg_b, SECOND_PG);
        if let Some(aside) = crate::local_pg::set_aside_orphan_ledger(&settings, &config)? {
            tracing::warn!(moved_to = %aside.display(), "a PG ledger without its database was set aside");
        }
        let secret = crate::secrets::random_hex(32)?;
        let sim = Simulator::builder()
            .config(config)
            .callback_secret(secret.clone())
            .spawn()
            .await?;
        settings.gateway.others.push(PgRouteSettings {
            name: SECOND_PG.to_owned(),
            base_url: Some(sim.base_url()),
            callback_secret: Some(secret),
            priority: 1,
            ..PgRouteSettings::default()
        });
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
    let sim_file = settings.gateway.simulator_config.clone();
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
        let faults = sim_file.as_deref().map_or_else(
            || "canonical faults on".to_owned(),
            |f| format!("configured by {f}"),
        );
        println!(
            "  payment gateway: in-process pg-simulator at {} ({faults})",
            sim.base_url()
        );
        if let Some(file) = &sim.config().ledger.file {
            println!("  PG ledger: {}", file.display());
        }
        if let Some(control) = sim.control_url() {
            println!("  PG control plane: {control}");
        }
    }
    if let Some(sim) = &second {
        println!(
            "  second payment gateway ({SECOND_PG}): in-process pg-simulator at {}",
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
    println!(
        "  dashboard: {base}{}/registries/commerce",
        crate::routes::DASHBOARD_PATH
    );
    println!("ctrl-c stops it gracefully.");
    application.run_until_stopped().await?;
    for sim in [simulator, second].into_iter().flatten() {
        sim.shutdown().await;
    }
    Ok(())
}

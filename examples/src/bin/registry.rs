//! Loads a configuration document, builds a policy by name, exports Prometheus metrics, and
//! changes a threshold while the policy runs.
//!
//! Run with `cargo run -p examples --bin registry` (add `-- --serve 127.0.0.1:9000` to
//! keep serving `/metrics` and `PUT /breakers/pg` until Ctrl-C).

use std::path::Path;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use seawall::metrics::RegistryMetrics;
use seawall::registry::{BuildContext, Registries, RegistryEvent};

#[derive(Debug)]
struct Unavailable;

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dependency unavailable")
    }
}

impl std::error::Error for Unavailable {}

/// The seawall lines of the Prometheus text.
fn seawall_lines(handle: &PrometheusHandle) -> String {
    handle
        .render()
        .lines()
        .filter(|line| {
            line.starts_with("seawall_circuitbreaker_state") && line.ends_with(" 1")
                || line.starts_with("seawall_circuitbreaker_calls")
                || line.starts_with("seawall_retry_calls{") && !line.ends_with(" 0")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Clone)]
struct AppState {
    registries: Registries,
    metrics: RegistryMetrics,
    prometheus: PrometheusHandle,
}

async fn metrics_text(State(state): State<AppState>) -> String {
    state.metrics.publish();
    state.prometheus.render()
}

async fn patch_breaker(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
    body: String,
) -> (StatusCode, String) {
    let changes = match serde_json::from_str(&body) {
        Ok(changes) => changes,
        Err(err) => return (StatusCode::BAD_REQUEST, format!("invalid JSON: {err}\n")),
    };
    match state.registries.circuit_breakers().patch(&name, changes) {
        Ok(config) => (StatusCode::OK, format!("{config:?}\n")),
        Err(err) => (StatusCode::UNPROCESSABLE_ENTITY, format!("{err}\n")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("registry.yaml");
    let registries = Registries::from_path(&file, BuildContext::default())?;
    let metrics = RegistryMetrics::new(&registries);
    registries.circuit_breakers().on_event(|event| {
        if let RegistryEvent::ConfigChanged { name, old, new, .. } = event {
            println!(
                "config of '{name}' changed: slow-call threshold {:?} -> {:?}",
                old.slow_call_duration_threshold, new.slow_call_duration_threshold
            );
        }
    });
    println!("loaded {}", file.display());

    // The standard policy named "pg": retry -> breaker -> bulkhead -> timeout, from the file.
    let policy = registries.policy("pg");
    // Rejections by the open breaker all read the same: count them instead of listing them.
    let mut rejected = Vec::new();
    for call in 0..20u32 {
        let outcome = policy
            .call(|| async move {
                if call % 3 == 0 {
                    Err(Unavailable)
                } else {
                    Ok(call)
                }
            })
            .await;
        match outcome {
            Err(err) if err.is_circuit_open() => rejected.push((call, err)),
            Err(err) => println!("call {call}: {err}"),
            Ok(_) => {}
        }
    }
    if let (Some((first, err)), Some((last, _))) = (rejected.first(), rejected.last()) {
        println!(
            "calls {first} to {last}: {} rejected at once: {err}",
            rejected.len()
        );
    }
    metrics.publish();
    println!(
        "\nmetrics after 20 calls:\n{}\n",
        seawall_lines(&prometheus)
    );

    // Change the slow-call threshold while the breaker runs: its window and state are kept.
    let breaker = registries
        .circuit_breakers()
        .find("pg")
        .expect("declared in the file");
    let before = breaker.metrics();
    registries.circuit_breakers().patch(
        "pg",
        serde_json::json!({ "slowCallDurationThreshold": "1500ms" }),
    )?;
    let after = breaker.metrics();
    println!(
        "state {} kept, {} buffered calls kept ({} before)",
        after.state, after.buffered_calls, before.buffered_calls
    );
    let rejected = registries
        .circuit_breakers()
        .patch("pg", serde_json::json!({ "failureRateThreshold": 120 }))
        .unwrap_err();
    println!("an invalid change is rejected whole: {rejected}");

    let serve = std::env::args().skip_while(|arg| arg != "--serve").nth(1);
    if let Some(address) = serve {
        let app = Router::new()
            .route("/metrics", get(metrics_text))
            .route("/breakers/{name}", put(patch_breaker))
            .with_state(AppState {
                registries,
                metrics,
                prometheus,
            });
        let listener = tokio::net::TcpListener::bind(&address).await?;
        println!("\nserving http://{address}/metrics and PUT /breakers/{{name}} (Ctrl-C stops)");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
    }
    Ok(())
}

//! `GET /health` and `GET /metrics` (Prometheus text format).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use seawall::circuit_breaker::State as BreakerState;

use super::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let breakers: serde_json::Map<String, serde_json::Value> = state
        .payments
        .gateway()
        .circuit_breakers()
        .iter()
        .map(|b| {
            (
                b.name().to_owned(),
                serde_json::Value::from(b.state().as_str()),
            )
        })
        .collect();
    Json(serde_json::json!({"status": "UP", "circuitBreakers": breakers}))
}

/// Numeric code of a breaker state for the gauge: 0 closed, 1 open, 2 half-open, 3 other.
fn state_code(state: BreakerState) -> f64 {
    match state {
        BreakerState::Closed => 0.0,
        BreakerState::Open | BreakerState::ForcedOpen => 1.0,
        BreakerState::HalfOpen => 2.0,
        _ => 3.0,
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    for breaker in state.payments.gateway().circuit_breakers() {
        let name = breaker.name().to_owned();
        let snapshot = breaker.metrics();
        metrics::gauge!("commerce_circuit_breaker_state", "name" => name.clone())
            .set(state_code(breaker.state()));
        metrics::gauge!("commerce_circuit_breaker_failure_rate", "name" => name.clone())
            .set(snapshot.failure_rate.unwrap_or(0.0));
        metrics::gauge!("commerce_circuit_breaker_slow_call_rate", "name" => name.clone())
            .set(snapshot.slow_call_rate.unwrap_or(0.0));
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        metrics::gauge!("commerce_circuit_breaker_not_permitted_calls", "name" => name)
            .set(snapshot.not_permitted_calls as f64);
    }
    if let Ok((backlog, oldest)) = state.db.outbox_backlog().await {
        #[allow(clippy::cast_precision_loss)]
        {
            metrics::gauge!("commerce_outbox_backlog").set(backlog as f64);
            let age = oldest.map_or(0, |t| crate::persistence::now_ms() - t);
            metrics::gauge!("commerce_outbox_oldest_age_ms").set(age as f64);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

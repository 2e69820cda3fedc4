//! `GET /health` and `GET /metrics` (Prometheus text format: the service's own counters,
//! pg-client's, and seawall's registry instances).

use crate::persistence::{self, Db};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let breakers: serde_json::Map<String, serde_json::Value> = state
        .registries
        .circuit_breakers()
        .all()
        .into_iter()
        .map(|(name, b)| (name, serde_json::Value::from(b.state().as_str())))
        .collect();
    Json(serde_json::json!({"status": "UP", "circuitBreakers": breakers}))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // seawall's instances (seawall_circuitbreaker_state, …), refreshed for this scrape.
    state.registry_metrics.publish();
    record_database_gauges(&state.db).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// The open-payment and outbox gauges, read now (skipped when the database is busy).
async fn record_database_gauges(database: &Db) {
    let Ok(mut conn) = database.reader().await else {
        return;
    };
    if let Ok((open, oldest)) = persistence::open_payments_summary(&mut conn).await {
        #[allow(clippy::cast_precision_loss)]
        {
            metrics::gauge!("commerce_open_payments").set(open as f64);
            let age = oldest.map_or(0, |t| crate::persistence::now_ms() - t);
            metrics::gauge!("commerce_oldest_open_payment_age_ms").set(age as f64);
        }
    }
    if let Ok((backlog, oldest)) = persistence::outbox_backlog(&mut conn).await {
        #[allow(clippy::cast_precision_loss)]
        {
            metrics::gauge!("commerce_outbox_backlog").set(backlog as f64);
            let age = oldest.map_or(0, |t| crate::persistence::now_ms() - t);
            metrics::gauge!("commerce_outbox_oldest_age_ms").set(age as f64);
        }
    }
}

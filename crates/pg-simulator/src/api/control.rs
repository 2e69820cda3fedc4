//! The control plane (`/__sim/...`), served on its own listener so it keeps working while the
//! payment API is down or black-holed. Plain JSON, no envelope. Card numbers are masked.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::config::FaultConfig;
use crate::fault::Fault;
use crate::ledger::TransitionError;
use crate::model::Outcome;
use crate::server::Api;

pub(crate) fn router(api: Api) -> Router {
    Router::new()
        .route("/__sim/health", get(health))
        .route("/__sim/stats", get(stats))
        .route("/__sim/config", get(config))
        .route("/__sim/faults", get(get_faults).put(put_faults))
        .route("/__sim/faults/rates", post(merge_rates))
        .route("/__sim/down", post(down))
        .route("/__sim/up", post(up))
        .route("/__sim/black-hole", post(black_hole))
        .route("/__sim/transactions", get(transactions))
        .route("/__sim/transactions/{key}", get(transaction))
        .route("/__sim/transactions/{key}/complete", post(complete))
        .route("/__sim/callbacks/{key}/replay", post(replay))
        .route("/__sim/fault-log", get(fault_log).delete(clear_fault_log))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such control endpoint") })
        .with_state(api)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn transition_error(e: &TransitionError) -> Response {
    match e {
        TransitionError::NotFound => error(StatusCode::NOT_FOUND, "transaction not found"),
        TransitionError::InvalidState(s) => error(
            StatusCode::CONFLICT,
            &format!("transaction is {s}; only PENDING can be completed"),
        ),
    }
}

async fn health() -> Response {
    Json(json!({ "status": "UP" })).into_response()
}

async fn stats(State(api): State<Api>) -> Response {
    Json(api.shared.stats.snapshot()).into_response()
}

async fn config(State(api): State<Api>) -> Response {
    let mut config = (*api.shared.config()).clone();
    for secret in &mut config.callback.secrets {
        *secret = "***".to_owned();
    }
    Json(config).into_response()
}

async fn get_faults(State(api): State<Api>) -> Response {
    Json(api.shared.config().faults.clone()).into_response()
}

async fn put_faults(
    State(api): State<Api>,
    body: Result<Json<FaultConfig>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(mut faults)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "body must be a fault config (JSON)",
        );
    };
    // The log capacity is fixed at start; keep it rather than failing on an omitted field.
    faults.log_capacity = api.shared.config().faults.log_capacity;
    match api.set_faults(faults) {
        Ok(()) => get_faults(State(api)).await,
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn merge_rates(
    State(api): State<Api>,
    body: Result<Json<BTreeMap<Fault, f64>>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(rates)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "body must map fault names to probabilities",
        );
    };
    let result = api.update_config(|c| {
        for (fault, rate) in rates {
            if rate == 0.0 {
                c.faults.rates.remove(&fault);
            } else {
                c.faults.rates.insert(fault, rate);
            }
        }
    });
    match result {
        Ok(()) => get_faults(State(api)).await,
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn down(State(api): State<Api>) -> Response {
    api.go_down().await;
    Json(json!({ "down": true })).into_response()
}

async fn up(State(api): State<Api>) -> Response {
    match api.come_back().await {
        Ok(()) => Json(json!({ "down": false })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Deserialize)]
struct OnOff {
    on: Option<bool>,
}

async fn black_hole(State(api): State<Api>, Query(q): Query<OnOff>) -> Response {
    let on = q.on.unwrap_or(true);
    api.set_black_hole(on);
    Json(json!({ "blackHole": on })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TxFilter {
    order_id: Option<String>,
    user_id: Option<String>,
}

async fn transactions(State(api): State<Api>, Query(filter): Query<TxFilter>) -> Response {
    let snapshot = api.shared.ledger.snapshot();
    let list: Vec<_> = snapshot
        .transactions()
        .iter()
        .filter(|t| filter.order_id.as_ref().is_none_or(|o| *o == t.order_id))
        .filter(|t| filter.user_id.as_ref().is_none_or(|u| *u == t.user_id))
        .collect();
    Json(json!({ "count": list.len(), "transactions": list })).into_response()
}

async fn transaction(State(api): State<Api>, Path(key): Path<String>) -> Response {
    match api.shared.ledger.get(&key) {
        Some(view) => Json(view.tx).into_response(),
        None => error(StatusCode::NOT_FOUND, "transaction not found"),
    }
}

#[derive(Deserialize)]
struct CompleteQuery {
    status: Option<String>,
}

async fn complete(
    State(api): State<Api>,
    Path(key): Path<String>,
    Query(q): Query<CompleteQuery>,
) -> Response {
    let outcome = match q.status.as_deref().map_or(Ok(Outcome::Success), str::parse) {
        Ok(o) => o,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match api.force_complete(&key, outcome) {
        Ok(tx) => Json(tx).into_response(),
        Err(e) => transition_error(&e),
    }
}

async fn replay(State(api): State<Api>, Path(key): Path<String>) -> Response {
    match api.replay_callback(&key).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => transition_error(&e),
    }
}

async fn fault_log(State(api): State<Api>) -> Response {
    Json(api.shared.fault_log.records()).into_response()
}

async fn clear_fault_log(State(api): State<Api>) -> Response {
    api.shared.fault_log.clear();
    StatusCode::NO_CONTENT.into_response()
}

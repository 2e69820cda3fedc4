//! Admin API (bearer token): circuit breakers, reconciliation, manual resolution.
//!
//! - `GET /api/v1/admin/circuit-breakers`: every breaker's state, configuration and metrics
//!   (the registry's, then the charge breakers by card type, `pg-charge[SAMSUNG]`, …).
//! - `PUT /api/v1/admin/circuit-breakers/{name}`: change fields live (any subset; on
//!   `pg-charge`, the charge breakers by card type follow, state included), e.g.
//!   `{"slowCallDurationThresholdMs": 800}`, through seawall's registry (the breaker keeps its
//!   state and window), or force a state (`{"state": "FORCED_OPEN"}`). Validation errors name
//!   the field (422 `INVALID_CONFIG`).
//! - `GET /api/v1/admin/faults`, `PUT /api/v1/admin/faults/{name}`: game-day fault injection
//!   on the PG paths (`pg-charge`, `pg-query`), see [`faults`].
//! - `GET /api/v1/admin/orders/{id}/pg-calls`: the PG call log of an order (every attempt
//!   on every PG, oldest first; card numbers masked).
//! - `POST /api/v1/admin/reconcile`: run a recovery round now; returns its report.
//! - `POST /api/v1/admin/payments/{id}/resolve`: an operator settles a payment under review
//!   (`{"status": "SUCCESS"|"FAILED"|"CANCELED", "reason": "..."}`) through the same `apply`.

use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use seawall::CircuitBreaker;
use seawall::circuit_breaker::{
    CircuitBreakerConfig, MetricsSnapshot, OpenWait, SlidingWindow, State as BreakerState,
};
use seawall::registry::RegistryError;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::faults;
use super::json::ApiJson;
use crate::domain::{Observation, OrderId, PaymentId, PaymentStatus, Source};
use crate::error::ApiError;
use crate::gateway::pg::{CHARGE_BREAKER, sync_card_type_breakers};
use crate::payments::Target;
use crate::persistence;
use crate::recovery::{RecoveryReport, RoundError};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/circuit-breakers", get(list_breakers))
        .route("/api/v1/admin/circuit-breakers/{name}", put(update_breaker))
        .route("/api/v1/admin/orders/{id}/pg-calls", get(pg_calls))
        .route("/api/v1/admin/reconcile", post(reconcile))
        .route("/api/v1/admin/payments/{id}/resolve", post(resolve))
        .route("/api/v1/admin/faults", get(faults::list))
        .route("/api/v1/admin/faults/{name}", put(faults::update))
}

/// Proof that the request carried the admin token (`Authorization: Bearer …`).
pub(super) struct Admin;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = &state.admin_token else {
            return Err(ApiError::Unauthorized("the admin API is disabled"));
        };
        let given = parts
            .headers
            .get("Authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            Ok(Self)
        } else {
            Err(ApiError::Unauthorized("missing or wrong admin token"))
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BreakerView {
    name: String,
    state: &'static str,
    config: BreakerFields,
    metrics: MetricsView,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricsView {
    failure_rate: Option<f64>,
    slow_call_rate: Option<f64>,
    buffered_calls: u64,
    failed_calls: u64,
    slow_calls: u64,
    not_permitted_calls: u64,
}

impl From<MetricsSnapshot> for MetricsView {
    fn from(m: MetricsSnapshot) -> Self {
        Self {
            failure_rate: m.failure_rate,
            slow_call_rate: m.slow_call_rate,
            buffered_calls: m.buffered_calls,
            failed_calls: m.failed_calls,
            slow_calls: m.slow_calls,
            not_permitted_calls: m.not_permitted_calls,
        }
    }
}

/// The live-editable fields; every one optional in a PUT.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BreakerFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_rate_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slow_call_rate_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slow_call_duration_threshold_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait_duration_in_open_state_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sliding_window_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minimum_number_of_calls: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permitted_number_of_calls_in_half_open_state: Option<u32>,
    /// Only in a PUT: `CLOSED`, `OPEN`, `HALF_OPEN`, `DISABLED`, `FORCED_OPEN`, `METRICS_ONLY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn fields_of(config: &CircuitBreakerConfig) -> BreakerFields {
    let window = match config.sliding_window {
        SlidingWindow::Count(n) | SlidingWindow::StripedCount(n) => Some(n),
        SlidingWindow::Time { .. } => None,
    };
    let wait = match config.open_wait {
        OpenWait::Fixed(d) => Some(millis(d)),
        OpenWait::Backoff(_) => None,
    };
    BreakerFields {
        failure_rate_threshold: Some(config.failure_rate_threshold),
        slow_call_rate_threshold: Some(config.slow_call_rate_threshold),
        slow_call_duration_threshold_ms: config.slow_call_duration_threshold.map(millis),
        wait_duration_in_open_state_ms: wait,
        sliding_window_size: window,
        minimum_number_of_calls: Some(config.minimum_number_of_calls),
        permitted_number_of_calls_in_half_open_state: Some(config.permitted_calls_in_half_open),
        state: None,
    }
}

fn view(breaker: &CircuitBreaker) -> BreakerView {
    BreakerView {
        name: breaker.name().to_owned(),
        state: breaker.state().as_str(),
        config: fields_of(&breaker.config()),
        metrics: breaker.metrics().into(),
    }
}

async fn list_breakers(_: Admin, State(state): State<AppState>) -> Json<Vec<BreakerView>> {
    Json(
        state
            .registries
            .circuit_breakers()
            .all()
            .iter()
            .map(|(_, breaker)| view(breaker))
            .chain(state.payments.gateway().extra_breakers().iter().map(view))
            .collect(),
    )
}

pub(super) fn invalid(field: &str, rule: &str) -> ApiError {
    ApiError::Unprocessable {
        code: "INVALID_CONFIG",
        message: format!("{field}: {rule}"),
    }
}

/// The API's field name for a seawall configuration key.
fn api_field(key: &str) -> &str {
    match key {
        "failure_rate_threshold" => "failureRateThreshold",
        "slow_call_rate_threshold" => "slowCallRateThreshold",
        "slow_call_duration_threshold" => "slowCallDurationThresholdMs",
        "wait_duration_in_open_state" => "waitDurationInOpenStateMs",
        "sliding_window_size" => "slidingWindowSize",
        "minimum_number_of_calls" => "minimumNumberOfCalls",
        "permitted_number_of_calls_in_half_open_state" => "permittedNumberOfCallsInHalfOpenState",
        other => other,
    }
}

fn parse_state(name: &str) -> Option<BreakerState> {
    Some(match name {
        "CLOSED" => BreakerState::Closed,
        "OPEN" => BreakerState::Open,
        "HALF_OPEN" => BreakerState::HalfOpen,
        "DISABLED" => BreakerState::Disabled,
        "FORCED_OPEN" => BreakerState::ForcedOpen,
        "METRICS_ONLY" => BreakerState::MetricsOnly,
        _ => return None,
    })
}

async fn update_breaker(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiJson(fields): ApiJson<BreakerFields>,
) -> Result<Json<BreakerView>, ApiError> {
    let Path(name) = path?;
    let registry = state.registries.circuit_breakers();
    let breaker = registry.find(&name).ok_or_else(|| ApiError::NotFound {
        code: "CIRCUIT_BREAKER_NOT_FOUND",
        message: format!("no circuit breaker named {name:?}"),
    })?;
    let target_state = match &fields.state {
        Some(s) => Some(parse_state(s).ok_or_else(|| {
            invalid(
                "state",
                "must be one of CLOSED, OPEN, HALF_OPEN, DISABLED, FORCED_OPEN, METRICS_ONLY",
            )
        })?),
        None => None,
    };
    if fields.slow_call_duration_threshold_ms == Some(0) {
        return Err(invalid("slowCallDurationThresholdMs", "must be >= 1"));
    }
    // Through the registry: validated whole, applied atomically, state and window kept, and
    // a ConfigChanged event with the old and new values.
    registry
        .update(&name, |mut config| {
            if let Some(v) = fields.failure_rate_threshold {
                config.failure_rate_threshold = v;
            }
            if let Some(v) = fields.slow_call_rate_threshold {
                config.slow_call_rate_threshold = v;
            }
            if let Some(v) = fields.slow_call_duration_threshold_ms {
                config.slow_call_duration_threshold = Some(Duration::from_millis(v));
            }
            if let Some(v) = fields.wait_duration_in_open_state_ms {
                config.open_wait = OpenWait::Fixed(Duration::from_millis(v));
            }
            if let Some(v) = fields.sliding_window_size {
                config.sliding_window = SlidingWindow::count(v);
            }
            if let Some(v) = fields.minimum_number_of_calls {
                config.minimum_number_of_calls = v;
            }
            if let Some(v) = fields.permitted_number_of_calls_in_half_open_state {
                config.permitted_calls_in_half_open = v;
            }
            Ok(config)
        })
        .map_err(|e| match e {
            RegistryError::Invalid(e) => {
                let key = e.key().rsplit('.').next().unwrap_or_default();
                invalid(api_field(key), e.rule())
            }
            other => ApiError::NotFound {
                code: "CIRCUIT_BREAKER_NOT_FOUND",
                message: other.to_string(),
            },
        })?;
    // `pg-charge` stands for the whole charge path: its card types' breakers follow.
    let card_types = if name == CHARGE_BREAKER {
        if let Err(error) = sync_card_type_breakers(registry) {
            tracing::warn!(%error, "card types' breakers not changed");
        }
        state.payments.gateway().extra_breakers()
    } else {
        Vec::new()
    };
    if let Some(target) = target_state {
        for breaker in std::iter::once(&breaker).chain(&card_types) {
            breaker
                .transition_to(target)
                .map_err(|e| invalid("state", &e.to_string()))?;
        }
    }
    tracing::warn!(breaker = %name, ?fields, "circuit breaker changed through the admin API");
    Ok(Json(view(&breaker)))
}

async fn reconcile(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<RecoveryReport>, ApiError> {
    let report = match state.recovery.run_once(Source::Admin).await {
        Ok(report) => report,
        Err(RoundError::AlreadyRunning) => {
            return Err(ApiError::Conflict {
                code: "RECOVERY_ALREADY_RUNNING",
                message: "a recovery round is already running in this instance; try again \
                          when it ends"
                    .to_owned(),
            });
        }
        Err(RoundError::Database(error)) => return Err(error.into()),
    };
    state.outbox.wake();
    Ok(Json(report))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Resolution {
    /// Read as text, so an unknown status and a status that is no resolution get one answer.
    status: String,
    reason: String,
}

/// The PG call log of one order.
async fn pg_calls(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<OrderId>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path(id) = path?;
    let calls = persistence::pg_calls_for_order(&mut *state.db.reader().await?, id).await?;
    Ok(Json(serde_json::json!({ "orderId": id, "calls": calls })))
}

async fn resolve(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<PaymentId>, PathRejection>,
    ApiJson(resolution): ApiJson<Resolution>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path(id) = path?;
    let status = match resolution.status.as_str() {
        "SUCCESS" => PaymentStatus::Success,
        "FAILED" => PaymentStatus::Failed,
        "CANCELED" => PaymentStatus::Canceled,
        _ => {
            return Err(ApiError::Unprocessable {
                code: "INVALID_RESOLUTION",
                message: "status must be SUCCESS, FAILED or CANCELED".to_owned(),
            });
        }
    };
    let applied = state
        .payments
        .apply(
            Target::Payment(id),
            Observation::Manual {
                status,
                reason: resolution.reason,
            },
            Source::Admin,
        )
        .await?;
    if applied.payment_id == PaymentId::new(0) {
        return Err(ApiError::NotFound {
            code: "PAYMENT_NOT_FOUND",
            message: format!("payment {id} does not exist"),
        });
    }
    state.outbox.wake();
    Ok(Json(serde_json::json!({
        "changed": applied.changed,
        "paymentStatus": applied.to.map(|s| s.as_str()),
        "orderStatus": applied.order_status.map(|s| s.as_str()),
    })))
}

//! Operator actions on a breaker (force a state, change a threshold), allowed only for the
//! requests the host's [`Authorizer`] accepts.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use seawall::circuit_breaker::State as BreakerState;
use seawall::registry::RegistryError;
use serde::Deserialize;

use crate::{Dashboard, snapshot};

/// Decides whether a request may act (its headers in, yes or no out). The host provides it,
/// so that the dashboard uses the host's own admin credentials; see [`bearer_token`].
pub type Authorizer = Arc<dyn Fn(&HeaderMap) -> bool + Send + Sync>;

/// An [`Authorizer`] accepting `Authorization: Bearer <token>`, compared in constant time.
///
/// # Examples
///
/// ```
/// use axum::http::{HeaderMap, HeaderValue};
///
/// let authorize = seawall_dashboard::bearer_token("s3cret");
/// let mut headers = HeaderMap::new();
/// assert!(!authorize(&headers));
/// headers.insert("authorization", HeaderValue::from_static("Bearer s3cret"));
/// assert!(authorize(&headers));
/// ```
pub fn bearer_token(token: impl Into<Arc<str>>) -> Authorizer {
    let expected: Arc<str> = token.into();
    Arc::new(move |headers: &HeaderMap| {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        !expected.is_empty() && constant_time_eq(given.as_bytes(), expected.as_bytes())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The JSON error answer every failed request gets: `{"code", "message"}`.
pub(crate) fn error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> Response {
    let body = serde_json::json!({"code": code, "message": message.into()});
    (status, Json(body)).into_response()
}

/// The answer for an unknown registry.
pub(crate) fn no_registry() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "REGISTRY_NOT_FOUND",
        "no such registry",
    )
}

/// The body of an action: any subset.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BreakerAction {
    /// `CLOSED`, `OPEN`, `HALF_OPEN`, `DISABLED`, `FORCED_OPEN` or `METRICS_ONLY`.
    state: Option<String>,
    failure_rate_threshold: Option<f64>,
    slow_call_rate_threshold: Option<f64>,
}

fn parse_state(name: &str) -> Option<BreakerState> {
    BreakerState::ALL
        .into_iter()
        .find(|state| state.as_str() == name)
}

/// `POST /registries/{registry}/circuit-breakers/{name}`: thresholds first (through the
/// registry: validated whole, the breaker keeps its state and window), then the state.
pub(crate) async fn breaker_action(
    State(dashboard): State<Dashboard>,
    Path((registry, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(authorize) = &dashboard.inner.authorizer else {
        return error(
            StatusCode::FORBIDDEN,
            "READ_ONLY",
            "this dashboard is read-only: the host gave it no authorizer",
        );
    };
    if !authorize(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "missing or wrong admin token",
        );
    }
    let Some(hub) = dashboard.hub(&registry) else {
        return no_registry();
    };
    let action: BreakerAction = match serde_json::from_slice(&body) {
        Ok(action) => action,
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_BODY", e.to_string()),
    };
    let breakers = hub.registries.circuit_breakers();
    let Some(breaker) = breakers.find(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            "CIRCUIT_BREAKER_NOT_FOUND",
            "no circuit breaker of that name",
        );
    };
    let target = match action.state.as_deref().map(|s| (s, parse_state(s))) {
        None => None,
        Some((_, Some(state))) => Some(state),
        Some((given, None)) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_ACTION",
                format!(
                    "state {given:?} is none of CLOSED, OPEN, HALF_OPEN, DISABLED, FORCED_OPEN, METRICS_ONLY"
                ),
            );
        }
    };
    if action.failure_rate_threshold.is_some() || action.slow_call_rate_threshold.is_some() {
        let changed = breakers.update(&name, |mut config| {
            if let Some(v) = action.failure_rate_threshold {
                config.failure_rate_threshold = v;
            }
            if let Some(v) = action.slow_call_rate_threshold {
                config.slow_call_rate_threshold = v;
            }
            Ok(config)
        });
        if let Err(e) = changed {
            let status = match e {
                RegistryError::InstanceNotFound { .. } => StatusCode::NOT_FOUND,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            return error(status, "INVALID_ACTION", e.to_string());
        }
    }
    if let Some(Err(e)) = target.map(|target| breaker.transition_to(target)) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_ACTION",
            e.to_string(),
        );
    }
    let snapshot = snapshot::read(&hub.name, &hub.registries);
    match snapshot.tiles.into_iter().find(|tile| tile.name == name) {
        Some(tile) => Json(tile).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "CIRCUIT_BREAKER_NOT_FOUND",
            "the circuit breaker was removed meanwhile",
        ),
    }
}

//! HTTP routes. Each resource module owns its `router()`; [`router`] merges them under the
//! shared [`AppState`] and adds tracing and a request timeout.

mod admin;
mod callback;
mod faults;
mod health;
mod json;
mod orders;
mod products;
mod subscriptions;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::Response;
use metrics_exporter_prometheus::PrometheusHandle;
use pg_client::callback::CallbackVerifier;
use seawall::RateLimiter;
use seawall::metrics::RegistryMetrics;
use seawall::registry::Registries;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::error::{ApiError, MAX_BODY_BYTES};
use crate::orders::OrderService;
use crate::outbox::OutboxRelay;
use crate::payments::PaymentService;
use crate::persistence::Db;
use crate::recovery::RecoveryJob;
use crate::retention::RetentionJob;
use crate::subscriptions::SubscriptionService;

/// Everything a handler may need. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Placing orders.
    pub orders: OrderService,
    /// Applying payment observations.
    pub payments: PaymentService,
    /// The recovery job (the admin API runs rounds on demand).
    pub recovery: RecoveryJob,
    /// The outbox relay (woken after commits).
    pub outbox: OutboxRelay,
    /// The retention job.
    pub retention: RetentionJob,
    /// Subscriptions and their billing job.
    pub subscriptions: SubscriptionService,
    /// Callback signature verification, when a secret is configured.
    pub callback_verifier: Option<Arc<CallbackVerifier>>,
    /// The callback endpoint's rate (every caller together).
    pub callback_limiter: RateLimiter,
    /// The admin bearer token, if the admin API is enabled.
    pub admin_token: Option<Arc<str>>,
    /// Prometheus rendering.
    pub metrics: PrometheusHandle,
    /// seawall's named instances (the PG circuit breakers `pg-charge` and `pg-query`).
    pub registries: Registries,
    /// The registry's `metrics` output, refreshed before each scrape.
    pub registry_metrics: RegistryMetrics,
}

/// Where the live dashboard is mounted.
pub const DASHBOARD_PATH: &str = "/admin/dashboard";

/// The live dashboard of seawall's registries (page `DASHBOARD_PATH/registries/commerce`):
/// read-only for everyone, operator actions with the admin token. Its event streams end on
/// `shutdown`. Mounted outside the request timeout, which would cut the streams.
pub fn dashboard(state: &AppState, shutdown: tokio_util::sync::CancellationToken) -> Router {
    let mut builder = seawall_dashboard::Dashboard::builder(DASHBOARD_PATH)
        .title("commerce")
        .registry("commerce", state.registries.clone())
        .shutdown(shutdown);
    if let Some(token) = &state.admin_token {
        builder = builder.authorizer(seawall_dashboard::bearer_token(token.clone()));
    }
    builder.build().router()
}

/// The whole API.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    Router::new()
        .merge(products::router())
        .merge(orders::router())
        .merge(subscriptions::router())
        .merge(callback::router(state.callback_limiter.clone()))
        .merge(admin::router())
        .merge(health::router())
        .fallback(|| async {
            ApiError::NotFound {
                code: "NOT_FOUND",
                message: "no such endpoint".to_owned(),
            }
        })
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        // Outside the timeout, so its 408 is turned into JSON too.
        .layer(axum::middleware::map_response(json_errors))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let path = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", MatchedPath::as_str);
                    tracing::info_span!("http", method = %request.method(), path)
                })
                // A 503 "payment temporarily unavailable" is an answer, not a server fault.
                .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
}

/// Gives a JSON body to the error answers axum and tower-http make themselves (405 from the
/// method router, 408 from the timeout, a plain-text rejection): `{"code", "message"}` with
/// the code from the status (`METHOD_NOT_ALLOWED`), the other headers (`Allow`) kept.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = reason.to_ascii_uppercase().replace([' ', '-'], "_");
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            "this endpoint does not take that method; the Allow header lists the ones it takes"
                .to_owned()
        }
        StatusCode::REQUEST_TIMEOUT => "the request took too long and was stopped".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than {MAX_BODY_BYTES} bytes")
        }
        _ => reason.to_ascii_lowercase(),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    let body = serde_json::json!({"code": code, "message": message}).to_string();
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

pub use crate::domain::UserId;

/// The `X-USER-ID` header: a positive integer in plain decimal (no sign, spaces or leading
/// zeros), so one user has one spelling.
impl<S: Send + Sync> FromRequestParts<S> for UserId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get("X-USER-ID").ok_or_else(|| {
            ApiError::bad_request("MISSING_USER_ID", "the X-USER-ID header is required")
        })?;
        value
            .to_str()
            .ok()
            .filter(|v| {
                !v.is_empty() && !v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit())
            })
            .and_then(|v| v.parse::<i64>().ok())
            .map(Self::new)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "INVALID_USER_ID",
                    "X-USER-ID must be a positive integer in plain decimal digits (no sign, \
                     spaces or leading zeros)",
                )
            })
    }
}

//! `POST /api/v1/payments/callback`: the PG's result notification, treated as a trigger only.
//!
//! 1. Verify `X-PG-Signature` when a secret is configured, with pg-client's
//!    `CallbackVerifier` (HMAC-SHA256, constant-time, any of several secrets, ±tolerance).
//!    Without a secret (`callback.allow_unsigned`), step 5 is the only proof.
//! 2. Parse leniently (unknown fields ignored); the body's card number is never read.
//! 3. Find the local payment by transaction key, else the order by order id (the
//!    charge-but-timeout case).
//! 4. Compare the body's order id and amount with the order.
//! 5. **Re-query the PG** with the order's user: the PG's answer, not the body, is applied.
//! 6. [`PaymentService::apply`](crate::payments::PaymentService::apply) — idempotent, with the
//!    outbox event in the same transaction. Duplicates and already-final payments get 200.
//!
//! With several PGs ([`crate::gateway::routing`]), each PG posts to
//! `/api/v1/payments/callback/{pg}` (the primary PG to the unnamed path): the signature is
//! checked with that PG's secret, the payment must be recorded at that PG, and the re-query
//! goes to that PG.
//!
//! Whatever fails in steps 1 to 5 gets the same answer, 403 `CALLBACK_REJECTED` (the reason
//! is logged, and counted only as signature / malformed / unverified): an answer that differed
//! between "no such order" and "wrong amount" would let anyone enumerate the sequential order
//! refs and learn their totals. Only a signed callback whose re-query failed gets a 503 (the
//! PG may send it again; recovery finishes it anyway). The route is rate-limited
//! (`callback.rate_limit`, 429 with `Retry-After`), so forged traffic cannot turn into
//! unbounded database reads and PG queries.

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use seawall::error::RateLimited;
use seawall::rate_limiter::RateLimiterLayer;
use seawall::{BoxError, RateLimiter};
use serde::Deserialize;
use tower::ServiceBuilder;

use super::AppState;
use crate::domain::{Observation, Source};
use crate::error::ApiError;
use crate::payments::Target;
use crate::persistence;
use crate::persistence as db;

/// Name of the signature header.
const SIGNATURE_HEADER: &str = "X-PG-Signature";

pub(super) fn router(limiter: RateLimiter) -> Router<AppState> {
    Router::new()
        .route("/api/v1/payments/callback", post(primary_callback))
        .route("/api/v1/payments/callback/{pg}", post(pg_callback))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(over_the_rate))
                .layer(RateLimiterLayer::new(limiter)),
        )
}

/// The rate limiter's rejection as a JSON 429 with `Retry-After`.
async fn over_the_rate(error: BoxError) -> Response {
    if let Some(limited) = error.downcast_ref::<RateLimited>() {
        metrics::counter!("commerce_callbacks_rejected_total", "code" => "RATE_LIMITED")
            .increment(1);
        return ApiError::RateLimited(limited.retry_after()).into_response();
    }
    // The limiter rejects with nothing else and the handler cannot fail: a bug, not a panic.
    ApiError::Internal(crate::error::anyhow_like::Internal::new(
        "callback layer",
        std::io::Error::other(error.to_string()),
    ))
    .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallbackBody {
    transaction_key: String,
    order_id: String,
    amount: i64,
}

/// The one answer to a callback that could not be verified. `why` goes to the log only; the
/// metric's label says no more than the caller already knows (signature or body checks come
/// before any lookup, everything after them is "unverified").
fn rejected(why: &'static str) -> ApiError {
    let code = match why {
        "INVALID_SIGNATURE" | "INVALID_CALLBACK" => why,
        _ => "UNVERIFIED",
    };
    metrics::counter!("commerce_callbacks_rejected_total", "code" => code).increment(1);
    tracing::warn!(why, "callback rejected");
    ApiError::CallbackRejected
}

/// The primary PG's callbacks.
async fn primary_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    callback(state, None, headers, body).await
}

/// The callbacks of the PG named in the path.
async fn pg_callback(
    State(state): State<AppState>,
    Path(pg): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    callback(state, Some(pg), headers, body).await
}

#[tracing::instrument(
    name = "payment.callback",
    skip_all,
    fields(pg, transaction_key, order_id)
)]
async fn callback(
    state: AppState,
    pg: Option<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Too large or unreadable: said before any check, so it tells nothing about orders.
    let body = body?;
    let router = state.payments.router().clone();
    let route = router
        .route(pg.as_deref())
        .ok_or_else(|| rejected("UNKNOWN_PG"))?;
    let pg_name = route.name.clone();
    tracing::Span::current().record("pg", &*pg_name);
    let signed = match &route.callback_verifier {
        Some(verifier) => {
            let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
            if let Err(error) = verifier.verify(header, &body) {
                tracing::debug!(%error, "callback signature");
                return Err(rejected("INVALID_SIGNATURE"));
            }
            true
        }
        None => false,
    };
    let parsed: CallbackBody =
        serde_json::from_slice(&body).map_err(|_| rejected("INVALID_CALLBACK"))?;
    let span = tracing::Span::current();
    span.record("transaction_key", parsed.transaction_key.as_str());

    // Find what it is about.
    let mut conn = state.db.reader().await?;
    let (order, payment_id) =
        match db::payment_by_transaction_key(&mut conn, &parsed.transaction_key).await? {
            Some(payment) => {
                // A callback about a payment another PG holds: not this PG's to settle.
                let held_at =
                    persistence::payment_pg(&mut *state.db.writer().await?, payment.id).await?;
                if router.route(held_at.as_deref()).map(|r| &r.name) != Some(&pg_name) {
                    return Err(rejected("OTHER_PG"));
                }
                let order = db::order_by_id(&mut conn, payment.order_id)
                    .await?
                    .ok_or_else(|| rejected("UNKNOWN_TRANSACTION"))?;
                (order, Some(payment.id))
            }
            None => (
                db::order_by_ref(&mut conn, &parsed.order_id)
                    .await?
                    .ok_or_else(|| rejected("UNKNOWN_TRANSACTION"))?,
                None,
            ),
        };
    // Never hold a connection while calling the PG.
    drop(conn);
    span.record("order_id", order.id.get());
    if parsed.order_id != order.order_ref || parsed.amount != order.total_amount {
        return Err(rejected("CALLBACK_MISMATCH"));
    }

    // The body is a trigger: ask the PG what is true.
    let user = order.user_id.to_string();
    let truth = match route
        .gateway
        .transaction(&user, &parsed.transaction_key)
        .await
    {
        Ok(Some(truth)) => truth,
        Ok(None) => return Err(rejected("UNKNOWN_TRANSACTION")),
        Err(error) => {
            tracing::warn!(%error, "PG query failed; the callback is left to recovery");
            // Only the PG itself (a valid signature) learns that the order exists.
            if !signed {
                return Err(rejected("UNCONFIRMED"));
            }
            return Err(ApiError::Unavailable(
                "could not confirm the result with the payment gateway; try again",
            ));
        }
    };
    if truth.order_ref != order.order_ref || truth.amount.minor_units() != order.total_amount {
        return Err(rejected("CALLBACK_MISMATCH"));
    }
    let target = payment_id.map_or(Target::Order(order.id), Target::Payment);
    let applied = state
        .payments
        .apply(
            target,
            Observation::Pg {
                transaction_key: truth.transaction_key,
                status: truth.status,
                reason: truth.reason,
            },
            Source::Callback,
        )
        .await?;
    state.outbox.wake();
    let result = if applied.changed {
        "APPLIED"
    } else {
        "DUPLICATE"
    };
    metrics::counter!("commerce_callbacks_total", "result" => result).increment(1);
    Ok(Json(serde_json::json!({
        "result": result,
        "paymentStatus": applied.to.map(|s| s.as_str()),
        "orderStatus": applied.order_status.map(|s| s.as_str()),
    })))
}

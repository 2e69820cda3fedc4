//! `POST /api/v1/payments/callback`: the PG's result notification, treated as a trigger only.
//!
//! 1. Verify `X-PG-Signature` when a secret is configured (401 otherwise), with pg-client's
//!    `CallbackVerifier` (HMAC-SHA256, constant-time, any of several secrets, ±tolerance).
//! 2. Parse leniently (unknown fields ignored); the body's card number is never read.
//! 3. Find the local payment by transaction key, else the order by order id (the
//!    charge-but-timeout case); neither → 404.
//! 4. Compare the body's order id and amount with the order (422 on mismatch).
//! 5. **Re-query the PG** with the order's user: the PG's answer, not the body, is applied; a
//!    PG that does not know the key for that user → 404; PG unreachable → 503, state kept.
//! 6. [`PaymentService::apply`](crate::payments::PaymentService::apply) — idempotent, with the
//!    outbox event in the same transaction. Duplicates and already-final payments get 200.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use crate::domain::{Observation, Source};
use crate::error::ApiError;
use crate::payments::Target;
use crate::persistence as db;

/// Name of the signature header.
const SIGNATURE_HEADER: &str = "X-PG-Signature";

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/payments/callback", post(callback))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallbackBody {
    transaction_key: String,
    order_id: String,
    amount: i64,
}

fn reject(code: &'static str, message: &str) -> ApiError {
    metrics::counter!("commerce_callbacks_rejected_total", "code" => code).increment(1);
    tracing::warn!(code, "callback rejected");
    ApiError::Unprocessable {
        code,
        message: message.to_owned(),
    }
}

fn unknown() -> ApiError {
    metrics::counter!("commerce_callbacks_rejected_total", "code" => "UNKNOWN_TRANSACTION")
        .increment(1);
    tracing::warn!("callback for an unknown transaction rejected");
    ApiError::NotFound {
        code: "UNKNOWN_TRANSACTION",
        message: "no such payment".to_owned(),
    }
}

#[tracing::instrument(name = "payment.callback", skip_all, fields(transaction_key, order_id))]
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(verifier) = &state.callback_verifier {
        let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        if let Err(error) = verifier.verify(header, &body) {
            metrics::counter!("commerce_callbacks_rejected_total", "code" => "INVALID_SIGNATURE")
                .increment(1);
            tracing::warn!(%error, "callback signature rejected");
            return Err(ApiError::Unauthorized("missing or invalid X-PG-Signature"));
        }
    }
    let parsed: CallbackBody = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request(
            "INVALID_CALLBACK",
            "expected transactionKey, orderId and amount",
        )
    })?;
    let span = tracing::Span::current();
    span.record("transaction_key", parsed.transaction_key.as_str());

    // Find what it is about.
    let mut conn = state.db.reader().await?;
    let (order, payment_id) =
        match db::payment_by_transaction_key(&mut conn, &parsed.transaction_key).await? {
            Some(payment) => {
                let order = db::order_by_id(&mut conn, payment.order_id)
                    .await?
                    .ok_or_else(unknown)?;
                (order, Some(payment.id))
            }
            None => (
                db::order_by_ref(&mut conn, &parsed.order_id)
                    .await?
                    .ok_or_else(unknown)?,
                None,
            ),
        };
    // Never hold a connection while calling the PG.
    drop(conn);
    span.record("order_id", order.id);
    if parsed.order_id != order.order_ref || parsed.amount != order.total_amount {
        return Err(reject(
            "CALLBACK_MISMATCH",
            "the callback does not match the order",
        ));
    }

    // The body is a trigger: ask the PG what is true.
    let user = order.user_id.to_string();
    let truth = match state
        .payments
        .gateway()
        .transaction(&user, &parsed.transaction_key)
        .await
    {
        Ok(Some(truth)) => truth,
        Ok(None) => return Err(unknown()),
        Err(error) => {
            tracing::warn!(%error, "PG query failed; the callback is left to recovery");
            return Err(ApiError::Unavailable(
                "could not confirm the result with the payment gateway; try again",
            ));
        }
    };
    if truth.order_ref != order.order_ref || truth.amount.minor_units() != order.total_amount {
        return Err(reject(
            "CALLBACK_MISMATCH",
            "the transaction does not match the order",
        ));
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

//! `POST /api/v1/orders`, `GET /api/v1/orders/{id}`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::json::ApiJson;
use super::{AppState, UserId};
use crate::domain::{OrderId, PaymentId, PaymentStatus};
use crate::error::ApiError;
use crate::gateway::pg::CHARGE_BREAKER;
use crate::orders::{OrderRequest, PlaceError, Placed};
use crate::persistence;
use crate::persistence::{OrderItem, OrderRow, PaymentRow};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orders", post(place))
        .route("/api/v1/orders/{id}", get(show))
}

/// An order as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderView {
    order_id: OrderId,
    order_ref: String,
    user_id: UserId,
    status: String,
    method: String,
    total_amount: i64,
    items: Vec<OrderItem>,
    payments: Vec<PaymentView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PaymentView {
    payment_id: PaymentId,
    status: String,
    amount: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    card_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    card_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn view(order: OrderRow, items: Vec<OrderItem>, payments: Vec<PaymentRow>) -> OrderView {
    OrderView {
        order_id: order.id,
        order_ref: order.order_ref,
        user_id: order.user_id,
        status: order.status.as_str().to_owned(),
        method: order.method,
        total_amount: order.total_amount,
        items,
        payments: payments
            .into_iter()
            .map(|p| PaymentView {
                payment_id: p.id,
                status: p.status.as_str().to_owned(),
                amount: p.amount,
                card_type: p.card_type,
                card_no: p.card_no_masked,
                transaction_key: p.transaction_key,
                reason: p.reason,
            })
            .collect(),
    }
}

async fn load(state: &AppState, user: UserId, id: OrderId) -> Result<OrderView, ApiError> {
    let found = persistence::order_with_details(&mut *state.db.reader().await?, id).await?;
    match found {
        // Another user's order is reported as missing, not forbidden.
        Some((order, items, payments)) if order.user_id == user => Ok(view(order, items, payments)),
        _ => Err(ApiError::NotFound {
            code: "ORDER_NOT_FOUND",
            message: format!("order {id} does not exist"),
        }),
    }
}

async fn place(
    State(state): State<AppState>,
    user: UserId,
    headers: HeaderMap,
    ApiJson(request): ApiJson<OrderRequest>,
) -> Result<Response, ApiError> {
    let key = match headers.get("Idempotency-Key") {
        Some(value) => Some(value.to_str().map_err(|_| {
            ApiError::bad_request(
                "INVALID_IDEMPOTENCY_KEY",
                "Idempotency-Key must be visible ASCII",
            )
        })?),
        None => None,
    };
    let placed = state.orders.place(user, key, request).await;
    state.outbox.wake();
    let placed = placed.map_err(|error| api_error(&state, error))?;
    let (order_id, status, replayed) = match placed {
        Placed::New { order_id, payment } => {
            let status = match payment {
                PaymentStatus::Success => StatusCode::CREATED,
                _ => StatusCode::ACCEPTED,
            };
            (order_id, status, false)
        }
        Placed::Replayed { order_id } => (order_id, StatusCode::OK, true),
    };
    let order = load(&state, user, order_id).await?;
    let mut response = (status, Json(order)).into_response();
    if replayed {
        response.headers_mut().insert(
            "Idempotent-Replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// The HTTP answer for a domain error of `place` (the codes are part of the API).
fn api_error(state: &AppState, error: PlaceError) -> ApiError {
    let conflict = |code, message: String| ApiError::Conflict { code, message };
    let not_found = |code, message: String| ApiError::NotFound { code, message };
    match error {
        PlaceError::Invalid { code, message } => ApiError::BadRequest { code, message },
        e @ PlaceError::KeyReused => conflict("IDEMPOTENCY_KEY_REUSED", e.to_string()),
        e @ PlaceError::KeyInProgress => conflict("IDEMPOTENCY_KEY_IN_PROGRESS", e.to_string()),
        e @ PlaceError::UserNotFound => not_found("USER_NOT_FOUND", e.to_string()),
        e @ PlaceError::ProductNotFound(_) => not_found("PRODUCT_NOT_FOUND", e.to_string()),
        e @ PlaceError::OutOfStock { .. } => conflict("OUT_OF_STOCK", e.to_string()),
        e @ PlaceError::InsufficientPoints => conflict("INSUFFICIENT_POINTS", e.to_string()),
        PlaceError::PaymentRejected => ApiError::Unprocessable {
            code: "PAYMENT_REJECTED",
            message: "the card payment was rejected; check the card details".to_owned(),
        },
        // The charge breaker knows when it lets calls through again.
        PlaceError::PaymentUnavailable => ApiError::PaymentUnavailable(
            state
                .registries
                .circuit_breakers()
                .find(CHARGE_BREAKER)
                .and_then(|breaker| breaker.retry_after()),
        ),
        PlaceError::Database(e) => ApiError::from(e),
        PlaceError::ChargeTask(e) => {
            ApiError::Internal(crate::error::anyhow_like::Internal::new("charge task", e))
        }
    }
}

async fn show(
    State(state): State<AppState>,
    user: UserId,
    path: Result<Path<OrderId>, PathRejection>,
) -> Result<Json<OrderView>, ApiError> {
    let Path(id) = path?;
    Ok(Json(load(&state, user, id).await?))
}

//! The PG's HTTP contract: requests, envelopes and the classification of every answer.
//! Shared by both adapters; policies (timeouts, retries, breakers) live in the adapters.
//!
//! Bodies are never logged: the PG echoes the full card number in its answers.

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::{ChargeRequest, PgTransaction};
use crate::domain::{Money, PgStatus};

/// One HTTP exchange's failure, classified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CallError {
    /// Connection refused or connect timeout: the request never left.
    #[error("connect failed: {0}")]
    Connect(String),
    /// 429 / 503: the PG refused before doing anything.
    #[error("throttled: {0}")]
    Throttled(String),
    /// 500: the canonical PG fails before creating anything, but a PG may also fail after
    /// creating (F5), so this is retried only with the same idempotency key and is uncertain
    /// if it is the last word.
    #[error("server error: {0}")]
    Server(String),
    /// The request may have been processed and the answer was lost or unreadable.
    #[error("uncertain: {0}")]
    Uncertain(String),
    /// A 4xx business or validation refusal.
    #[error("rejected: {0}")]
    Rejected(String),
}

impl CallError {
    fn from_reqwest(error: &reqwest::Error) -> Self {
        // Display of a reqwest error holds the URL (a transaction key at most), never a body.
        if error.is_connect() {
            Self::Connect(error.to_string())
        } else {
            Self::Uncertain(error.to_string())
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PaymentBody<'a> {
    order_id: &'a str,
    card_type: &'a str,
    card_no: &'a str,
    amount: i64,
    callback_url: &'a str,
}

#[derive(Deserialize)]
struct Envelope<T> {
    meta: Meta,
    data: Option<T>,
}

#[derive(Deserialize)]
struct Meta {
    result: String,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    transaction_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    transaction_key: String,
    order_id: String,
    amount: i64,
    status: String,
    reason: Option<String>,
    // cardNo is deliberately not read: it would be the full PAN.
}

#[derive(Deserialize)]
struct OrderList {
    transactions: Vec<Summary>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    transaction_key: String,
}

fn error_message(status: StatusCode, body: &[u8]) -> String {
    let message = serde_json::from_slice::<Envelope<serde_json::Value>>(body)
        .ok()
        .and_then(|e| e.meta.message)
        .unwrap_or_default();
    // PG messages never contain card data; cap the length anyway.
    let message: String = message.chars().take(120).collect();
    format!("HTTP {} {message}", status.as_u16())
}

fn classify_status(status: StatusCode, body: &[u8]) -> CallError {
    let message = error_message(status, body);
    match status.as_u16() {
        429 | 503 => CallError::Throttled(message),
        500 => CallError::Server(message),
        400..=499 if status != StatusCode::CONFLICT => CallError::Rejected(message),
        // 409 (idempotency key in progress), 502, 504, other 5xx: may have been processed.
        _ => CallError::Uncertain(message),
    }
}

/// `POST /api/v1/payments`. `idempotency_key` is sent when given.
pub(crate) async fn post_payment(
    http: &reqwest::Client,
    base_url: &str,
    request: &ChargeRequest,
    idempotency_key: Option<&str>,
) -> Result<String, CallError> {
    let body = PaymentBody {
        order_id: &request.order_ref,
        card_type: request.card_type.as_str(),
        card_no: request.card_no.expose_for_gateway(),
        amount: request.amount.minor_units(),
        callback_url: &request.callback_url,
    };
    let mut builder = http
        .post(format!("{base_url}/api/v1/payments"))
        .header("X-USER-ID", &request.user_id)
        .json(&body);
    if let Some(key) = idempotency_key {
        builder = builder.header("Idempotency-Key", key);
    }
    let bytes = exchange(builder, false).await?.unwrap_or_default();
    match serde_json::from_slice::<Envelope<Accepted>>(&bytes) {
        Ok(Envelope {
            meta,
            data: Some(data),
        }) if meta.result == "SUCCESS" => Ok(data.transaction_key),
        _ => Err(CallError::Uncertain(
            "HTTP 200 with an unreadable body".to_owned(),
        )),
    }
}

/// Sends `request` and reads the answer: the body of a 200, `None` for a 404 when `absent_ok`
/// (an empty lookup), the classified error otherwise.
async fn exchange(
    request: reqwest::RequestBuilder,
    absent_ok: bool,
) -> Result<Option<axum::body::Bytes>, CallError> {
    let response = request
        .send()
        .await
        .map_err(|e| CallError::from_reqwest(&e))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| CallError::Uncertain(format!("reading the answer: {e}")))?;
    match status {
        StatusCode::OK => Ok(Some(bytes)),
        StatusCode::NOT_FOUND if absent_ok => Ok(None),
        _ => Err(classify_status(status, &bytes)),
    }
}

fn parse_status(status: &str) -> Option<PgStatus> {
    match status {
        "PENDING" => Some(PgStatus::Pending),
        "SUCCESS" => Some(PgStatus::Success),
        "FAILED" => Some(PgStatus::Failed),
        "CANCELED" => Some(PgStatus::Canceled),
        _ => None,
    }
}

/// `GET /api/v1/payments/{key}`; `None` on 404.
pub(crate) async fn get_transaction(
    http: &reqwest::Client,
    base_url: &str,
    user_id: &str,
    transaction_key: &str,
) -> Result<Option<PgTransaction>, CallError> {
    let request = http
        .get(format!("{base_url}/api/v1/payments/{transaction_key}"))
        .header("X-USER-ID", user_id);
    let Some(bytes) = exchange(request, true).await? else {
        return Ok(None);
    };
    let Ok(Envelope {
        data: Some(detail), ..
    }) = serde_json::from_slice::<Envelope<Detail>>(&bytes)
    else {
        return Err(CallError::Uncertain("unreadable transaction".to_owned()));
    };
    // An unknown status (e.g. AUTHORIZED) is not a verdict: fail closed.
    let status = parse_status(&detail.status).ok_or_else(|| {
        CallError::Uncertain(format!("unknown transaction status {:?}", detail.status))
    })?;
    Ok(Some(PgTransaction {
        transaction_key: detail.transaction_key,
        order_ref: detail.order_id,
        amount: Money::new(detail.amount),
        status,
        reason: detail.reason,
    }))
}

/// `GET /api/v1/payments?orderId=…`; empty on 404.
pub(crate) async fn list_for_order(
    http: &reqwest::Client,
    base_url: &str,
    user_id: &str,
    order_ref: &str,
) -> Result<Vec<String>, CallError> {
    let request = http
        .get(format!("{base_url}/api/v1/payments"))
        .query(&[("orderId", order_ref)])
        .header("X-USER-ID", user_id);
    let Some(bytes) = exchange(request, true).await? else {
        return Ok(Vec::new());
    };
    match serde_json::from_slice::<Envelope<OrderList>>(&bytes) {
        Ok(Envelope {
            data: Some(data), ..
        }) => Ok(data
            .transactions
            .into_iter()
            .map(|t| t.transaction_key)
            .collect()),
        _ => Err(CallError::Uncertain("unreadable order list".to_owned())),
    }
}

/// `POST /api/v1/payments/{key}/cancel`.
pub(crate) async fn cancel(
    http: &reqwest::Client,
    base_url: &str,
    user_id: &str,
    transaction_key: &str,
) -> Result<(), CallError> {
    let response = http
        .post(format!(
            "{base_url}/api/v1/payments/{transaction_key}/cancel"
        ))
        .header("X-USER-ID", user_id)
        .send()
        .await
        .map_err(|e| CallError::from_reqwest(&e))?;
    let status = response.status();
    if status == StatusCode::OK {
        return Ok(());
    }
    let bytes = response.bytes().await.unwrap_or_default();
    Err(classify_status(status, &bytes))
}

//! The gateway's wire format and the classification of its answers. Pure functions of
//! (status, headers, body): no I/O, so every rule is unit-tested.
//!
//! The envelope is `{"meta":{"result","errorCode","message"},"data":…}` with null fields
//! omitted; unknown fields are ignored, types are checked strictly.

use std::time::Duration;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::{CallPath, Kind, PgError};
use crate::model::{
    CardType, Currency, MaskedCardNumber, Money, OrderId, OrderTransactions, TransactionDetail,
    TransactionKey, TransactionStatus, TransactionSummary, redact_pans,
};

/// The error code the idempotency extension sends while the first request with a key still
/// runs (409): the outcome of that first request is not known yet.
pub(crate) const IDEMPOTENCY_IN_PROGRESS: &str = "IDEMPOTENCY_KEY_IN_PROGRESS";

/// An answer as read off the connection.
#[derive(Debug)]
pub(crate) struct RawAnswer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) replayed: bool,
    pub(crate) body: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    meta: Option<Meta>,
    #[serde(default = "Option::default")]
    data: Option<T>,
}

/// A value-free description of a JSON error: the parser's own message can quote the offending
/// value (which may be a card number), so only its category and position are kept.
fn describe_json_error(error: &serde_json::Error) -> String {
    let what = match error.classify() {
        serde_json::error::Category::Eof => "truncated JSON",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected JSON shape or type",
        serde_json::error::Category::Io => "unreadable body",
    };
    format!("{what} at line {} column {}", error.line(), error.column())
}

/// `Retry-After` in delta-seconds (the HTTP-date form is not used by gateways we know and is
/// read as absent).
pub(crate) fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Classifies a non-2xx answer.
///
/// | status | class |
/// |---|---|
/// | 500 whose `meta.message` is a configured pre-create message | not reached |
/// | 429; 503 with `Retry-After` | throttled |
/// | 409 `IDEMPOTENCY_KEY_IN_PROGRESS`; 408 | uncertain |
/// | other 4xx | business |
/// | other 5xx, 503 without `Retry-After`, anything else | uncertain |
pub(crate) fn classify_failure(
    path: CallPath,
    answer: &RawAnswer,
    pre_create_messages: &[String],
) -> PgError {
    let meta = serde_json::from_slice::<Envelope<IgnoredAny>>(&answer.body)
        .ok()
        .and_then(|e| e.meta);
    let (code, message) = meta.map_or((None, None), |m| (m.error_code, m.message));
    let status = answer.status;
    let kind = match status {
        500 if message
            .as_deref()
            .is_some_and(|m| pre_create_messages.iter().any(|p| p == m)) =>
        {
            Kind::PreCreateRefusal
        }
        429 => Kind::Throttled,
        503 if answer.retry_after.is_some() => Kind::Throttled,
        409 if code.as_deref() == Some(IDEMPOTENCY_IN_PROGRESS) => Kind::IdempotencyInProgress,
        408 => Kind::Timeout,
        400..=499 => Kind::Client,
        _ => Kind::ServerError,
    };
    let mut error = PgError::new(kind)
        .with_path(path)
        .with_status(status)
        .with_gateway_text(
            code.as_deref().map(redact_pans),
            message.as_deref().map(redact_pans),
        );
    if kind == Kind::Throttled {
        error = error.with_retry_after(answer.retry_after);
    }
    error
}

/// Reads the `data` of a 2xx answer; anything unreadable is *uncertain* (the gateway did
/// answer "success", so it may have acted).
fn success_data<T: DeserializeOwned>(path: CallPath, answer: &RawAnswer) -> Result<T, PgError> {
    let malformed = |detail: String| {
        PgError::new(Kind::Malformed)
            .with_path(path)
            .with_status(answer.status)
            .with_detail(detail)
    };
    let envelope: Envelope<T> =
        serde_json::from_slice(&answer.body).map_err(|e| malformed(describe_json_error(&e)))?;
    if let Some(result) = envelope.meta.and_then(|m| m.result)
        && result != "SUCCESS"
    {
        return Err(malformed(format!(
            "2xx with meta.result {}",
            redact_pans(&result)
        )));
    }
    envelope
        .data
        .ok_or_else(|| malformed("2xx without data".to_owned()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCreated {
    transaction_key: TransactionKey,
    status: TransactionStatus,
    #[serde(default)]
    reason: Option<String>,
}

/// What a charge's 2xx answer says.
#[derive(Debug)]
pub(crate) struct Created {
    pub(crate) transaction_key: TransactionKey,
    pub(crate) status: TransactionStatus,
    pub(crate) reason: Option<String>,
}

/// Reads a charge's 2xx answer. An unknown status is uncertain (the transaction exists but
/// what it means is not known) and carries the key for reconciliation.
pub(crate) fn created(answer: &RawAnswer) -> Result<Created, PgError> {
    let data: WireCreated = success_data(CallPath::Charge, answer)?;
    if data.status.is_unknown() {
        return Err(PgError::new(Kind::UnknownStatus)
            .with_path(CallPath::Charge)
            .with_status(answer.status)
            .with_detail(format!("status {}", redact_pans(data.status.as_str())))
            .with_transaction_key(data.transaction_key));
    }
    Ok(Created {
        transaction_key: data.transaction_key,
        status: data.status,
        reason: data.reason.as_deref().map(redact_pans),
    })
}

/// A transaction as the gateway writes it: a detail answer's `data` and a callback body alike.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireDetail {
    pub(crate) transaction_key: TransactionKey,
    pub(crate) order_id: OrderId,
    pub(crate) card_type: CardType,
    pub(crate) card_no: MaskedCardNumber,
    pub(crate) amount: i64,
    pub(crate) status: TransactionStatus,
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

/// Reads a transaction detail (detail query or cancel answer).
pub(crate) fn detail(
    path: CallPath,
    answer: &RawAnswer,
    currency: Currency,
) -> Result<TransactionDetail, PgError> {
    let data: WireDetail = success_data(path, answer)?;
    let amount = Money::new(data.amount, currency).map_err(|e| {
        PgError::new(Kind::Malformed)
            .with_path(path)
            .with_status(answer.status)
            .with_detail(e.to_string())
    })?;
    Ok(TransactionDetail {
        transaction_key: data.transaction_key,
        order_id: data.order_id,
        card_type: data.card_type,
        card_number: data.card_no,
        amount,
        status: data.status,
        reason: data.reason.as_deref().map(redact_pans),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOrder {
    order_id: OrderId,
    #[serde(default)]
    transactions: Option<Vec<TransactionSummary>>,
}

/// Reads the transactions of an order.
pub(crate) fn order(answer: &RawAnswer) -> Result<OrderTransactions, PgError> {
    let data: WireOrder = success_data(CallPath::Query, answer)?;
    let transactions = data
        .transactions
        .unwrap_or_default()
        .into_iter()
        .map(|t| TransactionSummary {
            reason: t.reason.as_deref().map(redact_pans),
            ..t
        })
        .collect();
    Ok(OrderTransactions {
        order_id: data.order_id,
        transactions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CANONICAL_PRE_CREATE_MESSAGE;
    use crate::error::FailureClass;

    fn answer(status: u16, retry_after: Option<u64>, body: &str) -> RawAnswer {
        RawAnswer {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            replayed: false,
            body: body.as_bytes().to_vec(),
        }
    }

    fn fail_body(code: &str, message: &str) -> String {
        serde_json::json!({"meta": {"result": "FAIL", "errorCode": code, "message": message}})
            .to_string()
    }

    fn class(status: u16, retry_after: Option<u64>, body: &str) -> FailureClass {
        let pre = [CANONICAL_PRE_CREATE_MESSAGE.to_owned()];
        classify_failure(CallPath::Charge, &answer(status, retry_after, body), &pre).class()
    }

    #[test]
    fn only_the_canonical_pre_create_500_proves_nothing_was_created() {
        let pre = fail_body("Internal Server Error", CANONICAL_PRE_CREATE_MESSAGE);
        assert_eq!(class(500, None, &pre), FailureClass::NotReached);
        let post = fail_body("Internal Server Error", "일시적인 오류가 발생했습니다.");
        assert_eq!(class(500, None, &post), FailureClass::Uncertain);
        assert_eq!(class(500, None, ""), FailureClass::Uncertain);
        assert_eq!(
            class(502, None, "<html>502</html>"),
            FailureClass::Uncertain
        );
        assert_eq!(class(504, None, ""), FailureClass::Uncertain);
        // The pre-create message proves nothing on another status.
        assert_eq!(class(502, None, &pre), FailureClass::Uncertain);
    }

    #[test]
    fn throttling_needs_a_429_or_a_503_with_a_hint() {
        assert_eq!(class(429, Some(2), "{}"), FailureClass::Throttled);
        assert_eq!(class(429, None, "{}"), FailureClass::Throttled);
        assert_eq!(class(503, Some(1), "{}"), FailureClass::Throttled);
        assert_eq!(class(503, None, "{}"), FailureClass::Uncertain);
        let pre = [];
        let err = classify_failure(CallPath::Query, &answer(429, Some(7), "{}"), &pre);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn client_errors_are_business_except_an_idempotency_key_still_in_flight() {
        assert_eq!(
            class(400, None, &fail_body("Bad Request", "bad")),
            FailureClass::Business
        );
        assert_eq!(class(404, None, ""), FailureClass::Business);
        assert_eq!(
            class(422, None, &fail_body("IDEMPOTENCY_KEY_REUSED", "x")),
            FailureClass::Business
        );
        assert_eq!(
            class(409, None, &fail_body(IDEMPOTENCY_IN_PROGRESS, "x")),
            FailureClass::Uncertain
        );
        assert_eq!(class(408, None, ""), FailureClass::Uncertain);
    }

    #[test]
    fn gateway_messages_are_kept_with_card_numbers_masked() {
        let pre = [];
        let body = fail_body("Bad Request", "card 1234-5678-9012-3456 is wrong");
        let err = classify_failure(CallPath::Charge, &answer(400, None, &body), &pre);
        assert_eq!(
            err.gateway_message(),
            Some("card 1234-56**-****-3456 is wrong")
        );
        assert!(!format!("{err} {err:?}").contains("5678-9012"));
    }

    #[test]
    fn a_created_answer_reads_key_and_status_and_ignores_extra_fields() {
        let body = r#"{"meta":{"result":"SUCCESS","traceId":"x"},
            "data":{"transactionKey":"20250816:TR:9577c5","status":"PENDING","approvedAt":"now"}}"#;
        let created = created(&answer(200, None, body)).unwrap();
        assert_eq!(created.transaction_key.as_str(), "20250816:TR:9577c5");
        assert_eq!(created.status, TransactionStatus::Pending);
        assert_eq!(created.reason, None);
    }

    #[test]
    fn unreadable_success_answers_are_uncertain() {
        for body in [
            r#"{"meta":{"result":"SUCCESS"},"data":{"transactionKey":"20250816:TR:95"#,
            r#"{"meta":{"result":"SUCCESS"}}"#,
            r#"{"meta":{"result":"SUCCESS"},"data":null}"#,
            r#"{"meta":{"result":"SUCCESS"},"data":{"transactionKey":5,"status":"PENDING"}}"#,
            r#"{"meta":{"result":"FAIL"},"data":{"transactionKey":"k","status":"PENDING"}}"#,
            "<html></html>",
        ] {
            let err = created(&answer(200, None, body)).unwrap_err();
            assert!(err.is_uncertain(), "{body}: {err}");
        }
    }

    #[test]
    fn an_unknown_charge_status_is_uncertain_and_keeps_the_key() {
        let body =
            r#"{"meta":{"result":"SUCCESS"},"data":{"transactionKey":"k1","status":"AUTHORIZED"}}"#;
        let err = created(&answer(200, None, body)).unwrap_err();
        assert!(err.is_uncertain());
        assert_eq!(
            err.transaction_key().map(TransactionKey::as_str),
            Some("k1")
        );
    }

    #[test]
    fn details_mask_the_card_and_are_strict_about_amount_types() {
        let body = r#"{"meta":{"result":"SUCCESS"},"data":{"transactionKey":"k","orderId":"000123",
            "cardType":"SAMSUNG","cardNo":"1234-5678-9012-3456","amount":5000,"status":"SUCCESS",
            "reason":null}}"#;
        let detail = detail(CallPath::Query, &answer(200, None, body), Currency::KRW).unwrap();
        assert_eq!(detail.card_number.as_str(), "1234-56**-****-3456");
        assert_eq!(detail.amount, Money::krw(5000).unwrap());
        assert_eq!(detail.reason, None);
        assert!(!format!("{detail:?}").contains("5678-9012"));

        let text_amount = body.replace("5000", "\"5000\"");
        let err = super::detail(
            CallPath::Query,
            &answer(200, None, &text_amount),
            Currency::KRW,
        )
        .unwrap_err();
        assert!(err.is_uncertain());
        assert!(!format!("{err} {err:?}").contains("5678-9012"));
    }

    #[test]
    fn an_order_lists_its_transactions_keeping_unknown_statuses() {
        let body = r#"{"meta":{"result":"SUCCESS"},"data":{"orderId":"000123","transactions":[
            {"transactionKey":"k2","status":"AUTHORIZED"},
            {"transactionKey":"k1","status":"FAILED","reason":"limit"}]}}"#;
        let order = order(&answer(200, None, body)).unwrap();
        assert_eq!(order.transactions.len(), 2);
        assert!(order.transactions[0].status.is_unknown());
        assert_eq!(order.transactions[1].reason.as_deref(), Some("limit"));
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        assert_eq!(parse_retry_after(Some(" 3 ")), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }
}

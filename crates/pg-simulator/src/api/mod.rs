//! HTTP surface: the canonical payment API and the control plane.

pub(crate) mod control;
pub(crate) mod payments;
pub(crate) mod request;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::fault::{ActiveFaults, Fault, FaultContext};
use crate::model::messages;
use crate::state::Shared;

/// Response extension asking the connection layer to close the connection without answering.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AbortConnection;

impl std::fmt::Display for AbortConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad("connection aborted by an injected fault")
    }
}

impl std::error::Error for AbortConnection {}

/// A response that closes the connection instead of being written.
pub(crate) fn abort() -> Response {
    let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    r.extensions_mut().insert(AbortConnection);
    r
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta<'a> {
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    meta: Meta<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

pub(crate) fn json_bytes(status: StatusCode, bytes: Bytes) -> Response {
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The success envelope as JSON bytes.
pub(crate) fn success_bytes<T: Serialize>(data: &T) -> Bytes {
    let envelope = Envelope {
        meta: Meta {
            result: "SUCCESS",
            error_code: None,
            message: None,
        },
        data: Some(data),
    };
    Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default())
}

/// 200 with the success envelope.
pub(crate) fn success<T: Serialize>(data: &T) -> Response {
    json_bytes(StatusCode::OK, success_bytes(data))
}

/// An error envelope; `errorCode` is the HTTP reason phrase unless `code` is given.
pub(crate) fn fail(status: StatusCode, code: Option<&str>, message: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let envelope: Envelope<'_, ()> = Envelope {
        meta: Meta {
            result: "FAIL",
            error_code: Some(code.unwrap_or(reason)),
            message: Some(message),
        },
        data: None,
    };
    json_bytes(
        status,
        Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default()),
    )
}

pub(crate) fn bad_request(message: &str) -> Response {
    fail(StatusCode::BAD_REQUEST, None, message)
}

pub(crate) fn not_found(message: &str) -> Response {
    fail(StatusCode::NOT_FOUND, None, message)
}

pub(crate) fn internal_error() -> Response {
    fail(
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        messages::INTERNAL_ERROR,
    )
}

pub(crate) fn unstable() -> Response {
    fail(StatusCode::INTERNAL_SERVER_ERROR, None, messages::UNSTABLE)
}

pub(crate) fn retry_after(
    status: StatusCode,
    message: &str,
    after: std::time::Duration,
) -> Response {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    let mut r = fail(status, None, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

pub(crate) fn html_502() -> Response {
    let body = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
                <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
                </body>\r\n</html>\r\n";
    let mut r = (StatusCode::BAD_GATEWAY, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

/// The answer to unknown paths (canonical NOT_FOUND).
pub(crate) async fn unknown_path() -> Response {
    not_found(messages::NOT_FOUND)
}

/// The answer to a known path with the wrong method: canonically the catch-all 500.
pub(crate) async fn wrong_method() -> Response {
    internal_error()
}

/// Applies the response-shape faults (F8) to a 200 body, recording each one; `None` when no
/// such fault is active.
pub(crate) fn malformed(
    shared: &Shared,
    faults: &ActiveFaults,
    ctx: &FaultContext,
    body: &Bytes,
) -> Option<Response> {
    let shape = [
        Fault::UnknownStatus,
        Fault::ExtraFields,
        Fault::MissingData,
        Fault::TruncatedJson,
    ];
    if !shape.iter().any(|f| faults.contains(*f)) {
        return None;
    }
    let mut value: Value = serde_json::from_slice(body).ok()?;
    if let Some(a) = faults.get(Fault::UnknownStatus) {
        shared.record(Fault::UnknownStatus, a.trigger, ctx);
        if let Some(data) = value.get_mut("data") {
            if let Some(status) = data.get_mut("status") {
                *status = Value::from("AUTHORIZED");
            }
            if let Some(Value::Array(list)) = data.get_mut("transactions") {
                for item in list {
                    if let Some(status) = item.get_mut("status") {
                        *status = Value::from("AUTHORIZED");
                    }
                }
            }
        }
    }
    if let Some(a) = faults.get(Fault::ExtraFields) {
        shared.record(Fault::ExtraFields, a.trigger, ctx);
        if let Some(Value::Object(meta)) = value.get_mut("meta") {
            meta.insert("traceId".into(), Value::from("sim-7f3a9c"));
        }
        if let Some(Value::Object(data)) = value.get_mut("data") {
            data.insert(
                "approvedAt".into(),
                Value::from("2025-08-16T12:00:00+09:00"),
            );
            data.insert(
                "installment".into(),
                serde_json::json!({ "months": 0, "interestFree": false }),
            );
        }
    }
    if let Some(a) = faults.get(Fault::MissingData) {
        shared.record(Fault::MissingData, a.trigger, ctx);
        if let Value::Object(root) = &mut value {
            root.remove("data");
        }
    }
    let mut bytes = serde_json::to_vec(&value).unwrap_or_default();
    if let Some(a) = faults.get(Fault::TruncatedJson) {
        shared.record(Fault::TruncatedJson, a.trigger, ctx);
        bytes.truncate(bytes.len() / 2);
    }
    Some(json_bytes(StatusCode::OK, Bytes::from(bytes)))
}

//! The one API error type and its JSON form: `{"code": "...", "message": "..."}`.
//!
//! Codes are stable strings clients can match on. 4xx messages say what was wrong with the
//! request without echoing it; 5xx bodies are generic and the cause is logged once, inside the
//! request's span.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed or invalid input.
    #[error("{code}: {message}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// What was wrong (never the input itself).
        message: String,
    },
    /// 401: missing or wrong credentials / signature.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 404: no such resource.
    #[error("{code}: not found")]
    NotFound {
        /// Stable code.
        code: &'static str,
        /// What was not found.
        message: String,
    },
    /// 409: the request conflicts with the current state (stock, points, reused key).
    #[error("{code}: {message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// 422: well-formed but not acceptable (mismatched callback, invalid configuration).
    #[error("{code}: {message}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// 413: the body is over [`MAX_BODY_BYTES`].
    #[error("payload too large")]
    PayloadTooLarge,
    /// 403: a callback that could not be verified, whatever the reason (bad signature, unknown
    /// transaction or order, mismatch): one answer, so forged callbacks learn nothing.
    #[error("callback rejected")]
    CallbackRejected,
    /// 429: over a rate limit; try again after the delay (a `Retry-After` header).
    #[error("rate limited")]
    RateLimited(Option<std::time::Duration>),
    /// 503: the payment gateway cannot take payments now; nothing was charged and the request
    /// may be sent again, with its Idempotency-Key, after the delay (`Retry-After`; 1 s when
    /// not known).
    #[error("payment temporarily unavailable")]
    PaymentUnavailable(Option<std::time::Duration>),
    /// 503: a dependency (the PG's query API) is unavailable; try again.
    #[error("{0}")]
    Unavailable(&'static str),
    /// 500: anything unexpected (logged, never shown).
    #[error(transparent)]
    Internal(#[from] anyhow_like::Internal),
}

/// A minimal boxed internal error (keeps `anyhow` out of the dependency tree).
pub mod anyhow_like {
    /// An unexpected failure with its cause chain.
    #[derive(Debug, thiserror::Error)]
    #[error("{context}")]
    pub struct Internal {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    }

    impl Internal {
        /// Wraps `source` with what was being done.
        pub fn new(
            context: &'static str,
            source: impl std::error::Error + Send + Sync + 'static,
        ) -> Self {
            Self {
                context,
                source: Box::new(source),
            }
        }
    }
}

/// The largest request body accepted, on every route (an order of 50 lines is a few KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if is_busy(&error) {
            // Contention, not a fault: the client may simply try again.
            tracing::warn!(%error, "database busy");
            return Self::Unavailable("the service is busy; try again after the Retry-After delay");
        }
        Self::Internal(anyhow_like::Internal::new("database error", error))
    }
}

/// A database error that says "busy, try again": no pooled connection in time, a lock held
/// elsewhere past the lock timeout (SQLite's SQLITE_BUSY and SQLITE_LOCKED with their extended
/// codes; Postgres's lock_not_available), a transaction lost to a concurrent one, or a server
/// with no connection to spare.
pub fn is_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(e) => match e.code().as_deref() {
            // SQLite's codes are numbers (the primary code in the low byte).
            Some(code) if code.len() <= 4 && code.bytes().all(|b| b.is_ascii_digit()) => {
                code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
            }
            // Postgres's are five-character SQLSTATEs.
            Some(code) => matches!(code, "55P03" | "40001" | "40P01" | "53300" | "57P03"),
            None => false,
        },
        _ => false,
    }
}

impl ApiError {
    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The `Retry-After` an answer carries, if any.
    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::RateLimited(wait) | Self::PaymentUnavailable(wait) => {
                Some(wait.unwrap_or(std::time::Duration::from_secs(1)))
            }
            Self::Unavailable(_) => Some(std::time::Duration::from_secs(1)),
            _ => None,
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message.clone()),
            Self::Unauthorized(what) => {
                (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", (*what).to_owned())
            }
            Self::NotFound { code, message } => (StatusCode::NOT_FOUND, code, message.clone()),
            Self::Conflict { code, message } => (StatusCode::CONFLICT, code, message.clone()),
            Self::Unprocessable { code, message } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, message.clone())
            }
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
            ),
            Self::CallbackRejected => (
                StatusCode::FORBIDDEN,
                "CALLBACK_REJECTED",
                "the callback was not accepted".to_owned(),
            ),
            Self::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "too many requests; try again after the Retry-After delay".to_owned(),
            ),
            Self::PaymentUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "PAYMENT_TEMPORARILY_UNAVAILABLE",
                "Card payments are temporarily unavailable. Nothing was charged and no order was \
                 placed. Send the same request again after the Retry-After delay, with the same \
                 Idempotency-Key if you sent one: it will place the order."
                    .to_owned(),
            ),
            Self::Unavailable(what) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "TEMPORARILY_UNAVAILABLE",
                (*what).to_owned(),
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "Something went wrong on our side.".to_owned(),
            ),
        }
    }
}

/// The JSON body of every error.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Stable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if let Self::Internal(error) = &self {
            let mut chain = String::new();
            let mut source: Option<&dyn std::error::Error> = Some(error);
            while let Some(e) = source {
                chain.push_str(": ");
                chain.push_str(&e.to_string());
                source = e.source();
            }
            tracing::error!(error = %chain, "request failed");
        } else if status.is_server_error() {
            tracing::warn!(code, "request answered {status}");
        }
        let mut response = (status, Json(ErrorBody { code, message })).into_response();
        if let Some(wait) = self.retry_after() {
            // Whole seconds, rounded up, at least 1: a client that waits that long is on time.
            let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge
        } else {
            Self::bad_request("INVALID_REQUEST", "unreadable request body")
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        Self::bad_request("INVALID_PATH", "the path parameter is not a valid id")
    }
}

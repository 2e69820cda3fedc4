//! Metrics through the `metrics` facade (a no-op until the application installs a recorder).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `pg_client_requests_total` | counter | `client`, `path`, `operation`, `outcome` |
//! | `pg_client_request_duration_seconds` | histogram | `client`, `path`, `operation`, `outcome` |
//! | `pg_client_attempts_total` | counter | `client`, `path`, `operation`, `outcome` |
//!
//! `path` is `charge` or `query`; `operation` is `charge`, `cancel`, `get_transaction` or
//! `find_by_order`; `outcome` is `success`, `business`, `not_reached`, `uncertain`,
//! `throttled` or `rejected`. A request is one call of the client (all its attempts); an
//! attempt is one HTTP exchange. Durations are read from the client's clock.

use std::time::Duration;

use crate::error::{CallPath, FailureClass, PgError};

/// Total calls of the client, by outcome.
pub const REQUESTS_TOTAL: &str = "pg_client_requests_total";
/// Duration of whole calls (every attempt and wait), seconds.
pub const REQUEST_DURATION_SECONDS: &str = "pg_client_request_duration_seconds";
/// HTTP attempts, by outcome.
pub const ATTEMPTS_TOTAL: &str = "pg_client_attempts_total";

/// What a call or attempt ended in (the `outcome` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failed(FailureClass),
}

impl Outcome {
    pub(crate) fn of<T>(result: &Result<T, PgError>) -> Self {
        match result {
            Ok(_) => Self::Success,
            Err(error) => Self::Failed(error.class()),
        }
    }

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed(class) => class.as_str(),
        }
    }
}

/// The operation label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Charge,
    Cancel,
    GetTransaction,
    FindByOrder,
}

impl Operation {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::Cancel => "cancel",
            Self::GetTransaction => "get_transaction",
            Self::FindByOrder => "find_by_order",
        }
    }

    pub(crate) const fn path(self) -> CallPath {
        match self {
            Self::Charge | Self::Cancel => CallPath::Charge,
            Self::GetTransaction | Self::FindByOrder => CallPath::Query,
        }
    }
}

/// Describes the metrics once, so exporters show help texts.
pub(crate) fn describe() {
    metrics::describe_counter!(
        REQUESTS_TOTAL,
        "Payment gateway client calls, by path, operation and outcome class"
    );
    metrics::describe_histogram!(
        REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Duration of payment gateway client calls, retries included"
    );
    metrics::describe_counter!(
        ATTEMPTS_TOTAL,
        "HTTP attempts to the payment gateway, by path, operation and outcome class"
    );
}

fn labels(client: &str, operation: Operation, outcome: Outcome) -> [(&'static str, String); 4] {
    [
        ("client", client.to_owned()),
        ("path", operation.path().as_str().to_owned()),
        ("operation", operation.as_str().to_owned()),
        ("outcome", outcome.as_str().to_owned()),
    ]
}

/// Records one finished call.
pub(crate) fn record_call(client: &str, operation: Operation, outcome: Outcome, took: Duration) {
    let labels = labels(client, operation, outcome);
    metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(REQUEST_DURATION_SECONDS, &labels).record(took.as_secs_f64());
}

/// Records one finished HTTP attempt.
pub(crate) fn record_attempt(client: &str, operation: Operation, outcome: Outcome) {
    metrics::counter!(ATTEMPTS_TOTAL, &labels(client, operation, outcome)).increment(1);
}

//! The attempt hook: an [`AttemptObserver`] sees **each HTTP attempt** the client makes.
//!
//! The hook sits innermost, below the retry and the hedge: a charge retried after a refused
//! connection is two attempts, a hedged query that sent a second request is two attempts,
//! and the observer is called around each. [`before`](AttemptObserver::before) runs before
//! anything is sent and may **veto** the attempt: the attempt then fails as refused by this
//! client (class [`Rejected`](crate::FailureClass::Rejected): nothing was sent, not retried,
//! not a breaker failure). [`after`](AttemptObserver::after) receives the attempt's outcome:
//! the HTTP status when an answer came, the outcome class, the transaction key and reason.
//!
//! Without an observer (the default) the client does exactly what it did without the hook:
//! one `Option` check per attempt, no allocation.
//!
//! # Examples
//!
//! ```
//! use pg_client::observer::{
//!     AttemptId, AttemptInfo, AttemptObserver, AttemptOutcome, BoxFuture, Veto,
//! };
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! /// Counts attempts and refuses every one after the third.
//! #[derive(Debug, Default)]
//! struct AtMostThree(AtomicU64);
//!
//! impl AttemptObserver for AtMostThree {
//!     fn before<'a>(&'a self, _: &'a AttemptInfo<'a>) -> BoxFuture<'a, Result<AttemptId, Veto>> {
//!         let n = self.0.fetch_add(1, Ordering::Relaxed);
//!         Box::pin(async move {
//!             if n < 3 { Ok(AttemptId(n)) } else { Err(Veto::new("enough for today")) }
//!         })
//!     }
//!
//!     fn after<'a>(&'a self, _: AttemptId, _: &'a AttemptOutcome<'a>) -> BoxFuture<'a, ()> {
//!         Box::pin(async {})
//!     }
//! }
//!
//! let client = pg_client::PgClient::builder(pg_client::PgClientConfig::with_base_url(
//!     "http://localhost:8082",
//! ))
//! .attempt_observer(std::sync::Arc::new(AtMostThree::default()))
//! .build();
//! assert!(client.is_ok());
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::error::FailureClass;
use crate::gateway::Accepted;
use crate::model::{MaskedCardNumber, OrderTransactions, TransactionDetail};

/// A boxed, sendable future (the observer is called through `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an attempt does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptPath {
    /// A charge (`POST /api/v1/payments`).
    Charge,
    /// A lookup (one transaction, or the transactions of an order).
    Query,
    /// A cancel (`POST /api/v1/payments/{key}/cancel`).
    Cancel,
}

impl AttemptPath {
    /// `"charge"`, `"query"` or `"cancel"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::Query => "query",
            Self::Cancel => "cancel",
        }
    }
}

/// One attempt, as known before it is sent. Never holds a full card number.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct AttemptInfo<'a> {
    /// Charge, query or cancel.
    pub path: AttemptPath,
    /// The attempt's number within its call (1 for the first; a hedge's second request
    /// counts as the next attempt).
    pub attempt: u32,
    /// The order the attempt is about, when the request names it.
    pub order_id: Option<&'a str>,
    /// The charge's idempotency key (charges only).
    pub idempotency_key: Option<&'a str>,
    /// The masked card (charges only).
    pub card: Option<&'a MaskedCardNumber>,
    /// The transaction the attempt is about (a lookup or cancel of one transaction).
    pub transaction_key: Option<&'a str>,
}

impl<'a> AttemptInfo<'a> {
    pub(crate) const fn new(path: AttemptPath, attempt: u32) -> Self {
        Self {
            path,
            attempt,
            order_id: None,
            idempotency_key: None,
            card: None,
            transaction_key: None,
        }
    }
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct AttemptOutcome<'a> {
    /// The attempt's path (as in its [`AttemptInfo`]).
    pub path: AttemptPath,
    /// The HTTP status, when the gateway answered.
    pub status: Option<u16>,
    /// `None` on success, else the failure's class.
    pub failure: Option<FailureClass>,
    /// The transaction key the answer named (an accepted charge, a found transaction).
    pub transaction_key: Option<&'a str>,
    /// The gateway's reason, or the error's text for a failure.
    pub reason: Option<&'a str>,
}

impl AttemptOutcome<'_> {
    /// `"OK"` for a success, else the failure class in capitals (`"NOT_REACHED"`,
    /// `"UNCERTAIN"`, `"BUSINESS"`, `"THROTTLED"`, `"REJECTED"`).
    pub const fn class(&self) -> &'static str {
        match self.failure {
            None => "OK",
            Some(FailureClass::NotReached) => "NOT_REACHED",
            Some(FailureClass::Uncertain) => "UNCERTAIN",
            Some(FailureClass::Business) => "BUSINESS",
            Some(FailureClass::Throttled) => "THROTTLED",
            Some(FailureClass::Rejected) => "REJECTED",
        }
    }
}

/// The observer's handle on one attempt, returned by `before` and handed back to `after`
/// (a row id, a counter: the observer decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttemptId(pub u64);

/// The observer refused the attempt: nothing is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Veto {
    reason: String,
}

impl Veto {
    /// A veto with the reason the attempt's error will carry.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Veto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.reason)
    }
}

/// Called around each HTTP attempt of a [`PgClient`](crate::PgClient); install it with
/// [`PgClientBuilder::attempt_observer`](crate::PgClientBuilder::attempt_observer).
///
/// # Cancel safety
///
/// A call cancelled while an attempt is in flight drops the attempt's future: `after` is not
/// called for it, as the outcome is not known. An observer that writes rows sees such an
/// attempt as a row without an outcome.
pub trait AttemptObserver: Send + Sync + fmt::Debug {
    /// Before the attempt is sent.
    ///
    /// # Errors
    ///
    /// A [`Veto`]: the attempt is not sent and fails as refused by this client.
    fn before<'a>(&'a self, info: &'a AttemptInfo<'a>) -> BoxFuture<'a, Result<AttemptId, Veto>>;

    /// After the attempt, with its outcome.
    fn after<'a>(&'a self, id: AttemptId, outcome: &'a AttemptOutcome<'a>) -> BoxFuture<'a, ()>;
}

/// What an attempt's successful value tells the observer.
pub(crate) trait Observed {
    /// The transaction key and reason the answer named.
    fn observed(&self) -> (Option<&str>, Option<&str>);
}

impl Observed for Accepted {
    fn observed(&self) -> (Option<&str>, Option<&str>) {
        (Some(self.transaction_key.as_str()), self.reason.as_deref())
    }
}

impl Observed for TransactionDetail {
    fn observed(&self) -> (Option<&str>, Option<&str>) {
        (Some(self.transaction_key.as_str()), self.reason.as_deref())
    }
}

impl Observed for Option<TransactionDetail> {
    fn observed(&self) -> (Option<&str>, Option<&str>) {
        self.as_ref().map_or((None, None), Observed::observed)
    }
}

impl Observed for OrderTransactions {
    fn observed(&self) -> (Option<&str>, Option<&str>) {
        (
            self.transactions
                .first()
                .map(|t| t.transaction_key.as_str()),
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_a_class_in_capitals() {
        let outcome = |failure| AttemptOutcome {
            path: AttemptPath::Query,
            status: None,
            failure,
            transaction_key: None,
            reason: None,
        };
        assert_eq!(outcome(None).class(), "OK");
        assert_eq!(
            outcome(Some(FailureClass::NotReached)).class(),
            "NOT_REACHED"
        );
        assert_eq!(outcome(Some(FailureClass::Uncertain)).class(), "UNCERTAIN");
        assert_eq!(outcome(Some(FailureClass::Rejected)).class(), "REJECTED");
    }
}

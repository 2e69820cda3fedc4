//! The client's one error type, [`PgError`], and the failure classes it sorts every failure
//! into.

use std::fmt;
use std::time::Duration;

use crate::model::TransactionKey;

/// Which of the client's two policies a call went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallPath {
    /// Writes: charges (and cancels). Retried only when nothing can have happened.
    Charge,
    /// Reads: transaction detail and transactions of an order. Retried with backoff.
    Query,
}

impl CallPath {
    /// `"charge"` or `"query"` (the metrics label).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::Query => "query",
        }
    }
}

impl fmt::Display for CallPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What a failure tells about the gateway's side. Exactly one class per error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureClass {
    /// The gateway provably did nothing: the connection failed, or it answered with its
    /// canonical "nothing was created" refusal. Safe to retry, safe to fail locally.
    NotReached,
    /// The request may have been acted on: the answer was lost, cut, late, unreadable or a 5xx
    /// that does not prove otherwise. Never retry blindly; reconcile by order id.
    Uncertain,
    /// The gateway (or this client, before sending) refused the request itself: validation,
    /// unknown transaction, unsupported operation. Never retried; not a breaker failure.
    Business,
    /// The gateway asked to slow down (429, or 503 with `Retry-After`); nothing was created.
    /// Retried after the hint; a breaker failure.
    Throttled,
    /// This client's own protection refused the call (circuit open, bulkhead full); nothing
    /// was sent.
    Rejected,
}

impl FailureClass {
    /// `not_reached`, `uncertain`, `business`, `throttled` or `rejected` (the metrics label).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotReached => "not_reached",
            Self::Uncertain => "uncertain",
            Self::Business => "business",
            Self::Throttled => "throttled",
            Self::Rejected => "rejected",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What exactly happened (private: match on the predicates and [`FailureClass`] instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Connection refused, host unreachable, TLS handshake failed: nothing was sent.
    Connect,
    /// The connection was not established within the connect timeout.
    ConnectTimeout,
    /// The gateway's canonical "unstable, nothing created" 500.
    PreCreateRefusal,
    /// No (complete) answer within the read timeout, after the request was sent.
    Timeout,
    /// The connection closed or reset after the request was sent.
    ConnectionLost,
    /// A 5xx (or other unexpected status) that does not prove nothing was created.
    ServerError,
    /// A 2xx whose body is not the expected JSON.
    Malformed,
    /// A charge answered with a status this client does not know.
    UnknownStatus,
    /// 409: the first request with this idempotency key is still running.
    IdempotencyInProgress,
    /// 429, or 503 with `Retry-After`.
    Throttled,
    /// A 4xx the gateway answered for the request itself.
    Client,
    /// Refused by this client before sending (validation, unsupported operation).
    Invalid,
    /// The circuit breaker of the path is open.
    CircuitOpen,
    /// The bulkhead of the path is full.
    BulkheadFull,
    /// The attempt observer vetoed the attempt before it was sent.
    Vetoed,
}

impl Kind {
    pub(crate) const fn class(self) -> FailureClass {
        match self {
            Self::Connect | Self::ConnectTimeout | Self::PreCreateRefusal => {
                FailureClass::NotReached
            }
            Self::Timeout
            | Self::ConnectionLost
            | Self::ServerError
            | Self::Malformed
            | Self::UnknownStatus
            | Self::IdempotencyInProgress => FailureClass::Uncertain,
            Self::Throttled => FailureClass::Throttled,
            Self::Client | Self::Invalid => FailureClass::Business,
            Self::CircuitOpen | Self::BulkheadFull | Self::Vetoed => FailureClass::Rejected,
        }
    }

    const fn describe(self) -> &'static str {
        match self {
            Self::Connect => "could not connect to the payment gateway (nothing was sent)",
            Self::ConnectTimeout => {
                "connecting to the payment gateway timed out (nothing was sent)"
            }
            Self::PreCreateRefusal => {
                "the payment gateway refused the request before creating anything"
            }
            Self::Timeout => "no answer from the payment gateway in time (it may have acted)",
            Self::ConnectionLost => {
                "the connection to the payment gateway was lost after sending (it may have acted)"
            }
            Self::ServerError => "the payment gateway failed (it may have acted)",
            Self::Malformed => "the payment gateway's answer could not be read (it may have acted)",
            Self::UnknownStatus => "the payment gateway answered with an unknown status",
            Self::IdempotencyInProgress => {
                "the payment gateway is still processing a request with this idempotency key"
            }
            Self::Throttled => "the payment gateway asked to slow down (nothing was created)",
            Self::Client => "the payment gateway rejected the request",
            Self::Invalid => "the request was not sent",
            Self::CircuitOpen => "the payment gateway circuit breaker is open (nothing was sent)",
            Self::BulkheadFull => "too many payment gateway calls in flight (nothing was sent)",
            Self::Vetoed => "the attempt was vetoed before sending (nothing was sent)",
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failed gateway call, sorted into one [`FailureClass`].
///
/// Decide with the predicates ([`is_not_reached`](Self::is_not_reached),
/// [`is_uncertain`](Self::is_uncertain), ...), never by matching the `Display` text, which is
/// for people and may change. Nothing in an error (text, `Debug`, source) contains a full card
/// number: gateway messages are kept with every card-number-like digit run masked, and JSON
/// parser messages that could quote a value are dropped.
pub struct PgError {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    path: Option<CallPath>,
    status: Option<u16>,
    retry_after: Option<Duration>,
    error_code: Option<String>,
    message: Option<String>,
    detail: Option<String>,
    attempts: Option<u32>,
    transaction_key: Option<TransactionKey>,
    source: Option<BoxError>,
}

impl PgError {
    pub(crate) fn new(kind: Kind) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                path: None,
                status: None,
                retry_after: None,
                error_code: None,
                message: None,
                detail: None,
                attempts: None,
                transaction_key: None,
                source: None,
            }),
        }
    }

    /// An error of `class` with a description, for other implementations of
    /// [`PaymentGateway`](crate::PaymentGateway) and for test doubles. The description must
    /// not contain card data.
    pub fn synthetic(class: FailureClass, description: impl Into<String>) -> Self {
        let kind = match class {
            FailureClass::NotReached => Kind::Connect,
            FailureClass::Uncertain => Kind::ServerError,
            FailureClass::Business => Kind::Invalid,
            FailureClass::Throttled => Kind::Throttled,
            FailureClass::Rejected => Kind::CircuitOpen,
        };
        Self::new(kind).with_detail(crate::model::redact_pans(&description.into()))
    }

    /// The same error with a wait hint (e.g. a throttled test double's `Retry-After`).
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.inner.retry_after = retry_after;
        self
    }

    pub(crate) fn with_path(mut self, path: CallPath) -> Self {
        self.inner.path = Some(path);
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.inner.status = Some(status);
        self
    }

    /// Keeps the gateway's error code and message (already redacted by the caller).
    pub(crate) fn with_gateway_text(
        mut self,
        code: Option<String>,
        message: Option<String>,
    ) -> Self {
        self.inner.error_code = code;
        self.inner.message = message;
        self
    }

    /// A short, value-free explanation added to the text (e.g. which field was missing).
    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.inner.detail = Some(detail.into());
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: Option<u32>) -> Self {
        if attempts.is_some() {
            self.inner.attempts = attempts;
        }
        self
    }

    pub(crate) fn with_transaction_key(mut self, key: TransactionKey) -> Self {
        self.inner.transaction_key = Some(key);
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// The failure class.
    pub fn class(&self) -> FailureClass {
        self.inner.kind.class()
    }

    /// The gateway provably did nothing for this request (connection failed, or its canonical
    /// pre-create refusal): safe to retry, safe to fail locally.
    pub fn is_not_reached(&self) -> bool {
        self.class() == FailureClass::NotReached
    }

    /// The gateway may have acted: never retry blindly, reconcile by order id.
    pub fn is_uncertain(&self) -> bool {
        self.class() == FailureClass::Uncertain
    }

    /// The request itself was refused (validation, unknown transaction, unsupported): do not
    /// retry; it says nothing about the gateway's health.
    pub fn is_business(&self) -> bool {
        self.class() == FailureClass::Business
    }

    /// The gateway asked to slow down; nothing was created. See
    /// [`retry_after`](Self::retry_after).
    pub fn is_throttled(&self) -> bool {
        self.class() == FailureClass::Throttled
    }

    /// This client's circuit breaker or bulkhead refused the call; nothing was sent.
    pub fn is_rejected(&self) -> bool {
        self.class() == FailureClass::Rejected
    }

    /// The circuit breaker of the path was open.
    pub fn is_circuit_open(&self) -> bool {
        self.inner.kind == Kind::CircuitOpen
    }

    /// A connect or read timeout fired.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::ConnectTimeout | Kind::Timeout)
    }

    /// Nothing can have been created for this request: any class but
    /// [`Uncertain`](FailureClass::Uncertain). For a charge, this error means "not charged".
    pub fn is_definitely_not_created(&self) -> bool {
        !self.is_uncertain()
    }

    /// How long to wait before trying again, if known: the gateway's `Retry-After` for a
    /// throttled call, the rest of the breaker's open wait for a rejected one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The HTTP status the gateway answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The gateway's own error code (`meta.errorCode`), if it sent one.
    pub fn error_code(&self) -> Option<&str> {
        self.inner.error_code.as_deref()
    }

    /// The gateway's own message (`meta.message`), card numbers masked, if it sent one.
    pub fn gateway_message(&self) -> Option<&str> {
        self.inner.message.as_deref()
    }

    /// How many attempts the path's retry made before giving up with this error.
    pub fn attempts(&self) -> Option<u32> {
        self.inner.attempts
    }

    /// The path the call went through.
    pub fn path(&self) -> Option<CallPath> {
        self.inner.path
    }

    /// The transaction the gateway named in an answer this client could not fully use (an
    /// unknown status, say): reconcile it by this key.
    pub fn transaction_key(&self) -> Option<&TransactionKey> {
        self.inner.transaction_key.as_ref()
    }

    /// Reads a policy's flat error back into a `PgError`: the operation's own error keeps its
    /// class (with the attempt count added); a rejection by the breaker or bulkhead becomes
    /// [`FailureClass::Rejected`]; a timeout of a policy layer is uncertain (the attempt it
    /// cut may have been sent).
    pub(crate) fn from_policy(error: seawall::Error<Self>, path: CallPath) -> Self {
        let attempts = error.attempts();
        if error.is_inner() {
            if let Some(inner) = error.into_inner() {
                return inner.with_attempts(attempts).with_path(path);
            }
            return Self::new(Kind::ServerError).with_path(path);
        }
        let kind = if error.is_circuit_open() {
            Kind::CircuitOpen
        } else if error.is_bulkhead_full() || error.is_rate_limited() || error.is_limit_exceeded() {
            Kind::BulkheadFull
        } else {
            Kind::Timeout
        };
        let hint = error.retry_after();
        let text = error.to_string();
        Self::new(kind)
            .with_path(path)
            .with_retry_after(hint)
            .with_attempts(attempts)
            .with_detail(text)
    }
}

impl fmt::Debug for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let mut out = f.debug_struct("PgError");
        out.field("class", &self.class()).field("kind", &inner.kind);
        if let Some(path) = inner.path {
            out.field("path", &path);
        }
        if let Some(status) = inner.status {
            out.field("status", &status);
        }
        if let Some(code) = &inner.error_code {
            out.field("error_code", code);
        }
        if let Some(message) = &inner.message {
            out.field("message", message);
        }
        if let Some(detail) = &inner.detail {
            out.field("detail", detail);
        }
        if let Some(after) = inner.retry_after {
            out.field("retry_after", &after);
        }
        if let Some(attempts) = inner.attempts {
            out.field("attempts", &attempts);
        }
        if let Some(key) = &inner.transaction_key {
            out.field("transaction_key", key);
        }
        if let Some(source) = &inner.source {
            out.field("source", &format_args!("{source}"));
        }
        out.finish()
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.write_str(inner.kind.describe())?;
        if let Some(status) = inner.status {
            write!(f, " (HTTP {status}")?;
            if let Some(code) = &inner.error_code {
                write!(f, ", {code}")?;
            }
            f.write_str(")")?;
        }
        if let Some(message) = &inner.message {
            write!(f, ": {message}")?;
        }
        if let Some(detail) = &inner.detail {
            write!(f, " [{detail}]")?;
        }
        if let Some(attempts) = inner.attempts.filter(|n| *n > 1) {
            write!(f, " after {attempts} attempts")?;
        }
        Ok(())
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_exactly_one_class() {
        let err = PgError::new(Kind::PreCreateRefusal).with_status(500);
        assert!(err.is_not_reached() && !err.is_uncertain() && !err.is_business());
        let err = PgError::new(Kind::Timeout);
        assert!(err.is_uncertain() && err.is_timeout() && !err.is_definitely_not_created());
        let err = PgError::new(Kind::Client).with_status(400);
        assert!(err.is_business() && err.is_definitely_not_created());
        let err = PgError::new(Kind::Throttled).with_retry_after(Some(Duration::from_secs(2)));
        assert!(err.is_throttled());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
        assert!(PgError::new(Kind::CircuitOpen).is_rejected());
    }

    #[test]
    fn the_text_names_status_code_and_gateway_message() {
        let err = PgError::new(Kind::Client)
            .with_status(400)
            .with_gateway_text(Some("Bad Request".into()), Some("bad order id".into()))
            .with_attempts(Some(1));
        assert_eq!(
            err.to_string(),
            "the payment gateway rejected the request (HTTP 400, Bad Request): bad order id"
        );
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.error_code(), Some("Bad Request"));
    }

    #[test]
    fn policy_rejections_become_rejected_errors() {
        let open = crate::policy::tests::rejection_of_an_open_breaker(Duration::from_secs(3));
        let err = PgError::from_policy(open, CallPath::Charge);
        assert!(err.is_rejected() && err.is_circuit_open());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(err.path(), Some(CallPath::Charge));
    }
}

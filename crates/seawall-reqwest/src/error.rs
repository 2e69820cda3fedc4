//! What the middleware adds to `reqwest_middleware::Error`: the policy's own failures, and the
//! failure status a policy sees in place of a response.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::{Method, Response, StatusCode};
use seawall::GaveUp;

use crate::classify::retry_after_at;

/// Why the policy, not the request, ended a call: a timeout, an open breaker, a full bulkhead,
/// a rate limiter, or a request that must not be sent twice.
///
/// The middleware returns it inside [`reqwest_middleware::Error::Middleware`]; find it with
/// [`PolicyError::of`]. When the request itself failed (connection refused, a reqwest
/// timeout, another middleware's error), the caller gets that error unchanged instead.
///
/// ```
/// # async fn example(client: reqwest_middleware::ClientWithMiddleware) {
/// use seawall_reqwest::PolicyError;
///
/// match client.get("http://catalog.internal/items").send().await {
///     Ok(response) => println!("{}", response.status()),
///     Err(err) => match PolicyError::of(&err) {
///         Some(rejected) if rejected.is_circuit_open() => {
///             println!("catalog is down, try again in {:?}", rejected.retry_after());
///         }
///         Some(other) => println!("stopped by the policy: {other}"),
///         None => println!("the request failed: {err}"),
///     },
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct PolicyError {
    repr: Repr,
}

#[derive(Debug)]
enum Repr {
    /// A seawall decorator's own error (never the operation's: that is returned as it is).
    Policy(seawall::Error<NoInner>),
    /// The policy asked for a second attempt of a request that is sent at most once.
    NotResent { method: Method, first: FirstAttempt },
}

/// What became of the only attempt of a request that is sent at most once, when the policy
/// asked for another.
#[derive(Debug)]
pub(crate) enum FirstAttempt {
    /// Its future was dropped before it finished: inside a policy only a timeout does that.
    TimedOut,
    /// It failed with this error (kept as text: the policy consumed the error itself).
    Failed(String),
    /// It produced a response that the policy's retry rejected (`retry_on_result`).
    Rejected,
}

/// Stands in for the operation's error in a [`seawall::Error`] that is known not to hold one.
#[derive(Debug)]
struct NoInner;

impl fmt::Display for NoInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request failed")
    }
}

impl std::error::Error for NoInner {}

impl PolicyError {
    /// Splits a policy's error: the request's own error is given back as it is; anything
    /// else (a timeout, a rejection) becomes a `PolicyError`.
    pub(crate) fn split(
        error: seawall::Error<reqwest_middleware::Error>,
    ) -> Result<Self, reqwest_middleware::Error> {
        let mut inner = None;
        let policy = error.map_inner(|error| {
            inner = Some(error);
            NoInner
        });
        match inner {
            Some(error) => Err(error),
            None => Ok(Self {
                repr: Repr::Policy(policy),
            }),
        }
    }

    pub(crate) fn not_resent(method: Method, first: FirstAttempt) -> Self {
        Self {
            repr: Repr::NotResent { method, first },
        }
    }

    /// The `PolicyError` inside `error`, if the middleware put one there.
    pub fn of(error: &reqwest_middleware::Error) -> Option<&Self> {
        match error {
            reqwest_middleware::Error::Middleware(error) => error.downcast_ref(),
            reqwest_middleware::Error::Reqwest(_) => None,
        }
    }

    fn policy(&self) -> Option<&seawall::Error<NoInner>> {
        match &self.repr {
            Repr::Policy(error) => Some(error),
            Repr::NotResent { .. } => None,
        }
    }

    /// A timeout of the policy elapsed (for a retry that gave up: the last attempt timed out;
    /// for a request not resent: its only attempt timed out).
    pub fn is_timeout(&self) -> bool {
        match &self.repr {
            Repr::Policy(error) => error.is_timeout(),
            Repr::NotResent { first, .. } => matches!(first, FirstAttempt::TimedOut),
        }
    }

    /// A circuit breaker rejected the request: it never reached the server.
    pub fn is_circuit_open(&self) -> bool {
        self.policy().is_some_and(seawall::Error::is_circuit_open)
    }

    /// A bulkhead was full: the request never reached the server.
    pub fn is_bulkhead_full(&self) -> bool {
        self.policy().is_some_and(seawall::Error::is_bulkhead_full)
    }

    /// A rate limiter rejected the request: it never reached the server.
    pub fn is_rate_limited(&self) -> bool {
        self.policy().is_some_and(seawall::Error::is_rate_limited)
    }

    /// The request may be sent only once (a non-idempotent method, or a streamed body), its
    /// first attempt failed and the policy asked for another, which the middleware did not
    /// send. The request may or may not have had its effect on the server.
    pub fn is_not_resent(&self) -> bool {
        matches!(self.repr, Repr::NotResent { .. })
    }

    /// How long the rejecting breaker or rate limiter suggests waiting before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        self.policy().and_then(seawall::Error::retry_after)
    }

    /// The name of the breaker, bulkhead or rate limiter that rejected the request.
    pub fn rejected_by(&self) -> Option<&str> {
        self.policy().and_then(seawall::Error::rejected_by)
    }

    /// How many attempts a retry made before this error, if the error passed through one.
    pub fn attempts(&self) -> Option<u32> {
        self.policy().and_then(seawall::Error::attempts)
    }

    /// Why a retry gave up, if one did.
    pub fn gave_up(&self) -> Option<GaveUp> {
        self.policy().and_then(seawall::Error::gave_up)
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Policy(error) => fmt::Display::fmt(error, f),
            Repr::NotResent { method, first } => {
                write!(f, "{method} request not sent again: ")?;
                match first {
                    FirstAttempt::TimedOut => f.write_str("its attempt timed out"),
                    FirstAttempt::Failed(error) => write!(f, "its attempt failed: {error}"),
                    FirstAttempt::Rejected => {
                        f.write_str("the policy's retry rejected its response")
                    }
                }
            }
        }
    }
}

impl std::error::Error for PolicyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.policy().and_then(std::error::Error::source)
    }
}

/// A response with a failure status, as the policy sees it: an error, so that a breaker counts
/// it, a retry can retry it and its `Retry-After` can set the wait.
///
/// The caller never gets one: when the policy ends on a `StatusFailure`, the middleware returns
/// the response itself. Classifiers read it with [`StatusFailure::of`] (or the helpers
/// [`is_retryable`](crate::is_retryable), [`retry_after_hint`](crate::retry_after_hint) and
/// [`is_throttled`](crate::is_throttled)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusFailure {
    status: StatusCode,
    retry_after: Option<Duration>,
}

impl StatusFailure {
    pub(crate) fn new(response: &Response) -> Self {
        Self {
            status: response.status(),
            retry_after: retry_after_at(response.headers(), SystemTime::now()),
        }
    }

    /// The `StatusFailure` inside `error`, if it is one.
    pub fn of(error: &reqwest_middleware::Error) -> Option<&Self> {
        match error {
            reqwest_middleware::Error::Middleware(error) => error.downcast_ref(),
            reqwest_middleware::Error::Reqwest(_) => None,
        }
    }

    /// The response's status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The wait the response's `Retry-After` header asked for (see
    /// [`retry_after`](crate::retry_after)).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for StatusFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the server answered {}", self.status)
    }
}

impl std::error::Error for StatusFailure {}

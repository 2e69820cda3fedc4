//! The failure status a policy sees in place of a response.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::{Response, StatusCode};

use crate::classify::retry_after_at;

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
    #[allow(dead_code, reason = "the middleware, next, creates them")]
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

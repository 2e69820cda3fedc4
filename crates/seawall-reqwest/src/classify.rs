//! Which answers and errors count as failures, which are worth another attempt, and how long
//! the server asks to wait.
//!
//! For reqwest a `503` is `Ok(response)`. The middleware hands responses with a failure status
//! to the policy as an error (a [`StatusFailure`]) so that a breaker counts them, a retry
//! retries them and a `Retry-After` header can set the wait: seawall's retry reads wait hints
//! from errors only. The caller still gets the response.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};

use crate::error::StatusFailure;

/// Whether the server failed to answer the request: any `5xx`.
///
/// ```
/// let response = reqwest::Response::from(
///     http::Response::builder().status(503).body("").unwrap(),
/// );
/// assert!(seawall_reqwest::is_server_error(&response));
/// ```
pub fn is_server_error(response: &Response) -> bool {
    response.status().is_server_error()
}

/// The statuses the middleware reports to its policy as failures by default: every `5xx`,
/// `408 Request Timeout` and `429 Too Many Requests`. Other statuses (`404`, `409`, a declined
/// `402`) are answers, not failures of the dependency.
pub fn is_failure_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// Whether another attempt may get a different answer: `408`, `429`, `500`, `502`, `503` and
/// `504`. A `501 Not Implemented` or `505` will not change on retry.
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::REQUEST_TIMEOUT
            | StatusCode::TOO_MANY_REQUESTS
            | StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

/// How long the response's `Retry-After` header asks to wait: delta-seconds (`120`) or an
/// HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`, measured from the system clock; a date in the
/// past means no wait). `None` without the header or when it cannot be read.
///
/// The value is the server's, unbounded: bound the wait with the retry's
/// [`max_elapsed`](seawall::retry::RetryBuilder::max_elapsed), which gives up instead of
/// waiting past it.
pub fn retry_after(response: &Response) -> Option<Duration> {
    retry_after_at(response.headers(), SystemTime::now())
}

/// Whether a failed attempt is worth another: a [`StatusFailure`] with a retryable status
/// ([`is_retryable_status`]), or a request error that failed to connect, timed out or failed
/// while sending. Errors of other middlewares and request-building errors are not retried.
///
/// For a retry's [`retry_if`](seawall::Retry::retry_if). seawall's own timeouts and rejections
/// never reach it: the retry decides on those itself (it retries a timeout and never an open
/// breaker).
pub fn is_retryable(error: &reqwest_middleware::Error) -> bool {
    match error {
        reqwest_middleware::Error::Reqwest(error) => {
            error.is_connect() || error.is_timeout() || error.is_request()
        }
        reqwest_middleware::Error::Middleware(_) => {
            StatusFailure::of(error).is_some_and(|failure| is_retryable_status(failure.status()))
        }
    }
}

/// The wait a [`StatusFailure`] asks for (its response's `Retry-After`), for a retry's
/// [`retry_after_hint`](seawall::Retry::retry_after_hint).
pub fn retry_after_hint(error: &reqwest_middleware::Error) -> Option<Duration> {
    StatusFailure::of(error).and_then(StatusFailure::retry_after)
}

/// Whether the server answered `429 Too Many Requests`: it is throttling this client, which
/// says nothing about its health, so a breaker should usually ignore it
/// ([`ignore_if`](seawall::CircuitBreaker::ignore_if)).
pub fn is_throttled(error: &reqwest_middleware::Error) -> bool {
    StatusFailure::of(error)
        .is_some_and(|failure| failure.status() == StatusCode::TOO_MANY_REQUESTS)
}

/// [`retry_after`] with the current time given, so it can be tested.
pub(crate) fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse().ok().map(Duration::from_secs);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry_after: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static(retry_after));
        headers
    }

    /// 2015-10-21 07:28:00 UTC, the HTTP-date used below.
    fn date() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480)
    }

    #[test]
    fn delta_seconds_are_read_as_a_wait() {
        assert_eq!(
            retry_after_at(&headers("120"), date()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after_at(&headers(" 0 "), date()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn an_http_date_is_read_as_the_time_until_it() {
        let now = date() - Duration::from_secs(90);
        assert_eq!(
            retry_after_at(&headers("Wed, 21 Oct 2015 07:28:00 GMT"), now),
            Some(Duration::from_secs(90))
        );
    }

    #[test]
    fn an_http_date_in_the_past_means_no_wait() {
        let now = date() + Duration::from_secs(5);
        assert_eq!(
            retry_after_at(&headers("Wed, 21 Oct 2015 07:28:00 GMT"), now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn unreadable_or_missing_values_give_no_wait_hint() {
        for value in ["", "-5", "1.5", "soon", "99999999999999999999999"] {
            assert_eq!(retry_after_at(&headers(value), date()), None, "{value:?}");
        }
        assert_eq!(retry_after_at(&HeaderMap::new(), date()), None);
    }

    #[test]
    fn only_statuses_that_may_change_are_retryable() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(
                is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [200, 400, 402, 404, 409, 501, 505] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn failures_are_server_errors_timeouts_and_throttling() {
        for code in [408, 429, 500, 501, 503, 599] {
            assert!(
                is_failure_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [200, 302, 400, 402, 404, 409] {
            assert!(
                !is_failure_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }
}

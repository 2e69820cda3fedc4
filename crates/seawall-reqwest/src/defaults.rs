//! A sensible starting stack for one HTTP dependency.

use std::time::Duration;

use seawall::circuit_breaker::SlidingWindow;
use seawall::{Backoff, CircuitBreaker, ConfigError, Policy, Retry, Timeout};

use crate::SeawallMiddleware;
use crate::classify::{is_retryable, is_throttled, retry_after_hint};

impl SeawallMiddleware {
    /// A middleware with a starting stack for one dependency, every instance named `name`:
    ///
    /// | decorator | settings |
    /// |---|---|
    /// | retry | 3 attempts, 100 ms × 2ⁿ up to 2 s with full jitter; retries [`is_retryable`] errors and seawall timeouts; waits what `Retry-After` asks, but gives up rather than start a retry more than 10 s after the first attempt |
    /// | circuit breaker | opens at 50 % failures over the last 20 calls (at least 10), stays open 30 s; failure statuses and timeouts count, `429` is ignored ([`is_throttled`]) |
    /// | timeout | 10 s per attempt |
    ///
    /// Requests sent at most once (non-idempotent methods, streamed bodies) run through the
    /// same breaker and timeout without the retry.
    ///
    /// It is a starting point: build your own stack the same way when the numbers do not fit
    /// (the crate's README shows how).
    ///
    /// # Errors
    ///
    /// None with these settings; the builders seawall uses validate their input.
    pub fn with_default_policy(name: &str) -> Result<Self, ConfigError> {
        let retry = Retry::builder()
            .name(name)
            .max_attempts(3)
            .backoff(
                Backoff::exponential(Duration::from_millis(100))
                    .max(Duration::from_secs(2))
                    .full_jitter(),
            )
            .max_elapsed(Duration::from_secs(10))
            .build()?
            .retry_if(is_retryable)
            .retry_after_hint(retry_after_hint);
        let breaker = CircuitBreaker::builder()
            .name(name)
            .sliding_window(SlidingWindow::count(20))
            .minimum_number_of_calls(10)
            .failure_rate_threshold(50.0)
            .wait_in_open(Duration::from_secs(30))
            .build()?
            .ignore_if(is_throttled);
        let attempt_timeout = Timeout::builder(Duration::from_secs(10)).name(name).build();
        let single_attempt = Policy::builder()
            .circuit_breaker(breaker.clone())
            .timeout(attempt_timeout.clone())
            .build();
        let policy = Policy::builder()
            .retry(retry)
            .circuit_breaker(breaker)
            .timeout(attempt_timeout)
            .build();
        Ok(Self::new(policy).single_attempt_policy(single_attempt))
    }
}

//! The one place the client's seawall decorators are built and classified.
//!
//! Each path is `retry → circuit breaker → bulkhead → HTTP attempt`, outermost first: every
//! attempt is recorded by the breaker, a bulkhead permit is held only while an attempt runs
//! (never during a backoff), and an open breaker is not retried. Per-attempt timeouts are the
//! HTTP client's (connect and read), because only the transport can tell a connect failure
//! (nothing sent) from a read timeout (maybe acted on); the retry's `max_elapsed` bounds the
//! whole call without ever cutting an attempt in flight.
//!
//! Decorators built elsewhere (the registry's presets, when it lands) plug in through
//! [`PgClientBuilder`](crate::PgClientBuilder): the client only attaches its classifiers.

use std::time::Duration;

use seawall::circuit_breaker::{CircuitBreaker, CircuitClassifier, Outcome};
use seawall::clock::ManualClock;
use seawall::policy::{Identity, Layered};
use seawall::retry::RetryClassifier;
use seawall::{Backoff, Bulkhead, Clock, ConfigError, Error, Policy, Retry};

use crate::config::{BreakerConfig, BulkheadConfig, JitterConfig, PathConfig, RetryConfig};
use crate::error::{CallPath, PgError};

/// The decorator stack of one path: retry, then circuit breaker, then bulkhead.
pub type PathStack<R> =
    Layered<Retry<R>, Layered<CircuitBreaker<SystemFailures>, Layered<Bulkhead, Identity>>>;

/// The breaker classifier of both paths: successes count as successes; business errors are
/// ignored (a declined or invalid request says nothing about the gateway's health); every
/// other failure of the gateway — not reached, uncertain, throttled — counts as a failure; a
/// rejection by another decorator is ignored.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemFailures;

impl<T> CircuitClassifier<T, PgError> for SystemFailures {
    fn classify(&self, result: &Result<T, Error<PgError>>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(error) => match error.inner() {
                Some(inner) if inner.is_business() || inner.is_rejected() => Outcome::Ignored,
                Some(_) => Outcome::Failure,
                None if error.is_timeout() => Outcome::Failure,
                None => Outcome::Ignored,
            },
        }
    }
}

/// The charge path's retry rule: retry only what provably created nothing — *not reached*,
/// and *throttled* after the gateway's `Retry-After` (when it is no longer than
/// `max_retry_after`). Never an uncertain failure, a business error or a rejection.
#[derive(Clone, Copy, Debug)]
pub struct ChargeRetry {
    max_retry_after: Duration,
}

/// The query path's retry rule: retry every system failure (*not reached*, *uncertain*,
/// *throttled* within `max_retry_after`) — a read can be repeated safely — but not a business
/// answer or a rejection.
#[derive(Clone, Copy, Debug)]
pub struct QueryRetry {
    max_retry_after: Duration,
}

fn throttle_within(error: &PgError, cap: Duration) -> bool {
    error.retry_after().is_none_or(|hint| hint <= cap)
}

fn throttle_hint(error: &Error<PgError>) -> Option<Duration> {
    error
        .inner()
        .filter(|e| e.is_throttled())
        .and_then(PgError::retry_after)
}

impl<T> RetryClassifier<T, PgError> for ChargeRetry {
    fn should_retry(&self, error: &Error<PgError>) -> bool {
        error.inner().is_some_and(|e| {
            e.is_not_reached() || (e.is_throttled() && throttle_within(e, self.max_retry_after))
        })
    }

    fn retry_after(&self, error: &Error<PgError>) -> Option<Duration> {
        throttle_hint(error)
    }
}

impl<T> RetryClassifier<T, PgError> for QueryRetry {
    fn should_retry(&self, error: &Error<PgError>) -> bool {
        error.inner().is_some_and(|e| {
            e.is_not_reached()
                || e.is_uncertain()
                || (e.is_throttled() && throttle_within(e, self.max_retry_after))
        })
    }

    fn retry_after(&self, error: &Error<PgError>) -> Option<Duration> {
        throttle_hint(error)
    }
}

/// Decorators supplied from outside instead of being built from the config (a preset from a
/// registry, or one shared with another component). The client attaches its own classifiers.
#[derive(Debug, Default)]
pub(crate) struct Supplied {
    pub(crate) retry: Option<Retry>,
    pub(crate) circuit_breaker: Option<CircuitBreaker>,
    pub(crate) bulkhead: Option<Bulkhead>,
}

/// One path's policy and handles on its decorators (clones share their state).
#[derive(Clone, Debug)]
pub(crate) struct PathPolicy<R> {
    pub(crate) policy: Policy<PathStack<R>>,
}

impl<R> PathPolicy<R> {
    pub(crate) fn retry(&self) -> &Retry<R> {
        self.policy.stack().decorator()
    }

    pub(crate) fn circuit_breaker(&self) -> &CircuitBreaker<SystemFailures> {
        self.policy.stack().inner().decorator()
    }

    pub(crate) fn bulkhead(&self) -> &Bulkhead {
        self.policy.stack().inner().inner().decorator()
    }
}

fn backoff(config: &RetryConfig) -> Backoff {
    let backoff = Backoff::exponential(config.initial_backoff)
        .multiplier(config.multiplier)
        .max(config.max_backoff);
    match config.jitter {
        JitterConfig::None => backoff,
        JitterConfig::Full => backoff.full_jitter(),
        JitterConfig::Equal => backoff.equal_jitter(),
    }
}

fn build_retry(name: &str, config: &RetryConfig, clock: &Clock) -> Result<Retry, ConfigError> {
    let mut builder = Retry::builder()
        .name(name)
        .max_attempts(config.max_attempts)
        .backoff(backoff(config))
        .clock(clock.clone());
    if let Some(max) = config.max_elapsed {
        builder = builder.max_elapsed(max);
    }
    if let Some(seed) = config.seed {
        builder = builder.seed(seed);
    }
    builder.build().map_err(|e| e.under("retry"))
}

fn build_breaker(
    name: &str,
    config: &BreakerConfig,
    clock: &Clock,
) -> Result<CircuitBreaker, ConfigError> {
    let config = config
        .to_seawall()
        .map_err(|e| e.under("circuit_breaker"))?;
    CircuitBreaker::builder()
        .name(name)
        .config(config)
        .clock(clock.clone())
        .build()
        .map_err(|e| e.under("circuit_breaker"))
}

fn build_bulkhead(
    name: &str,
    config: &BulkheadConfig,
    clock: &Clock,
) -> Result<Bulkhead, ConfigError> {
    Bulkhead::builder()
        .name(name)
        .max_concurrent_calls(config.max_concurrent_calls)
        .max_wait(config.max_wait)
        .clock(clock.clone())
        .build()
        .map_err(|e| e.under("bulkhead"))
}

fn check_timeouts(config: &PathConfig) -> Result<(), ConfigError> {
    if config.connect_timeout.is_zero() {
        return Err(ConfigError::new("connect_timeout", "must be > 0"));
    }
    if config.read_timeout.is_zero() {
        return Err(ConfigError::new("read_timeout", "must be > 0"));
    }
    if config.retry.max_retry_after.is_zero() {
        return Err(ConfigError::new("retry.max_retry_after", "must be > 0"));
    }
    Ok(())
}

/// Checks one path's values by building its decorators on a throwaway clock.
pub(crate) fn validate_path(config: &PathConfig) -> Result<(), ConfigError> {
    check_timeouts(config)?;
    let clock = Clock::from(ManualClock::new());
    build_retry("validate", &config.retry, &clock)?;
    build_breaker("validate", &config.circuit_breaker, &clock)?;
    build_bulkhead("validate", &config.bulkhead, &clock)?;
    Ok(())
}

/// Builds one path's policy: supplied decorators where given, the config's elsewhere, named
/// `{client}-{path}`.
fn build_path<R>(
    client: &str,
    path: CallPath,
    config: &PathConfig,
    clock: &Clock,
    classifier: R,
    supplied: Supplied,
) -> Result<PathPolicy<R>, ConfigError> {
    check_timeouts(config)?;
    let name = format!("{client}-{}", path.as_str());
    let retry = match supplied.retry {
        Some(retry) => retry,
        None => build_retry(&name, &config.retry, clock)?,
    };
    let breaker = match supplied.circuit_breaker {
        Some(breaker) => breaker,
        None => build_breaker(&name, &config.circuit_breaker, clock)?,
    };
    let bulkhead = match supplied.bulkhead {
        Some(bulkhead) => bulkhead,
        None => build_bulkhead(&name, &config.bulkhead, clock)?,
    };
    let policy = Policy::builder()
        .retry(retry.with_classifier(classifier))
        .circuit_breaker(breaker.with_classifier(SystemFailures))
        .bulkhead(bulkhead)
        .build();
    Ok(PathPolicy { policy })
}

/// The charge path: only provably-harmless failures are retried.
pub(crate) fn charge_policy(
    client: &str,
    config: &PathConfig,
    clock: &Clock,
    supplied: Supplied,
) -> Result<PathPolicy<ChargeRetry>, ConfigError> {
    let classifier = ChargeRetry {
        max_retry_after: config.retry.max_retry_after,
    };
    build_path(
        client,
        CallPath::Charge,
        config,
        clock,
        classifier,
        supplied,
    )
    .map_err(|e| e.under("charge"))
}

/// The query path: every system failure is retried with backoff and jitter.
pub(crate) fn query_policy(
    client: &str,
    config: &PathConfig,
    clock: &Clock,
    supplied: Supplied,
) -> Result<PathPolicy<QueryRetry>, ConfigError> {
    let classifier = QueryRetry {
        max_retry_after: config.retry.max_retry_after,
    };
    build_path(client, CallPath::Query, config, clock, classifier, supplied)
        .map_err(|e| e.under("query"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    fn wrap(error: PgError) -> Error<PgError> {
        Error::from_inner(error)
    }

    #[test]
    fn the_charge_path_retries_only_what_created_nothing() {
        let rule = ChargeRetry {
            max_retry_after: Duration::from_secs(10),
        };
        let retries = |e: PgError| RetryClassifier::<(), PgError>::should_retry(&rule, &wrap(e));
        assert!(retries(PgError::new(Kind::Connect)));
        assert!(retries(PgError::new(Kind::PreCreateRefusal)));
        assert!(retries(
            PgError::new(Kind::Throttled).with_retry_after(Some(Duration::from_secs(1)))
        ));
        assert!(!retries(
            PgError::new(Kind::Throttled).with_retry_after(Some(Duration::from_secs(60)))
        ));
        assert!(!retries(PgError::new(Kind::Timeout)));
        assert!(!retries(PgError::new(Kind::ServerError)));
        assert!(!retries(PgError::new(Kind::Client)));
        let open: Error<PgError> = seawall::circuit_breaker::CircuitOpen::new(
            "x".into(),
            seawall::circuit_breaker::State::Open,
            None,
        )
        .into();
        assert!(!RetryClassifier::<(), PgError>::should_retry(&rule, &open));
    }

    #[test]
    fn the_query_path_retries_system_failures_but_not_business_answers() {
        let rule = QueryRetry {
            max_retry_after: Duration::from_secs(10),
        };
        let retries = |e: PgError| RetryClassifier::<(), PgError>::should_retry(&rule, &wrap(e));
        assert!(retries(PgError::new(Kind::Timeout)));
        assert!(retries(PgError::new(Kind::Malformed)));
        assert!(retries(PgError::new(Kind::Connect)));
        assert!(!retries(PgError::new(Kind::Client)));
    }

    #[test]
    fn the_breaker_ignores_business_errors_and_counts_system_failures() {
        let classify = |r: Result<(), Error<PgError>>| SystemFailures.classify(&r);
        assert_eq!(classify(Ok(())), Outcome::Success);
        assert_eq!(
            classify(Err(wrap(PgError::new(Kind::Client)))),
            Outcome::Ignored
        );
        for kind in [
            Kind::Connect,
            Kind::Timeout,
            Kind::ServerError,
            Kind::Throttled,
            Kind::PreCreateRefusal,
        ] {
            assert_eq!(
                classify(Err(wrap(PgError::new(kind)))),
                Outcome::Failure,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn the_throttle_hint_replaces_the_backoff() {
        let rule = ChargeRetry {
            max_retry_after: Duration::from_secs(10),
        };
        let error =
            wrap(PgError::new(Kind::Throttled).with_retry_after(Some(Duration::from_secs(2))));
        assert_eq!(
            RetryClassifier::<(), PgError>::retry_after(&rule, &error),
            Some(Duration::from_secs(2))
        );
    }
}

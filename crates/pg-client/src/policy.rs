//! The one place the client's seawall decorators are built and classified.
//!
//! Each path is `retry → circuit breaker → bulkhead → adaptive limit → HTTP attempt`,
//! outermost first (the adaptive limit only when configured; otherwise it never limits; the
//! query path adds a hedge between the retry and the breaker, off unless configured): every
//! attempt is recorded by the breaker, a bulkhead permit is held only while an attempt runs
//! (never during a backoff), and an open breaker is not retried. Per-attempt timeouts are the
//! HTTP client's (connect and read), because only the transport can tell a connect failure
//! (nothing sent) from a read timeout (maybe acted on); the retry's `max_elapsed` bounds the
//! whole call without ever cutting an attempt in flight.
//!
//! Decorators built elsewhere (the registry's presets, when it lands) plug in through
//! [`PgClientBuilder`](crate::PgClientBuilder): the client only attaches its classifiers.

use std::time::Duration;

use seawall::adaptive::AdaptiveLimiterConfig;
use seawall::circuit_breaker::{CircuitBreaker, CircuitClassifier, Outcome};
use seawall::hedge::HedgeClassifier;
use seawall::keyed::{Keyed, KeyedConfig};
use seawall::policy::{Identity, Layered};
use seawall::registry::CircuitBreakers;
use seawall::retry::RetryClassifier;
use seawall::{AdaptiveLimiter, Bulkhead, Clock, ConfigError, Error, Hedge, Policy, Retry};

use crate::config::{PathConfig, PgClientConfig};
use crate::error::{CallPath, PgError};
use crate::model::CardType;

/// The decorator stack of one path: retry, then circuit breaker, then bulkhead, then the
/// adaptive limit.
pub type PathStack<R> = Layered<
    Retry<R>,
    Layered<
        CircuitBreaker<SystemFailures>,
        Layered<Bulkhead, Layered<AdaptiveLimiter<LimitSignals>, Identity>>,
    >,
>;

/// The query path's stack: retry, then hedge, then circuit breaker, then bulkhead, then the
/// adaptive limit. Each hedged
/// attempt is recorded by the breaker and holds a bulkhead permit like any attempt; the charge
/// path has no hedge at all (its type, [`PathStack`], has no place for one).
pub type QueryStack = Layered<
    Retry<QueryRetry>,
    Layered<
        Hedge<QueryAnswers>,
        Layered<
            CircuitBreaker<SystemFailures>,
            Layered<Bulkhead, Layered<AdaptiveLimiter<LimitSignals>, Identity>>,
        >,
    >,
>;

/// What ends a hedged query: an answer, including a business one (a 4xx is as definite as a
/// 200, and no hedge would answer differently). A system failure or a rejection is not an
/// answer: the other attempts go on, and it is returned only if none of them answers.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueryAnswers;

impl<T> HedgeClassifier<T, PgError> for QueryAnswers {
    fn accepts(&self, outcome: &Result<T, Error<PgError>>) -> bool {
        match outcome {
            Ok(_) => true,
            Err(error) => error.inner().is_some_and(PgError::is_business),
        }
    }
}

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

/// The adaptive limiters' classifier: a drop is a sign of overload — a timeout (the answer
/// came too late, or never), an uncertain failure, or the gateway asking to slow down. An
/// answer, even a business refusal, is a sample of its round-trip time. A failure that says
/// nothing about load — the gateway not reached (its canonical pre-create 500s, a refused
/// connection) or a rejection by another decorator — is no sample: counted as drops, the
/// canonical PG's 40 % of pre-create 500s would hold any loss-based limit near its floor.
#[derive(Clone, Copy, Debug, Default)]
pub struct LimitSignals;

impl<T> CircuitClassifier<T, PgError> for LimitSignals {
    fn classify(&self, result: &Result<T, Error<PgError>>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(error) => match error.inner() {
                Some(inner) if inner.is_business() => Outcome::Success,
                Some(inner)
                    if inner.is_uncertain() || inner.is_throttled() || inner.is_timeout() =>
                {
                    Outcome::Failure
                }
                Some(_) => Outcome::Ignored,
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

/// One path's policy, and handles on its decorators (clones share their state), so that the
/// client reaches its breaker without digging through the stack.
#[derive(Clone, Debug)]
pub(crate) struct PathPolicy<R, S = PathStack<R>> {
    pub(crate) policy: Policy<S>,
    pub(crate) retry: Retry<R>,
    pub(crate) circuit_breaker: CircuitBreaker<SystemFailures>,
    pub(crate) bulkhead: Bulkhead,
    pub(crate) adaptive_limiter: AdaptiveLimiter<LimitSignals>,
}

/// The adaptive limiter of a path: as configured, or one that never limits (its limit fixed
/// at the most permits a bulkhead can have).
fn adaptive_limiter(
    name: &str,
    config: Option<AdaptiveLimiterConfig>,
    clock: &Clock,
) -> Result<AdaptiveLimiter<LimitSignals>, ConfigError> {
    let config = config.unwrap_or_else(|| {
        let mut unlimited = AdaptiveLimiterConfig::default();
        unlimited.initial_limit = Bulkhead::MAX_CONCURRENT_CALLS;
        unlimited.min_limit = Bulkhead::MAX_CONCURRENT_CALLS;
        unlimited.max_limit = Bulkhead::MAX_CONCURRENT_CALLS;
        unlimited
    });
    Ok(AdaptiveLimiter::builder()
        .name(name)
        .config(config)
        .clock(clock.clone())
        .build()
        .map_err(|e| e.under("adaptive_limiter"))?
        .with_classifier(LimitSignals))
}

impl<R: Clone> PathPolicy<R> {
    /// The same path with `breaker` in place of the path's own: the retry (and its budget)
    /// the bulkhead and the adaptive limit are shared. Used for the charge path's breakers by card type.
    pub(crate) fn with_breaker(&self, breaker: CircuitBreaker) -> Policy<PathStack<R>> {
        Policy::builder()
            .retry(self.retry.clone())
            .circuit_breaker(breaker.with_classifier(SystemFailures))
            .bulkhead(self.bulkhead.clone())
            .adaptive_limiter(self.adaptive_limiter.clone())
            .build()
    }
}

impl<R> PathPolicy<R, QueryStack> {
    /// The query path's hedge.
    pub(crate) fn hedge(&self) -> &Hedge<QueryAnswers> {
        self.policy.stack().inner().decorator()
    }
}

/// One path's decorators, with the client's classifiers attached, before they are stacked.
struct Parts<R> {
    retry: Retry<R>,
    circuit_breaker: CircuitBreaker<SystemFailures>,
    bulkhead: Bulkhead,
    adaptive_limiter: AdaptiveLimiter<LimitSignals>,
}

/// Where the charge path's breakers by card type come from.
#[derive(Debug)]
pub(crate) enum CardTypeBreakers {
    /// Built from `charge.circuit_breaker` as the template.
    FromConfig(KeyedConfig),
    /// Supplied (for example from a registry with [`Registry::keyed`](seawall::registry::Registry::keyed)).
    Supplied(Keyed<CircuitBreakers, CardType>),
}

/// The charge breakers by card type, built or supplied; `None` when not asked for.
pub(crate) fn card_type_breakers(
    config: &PgClientConfig,
    clock: &Clock,
    choice: Option<CardTypeBreakers>,
) -> Result<Option<Keyed<CircuitBreakers, CardType>>, ConfigError> {
    match choice {
        None => Ok(None),
        Some(CardTypeBreakers::Supplied(keyed)) => Ok(Some(keyed)),
        Some(CardTypeBreakers::FromConfig(settings)) => {
            Keyed::builder(config.charge.circuit_breaker.clone())
                .name(&format!("{}-{}", config.name, CallPath::Charge.as_str()))
                .config(settings)
                .clock(clock.clone())
                .build()
                .map(Some)
                .map_err(|e| e.under("charge.circuit_breaker"))
        }
    }
}

/// Builds one path's policy: supplied decorators where given, the config's elsewhere, named
/// `{client}-{path}`.
fn build_path<R: Clone>(
    client: &str,
    path: CallPath,
    config: &PathConfig,
    clock: &Clock,
    classifier: R,
    supplied: Supplied,
) -> Result<Parts<R>, ConfigError> {
    config.validate()?;
    let name = format!("{client}-{}", path.as_str());
    let retry = match supplied.retry {
        Some(retry) => retry,
        None => Retry::builder()
            .name(name.as_str())
            .config(config.retry.clone())
            .clock(clock.clone())
            .build()
            .map_err(|e| e.under("retry"))?,
    };
    let circuit_breaker = match supplied.circuit_breaker {
        Some(breaker) => breaker,
        None => CircuitBreaker::builder()
            .name(name.as_str())
            .config(config.circuit_breaker.clone())
            .clock(clock.clone())
            .build()
            .map_err(|e| e.under("circuit_breaker"))?,
    };
    let bulkhead = match supplied.bulkhead {
        Some(bulkhead) => bulkhead,
        None => Bulkhead::builder()
            .name(name.as_str())
            .config(config.bulkhead)
            .clock(clock.clone())
            .build()
            .map_err(|e| e.under("bulkhead"))?,
    };
    Ok(Parts {
        retry: retry.with_classifier(classifier),
        circuit_breaker: circuit_breaker.with_classifier(SystemFailures),
        bulkhead,
        adaptive_limiter: adaptive_limiter(&name, config.adaptive_limiter, clock)?,
    })
}

/// The charge path: only provably-harmless failures are retried.
pub(crate) fn charge_policy(
    client: &str,
    config: &PathConfig,
    clock: &Clock,
    supplied: Supplied,
) -> Result<PathPolicy<ChargeRetry>, ConfigError> {
    let classifier = ChargeRetry {
        max_retry_after: config.max_retry_after,
    };
    let parts = build_path(
        client,
        CallPath::Charge,
        config,
        clock,
        classifier,
        supplied,
    )
    .map_err(|e| e.under("charge"))?;
    let policy = Policy::builder()
        .retry(parts.retry.clone())
        .circuit_breaker(parts.circuit_breaker.clone())
        .bulkhead(parts.bulkhead.clone())
        .adaptive_limiter(parts.adaptive_limiter.clone())
        .build();
    Ok(PathPolicy {
        policy,
        retry: parts.retry,
        circuit_breaker: parts.circuit_breaker,
        bulkhead: parts.bulkhead,
        adaptive_limiter: parts.adaptive_limiter,
    })
}

/// The query path: every system failure is retried with backoff and jitter.
pub(crate) fn query_policy(
    client: &str,
    config: &PathConfig,
    clock: &Clock,
    supplied: Supplied,
) -> Result<PathPolicy<QueryRetry, QueryStack>, ConfigError> {
    let classifier = QueryRetry {
        max_retry_after: config.max_retry_after,
    };
    let parts = build_path(client, CallPath::Query, config, clock, classifier, supplied)
        .map_err(|e| e.under("query"))?;
    let hedge = Hedge::builder()
        .name(format!("{client}-{}", CallPath::Query.as_str()))
        .config(config.hedge.clone())
        .clock(clock.clone())
        .build()
        .map_err(|e| e.under("hedge").under("query"))?
        .with_classifier(QueryAnswers);
    let policy = Policy::builder()
        .retry(parts.retry.clone())
        .hedge(hedge)
        .circuit_breaker(parts.circuit_breaker.clone())
        .bulkhead(parts.bulkhead.clone())
        .adaptive_limiter(parts.adaptive_limiter.clone())
        .build();
    Ok(PathPolicy {
        policy,
        retry: parts.retry,
        circuit_breaker: parts.circuit_breaker,
        bulkhead: parts.bulkhead,
        adaptive_limiter: parts.adaptive_limiter,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::error::Kind;

    /// What a call gets from a breaker open for `wait` more: the real rejection.
    pub(crate) fn rejection_of_an_open_breaker(wait: Duration) -> Error<PgError> {
        let clock = seawall::clock::ManualClock::new();
        let breaker = CircuitBreaker::builder()
            .name("pg-charge")
            .clock(clock.into())
            .build()
            .unwrap();
        breaker.open_for(wait).unwrap();
        let call = std::pin::pin!(breaker.call(|| async { Ok::<(), PgError>(()) }));
        match call.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(result) => result.unwrap_err(),
            Poll::Pending => panic!("a rejection is immediate"),
        }
    }

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
        let open = rejection_of_an_open_breaker(Duration::from_secs(1));
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
    fn the_limiter_drops_on_timeouts_and_throttles_only() {
        let classify = |r: Result<(), Error<PgError>>| LimitSignals.classify(&r);
        let of = |kind| classify(Err(wrap(PgError::new(kind))));
        assert_eq!(classify(Ok(())), Outcome::Success);
        assert_eq!(of(Kind::Client), Outcome::Success, "an answer is a sample");
        assert_eq!(of(Kind::Timeout), Outcome::Failure);
        assert_eq!(of(Kind::Throttled), Outcome::Failure);
        assert_eq!(of(Kind::PreCreateRefusal), Outcome::Ignored);
        assert_eq!(of(Kind::Connect), Outcome::Ignored);
    }

    #[test]
    fn a_hedged_query_ends_on_an_answer_not_on_a_system_failure() {
        let accepts = |r: Result<(), Error<PgError>>| QueryAnswers.accepts(&r);
        assert!(accepts(Ok(())));
        assert!(accepts(Err(wrap(PgError::new(Kind::Client)))));
        assert!(!accepts(Err(wrap(PgError::new(Kind::Timeout)))));
        assert!(!accepts(Err(wrap(PgError::new(Kind::ServerError)))));
        assert!(!accepts(Err(rejection_of_an_open_breaker(
            Duration::from_secs(1)
        ))));
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

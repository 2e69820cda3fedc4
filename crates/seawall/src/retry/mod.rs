//! Retry: run a failed operation again, with backoff, jitter, limits and a shared budget.
//!
//! A [`Retry`] makes at most `max_attempts` attempts (counting the first). Between attempts it
//! waits for its [`Backoff`] — or for the wait the error itself asks for (an HTTP `Retry-After`,
//! a rate limiter's next slot), which overrides the backoff. It stops early when
//!
//! - the error is not retryable (by default everything is retried except a circuit breaker's
//!   rejection: retrying into an open breaker only burns attempts);
//! - the next wait would pass the maximum elapsed time;
//! - the shared [`RetryBudget`] is drained (gRPC retry throttling), so that in an outage a fleet
//!   of callers does not multiply the load on the failing service.
//!
//! When it gives up on an error, that last error is returned — its kind unchanged, so
//! `is_timeout()` still answers for a timed-out last attempt — annotated with the attempt count
//! and the reason ([`Error::gave_up`](crate::Error::gave_up)). Results can be retried too
//! ([`Retry::retry_on_result`]); when every attempt's result was rejected, the last result is
//! returned, or [`ErrorKind::RetriesExhausted`] with
//! `fail_after_max_attempts`.
//!
//! The operation can read the attempt number ([`Policy::call_with_attempt`](crate::Policy::call_with_attempt)),
//! e.g. to log it; an idempotency key must stay the *same* across attempts.

mod backoff;
mod budget;
mod builder;
mod classify;
mod config;
#[cfg(feature = "serde")]
mod document;
pub mod future;
#[cfg(feature = "tower")]
mod layer;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use std::time::Duration;

use crate::Error;
use crate::clock::{Clock, duration_to_nanos};
use crate::config::ConfigError;
use crate::error::{ErrorKind, GaveUp, RetriesExhausted};
use crate::event::{Event, Listeners};
use crate::policy::impl_decorator;

pub use self::backoff::{Backoff, Jitter, Progression, RandomSource, SplitMix64};
pub use self::budget::{RetryBudget, RetryBudgetConfig};
pub use self::builder::RetryBuilder;
pub use self::classify::{
    DefaultClassifier, RetryAfterHint, RetryClassifier, RetryErrorIf, RetryIf, RetryOnResult,
};
pub use self::config::{MAX_ATTEMPTS, RetryConfig};
pub use self::future::RetryFuture;
#[cfg(feature = "tower")]
pub use self::layer::{RetryLayer, RetryResponseFuture, RetryService};

/// Runs an operation again after a retryable failure.
///
/// # Examples
///
/// Retry a payment-status query on 5xx and timeouts, three attempts, 100 ms × 2ⁿ with full
/// jitter, honouring the server's `Retry-After`:
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use seawall::{Backoff, Retry};
///
/// #[derive(Debug)]
/// enum QueryError { Server(u16, Option<Duration>), NotFound }
///
/// impl std::fmt::Display for QueryError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         write!(f, "{self:?}")
///     }
/// }
///
/// impl std::error::Error for QueryError {}
///
/// let retry = Retry::builder()
///     .name("pg-query")
///     .max_attempts(3)
///     .backoff(Backoff::exponential(Duration::from_millis(100)).full_jitter())
///     .build()?
///     .retry_if(|e: &QueryError| matches!(e, QueryError::Server(500.., _)))
///     .retry_after_hint(|e: &QueryError| match e {
///         QueryError::Server(_, hint) => *hint,
///         QueryError::NotFound => None,
///     });
///
/// let mut calls = 0;
/// let status = retry
///     .call(|| {
///         calls += 1;
///         let attempt = calls;
///         async move {
///             if attempt < 3 { Err(QueryError::Server(503, None)) } else { Ok("SUCCESS") }
///         }
///     })
///     .await?;
/// assert_eq!((status, calls), ("SUCCESS", 3));
/// # Ok(())
/// # }
/// ```
///
/// # Clone
///
/// Clones share their configuration, budget, random source, listeners and metrics.
pub struct Retry<C = DefaultClassifier> {
    shared: Arc<Shared>,
    classifier: C,
}

impl<C: Clone> Clone for Retry<C> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

pub(crate) struct Shared {
    name: Arc<str>,
    /// Read on the failure path only; swapped whole by a reconfiguration.
    config: ArcSwap<RetryConfig>,
    /// A mirror of `config.max_elapsed` in nanoseconds (0 = none), read when a call starts.
    max_elapsed_nanos: AtomicU64,
    /// A mirror of `config.max_attempts`, read by the tower layer on every call.
    max_attempts: AtomicU32,
    budget: Option<RetryBudget>,
    random: Arc<dyn RandomSource>,
    clock: Clock,
    listeners: Listeners<RetryEvent>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    /// Whether first-attempt successes are counted: that is the happy path, and counting costs
    /// an atomic add per call, so it is on only while someone reads the count (metrics).
    tracking: AtomicBool,
    successful_without_retry: AtomicU64,
    successful_with_retry: AtomicU64,
    failed_without_retry: AtomicU64,
    failed_with_retry: AtomicU64,
}

/// What follows a finished attempt.
pub(crate) enum Next<T, E> {
    /// The call is over: return this.
    Return(Result<T, Error<E>>),
    /// Wait this long, then make the next attempt.
    RetryAfter(Duration),
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Wait this long, then make the next attempt.
    RetryAfter(Duration),
    /// Stop and return the last outcome.
    GiveUp(GaveUp),
}

impl Shared {
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn max_elapsed(&self) -> Option<Duration> {
        match self.max_elapsed_nanos.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    fn fail_after_max_attempts(&self) -> bool {
        self.config.load().fail_after_max_attempts
    }

    fn set_config(&self, config: RetryConfig) {
        self.max_attempts
            .store(config.max_attempts, Ordering::Relaxed);
        self.max_elapsed_nanos.store(
            config
                .max_elapsed
                .map_or(0, |d| duration_to_nanos(d).max(1)),
            Ordering::Relaxed,
        );
        self.config.store(Arc::new(config));
    }

    /// Judges the outcome of attempt `attempt` (1-based): return it, or retry after a wait.
    /// Books metrics, the budget and events. `previous` is the last wait (updated when
    /// retrying); `elapsed` is the time since the first attempt started, read only when a
    /// maximum elapsed time is set. Shared by the native future and the tower service.
    pub(crate) fn judge<T, E, C: RetryClassifier<T, E>>(
        &self,
        classifier: &C,
        attempt: u32,
        output: Result<T, Error<E>>,
        previous: &mut Option<Duration>,
        elapsed: impl FnOnce() -> Duration,
    ) -> Next<T, E> {
        let (hint, cause) = match &output {
            Ok(value) if classifier.should_retry_result(value) => {
                (classifier.retry_after_result(value), None)
            }
            Ok(_) => {
                self.finished(attempt, true);
                return Next::Return(output);
            }
            Err(error) if classifier.should_retry(error) => {
                (classifier.retry_after(error), Some(error.kind()))
            }
            Err(_) => {
                self.finished(attempt, false);
                return Next::Return(output.map_err(|error| error.with_retry_trace(attempt, None)));
            }
        };
        match self.after_failure(attempt, hint, previous, elapsed) {
            Verdict::RetryAfter(delay) => {
                self.emit(|name| RetryEvent::Retrying {
                    name,
                    attempt,
                    delay,
                    cause,
                });
                Next::RetryAfter(delay)
            }
            Verdict::GiveUp(reason) => {
                self.emit(|name| RetryEvent::GaveUp {
                    name,
                    attempts: attempt,
                    reason,
                    cause,
                });
                self.finished(attempt, false);
                let outcome = match output {
                    Ok(_) if self.fail_after_max_attempts() => Err(Error::from(
                        RetriesExhausted::new(self.name.clone(), attempt),
                    )),
                    other => other,
                };
                Next::Return(outcome.map_err(|error| error.with_retry_trace(attempt, Some(reason))))
            }
        }
    }

    /// Decides what follows a retryable failure of attempt `attempt` (1-based). `hint` is the
    /// error's own wait request.
    fn after_failure(
        &self,
        attempt: u32,
        hint: Option<Duration>,
        previous: &mut Option<Duration>,
        elapsed: impl FnOnce() -> Duration,
    ) -> Verdict {
        if let Some(budget) = &self.budget {
            budget.record_failure();
        }
        let config = self.config.load();
        if attempt >= config.max_attempts {
            return Verdict::GiveUp(GaveUp::MaxAttempts);
        }
        if self.budget.as_ref().is_some_and(|b| !b.allows_retry()) {
            return Verdict::GiveUp(GaveUp::BudgetExhausted);
        }
        let delay = hint.unwrap_or_else(|| config.backoff.delay(attempt, *previous, &*self.random));
        if let Some(max) = self.max_elapsed()
            && elapsed().saturating_add(delay) > max
        {
            return Verdict::GiveUp(GaveUp::MaxElapsed);
        }
        *previous = Some(delay);
        Verdict::RetryAfter(delay)
    }

    /// Books a first-attempt success: the happy path, kept as cheap as possible.
    #[inline]
    pub(crate) fn succeeded_at_once(&self) {
        if let Some(budget) = &self.budget {
            budget.record_success();
        }
        if self.counters.tracking.load(Ordering::Relaxed) {
            self.counters
                .successful_without_retry
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn track(&self) {
        self.counters.tracking.store(true, Ordering::Relaxed);
    }

    /// Books a finished call.
    fn finished(&self, attempts: u32, success: bool) {
        if success && attempts == 1 {
            self.succeeded_at_once();
            return;
        }
        if success && let Some(budget) = &self.budget {
            budget.record_success();
        }
        let counter = match (success, attempts > 1) {
            (true, false) => &self.counters.successful_without_retry,
            (true, true) => &self.counters.successful_with_retry,
            (false, false) => &self.counters.failed_without_retry,
            (false, true) => &self.counters.failed_with_retry,
        };
        // Relaxed: counters are read as statistics only.
        counter.fetch_add(1, Ordering::Relaxed);
        if attempts > 1 && success {
            self.listeners.emit(|| RetryEvent::Succeeded {
                name: self.name.clone(),
                attempts,
            });
        }
    }

    fn emit(&self, make: impl FnOnce(Arc<str>) -> RetryEvent) {
        self.listeners.emit(|| make(self.name.clone()));
    }
}

// ===== impl Retry =====

impl Retry {
    /// Starts configuring a retry.
    pub fn builder() -> RetryBuilder {
        RetryBuilder::default()
    }
}

impl<C> Retry<C> {
    /// The instance name (used in events and metrics).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current configuration.
    pub fn config(&self) -> RetryConfig {
        (**self.shared.config.load()).clone()
    }

    /// The maximum number of attempts, counting the first.
    pub fn max_attempts(&self) -> u32 {
        self.shared.max_attempts.load(Ordering::Relaxed)
    }

    /// The backoff.
    pub fn backoff(&self) -> Backoff {
        self.shared.config.load().backoff
    }

    /// The maximum time from the first attempt's start to the start of the last retry.
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.shared.max_elapsed()
    }

    /// The shared budget, if any.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.shared.budget.as_ref()
    }

    /// Replaces the whole configuration at once for calls deciding from now on (shared by
    /// clones). Calls in progress keep their attempt count.
    ///
    /// # Errors
    ///
    /// An invalid configuration; nothing changes.
    /// A change of `budget` is refused: the budget is state, so replace the retry instead.
    pub fn reconfigure(&self, config: RetryConfig) -> Result<(), ConfigError> {
        config.validate()?;
        if config.budget != self.shared.config.load().budget {
            return Err(ConfigError::new(
                "budget",
                "cannot change while the retry runs (the budget is state); replace the instance",
            ));
        }
        self.shared.set_config(config);
        Ok(())
    }

    /// Changes the maximum attempts (shared by clones).
    ///
    /// # Errors
    ///
    /// Zero attempts.
    pub fn set_max_attempts(&self, max_attempts: u32) -> Result<(), ConfigError> {
        let mut config = self.config();
        config.max_attempts = max_attempts;
        self.reconfigure(config)
    }

    /// Changes the backoff (shared by clones).
    ///
    /// # Errors
    ///
    /// As [`Backoff::validate`].
    pub fn set_backoff(&self, backoff: Backoff) -> Result<(), ConfigError> {
        let mut config = self.config();
        config.backoff = backoff;
        self.reconfigure(config)
    }

    /// Changes the maximum elapsed time (shared by clones).
    ///
    /// # Errors
    ///
    /// A zero maximum.
    pub fn set_max_elapsed(&self, max_elapsed: Option<Duration>) -> Result<(), ConfigError> {
        let mut config = self.config();
        config.max_elapsed = max_elapsed;
        self.reconfigure(config)
    }

    /// Also count first-attempt successes (`successful_without_retry`). Off by default: it is
    /// the happy path and costs an atomic add per call; binding the retry to `metrics` output
    /// turns it on. The other three counts are always kept.
    pub fn count_first_attempt_successes(&self) {
        self.shared.counters.tracking.store(true, Ordering::Relaxed);
    }

    /// Counts of finished calls (first-attempt successes only while
    /// [`count_first_attempt_successes`](Self::count_first_attempt_successes) is on).
    pub fn metrics(&self) -> RetryMetrics {
        let counters = &self.shared.counters;
        RetryMetrics {
            successful_without_retry: counters.successful_without_retry.load(Ordering::Relaxed),
            successful_with_retry: counters.successful_with_retry.load(Ordering::Relaxed),
            failed_without_retry: counters.failed_without_retry.load(Ordering::Relaxed),
            failed_with_retry: counters.failed_with_retry.load(Ordering::Relaxed),
        }
    }

    /// Registers a listener for this retry's events (shared by clones).
    pub fn on_event(&self, listener: impl Fn(&RetryEvent) + Send + Sync + 'static) {
        self.shared.listeners.add(listener);
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn classifier(&self) -> &C {
        &self.classifier
    }
}

impl<C: fmt::Debug> fmt::Debug for Retry<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("name", &self.shared.name)
            .field("max_attempts", &self.max_attempts())
            .field("backoff", &self.backoff())
            .field("max_elapsed", &self.max_elapsed())
            .field("budget", &self.shared.budget)
            .field("classifier", &self.classifier)
            .finish()
    }
}

impl_decorator!(impl[C] Retry<C> where [C: RetryClassifier<T, E>]
    => RetryFuture<'p, C, S, S::Future<'p, O>> = |this, inner| RetryFuture::new(this, inner));

/// Counts of calls a [`Retry`] finished (Resilience4j's four retry counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryMetrics {
    /// Succeeded on the first attempt.
    pub successful_without_retry: u64,
    /// Succeeded after at least one retry.
    pub successful_with_retry: u64,
    /// Failed after a single attempt (not retryable, or retrying was refused).
    pub failed_without_retry: u64,
    /// Failed after at least one retry.
    pub failed_with_retry: u64,
}

/// What a [`Retry`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryEvent {
    /// Attempt `attempt` failed and the next starts after `delay`.
    Retrying {
        /// The retry's name.
        name: Arc<str>,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// The wait before the next attempt.
        delay: Duration,
        /// What failed (`None`: a result was rejected).
        cause: Option<ErrorKind>,
    },
    /// The retry stopped retrying and returned the last outcome.
    GaveUp {
        /// The retry's name.
        name: Arc<str>,
        /// Attempts made.
        attempts: u32,
        /// Why it stopped.
        reason: GaveUp,
        /// What failed last (`None`: a result was rejected).
        cause: Option<ErrorKind>,
    },
    /// A call succeeded after at least one retry.
    Succeeded {
        /// The retry's name.
        name: Arc<str>,
        /// Attempts made.
        attempts: u32,
    },
}

impl Event for RetryEvent {
    #[cfg(feature = "tracing")]
    fn trace(&self) {
        match self {
            Self::Retrying {
                name,
                attempt,
                delay,
                cause,
            } => tracing::debug!(
                target: "seawall::retry",
                name = %name, attempt, delay = ?delay, cause = ?cause,
                "attempt failed, retrying"
            ),
            Self::GaveUp {
                name,
                attempts,
                reason,
                cause,
            } => tracing::warn!(
                target: "seawall::retry",
                name = %name, attempts, reason = reason.as_str(), cause = ?cause,
                "giving up"
            ),
            Self::Succeeded { name, attempts } => tracing::debug!(
                target: "seawall::retry",
                name = %name, attempts,
                "succeeded after retrying"
            ),
        }
    }
}

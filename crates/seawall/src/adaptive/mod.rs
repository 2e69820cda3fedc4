//! Adaptive concurrency limit: a bulkhead whose size follows the dependency, as in Netflix's
//! concurrency-limits.
//!
//! A fixed bulkhead has to be sized by guessing, and the guess is wrong exactly when the
//! dependency slows down. An [`AdaptiveLimiter`] measures every call instead — its round-trip
//! time from permit to completion, and whether it was a *drop* (a timeout or an error, as its
//! classifier says) — and moves the limit with one of three algorithms
//! ([`LimitAlgorithm`]): loss-based AIMD, or delay-based Vegas and Gradient2, which shrink
//! the limit as soon as calls start queueing at the dependency, before anything times out.
//!
//! Admission is the bulkhead's (its permits are reused): a call runs if fewer than `limit`
//! calls are in flight, otherwise it waits up to `max_wait` in a first-come, first-served line
//! (default zero: rejected at once) and then fails with
//! [`ErrorKind::LimitExceeded`](crate::ErrorKind::LimitExceeded) without running. A cancelled
//! call gives its permit back and records nothing. The algorithms are pure functions of
//! `(state, sample)` in `algorithm.rs`; the limit changes under a short lock when a call
//! completes, never on the admission path.

mod algorithm;
mod config;
pub mod error;
pub mod future;
#[cfg(feature = "tower")]
mod layer;

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use self::algorithm::{Engine, Window};
use crate::bulkhead::permits::Permits;
use crate::circuit_breaker::{CircuitClassifier, ClassifyWith, DefaultClassifier, Outcome};
use crate::clock::{Clock, Instant, duration_to_nanos};
use crate::config::ConfigError;
use crate::event::{Event, Listeners};
use crate::policy::impl_decorator;

pub use self::config::{AdaptiveLimiterConfig, LimitAlgorithm};
pub use self::error::LimitExceeded;
pub use self::future::AdaptiveLimiterFuture;
#[cfg(feature = "tower")]
pub use self::layer::{
    AdaptiveLimiterLayer, AdaptiveLimiterResponseFuture, AdaptiveLimiterService,
};

/// Limits concurrent calls to a limit that adapts to the dependency's latency and drops.
///
/// Results are classified as for a circuit breaker ([`CircuitClassifier`]): a success is a
/// sample, a failure is a *drop* sample, an ignored result is no sample. The default counts
/// `Ok` as success, the operation's errors and timeouts as drops, and other decorators'
/// rejections not at all.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use seawall::{AdaptiveLimiter, Policy, Timeout};
/// use seawall::adaptive::{AdaptiveLimiterConfig, LimitAlgorithm};
///
/// let limiter = AdaptiveLimiter::builder()
///     .name("pg")
///     .config(AdaptiveLimiterConfig::new(LimitAlgorithm::Aimd))
///     .build()
///     .unwrap();
/// assert_eq!(limiter.limit(), 20);
///
/// // The per-attempt timeout inside the limiter: a timeout is a drop.
/// let policy = Policy::builder()
///     .adaptive_limiter(limiter.clone())
///     .timeout(Timeout::new(Duration::from_millis(10)))
///     .build();
/// let err = policy
///     .call(|| async {
///         std::future::pending::<()>().await;
///         Ok::<(), std::io::Error>(())
///     })
///     .await
///     .unwrap_err();
/// assert!(err.is_timeout());
/// assert_eq!(limiter.limit(), 18); // AIMD: 20 × 0.9
/// # }
/// ```
///
/// # Clone
///
/// Clones share the limit, permits and algorithm state; the classifier is cloned.
pub struct AdaptiveLimiter<C = DefaultClassifier> {
    shared: Arc<Shared>,
    classifier: C,
}

impl<C: Clone> Clone for AdaptiveLimiter<C> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

pub(crate) struct Shared {
    name: Arc<str>,
    /// Who a rejection names (built once: a rejection allocates nothing).
    origin: Arc<crate::error::Origin>,
    permits: Permits,
    /// The whole-permit limit currently applied to `permits`.
    limit: AtomicUsize,
    inflight: AtomicUsize,
    max_wait_nanos: AtomicU64,
    rejected: AtomicU64,
    clock: Clock,
    listeners: Listeners<AdaptiveLimiterEvent>,
    state: Mutex<State>,
}

struct State {
    config: AdaptiveLimiterConfig,
    engine: Engine,
    window: Window,
    /// The last limit reported in an event.
    reported: usize,
}

/// What a call holds while it runs: when it started and how many were in flight then.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket {
    start: Instant,
    inflight: usize,
}

impl Shared {
    pub(crate) fn permits(&self) -> &Permits {
        &self.permits
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn max_wait(&self) -> Duration {
        Duration::from_nanos(self.max_wait_nanos.load(Ordering::Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a call that holds a permit.
    #[inline]
    pub(crate) fn admit(&self) -> Ticket {
        let inflight = self.inflight.fetch_add(1, Ordering::Relaxed) + 1;
        Ticket {
            start: self.clock.now(),
            inflight,
        }
    }

    /// Ends a call: feeds the algorithm (unless the outcome is ignored), then gives the
    /// permit back.
    pub(crate) fn complete(&self, ticket: Ticket, outcome: Option<Outcome>) {
        match outcome {
            Some(Outcome::Success) => self.sample(ticket, false),
            Some(Outcome::Failure) => self.sample(ticket, true),
            Some(Outcome::Ignored) | None => {}
        }
        self.release();
    }

    #[inline]
    fn release(&self) {
        self.inflight.fetch_sub(1, Ordering::Relaxed);
        self.permits.give_back();
    }

    fn sample(&self, ticket: Ticket, dropped: bool) {
        let now = self.clock.now();
        let rtt = now.saturating_duration_since(ticket.start);
        let mut state = self.lock();
        let Some((rtt, inflight, dropped)) = state.window.add(rtt, ticket.inflight, dropped, now)
        else {
            return;
        };
        let limit = state.engine.on_sample(rtt, inflight, dropped, now);
        let min = state.config.min_limit;
        self.apply(&mut state, whole(limit, min));
    }

    /// Sets the whole-permit limit (under the state lock) and reports a significant change.
    fn apply(&self, state: &mut State, limit: usize) {
        let old = self.limit.swap(limit, Ordering::AcqRel);
        if old != limit {
            // Both fit in an i64 (validated ≤ 2⁶¹).
            self.permits.adjust(limit as i64 - old as i64);
        }
        if is_significant(state.reported, limit) {
            let from = std::mem::replace(&mut state.reported, limit);
            self.listeners.emit(|| AdaptiveLimiterEvent::LimitChanged {
                name: self.name.clone(),
                from,
                to: limit,
            });
        }
    }

    /// Counts and reports a rejection.
    pub(crate) fn rejected(&self) -> LimitExceeded {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.listeners.emit(|| AdaptiveLimiterEvent::Rejected {
            name: self.name.clone(),
        });
        LimitExceeded::new()
    }

    /// Counts and reports a rejection, as the error of a native call.
    pub(crate) fn rejected_call<E>(&self) -> crate::Error<E> {
        self.rejected();
        crate::Error::rejected(&self.origin, None)
    }
}

/// The whole-permit limit for an algorithm's real-valued one: rounded down, at least `min`.
fn whole(limit: f64, min: usize) -> usize {
    // A float-to-int `as` saturates; the engines clamp to [min, max] already.
    (limit.floor() as usize).max(min)
}

/// A change worth an event: at least 10 % of the last reported limit (and at least 1), so a
/// limit oscillating by one permit around its set point stays quiet.
fn is_significant(reported: usize, limit: usize) -> bool {
    limit.abs_diff(reported) >= (reported / 10).max(1)
}

// ===== impl AdaptiveLimiter =====

impl AdaptiveLimiter {
    /// An adaptive limiter with `algorithm`'s defaults.
    pub fn new(algorithm: LimitAlgorithm) -> Self {
        Self::from_config(
            "adaptive",
            AdaptiveLimiterConfig::new(algorithm),
            Clock::default(),
        )
    }

    /// Starts configuring an adaptive limiter (default: AIMD with Netflix's defaults).
    pub fn builder() -> AdaptiveLimiterBuilder {
        AdaptiveLimiterBuilder {
            name: Arc::from("adaptive"),
            config: AdaptiveLimiterConfig::default(),
            clock: None,
        }
    }

    /// Builds from a configuration already validated.
    fn from_config(name: impl Into<Arc<str>>, config: AdaptiveLimiterConfig, clock: Clock) -> Self {
        let initial = config.initial_limit;
        let name: Arc<str> = name.into();
        Self {
            shared: Arc::new(Shared {
                origin: crate::error::Origin::new(
                    crate::error::Marker::LimitExceeded,
                    Some(name.clone()),
                ),
                name,
                permits: Permits::new(initial),
                limit: AtomicUsize::new(initial),
                inflight: AtomicUsize::new(0),
                max_wait_nanos: AtomicU64::new(duration_to_nanos(config.max_wait)),
                rejected: AtomicU64::new(0),
                clock,
                listeners: Listeners::new(),
                state: Mutex::new(State {
                    engine: Engine::new(&config, initial as f64),
                    window: Window::new(&config),
                    config,
                    reported: initial,
                }),
            }),
            classifier: DefaultClassifier,
        }
    }
}

impl<C> AdaptiveLimiter<C> {
    /// The instance name (used in events and metrics).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current limit: how many calls may be in flight now.
    pub fn limit(&self) -> usize {
        self.shared.limit.load(Ordering::Acquire)
    }

    /// Calls in flight now (holding a permit).
    pub fn inflight(&self) -> usize {
        self.shared.inflight.load(Ordering::Relaxed)
    }

    /// Permits free right now.
    pub fn available_permits(&self) -> usize {
        self.shared.permits.available()
    }

    /// Calls rejected since the limiter was created.
    pub fn rejected_calls(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// The current configuration.
    pub fn config(&self) -> AdaptiveLimiterConfig {
        self.shared.lock().config
    }

    /// Applies a whole configuration live. The current limit is kept (clamped into the new
    /// `[min_limit, max_limit]`); the algorithm restarts from it with the new settings (a
    /// Vegas no-load RTT or a Gradient2 average is measured afresh). Calls in flight are
    /// never interrupted; `initial_limit` matters only to a new limiter.
    ///
    /// # Errors
    ///
    /// An invalid configuration; nothing changes.
    pub fn reconfigure(&self, config: AdaptiveLimiterConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let mut state = self.shared.lock();
        let limit = self.limit().clamp(config.min_limit, config.max_limit);
        state.engine = Engine::new(&config, limit as f64);
        state.window = Window::new(&config);
        state.config = config;
        self.shared
            .max_wait_nanos
            .store(duration_to_nanos(config.max_wait), Ordering::Relaxed);
        self.shared.apply(&mut state, limit);
        Ok(())
    }

    /// Registers a listener for this limiter's events (shared by clones).
    pub fn on_event(&self, listener: impl Fn(&AdaptiveLimiterEvent) + Send + Sync + 'static) {
        self.shared.listeners.add(listener);
    }

    /// Takes a permit if the limit allows, without waiting. Report the call's outcome on it;
    /// dropping it unreported records nothing.
    ///
    /// # Errors
    ///
    /// [`LimitExceeded`] when the limit is reached.
    pub fn try_acquire(&self) -> Result<LimitPermit<'_>, LimitExceeded> {
        if self.shared.permits.try_take() {
            Ok(LimitPermit::new(&self.shared))
        } else {
            Err(self.shared.rejected())
        }
    }

    /// Classifies results with `classify`: [`Outcome::Success`] is a sample,
    /// [`Outcome::Failure`] a drop, [`Outcome::Ignored`] nothing.
    pub fn classify<T, E, F>(self, classify: F) -> AdaptiveLimiter<ClassifyWith<F>>
    where
        F: Fn(&Result<T, crate::Error<E>>) -> Outcome,
    {
        AdaptiveLimiter {
            shared: self.shared,
            classifier: ClassifyWith::new(classify),
        }
    }

    /// Classifies results with `classifier` (any circuit-breaker classifier: its failures
    /// are drops).
    pub fn with_classifier<C2>(self, classifier: C2) -> AdaptiveLimiter<C2> {
        AdaptiveLimiter {
            shared: self.shared,
            classifier,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn classifier(&self) -> &C {
        &self.classifier
    }
}

impl<C> fmt::Debug for AdaptiveLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimiter")
            .field("name", &self.shared.name)
            .field("limit", &self.limit())
            .field("inflight", &self.inflight())
            .finish_non_exhaustive()
    }
}

impl_decorator!(impl[C] AdaptiveLimiter<C> where [C: CircuitClassifier<T, E>]
    => AdaptiveLimiterFuture<'p, C, S::Future<'p, O>>
    = |this, inner| AdaptiveLimiterFuture::new(this, inner.start()));

/// Configures an [`AdaptiveLimiter`].
#[derive(Debug)]
pub struct AdaptiveLimiterBuilder {
    name: Arc<str>,
    config: AdaptiveLimiterConfig,
    clock: Option<Clock>,
}

impl AdaptiveLimiterBuilder {
    /// The instance name (default `"adaptive"`).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The whole configuration (default: AIMD).
    pub fn config(mut self, config: AdaptiveLimiterConfig) -> Self {
        self.config = config;
        self
    }

    /// The algorithm, keeping the other settings.
    pub fn algorithm(mut self, algorithm: LimitAlgorithm) -> Self {
        self.config.algorithm = algorithm;
        self
    }

    /// How long a call may wait for a permit (default zero: reject at once).
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.config.max_wait = max_wait;
        self
    }

    /// The clock for RTTs and the maximum wait (default: tokio's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates and builds the limiter.
    ///
    /// # Errors
    ///
    /// As [`AdaptiveLimiterConfig::validate`].
    pub fn build(self) -> Result<AdaptiveLimiter, ConfigError> {
        self.config.validate()?;
        Ok(AdaptiveLimiter::from_config(
            self.name,
            self.config,
            self.clock.unwrap_or_default(),
        ))
    }
}

/// The right to run one call under an [`AdaptiveLimiter`], and the duty to say how it went.
/// It measures the call's RTT from its creation.
///
/// # Cancel safety
///
/// Dropping it without reporting gives the permit back and records nothing, exactly as when
/// a call's future is dropped.
#[must_use = "dropping a permit abandons the call: nothing is recorded"]
#[clippy::has_significant_drop]
pub struct LimitPermit<'a> {
    shared: &'a Shared,
    ticket: Option<Ticket>,
}

impl<'a> LimitPermit<'a> {
    pub(crate) fn new(shared: &'a Shared) -> Self {
        Self {
            ticket: Some(shared.admit()),
            shared,
        }
    }

    /// The call succeeded: its RTT is a sample.
    pub fn success(self) {
        self.finish(Outcome::Success);
    }

    /// The call was dropped (timed out, or the dependency said it is overloaded).
    pub fn dropped(self) {
        self.finish(Outcome::Failure);
    }

    /// Records an outcome decided by a classifier ([`Outcome::Failure`] is a drop).
    pub fn record_outcome(self, outcome: Outcome) {
        self.finish(outcome);
    }

    fn finish(mut self, outcome: Outcome) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.complete(ticket, Some(outcome));
        }
    }
}

impl Drop for LimitPermit<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.complete(ticket, None);
        }
    }
}

impl fmt::Debug for LimitPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitPermit")
            .field("limiter", &self.shared.name)
            .field("ticket", &self.ticket)
            .finish()
    }
}

/// What an [`AdaptiveLimiter`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdaptiveLimiterEvent {
    /// The limit moved by at least 10 % (and at least 1) since the last report.
    LimitChanged {
        /// The limiter's name.
        name: Arc<str>,
        /// The limit last reported.
        from: usize,
        /// The new limit.
        to: usize,
    },
    /// A call found the limit reached (within the maximum wait) and was rejected.
    Rejected {
        /// The limiter's name.
        name: Arc<str>,
    },
}

impl Event for AdaptiveLimiterEvent {
    #[cfg(feature = "tracing")]
    fn trace(&self) {
        match self {
            Self::LimitChanged { name, from, to } => {
                tracing::info!(target: "seawall::adaptive", name = %name, from, to, "concurrency limit changed");
            }
            Self::Rejected { name } => {
                tracing::debug!(target: "seawall::adaptive", name = %name, "concurrency limit reached, call rejected");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_significant_from_ten_percent_and_one_permit() {
        assert!(!is_significant(8, 8));
        assert!(is_significant(8, 9));
        assert!(!is_significant(100, 109));
        assert!(is_significant(100, 90));
    }

    #[test]
    fn whole_rounds_down_but_not_below_the_minimum() {
        assert_eq!(whole(8.9, 1), 8);
        assert_eq!(whole(0.5, 1), 1);
        assert_eq!(whole(f64::NAN, 2), 2);
    }
}

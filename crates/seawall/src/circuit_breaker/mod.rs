//! Circuit breaker: stop calling a dependency that is failing or slow, and let it recover.
//!
//! ```text
//!                  failure or slow-call rate ≥ threshold
//!        ┌────────┐  (after the minimum number of calls)  ┌──────┐
//!  ────▶ │ CLOSED │ ─────────────────────────────────────▶ │ OPEN │ ◀──────────┐
//!        └────────┘                                        └──────┘            │
//!            ▲                       first call strictly after the wait │      │ probes'
//!            │                         (or a timer, if automatic)       ▼      │ rates ≥
//!            │      probes' rates below thresholds            ┌───────────┐    │ threshold
//!            └─────────────────────────────────────────────── │ HALF_OPEN │ ───┘
//!                                                             └───────────┘
//!  manual: DISABLED (permit all, record nothing), METRICS_ONLY (record, announce, never
//!  block), FORCED_OPEN (reject all); transition_to_*, open_for(d), reset()
//! ```
//!
//! # Rules (Resilience4j's, exactly)
//!
//! - **Closed.** Every call's outcome goes into a sliding window: the last *n* calls
//!   ([`SlidingWindow::Count`]) or the last *d* of time in buckets ([`SlidingWindow::Time`]).
//!   Once the window holds the minimum number of calls (a count window clamps the minimum to
//!   its size), the failure rate and slow-call rate are computed after every call; a rate
//!   **at or above** its threshold opens the breaker. Below the minimum the rates are
//!   undefined (`None`, not −1).
//! - **Slow calls.** A call is slow when it takes **strictly longer** than the slow-call
//!   duration threshold.
//! - **Open.** Calls are rejected with [`ErrorKind::CircuitOpen`](crate::ErrorKind::CircuitOpen).
//!   The first permission request **strictly after** the wait moves to half-open and becomes a
//!   probe; with `automatic_half_open`, the move happens when the wait is over, without a
//!   call. The wait can grow with consecutive openings ([`OpenWait::Backoff`]).
//! - **Half-open.** At most `permitted_calls_in_half_open` probes run. After
//!   `min(minimum, permitted)` results, the probes' rates decide: reopen or close. An optional
//!   maximum wait ends a half-open state that never gets its results.
//! - **Time.** The moves that time alone decides (automatic half-open, the end of
//!   half-open's maximum wait) are made from the clock whenever the breaker is asked for a
//!   permit or for its state, so they happen with or without a runtime; where a tokio runtime
//!   is current, a timer also announces them on time.
//! - **Classification.** A classifier sees the whole result and says
//!   [`Outcome::Success`], [`Outcome::Failure`] or [`Outcome::Ignored`]; ignored calls are not
//!   counted and give back their half-open slot. By default `Ok` is a success, the operation's
//!   errors and timeouts are failures, and rejections by other decorators (a full bulkhead, a
//!   nested breaker, a rate limiter) are ignored: they say nothing about the dependency.
//!
//! # How slow calls are timed
//!
//! With a slow-call threshold every call is timed, and on the default clock (tokio's, so that
//! paused time applies in tests) a precise reading costs more than the rest of a closed
//! breaker's call. A call run as a future ([`CircuitBreaker::call`], a [`Policy`](crate::Policy),
//! the tower layer) is therefore timed lazily:
//!
//! - At its start the breaker reads only the process-wide coarse clock (the one behind
//!   [`Clock::coarse`](crate::Clock::coarse): one atomic load, refreshed every millisecond by
//!   a background thread, which the first such call starts).
//! - If the first poll finishes the call, its duration is the coarse clock's difference less
//!   one millisecond (its resolution), and tokio's clock is not read at all. That catches a
//!   call that blocks its thread for longer than the threshold (thresholds are meant to be far
//!   above a millisecond); a poll that merely straddles a tick counts as zero.
//! - If the first poll is pending, tokio's clock is read then and once more when the call
//!   finishes; the first poll's coarse duration (as above) is added. Under paused time no
//!   virtual time passes inside a poll, so this follows paused time exactly: a call that
//!   sleeps 101 ms of paused time with a 100 ms threshold is slow, one of 100 ms is not.
//! - Through the tower layer the call is timed from the `poll_ready` that took the permit, as
//!   before; a pending inner `poll_ready` counts as a pending first poll.
//!
//! A breaker on a [`ManualClock`](crate::clock::ManualClock) or an explicit coarse clock, and a
//! call through [`CircuitBreaker::try_acquire`], read the breaker's clock at the start and at
//! the end: a manual clock advanced inside a synchronous call is timed exactly.
//!
//! # Where seawall differs from Resilience4j, on purpose
//!
//! - **Stale results are not applied.** A result is recorded only in the state generation that
//!   admitted the call. Resilience4j applies it to whatever state is current, so a slow call
//!   admitted while closed can decide a half-open trial it never probed.
//! - **Cancellation is safe.** Dropping a call's future gives back its half-open slot and
//!   records nothing — the cure for the "stuck in half-open" complaint.
//! - **Rejections by other decorators are ignored by default**, not counted as failures.
//! - **Slow-call tracking can be turned off** (`slow_call_duration_threshold: None`) so a
//!   count-window breaker reads no clock at all on the happy path.
//! - OPEN and FORCED_OPEN show the metrics frozen at the moment they were entered.
//!
//! # Two ways to call
//!
//! - [`CircuitBreaker::call`] (and a [`Policy`](crate::Policy)) runs a future: permission,
//!   result and cancellation are handled for you.
//! - [`CircuitBreaker::try_acquire`] hands out a [`CallPermit`] for work that is not one future
//!   (a streamed body, a callback, a message consumer): report the outcome on it, or drop it to
//!   cancel. `call` is built on it, and the two behave identically.
//!
//! The lock-free engine and its memory orderings are described in `engine.rs`; the rules as
//! pure functions are in `rules.rs`; a plainly written reference model (test-only) checks the
//! engine against them. The design is written up in `docs/circuit-breaker.md`.

mod builder;
mod classify;
mod config;
mod engine;
pub mod error;
mod event;
pub mod future;
mod hot;
#[cfg(feature = "tower")]
mod layer;
mod metrics;
#[cfg(test)]
mod model;
mod permit;
mod probes;
mod rules;
mod slots;
#[cfg(test)]
mod tests;
mod window;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use self::engine::Shared;
use crate::config::ConfigError;
use crate::policy::impl_decorator;

pub use self::builder::CircuitBreakerBuilder;
pub use self::classify::{
    CircuitClassifier, ClassifyWith, DefaultClassifier, FailureIfResult, IgnoreIf,
};
pub use self::config::{
    CircuitBreakerConfig, MAX_COUNT_WINDOW, MAX_TIME_BUCKETS, OpenWait, SlidingWindow,
};
pub use self::error::{CircuitOpen, IllegalTransition};
pub use self::event::{CircuitBreakerEvent, TransitionReason};
pub use self::future::CircuitBreakerFuture;
#[cfg(feature = "tower")]
pub use self::layer::{
    CircuitBreakerLayer, CircuitBreakerMode, CircuitBreakerResponseFuture, CircuitBreakerService,
};
pub use self::metrics::{CallTotals, MetricsSnapshot};
pub use self::permit::{CallPermit, OwnedCallPermit};
pub use self::rules::{Outcome, State};

/// Stops calling a failing or slow dependency, and lets it recover. See the
/// [module docs](self) for the state machine and its rules.
///
/// # Examples
///
/// A payment gateway breaker: business errors (4xx) are ignored, 5xx and timeouts count,
/// and an open breaker answers with a clear "try again later" through a fallback.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use seawall::circuit_breaker::{CircuitBreaker, SlidingWindow, State};
/// use seawall::{Error, ErrorKind, Fallback, Policy, Timeout};
///
/// #[derive(Debug)]
/// enum PgError { Declined(u16), Server(u16) }
/// # impl std::fmt::Display for PgError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{self:?}") }
/// # }
/// # impl std::error::Error for PgError {}
///
/// let breaker = CircuitBreaker::builder()
///     .name("pg")
///     .sliding_window(SlidingWindow::count(10))
///     .minimum_number_of_calls(10)
///     .wait_in_open(Duration::from_secs(30))
///     .build()?
///     .ignore_if(|e: &PgError| matches!(e, PgError::Declined(_)));
///
/// let policy = Policy::builder()
///     .fallback(
///         Fallback::new(|_: Error<PgError>| Ok("payment temporarily unavailable, try again"))
///             .when_kind([ErrorKind::CircuitOpen]),
///     )
///     .circuit_breaker(breaker.clone())
///     .timeout(Timeout::new(Duration::from_secs(3)))
///     .build();
///
/// // Ten server errors in a row open the breaker...
/// for _ in 0..10 {
///     let _ = policy.call(|| async { Err::<&str, _>(PgError::Server(500)) }).await;
/// }
/// assert_eq!(breaker.state(), State::Open);
///
/// // ...and the next call is answered without reaching the gateway.
/// let answer = policy.call(|| async { Ok("charged") }).await?;
/// assert_eq!(answer, "payment temporarily unavailable, try again");
///
/// // Declines are business as usual: they never move the breaker.
/// breaker.reset();
/// for _ in 0..20 {
///     let _ = policy.call(|| async { Err::<&str, _>(PgError::Declined(402)) }).await;
/// }
/// assert_eq!(breaker.state(), State::Closed);
/// # Ok(())
/// # }
/// ```
///
/// # Clone
///
/// Clones share the breaker's state, metrics and listeners; the classifier is cloned.
pub struct CircuitBreaker<C = DefaultClassifier> {
    shared: Arc<Shared>,
    classifier: C,
}

impl<C: Clone> Clone for CircuitBreaker<C> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

// ===== impl CircuitBreaker =====

impl CircuitBreaker {
    /// Starts configuring a breaker (Resilience4j's defaults).
    pub fn builder() -> CircuitBreakerBuilder {
        CircuitBreakerBuilder::new()
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            classifier: DefaultClassifier,
        }
    }
}

impl<C> CircuitBreaker<C> {
    /// The instance name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current state. A state that ends by itself on time (automatic half-open, half-open's
    /// maximum wait) is left here if its time has come.
    pub fn state(&self) -> State {
        self.shared.state()
    }

    /// The current configuration.
    pub fn config(&self) -> CircuitBreakerConfig {
        self.shared.config()
    }

    /// The current metrics.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics()
    }

    /// The calls counted since totals were first asked for (by this method or the `metrics`
    /// feature). The first call switches counting on, which then costs an atomic add per call,
    /// so it returns zeros.
    pub fn call_totals(&self) -> CallTotals {
        self.shared.track_totals();
        self.shared.totals.read()
    }

    /// The rest of the open wait while the breaker is OPEN (what an HTTP `Retry-After` would
    /// say); `None` in every other state.
    pub fn retry_after(&self) -> Option<Duration> {
        self.shared.retry_after()
    }

    /// Whether a call would be permitted now, without taking a permit or a probe slot
    /// (Resilience4j's `CircuitBreakerUtil.isCallPermitted`).
    pub fn is_call_permitted(&self) -> bool {
        self.shared.is_call_permitted()
    }

    /// Asks permission for one call whose outcome will be reported on the permit. See
    /// [`CallPermit`] for an example.
    ///
    /// # Errors
    ///
    /// [`CircuitOpen`] when the breaker does not permit the call (OPEN, FORCED_OPEN, or
    /// HALF_OPEN with every probe slot taken); [`retry_after`](Self::retry_after) says how
    /// long the open wait still lasts.
    pub fn try_acquire(&self) -> Result<CallPermit<'_, C>, CircuitOpen> {
        self.acquire().map_err(|_| CircuitOpen::new())
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns a handle on the breaker
    /// (to move into a task or keep beside a stream).
    ///
    /// # Errors
    ///
    /// As for [`try_acquire`](Self::try_acquire).
    pub fn try_acquire_owned(&self) -> Result<OwnedCallPermit<C>, CircuitOpen>
    where
        C: Clone,
    {
        match self.shared.acquire() {
            Ok(slot) => Ok(OwnedCallPermit::new(self.clone(), slot)),
            Err(_) => Err(CircuitOpen::new()),
        }
    }

    /// Moves to CLOSED (a fresh window; consecutive openings forgotten).
    ///
    /// # Errors
    ///
    /// None in practice: every state may close. Kept for symmetry.
    pub fn transition_to_closed(&self) -> Result<(), IllegalTransition> {
        self.shared.manual(State::Closed, None)
    }

    /// Moves to OPEN for the configured wait.
    ///
    /// # Errors
    ///
    /// From METRICS_ONLY, which may not open.
    pub fn transition_to_open(&self) -> Result<(), IllegalTransition> {
        self.shared.manual(State::Open, None)
    }

    /// Moves to OPEN for exactly `wait` (consecutive openings unchanged).
    ///
    /// # Errors
    ///
    /// From METRICS_ONLY, which may not open.
    pub fn open_for(&self, wait: Duration) -> Result<(), IllegalTransition> {
        self.shared.manual(State::Open, Some(wait))
    }

    /// Moves to HALF_OPEN.
    ///
    /// # Errors
    ///
    /// From CLOSED or METRICS_ONLY.
    pub fn transition_to_half_open(&self) -> Result<(), IllegalTransition> {
        self.shared.manual(State::HalfOpen, None)
    }

    /// Moves to DISABLED: every call passes, nothing is recorded, no per-call event is
    /// published.
    ///
    /// # Errors
    ///
    /// None in practice.
    pub fn transition_to_disabled(&self) -> Result<(), IllegalTransition> {
        self.shared.manual(State::Disabled, None)
    }

    /// Moves to FORCED_OPEN: every call is rejected.
    ///
    /// # Errors
    ///
    /// None in practice.
    pub fn transition_to_forced_open(&self) -> Result<(), IllegalTransition> {
        self.shared.manual(State::ForcedOpen, None)
    }

    /// Moves to METRICS_ONLY: every call passes and is recorded; breaches are announced.
    ///
    /// # Errors
    ///
    /// None in practice.
    pub fn transition_to_metrics_only(&self) -> Result<(), IllegalTransition> {
        self.shared.manual(State::MetricsOnly, None)
    }

    /// Moves to `state` (same rules as the `transition_to_*` methods).
    ///
    /// # Errors
    ///
    /// A transition the table forbids.
    pub fn transition_to(&self, state: State) -> Result<(), IllegalTransition> {
        self.shared.manual(state, None)
    }

    /// Back to a fresh CLOSED state; metrics and consecutive openings are forgotten.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Replaces the configuration while the breaker runs: the state, its window and its
    /// counts are kept. A resized window keeps the newest outcomes that fit (a count window
    /// its newest calls; a time window with the same bucket width its newest buckets); a
    /// change between count and time windows, or of the bucket width, starts empty.
    ///
    /// # Errors
    ///
    /// An invalid configuration; nothing changes.
    pub fn reconfigure(&self, config: CircuitBreakerConfig) -> Result<(), ConfigError> {
        self.shared.reconfigure(config)
    }

    /// Registers a listener for this breaker's events (shared by clones).
    pub fn on_event(&self, listener: impl Fn(&CircuitBreakerEvent) + Send + Sync + 'static) {
        self.shared.listeners.add(listener);
    }

    fn map_classifier<D>(self, map: impl FnOnce(C) -> D) -> CircuitBreaker<D> {
        CircuitBreaker {
            shared: self.shared,
            classifier: map(self.classifier),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn classifier(&self) -> &C {
        &self.classifier
    }
}

impl<C: fmt::Debug> fmt::Debug for CircuitBreaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.shared.name)
            .field("state", &self.state())
            .field("classifier", &self.classifier)
            .finish_non_exhaustive()
    }
}

impl_decorator!(impl[C] CircuitBreaker<C> where [C: CircuitClassifier<T, E>]
    => CircuitBreakerFuture<'p, C, S::Future<'p, O>>
    = |this, inner| CircuitBreakerFuture::new(this, inner.start()));

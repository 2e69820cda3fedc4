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
//! - **Open.** Calls are rejected with [`ErrorKind::CircuitOpen`].
//!   The first permission request **strictly after** the wait moves to half-open and becomes a
//!   probe; with `automatic_half_open`, a timer does it without waiting for a call. The wait
//!   can grow with consecutive openings ([`OpenWait::Backoff`]).
//! - **Half-open.** At most `permitted_calls_in_half_open` probes run. After
//!   `min(minimum, permitted)` results, the probes' rates decide: reopen or close. An optional
//!   maximum wait ends a half-open state that never gets its results.
//! - **Classification.** A classifier sees the whole result and says
//!   [`Outcome::Success`], [`Outcome::Failure`] or [`Outcome::Ignored`]; ignored calls are not
//!   counted and give back their half-open slot. By default `Ok` is a success, the operation's
//!   errors and timeouts are failures, and rejections by other decorators (a full bulkhead, a
//!   nested breaker, a rate limiter) are ignored: they say nothing about the dependency.
//!
//! # Where seawall differs from Resilience4j, on purpose
//!
//! - **Stale results are not applied.** A result is recorded only in the state generation that
//!   admitted the call. Resilience4j applies it to whatever state is current, so a slow call
//!   admitted while closed can decide a half-open trial it never probed.
//! - **Cancellation is safe.** Dropping a call's future gives back its half-open slot and
//!   records nothing — the cure for the "stuck in half-open" complaint.
//! - **Rejections by other decorators are ignored by default**, not counted as failures.
//! - **Slow-call tracking can be turned off** (`disable_slow_call_tracking`) so a count-window
//!   breaker reads no clock at all on the happy path.
//! - OPEN and FORCED_OPEN show the metrics frozen at the moment they were entered.
//!
//! # Concurrency
//!
//! The closed path is lock-free: one atomic load of the current state (an `ArcSwap`), then an
//! atomic record into the window. Transitions are serialised by a mutex and published by
//! swapping the state; exactly one caller performs each transition and emits its event.
//! Half-open probe slots are an atomic counter of the state generation that issued them, so
//! the number of probes never exceeds the limit.

pub mod config;
pub mod core;
pub mod error;
pub mod future;
#[cfg(feature = "tower")]
mod layer;
#[cfg(test)]
mod tests;
mod window;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use self::core::{Counts, Exceeded, Ticket, code, exceeded, is_slow, transition_allowed};
use self::window::{AtomicCounts, Window};
use crate::Error;
use crate::clock::{Clock, Instant};
use crate::config::ConfigError;
use crate::error::ErrorKind;
use crate::event::{Event, Listeners};
use crate::policy::impl_decorator;
use crate::retry::{RandomSource, SplitMix64};

pub use self::config::{
    CircuitBreakerConfig, CircuitBreakerConfigBuilder, OpenWait, SlidingWindow,
};
pub use self::core::{Outcome, State};
pub use self::error::{CircuitOpen, IllegalTransition};
pub use self::future::CircuitBreakerFuture;
#[cfg(feature = "tower")]
pub use self::layer::{
    CircuitBreakerLayer, CircuitBreakerMode, CircuitBreakerResponseFuture, CircuitBreakerService,
};

/// Decides how a call's result counts for a [`CircuitBreaker`].
pub trait CircuitClassifier<T, E> {
    /// How `result` counts.
    fn classify(&self, result: &Result<T, Error<E>>) -> Outcome;
}

/// `Ok` → success; the operation's errors, timeouts and exhausted retries → failure; a full
/// bulkhead, an open nested breaker or a rate limiter's rejection → ignored.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultClassifier;

impl<T, E> CircuitClassifier<T, E> for DefaultClassifier {
    fn classify(&self, result: &Result<T, Error<E>>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(error) => match error.kind() {
                ErrorKind::BulkheadFull | ErrorKind::CircuitOpen | ErrorKind::RateLimited => {
                    Outcome::Ignored
                }
                _ => Outcome::Failure,
            },
        }
    }
}

/// Classifies with a function over the whole result.
#[derive(Clone, Copy)]
pub struct ClassifyWith<F>(F);

impl<T, E, F> CircuitClassifier<T, E> for ClassifyWith<F>
where
    F: Fn(&Result<T, Error<E>>) -> Outcome,
{
    fn classify(&self, result: &Result<T, Error<E>>) -> Outcome {
        (self.0)(result)
    }
}

/// Ignores the operation's own errors that match a predicate (e.g. 4xx business errors).
#[derive(Clone, Copy)]
pub struct IgnoreIf<C, F> {
    base: C,
    predicate: F,
}

impl<T, E, C, F> CircuitClassifier<T, E> for IgnoreIf<C, F>
where
    C: CircuitClassifier<T, E>,
    F: Fn(&E) -> bool,
{
    fn classify(&self, result: &Result<T, Error<E>>) -> Outcome {
        match result {
            Err(error) if error.inner().is_some_and(&self.predicate) => Outcome::Ignored,
            _ => self.base.classify(result),
        }
    }
}

/// Counts successful results that match a predicate as failures.
#[derive(Clone, Copy)]
pub struct FailureIfResult<C, F> {
    base: C,
    predicate: F,
}

impl<T, E, C, F> CircuitClassifier<T, E> for FailureIfResult<C, F>
where
    C: CircuitClassifier<T, E>,
    F: Fn(&T) -> bool,
{
    fn classify(&self, result: &Result<T, Error<E>>) -> Outcome {
        match result {
            Ok(value) if (self.predicate)(value) => Outcome::Failure,
            _ => self.base.classify(result),
        }
    }
}

macro_rules! opaque_debug {
    ($($name:ident),*) => {$(
        impl<C: fmt::Debug, F> fmt::Debug for $name<C, F> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("base", &self.base).finish_non_exhaustive()
            }
        }
    )*};
}
opaque_debug!(IgnoreIf, FailureIfResult);

impl<F> fmt::Debug for ClassifyWith<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClassifyWith(..)")
    }
}

/// Why a breaker changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransitionReason {
    /// The failure rate reached its threshold.
    FailureRateExceeded,
    /// The slow-call rate reached its threshold.
    SlowCallRateExceeded,
    /// Both rates reached their thresholds.
    FailureAndSlowCallRateExceeded,
    /// The open wait was over.
    OpenWaitElapsed,
    /// The half-open probes' rates were below the thresholds.
    ProbesSucceeded,
    /// The half-open probes' rates reached a threshold.
    ProbesFailed,
    /// Half-open lasted longer than its maximum wait.
    HalfOpenMaxWaitElapsed,
    /// A manual transition.
    Manual,
    /// A reset.
    Reset,
}

/// What a circuit breaker reports. Per-call events ([`Success`](Self::Success),
/// [`Error`](Self::Error), [`Ignored`](Self::Ignored)) are emitted only when asked for
/// ([`CircuitBreakerBuilder::per_call_events`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CircuitBreakerEvent {
    /// The breaker changed state.
    StateTransition {
        /// The breaker's name.
        name: Arc<str>,
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
        /// Why.
        reason: TransitionReason,
    },
    /// The failure rate reached its threshold (in CLOSED before opening; once per episode in
    /// METRICS_ONLY).
    FailureRateExceeded {
        /// The breaker's name.
        name: Arc<str>,
        /// The rate, in percent.
        rate: f64,
    },
    /// The slow-call rate reached its threshold.
    SlowCallRateExceeded {
        /// The breaker's name.
        name: Arc<str>,
        /// The rate, in percent.
        rate: f64,
    },
    /// A call was rejected (not emitted in FORCED_OPEN, as in Resilience4j).
    CallNotPermitted {
        /// The breaker's name.
        name: Arc<str>,
        /// The rejecting state.
        state: State,
    },
    /// The breaker was reset.
    Reset {
        /// The breaker's name.
        name: Arc<str>,
    },
    /// A call was recorded as a success.
    Success {
        /// The breaker's name.
        name: Arc<str>,
        /// How long it took, if measured.
        elapsed: Option<Duration>,
    },
    /// A call was recorded as a failure.
    Error {
        /// The breaker's name.
        name: Arc<str>,
        /// How long it took, if measured.
        elapsed: Option<Duration>,
    },
    /// A call's result was ignored.
    Ignored {
        /// The breaker's name.
        name: Arc<str>,
        /// How long it took, if measured.
        elapsed: Option<Duration>,
    },
}

impl Event for CircuitBreakerEvent {
    #[cfg(feature = "tracing")]
    fn trace(&self) {
        match self {
            Self::StateTransition {
                name,
                from,
                to,
                reason,
            } => tracing::warn!(
                target: "seawall::circuit_breaker",
                name = %name, from = from.as_str(), to = to.as_str(), reason = ?reason,
                "circuit breaker state changed"
            ),
            Self::FailureRateExceeded { name, rate } => tracing::info!(
                target: "seawall::circuit_breaker",
                name = %name, rate,
                "failure rate exceeded"
            ),
            Self::SlowCallRateExceeded { name, rate } => tracing::info!(
                target: "seawall::circuit_breaker",
                name = %name, rate,
                "slow-call rate exceeded"
            ),
            Self::Reset { name } => tracing::info!(
                target: "seawall::circuit_breaker",
                name = %name,
                "circuit breaker reset"
            ),
            // Per call: too frequent to log by default; listeners see them.
            Self::CallNotPermitted { .. }
            | Self::Success { .. }
            | Self::Error { .. }
            | Self::Ignored { .. } => {}
        }
    }
}

/// A point-in-time view of a breaker's metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricsSnapshot {
    /// The state.
    pub state: State,
    /// Failed / buffered × 100, or `None` below the minimum number of calls.
    pub failure_rate: Option<f64>,
    /// Slow / buffered × 100, or `None` below the minimum number of calls.
    pub slow_call_rate: Option<f64>,
    /// Calls in the window.
    pub buffered_calls: u64,
    /// Failed calls in the window.
    pub failed_calls: u64,
    /// Successful calls in the window (slow ones included).
    pub successful_calls: u64,
    /// Slow calls in the window.
    pub slow_calls: u64,
    /// Slow successful calls in the window.
    pub slow_successful_calls: u64,
    /// Slow failed calls in the window.
    pub slow_failed_calls: u64,
    /// Calls rejected since the state was entered (CLOSED's count carries into OPEN).
    pub not_permitted_calls: u64,
}

impl MetricsSnapshot {
    pub(crate) fn new(state: State, counts: Counts, minimum: u32, not_permitted: u64) -> Self {
        let rates = counts.rates(minimum);
        Self {
            state,
            failure_rate: rates.failure,
            slow_call_rate: rates.slow,
            buffered_calls: counts.calls,
            failed_calls: counts.failures,
            successful_calls: counts.calls - counts.failures,
            slow_calls: counts.slow,
            slow_successful_calls: counts.slow - counts.slow_failures,
            slow_failed_calls: counts.slow_failures,
            not_permitted_calls: not_permitted,
        }
    }
}

/// One state generation: everything that a transition replaces at once.
#[derive(Debug)]
struct Live {
    state: State,
    generation: u64,
    config: Arc<CircuitBreakerConfig>,
    attempts: u32,
    open_until: Instant,
    half_open_since: Instant,
    half_open_used: AtomicU32,
    half_open: AtomicCounts,
    /// The CLOSED / METRICS_ONLY window (shared by a reconfiguration that keeps it).
    window: Arc<Window>,
    /// What OPEN and FORCED_OPEN show.
    frozen: Counts,
    frozen_minimum: u32,
    not_permitted: AtomicU64,
    announced_failure: AtomicBool,
    announced_slow: AtomicBool,
}

/// Cumulative call counts since the breaker was created, kept only while someone reads them
/// (metrics): counting costs an atomic add per call.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) tracking: AtomicBool,
    pub(crate) successful: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) ignored: AtomicU64,
    pub(crate) not_permitted: AtomicU64,
}

impl Totals {
    #[inline]
    fn count(&self, counter: &AtomicU64) {
        if self.tracking.load(Ordering::Relaxed) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(crate) struct Shared {
    name: Arc<str>,
    live: ArcSwap<Live>,
    pub(crate) totals: Totals,
    /// Serialises transitions; never taken on the closed path.
    transitions: Mutex<()>,
    clock: Clock,
    random: Arc<dyn RandomSource>,
    listeners: Listeners<CircuitBreakerEvent>,
    per_call_events: bool,
    this: Weak<Self>,
}

/// A permitted call in progress. Dropping it without [`Shared::record`] gives back its
/// half-open slot and records nothing.
#[must_use = "dropping a permit abandons the call"]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Permit {
    ticket: Ticket,
    start: Option<Instant>,
    /// Granted as a half-open probe.
    probe: bool,
}

impl Shared {
    /// Asks permission for a call.
    pub(crate) fn acquire(&self) -> Result<Permit, CircuitOpen> {
        let mut events = Vec::new();
        let result = self.acquire_inner(&mut events);
        self.emit_all(events);
        result
    }

    fn acquire_inner(&self, events: &mut Vec<CircuitBreakerEvent>) -> Result<Permit, CircuitOpen> {
        // Each transition below moves strictly forward; two are the most one call can see
        // (open → half-open → open/closed on an expired half-open wait).
        for _ in 0..4 {
            let live = self.live.load();
            match live.state {
                State::Closed | State::Disabled | State::MetricsOnly => {
                    let start = live
                        .config
                        .slow_call_duration_threshold
                        .map(|_| self.clock.now());
                    return Ok(Permit {
                        ticket: Ticket::from_generation(live.generation),
                        start,
                        probe: false,
                    });
                }
                State::ForcedOpen => {
                    live.not_permitted.fetch_add(1, Ordering::Relaxed);
                    self.totals.count(&self.totals.not_permitted);
                    return Err(CircuitOpen::new(self.name.clone(), State::ForcedOpen, None));
                }
                State::Open => {
                    let now = self.clock.now();
                    if now > live.open_until {
                        self.transition(
                            live.generation,
                            State::HalfOpen,
                            TransitionReason::OpenWaitElapsed,
                            now,
                            Exceeded::default(),
                            events,
                        );
                        continue;
                    }
                    live.not_permitted.fetch_add(1, Ordering::Relaxed);
                    self.totals.count(&self.totals.not_permitted);
                    events.push(CircuitBreakerEvent::CallNotPermitted {
                        name: self.name.clone(),
                        state: State::Open,
                    });
                    return Err(CircuitOpen::new(
                        self.name.clone(),
                        State::Open,
                        Some(live.open_until - now),
                    ));
                }
                State::HalfOpen => {
                    let max_wait = live.config.max_wait_in_half_open;
                    if !max_wait.is_zero() {
                        let now = self.clock.now();
                        if now > live.half_open_since + max_wait {
                            self.transition(
                                live.generation,
                                live.config.state_after_half_open_wait,
                                TransitionReason::HalfOpenMaxWaitElapsed,
                                now,
                                Exceeded::default(),
                                events,
                            );
                            continue;
                        }
                    }
                    let permitted = live.config.permitted_calls_in_half_open;
                    let taken = live.half_open_used.fetch_update(
                        Ordering::AcqRel,
                        Ordering::Acquire,
                        |used| (used < permitted).then_some(used + 1),
                    );
                    if taken.is_ok() {
                        let start = live
                            .config
                            .slow_call_duration_threshold
                            .map(|_| self.clock.now());
                        return Ok(Permit {
                            ticket: Ticket::from_generation(live.generation),
                            start,
                            probe: true,
                        });
                    }
                    live.not_permitted.fetch_add(1, Ordering::Relaxed);
                    self.totals.count(&self.totals.not_permitted);
                    events.push(CircuitBreakerEvent::CallNotPermitted {
                        name: self.name.clone(),
                        state: State::HalfOpen,
                    });
                    return Err(CircuitOpen::new(self.name.clone(), State::HalfOpen, None));
                }
            }
        }
        // Only reachable if transitions keep racing ahead of this caller: reject, safely.
        Err(CircuitOpen::new(self.name.clone(), State::Open, None))
    }

    /// An abandoned call: gives back its half-open slot, records nothing.
    pub(crate) fn release(&self, permit: &Permit) {
        if !permit.probe {
            return; // only probes hold anything
        }
        let live = self.live.load();
        if live.generation == permit.ticket.generation() && live.state == State::HalfOpen {
            let _ = live
                .half_open_used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                    used.checked_sub(1)
                });
        }
    }

    /// Records a finished call's outcome.
    pub(crate) fn record(&self, permit: Permit, outcome: Outcome) {
        let mut cached_now = None;
        let clock = &self.clock;
        let mut now = || *cached_now.get_or_insert_with(|| clock.now());
        let elapsed = permit.start.map(|start| now() - start);
        self.totals.count(match outcome {
            Outcome::Success => &self.totals.successful,
            Outcome::Failure => &self.totals.failed,
            Outcome::Ignored => &self.totals.ignored,
        });
        let live = self.live.load();
        if live.generation != permit.ticket.generation() {
            return; // admitted by an earlier state: never applied to a newer one
        }
        let mut events = Vec::new();
        if self.per_call_events {
            let name = self.name.clone();
            events.push(match outcome {
                Outcome::Success => CircuitBreakerEvent::Success { name, elapsed },
                Outcome::Failure => CircuitBreakerEvent::Error { name, elapsed },
                Outcome::Ignored => CircuitBreakerEvent::Ignored { name, elapsed },
            });
        }
        let failure = match outcome {
            Outcome::Ignored => {
                self.release(&permit);
                self.emit_all(events);
                return;
            }
            Outcome::Success => false,
            Outcome::Failure => true,
        };
        let slow = elapsed
            .is_some_and(|elapsed| is_slow(elapsed, live.config.slow_call_duration_threshold));
        let outcome_code = code(failure, slow);
        match live.state {
            State::Closed | State::MetricsOnly => {
                live.window.record(outcome_code, &mut now);
                let counts = live.window.counts(&mut now);
                let over = exceeded(
                    counts.rates(live.config.effective_minimum_number_of_calls()),
                    &live.config,
                );
                if over.any() {
                    if live.state == State::MetricsOnly {
                        self.announce_once(&live, over, &mut events);
                    } else {
                        let now = now();
                        self.transition(
                            live.generation,
                            State::Open,
                            over.reason(),
                            now,
                            over,
                            &mut events,
                        );
                    }
                }
            }
            State::HalfOpen => {
                live.half_open.add(outcome_code);
                let needed = live.config.half_open_decision_calls();
                let counts = live.half_open.load();
                if counts.calls >= u64::from(needed) {
                    let over = exceeded(counts.rates(needed), &live.config);
                    let (to, reason) = if over.any() {
                        (State::Open, TransitionReason::ProbesFailed)
                    } else {
                        (State::Closed, TransitionReason::ProbesSucceeded)
                    };
                    let now = now();
                    self.transition(
                        live.generation,
                        to,
                        reason,
                        now,
                        Exceeded::default(),
                        &mut events,
                    );
                }
            }
            State::Open | State::ForcedOpen | State::Disabled => {}
        }
        self.emit_all(events);
    }

    fn announce_once(&self, live: &Live, over: Exceeded, events: &mut Vec<CircuitBreakerEvent>) {
        if let Some(rate) = over.failure
            && !live.announced_failure.swap(true, Ordering::AcqRel)
        {
            events.push(CircuitBreakerEvent::FailureRateExceeded {
                name: self.name.clone(),
                rate,
            });
        }
        if let Some(rate) = over.slow
            && !live.announced_slow.swap(true, Ordering::AcqRel)
        {
            events.push(CircuitBreakerEvent::SlowCallRateExceeded {
                name: self.name.clone(),
                rate,
            });
        }
    }

    /// Performs `expected generation → to` if the generation is still current; only one
    /// caller can win. `over` holds the rates that tripped a CLOSED breaker (their events are
    /// emitted by the winner only). Returns whether this caller made the transition.
    fn transition(
        &self,
        expected: u64,
        to: State,
        reason: TransitionReason,
        now: Instant,
        over: Exceeded,
        events: &mut Vec<CircuitBreakerEvent>,
    ) -> bool {
        let _serial = self.lock();
        let current = self.live.load_full();
        if current.generation != expected {
            return false;
        }
        self.install(&current, to, now, None, None);
        if let Some(rate) = over.failure {
            events.push(CircuitBreakerEvent::FailureRateExceeded {
                name: self.name.clone(),
                rate,
            });
        }
        if let Some(rate) = over.slow {
            events.push(CircuitBreakerEvent::SlowCallRateExceeded {
                name: self.name.clone(),
                rate,
            });
        }
        if current.state != to {
            events.push(CircuitBreakerEvent::StateTransition {
                name: self.name.clone(),
                from: current.state,
                to,
                reason,
            });
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.transitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Builds and publishes the state that follows `current`. Must hold the transition lock.
    /// `fixed_wait` is `open_for`'s wait; `config` replaces the configuration (same state).
    fn install(
        &self,
        current: &Live,
        to: State,
        now: Instant,
        fixed_wait: Option<Duration>,
        config: Option<Arc<CircuitBreakerConfig>>,
    ) {
        let config = config.unwrap_or_else(|| current.config.clone());
        let (frozen, frozen_minimum) = match (to, current.state) {
            (State::Open, State::Closed | State::MetricsOnly) => (
                current.window.counts(|| now),
                current.config.effective_minimum_number_of_calls(),
            ),
            (State::Open, State::HalfOpen) => (
                current.half_open.load(),
                current.config.half_open_decision_calls(),
            ),
            (State::Open, State::Disabled) | (State::ForcedOpen, _) => (
                Counts::default(),
                config.effective_minimum_number_of_calls(),
            ),
            _ => (current.frozen, current.frozen_minimum),
        };
        let mut attempts = current.attempts;
        let mut open_until = current.open_until;
        let mut not_permitted = 0;
        let window = match to {
            State::Closed | State::MetricsOnly => Arc::new(Window::new(config.sliding_window, now)),
            _ => current.window.clone(),
        };
        match to {
            State::Closed | State::Disabled | State::MetricsOnly => attempts = 0,
            State::Open => {
                if current.state == State::Closed {
                    not_permitted = current.not_permitted.load(Ordering::Relaxed);
                }
                let wait = match fixed_wait {
                    Some(wait) => wait,
                    None => {
                        attempts += 1;
                        config.open_wait.wait(attempts, &*self.random)
                    }
                };
                open_until = now + wait;
            }
            State::ForcedOpen => attempts += 1,
            State::HalfOpen => {}
        }
        let next = Live {
            state: to,
            generation: current.generation + 1,
            config,
            attempts,
            open_until,
            half_open_since: if to == State::HalfOpen {
                now
            } else {
                current.half_open_since
            },
            half_open_used: AtomicU32::new(0),
            half_open: AtomicCounts::default(),
            window,
            frozen,
            frozen_minimum,
            not_permitted: AtomicU64::new(not_permitted),
            announced_failure: AtomicBool::new(false),
            announced_slow: AtomicBool::new(false),
        };
        let timer = Self::timer_for(&next);
        self.live.store(Arc::new(next));
        if let Some((at, generation)) = timer {
            self.arm_timer(at, generation);
        }
    }

    /// When the new state needs a timer: automatic half-open, or half-open's maximum wait.
    fn timer_for(live: &Live) -> Option<(Instant, u64)> {
        match live.state {
            State::Open if live.config.automatic_half_open => {
                Some((live.open_until, live.generation))
            }
            State::HalfOpen if !live.config.max_wait_in_half_open.is_zero() => Some((
                live.half_open_since + live.config.max_wait_in_half_open,
                live.generation,
            )),
            _ => None,
        }
    }

    /// Spawns a timer task on the current tokio runtime, if there is one; without a runtime
    /// the same transitions still happen lazily on the next permission request.
    fn arm_timer(&self, at: Instant, generation: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.this.clone();
        let sleep = self.clock.sleep_until(at);
        runtime.spawn(async move {
            sleep.await;
            if let Some(shared) = this.upgrade() {
                shared.on_timer(generation);
            }
        });
    }

    fn on_timer(&self, generation: u64) {
        let live = self.live.load();
        if live.generation != generation {
            return;
        }
        let now = self.clock.now();
        let (to, reason) = match live.state {
            State::Open => (State::HalfOpen, TransitionReason::OpenWaitElapsed),
            State::HalfOpen => (
                live.config.state_after_half_open_wait,
                TransitionReason::HalfOpenMaxWaitElapsed,
            ),
            _ => return,
        };
        let mut events = Vec::new();
        self.transition(
            generation,
            to,
            reason,
            now,
            Exceeded::default(),
            &mut events,
        );
        self.emit_all(events);
    }

    fn emit_all(&self, events: Vec<CircuitBreakerEvent>) {
        for event in events {
            self.listeners.emit(|| event);
        }
    }

    fn metrics(&self) -> MetricsSnapshot {
        let live = self.live.load();
        let (counts, minimum) = match live.state {
            State::Closed | State::MetricsOnly => (
                live.window.counts(|| self.clock.now()),
                live.config.effective_minimum_number_of_calls(),
            ),
            State::HalfOpen => (
                live.half_open.load(),
                live.config.half_open_decision_calls(),
            ),
            State::Open | State::ForcedOpen => (live.frozen, live.frozen_minimum),
            State::Disabled => (Counts::default(), 1),
        };
        MetricsSnapshot::new(
            live.state,
            counts,
            minimum,
            live.not_permitted.load(Ordering::Relaxed),
        )
    }

    /// A manual transition: `to` replaces the current state if the table allows it.
    fn manual(&self, to: State, fixed_wait: Option<Duration>) -> Result<(), IllegalTransition> {
        let mut events = Vec::new();
        {
            let _serial = self.lock();
            let current = self.live.load_full();
            if !transition_allowed(current.state, to) {
                return Err(IllegalTransition::new(self.name.clone(), current.state, to));
            }
            let now = self.clock.now();
            self.install(&current, to, now, fixed_wait, None);
            if current.state != to {
                events.push(CircuitBreakerEvent::StateTransition {
                    name: self.name.clone(),
                    from: current.state,
                    to,
                    reason: TransitionReason::Manual,
                });
            }
        }
        self.emit_all(events);
        Ok(())
    }

    fn reset(&self) {
        let mut events = Vec::new();
        {
            let _serial = self.lock();
            let current = self.live.load_full();
            let now = self.clock.now();
            // A reset forgets everything, consecutive openings included.
            let fresh = Self::initial_live(
                current.config.clone(),
                State::Closed,
                current.generation,
                now,
            );
            self.live.store(Arc::new(fresh));
            if current.state != State::Closed {
                events.push(CircuitBreakerEvent::StateTransition {
                    name: self.name.clone(),
                    from: current.state,
                    to: State::Closed,
                    reason: TransitionReason::Reset,
                });
            }
            events.push(CircuitBreakerEvent::Reset {
                name: self.name.clone(),
            });
        }
        self.emit_all(events);
    }

    /// A CLOSED state of generation `previous + 1`.
    fn initial_live(
        config: Arc<CircuitBreakerConfig>,
        state: State,
        previous: u64,
        now: Instant,
    ) -> Live {
        Live {
            state,
            generation: previous + 1,
            attempts: 0,
            open_until: now,
            half_open_since: now,
            half_open_used: AtomicU32::new(0),
            half_open: AtomicCounts::default(),
            window: Arc::new(Window::new(config.sliding_window, now)),
            frozen: Counts::default(),
            frozen_minimum: config.effective_minimum_number_of_calls(),
            not_permitted: AtomicU64::new(0),
            announced_failure: AtomicBool::new(false),
            announced_slow: AtomicBool::new(false),
            config,
        }
    }

    /// Replaces the configuration, keeping the state, its generation and its window when the
    /// window's shape is unchanged.
    fn reconfigure(&self, config: CircuitBreakerConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let _serial = self.lock();
        let current = self.live.load_full();
        let now = self.clock.now();
        let window = if config.sliding_window == current.config.sliding_window {
            current.window.clone()
        } else {
            Arc::new(current.window.resized(config.sliding_window, now))
        };
        let next = Live {
            state: current.state,
            generation: current.generation,
            config: Arc::new(config),
            attempts: current.attempts,
            open_until: current.open_until,
            half_open_since: current.half_open_since,
            half_open_used: AtomicU32::new(current.half_open_used.load(Ordering::Acquire)),
            half_open: AtomicCounts::default(),
            window,
            frozen: current.frozen,
            frozen_minimum: current.frozen_minimum,
            not_permitted: AtomicU64::new(current.not_permitted.load(Ordering::Relaxed)),
            announced_failure: AtomicBool::new(current.announced_failure.load(Ordering::Relaxed)),
            announced_slow: AtomicBool::new(current.announced_slow.load(Ordering::Relaxed)),
        };
        next.half_open.add_counts(&current.half_open.load());
        self.live.store(Arc::new(next));
        Ok(())
    }
}

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
///     .failure_rate_threshold(50.0)
///     .wait_in_open(Duration::from_secs(30))
///     .permitted_calls_in_half_open(5)
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
        CircuitBreakerBuilder {
            name: Arc::from("circuit-breaker"),
            config: CircuitBreakerConfig::builder(),
            clock: None,
            random: None,
            per_call_events: false,
        }
    }

    /// A breaker named `name` with a validated configuration, on tokio's clock.
    pub fn new(name: impl Into<Arc<str>>, config: CircuitBreakerConfig) -> Self {
        Self::with_parts(
            name.into(),
            config,
            Clock::default(),
            Arc::new(SplitMix64::from_entropy()),
            false,
        )
    }

    fn with_parts(
        name: Arc<str>,
        config: CircuitBreakerConfig,
        clock: Clock,
        random: Arc<dyn RandomSource>,
        per_call_events: bool,
    ) -> Self {
        let now = clock.now();
        let initial = config.initial_state;
        let config = Arc::new(config);
        let shared = Arc::new_cyclic(|this| Shared {
            name,
            live: ArcSwap::from_pointee(Shared::initial_live(config, State::Closed, 0, now)),
            transitions: Mutex::new(()),
            totals: Totals::default(),
            clock,
            random,
            listeners: Listeners::new(),
            per_call_events,
            this: this.clone(),
        });
        if initial != State::Closed {
            let _serial = shared.lock();
            let current = shared.live.load_full();
            shared.install(&current, initial, now, None, None);
        }
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

    /// The current state.
    pub fn state(&self) -> State {
        self.shared.live.load().state
    }

    /// The current configuration.
    pub fn config(&self) -> CircuitBreakerConfig {
        (*self.shared.live.load().config).clone()
    }

    /// The current metrics.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics()
    }

    /// Whether a call would be permitted now, without taking a permit or a probe slot
    /// (Resilience4j's `CircuitBreakerUtil.isCallPermitted`).
    pub fn is_call_permitted(&self) -> bool {
        let live = self.shared.live.load();
        match live.state {
            State::Closed | State::Disabled | State::MetricsOnly => true,
            State::ForcedOpen => false,
            State::Open => self.shared.clock.now() > live.open_until,
            State::HalfOpen => {
                live.half_open_used.load(Ordering::Acquire)
                    < live.config.permitted_calls_in_half_open
            }
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

    /// Moves to DISABLED: every call passes, nothing is recorded.
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

    /// Classifies results with `classify` over the whole result.
    pub fn classify<T, E, F>(self, classify: F) -> CircuitBreaker<ClassifyWith<F>>
    where
        F: Fn(&Result<T, Error<E>>) -> Outcome,
    {
        self.with_classifier(ClassifyWith(classify))
    }

    /// Ignores the operation's own errors that match `predicate` (e.g. declined payments,
    /// validation errors): they neither count nor hold a half-open slot.
    pub fn ignore_if<E, F>(self, predicate: F) -> CircuitBreaker<IgnoreIf<C, F>>
    where
        F: Fn(&E) -> bool,
    {
        let base = self.classifier;
        CircuitBreaker {
            shared: self.shared,
            classifier: IgnoreIf { base, predicate },
        }
    }

    /// Counts successful results that match `predicate` as failures.
    pub fn failure_if_result<T, F>(self, predicate: F) -> CircuitBreaker<FailureIfResult<C, F>>
    where
        F: Fn(&T) -> bool,
    {
        let base = self.classifier;
        CircuitBreaker {
            shared: self.shared,
            classifier: FailureIfResult { base, predicate },
        }
    }

    /// Replaces the classifier.
    pub fn with_classifier<D>(self, classifier: D) -> CircuitBreaker<D> {
        CircuitBreaker {
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

/// Configures a [`CircuitBreaker`]: the [`CircuitBreakerConfig`] options plus name, clock,
/// random source and per-call events.
#[derive(Debug)]
pub struct CircuitBreakerBuilder {
    name: Arc<str>,
    config: CircuitBreakerConfigBuilder,
    clock: Option<Clock>,
    random: Option<Arc<dyn RandomSource>>,
    per_call_events: bool,
}

macro_rules! forward_config {
    ($($(#[$meta:meta])* $method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        $(#[$meta])*
        pub fn $method(mut self, $($arg: $ty),*) -> Self {
            self.config = self.config.$method($($arg),*);
            self
        }
    )*};
}

impl CircuitBreakerBuilder {
    /// The instance name (default `"circuit-breaker"`), in events, errors and metrics.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Starts from an existing configuration.
    pub fn config(mut self, config: CircuitBreakerConfig) -> Self {
        self.config = CircuitBreakerConfigBuilder::from(config);
        self
    }

    forward_config! {
        /// See [`CircuitBreakerConfigBuilder::failure_rate_threshold`].
        failure_rate_threshold(percent: f64);
        /// See [`CircuitBreakerConfigBuilder::slow_call_rate_threshold`].
        slow_call_rate_threshold(percent: f64);
        /// See [`CircuitBreakerConfigBuilder::slow_call_duration_threshold`].
        slow_call_duration_threshold(threshold: Duration);
        /// See [`CircuitBreakerConfigBuilder::disable_slow_call_tracking`].
        disable_slow_call_tracking();
        /// See [`CircuitBreakerConfigBuilder::permitted_calls_in_half_open`].
        permitted_calls_in_half_open(calls: u32);
        /// See [`CircuitBreakerConfigBuilder::max_wait_in_half_open`].
        max_wait_in_half_open(max_wait: Duration, then: State);
        /// See [`CircuitBreakerConfigBuilder::sliding_window`].
        sliding_window(window: SlidingWindow);
        /// See [`CircuitBreakerConfigBuilder::minimum_number_of_calls`].
        minimum_number_of_calls(calls: u32);
        /// See [`CircuitBreakerConfigBuilder::wait_in_open`].
        wait_in_open(wait: Duration);
        /// See [`CircuitBreakerConfigBuilder::wait_in_open_backoff`].
        wait_in_open_backoff(backoff: crate::Backoff);
        /// See [`CircuitBreakerConfigBuilder::automatic_half_open`].
        automatic_half_open(automatic: bool);
        /// See [`CircuitBreakerConfigBuilder::initial_state`].
        initial_state(state: State);
    }

    /// The clock (default: tokio's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The random source for a jittered open wait (default: seeded from entropy).
    pub fn random(mut self, random: impl RandomSource + 'static) -> Self {
        self.random = Some(Arc::new(random));
        self
    }

    /// Also emit an event for every recorded call (success, error, ignored). Off by default:
    /// events are for state changes.
    pub fn per_call_events(mut self, on: bool) -> Self {
        self.per_call_events = on;
        self
    }

    /// Validates and builds the breaker.
    ///
    /// # Errors
    ///
    /// The first configuration rule broken, naming the key.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        let config = self.config.build()?;
        Ok(CircuitBreaker::with_parts(
            self.name,
            config,
            self.clock.unwrap_or_default(),
            self.random
                .unwrap_or_else(|| Arc::new(SplitMix64::from_entropy())),
            self.per_call_events,
        ))
    }
}

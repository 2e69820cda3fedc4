//! The breaker's rules as plain, single-threaded code: no runtime, no clock, no atomics.
//!
//! The decision functions ([`Counts::rates`], [`exceeded`], [`is_slow`],
//! [`transition_allowed`]) are shared with the lock-free [`CircuitBreaker`](super::CircuitBreaker).
//! [`StateMachine`] applies them to a plainly written state (a `VecDeque` count window, a list
//! of time buckets): it is the breaker's executable specification. The model-based tests run
//! random sequences of calls, results, clock steps and manual transitions through both and
//! require identical states and metrics.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::config::{CircuitBreakerConfig, SlidingWindow};
use super::{CircuitBreakerEvent, IllegalTransition, MetricsSnapshot, TransitionReason};
use crate::clock::{Instant, duration_to_nanos};
use crate::retry::RandomSource;

/// The states of a circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls pass and are recorded; the breaker opens when a rate reaches its threshold.
    Closed,
    /// Calls are rejected until the wait is over.
    Open,
    /// A limited number of probe calls pass; their results close or reopen the breaker.
    HalfOpen,
    /// Every call passes; nothing is recorded.
    Disabled,
    /// Every call is rejected until a manual transition.
    ForcedOpen,
    /// Every call passes and is recorded; threshold breaches are announced, never acted on.
    MetricsOnly,
}

impl State {
    /// All states, in Resilience4j's order.
    pub const ALL: [Self; 6] = [
        Self::Closed,
        Self::Open,
        Self::HalfOpen,
        Self::Disabled,
        Self::ForcedOpen,
        Self::MetricsOnly,
    ];

    /// Resilience4j's name: `CLOSED`, `OPEN`, `HALF_OPEN`, `DISABLED`, `FORCED_OPEN`,
    /// `METRICS_ONLY`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "CLOSED",
            Self::Open => "OPEN",
            Self::HalfOpen => "HALF_OPEN",
            Self::Disabled => "DISABLED",
            Self::ForcedOpen => "FORCED_OPEN",
            Self::MetricsOnly => "METRICS_ONLY",
        }
    }

    /// The lowercase label used for metrics: `closed`, `open`, `half_open`, …
    pub const fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::Disabled => "disabled",
            Self::ForcedOpen => "forced_open",
            Self::MetricsOnly => "metrics_only",
        }
    }

    /// Whether calls are let through without a limit in this state.
    pub const fn permits_all(self) -> bool {
        matches!(self, Self::Closed | Self::Disabled | Self::MetricsOnly)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Whether Resilience4j's transition table allows `from → to`. Same-state transitions are
/// allowed (and silent).
///
/// | from \ to | CLOSED | OPEN | HALF_OPEN | DISABLED | FORCED_OPEN | METRICS_ONLY |
/// |---|---|---|---|---|---|---|
/// | CLOSED | self | yes | **no** | yes | yes | yes |
/// | OPEN | yes | self | yes | yes | yes | yes |
/// | HALF_OPEN | yes | yes | self | yes | yes | yes |
/// | FORCED_OPEN | yes | yes | yes | yes | self | yes |
/// | DISABLED | yes | yes | yes | self | yes | yes |
/// | METRICS_ONLY | yes | **no** | **no** | yes | yes | self |
pub const fn transition_allowed(from: State, to: State) -> bool {
    !matches!(
        (from, to),
        (State::Closed, State::HalfOpen)
            | (State::MetricsOnly, State::Open)
            | (State::MetricsOnly, State::HalfOpen)
    )
}

/// How a call's result counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Counted as a success.
    Success,
    /// Counted as a failure.
    Failure,
    /// Not counted at all; a half-open probe slot is given back.
    Ignored,
}

/// A call is slow when it takes **strictly** longer than the threshold.
pub fn is_slow(elapsed: Duration, threshold: Option<Duration>) -> bool {
    threshold.is_some_and(|threshold| elapsed > threshold)
}

/// One recorded outcome, as stored in a window: bit 0 present, bit 1 failure, bit 2 slow.
pub(crate) const PRESENT: u8 = 1;
pub(crate) const FAILURE: u8 = 2;
pub(crate) const SLOW: u8 = 4;

pub(crate) const fn code(failure: bool, slow: bool) -> u8 {
    PRESENT | if failure { FAILURE } else { 0 } | if slow { SLOW } else { 0 }
}

/// Aggregated outcomes of a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counts {
    /// Recorded calls.
    pub calls: u64,
    /// Of which failed.
    pub failures: u64,
    /// Of which slow.
    pub slow: u64,
    /// Of which both slow and failed.
    pub slow_failures: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, code: u8) {
        let (calls, failures, slow, slow_failures) = split(code);
        self.calls += calls;
        self.failures += failures;
        self.slow += slow;
        self.slow_failures += slow_failures;
    }

    pub(crate) fn remove(&mut self, code: u8) {
        let (calls, failures, slow, slow_failures) = split(code);
        self.calls -= calls;
        self.failures -= failures;
        self.slow -= slow;
        self.slow_failures -= slow_failures;
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        self.calls += other.calls;
        self.failures += other.failures;
        self.slow += other.slow;
        self.slow_failures += other.slow_failures;
    }

    pub(crate) fn unmerge(&mut self, other: &Self) {
        self.calls -= other.calls;
        self.failures -= other.failures;
        self.slow -= other.slow;
        self.slow_failures -= other.slow_failures;
    }

    /// The failure and slow-call rates in percent, or `None` for both while fewer than
    /// `minimum` calls (or none at all) are recorded — undefined, not −1.
    pub fn rates(&self, minimum: u32) -> Rates {
        if self.calls == 0 || self.calls < u64::from(minimum) {
            return Rates::default();
        }
        let calls = self.calls as f64;
        Rates {
            failure: Some(self.failures as f64 * 100.0 / calls),
            slow: Some(self.slow as f64 * 100.0 / calls),
        }
    }
}

/// `(calls, failures, slow, slow_failures)` contributed by one outcome code.
pub(crate) const fn split(code: u8) -> (u64, u64, u64, u64) {
    let present = (code & PRESENT) as u64;
    let failure = ((code & FAILURE) >> 1) as u64;
    let slow = ((code & SLOW) >> 2) as u64;
    (present, failure, slow, failure & slow)
}

/// Failure and slow-call rates in percent; `None` below the minimum number of calls.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// Failed calls / calls × 100.
    pub failure: Option<f64>,
    /// Slow calls / calls × 100.
    pub slow: Option<f64>,
}

/// The rates that reached their thresholds (a rate **at** its threshold counts).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Exceeded {
    /// The failure rate, if at or above its threshold.
    pub failure: Option<f64>,
    /// The slow-call rate, if at or above its threshold.
    pub slow: Option<f64>,
}

impl Exceeded {
    /// Whether any threshold was reached.
    pub fn any(&self) -> bool {
        self.failure.is_some() || self.slow.is_some()
    }

    /// Why the breaker opens.
    pub fn reason(&self) -> TransitionReason {
        match (self.failure, self.slow) {
            (Some(_), Some(_)) => TransitionReason::FailureAndSlowCallRateExceeded,
            (None, Some(_)) => TransitionReason::SlowCallRateExceeded,
            _ => TransitionReason::FailureRateExceeded,
        }
    }
}

/// Compares rates with the configured thresholds.
pub fn exceeded(rates: Rates, config: &CircuitBreakerConfig) -> Exceeded {
    Exceeded {
        failure: rates
            .failure
            .filter(|rate| *rate >= config.failure_rate_threshold),
        slow: rates
            .slow
            .filter(|rate| *rate >= config.slow_call_rate_threshold),
    }
}

/// The permission to make one call, tagged with the state generation that granted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    generation: u64,
}

impl Ticket {
    pub(crate) const fn from_generation(generation: u64) -> Self {
        Self { generation }
    }

    /// The generation that granted the call.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// A call was not permitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The state that rejected it.
    pub state: State,
    /// The rest of the open wait, when known.
    pub retry_after: Option<Duration>,
}

/// A timer the breaker wants armed: fire [`StateMachine::on_timer`] with it at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    /// What the timer is for.
    pub kind: TimerKind,
    /// The state generation it belongs to (a later state ignores it).
    pub generation: u64,
    /// When it fires.
    pub at: Instant,
}

/// What a [`Timer`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// The open wait is over (automatic open → half-open).
    OpenElapsed,
    /// The half-open maximum wait is over.
    HalfOpenExpired,
}

/// A plainly written sliding window.
#[derive(Clone, Debug)]
enum PlainWindow {
    Count {
        size: usize,
        ring: VecDeque<u8>,
        counts: Counts,
    },
    Time {
        bucket_nanos: u64,
        buckets: u64,
        /// (epoch, counts), oldest first.
        live: VecDeque<(u64, Counts)>,
        counts: Counts,
    },
}

impl PlainWindow {
    fn new(window: SlidingWindow) -> Self {
        match window {
            SlidingWindow::Count(size) => Self::Count {
                size: size as usize,
                ring: VecDeque::with_capacity(size as usize),
                counts: Counts::default(),
            },
            SlidingWindow::Time { size, bucket } => Self::Time {
                bucket_nanos: duration_to_nanos(bucket).max(1),
                buckets: SlidingWindow::bucket_count(size, bucket),
                live: VecDeque::new(),
                counts: Counts::default(),
            },
        }
    }

    fn record(&mut self, now: Instant, code: u8) {
        match self {
            Self::Count { size, ring, counts } => {
                if ring.len() == *size {
                    let oldest = ring.pop_front().expect("a full ring is not empty");
                    counts.remove(oldest);
                }
                ring.push_back(code);
                counts.add(code);
            }
            Self::Time { bucket_nanos, .. } => {
                let epoch = now.as_nanos() / *bucket_nanos;
                self.expire(now);
                self.add_to_bucket(epoch, code);
            }
        }
    }

    /// A window of a new shape with the newest outcomes that fit (see
    /// [`CircuitBreaker::reconfigure`](super::CircuitBreaker::reconfigure)).
    fn resized(&mut self, shape: SlidingWindow, now: Instant) -> Self {
        let mut next = Self::new(shape);
        match (&mut *self, &mut next) {
            (Self::Count { ring, .. }, Self::Count { size, .. }) => {
                let skip = ring.len().saturating_sub(*size);
                let newest: Vec<u8> = ring.iter().skip(skip).copied().collect();
                for code in newest {
                    next.record(now, code);
                }
            }
            (
                Self::Time {
                    bucket_nanos: old_width,
                    ..
                },
                Self::Time {
                    bucket_nanos,
                    buckets,
                    live,
                    counts,
                },
            ) if *old_width == *bucket_nanos => {
                let epoch = now.as_nanos() / *bucket_nanos;
                self.expire(now);
                if let Self::Time { live: old_live, .. } = self {
                    for (bucket_epoch, bucket) in old_live.iter() {
                        if epoch.saturating_sub(*bucket_epoch) < *buckets {
                            live.push_back((*bucket_epoch, *bucket));
                            counts.merge(bucket);
                        }
                    }
                }
            }
            _ => {}
        }
        next
    }

    fn add_to_bucket(&mut self, epoch: u64, code: u8) {
        if let Self::Time { live, counts, .. } = self {
            match live.iter_mut().find(|(e, _)| *e == epoch) {
                Some((_, bucket)) => bucket.add(code),
                None => {
                    let mut bucket = Counts::default();
                    bucket.add(code);
                    live.push_back((epoch, bucket));
                }
            }
            counts.add(code);
        }
    }

    /// Drops the buckets that have left the window at `now`.
    fn expire(&mut self, now: Instant) {
        if let Self::Time {
            bucket_nanos,
            buckets,
            live,
            counts,
        } = self
        {
            let epoch = now.as_nanos() / *bucket_nanos;
            while let Some((oldest, bucket)) = live.front() {
                if epoch.saturating_sub(*oldest) < *buckets {
                    break;
                }
                counts.unmerge(bucket);
                live.pop_front();
            }
        }
    }

    fn counts(&mut self, now: Instant) -> Counts {
        self.expire(now);
        match self {
            Self::Count { counts, .. } | Self::Time { counts, .. } => *counts,
        }
    }
}

/// The breaker's executable specification: every rule of the circuit breaker applied to a
/// plainly written state, one call at a time. See the [module docs](self).
#[derive(Debug)]
pub struct StateMachine {
    name: Arc<str>,
    config: CircuitBreakerConfig,
    random: Arc<dyn RandomSource>,
    state: State,
    generation: u64,
    attempts: u32,
    open_until: Instant,
    half_open_since: Instant,
    half_open_used: u32,
    half_open: Counts,
    window: PlainWindow,
    /// What OPEN and FORCED_OPEN show: the counts of the state that opened.
    frozen: Counts,
    frozen_minimum: u32,
    not_permitted: u64,
    announced_failure: bool,
    announced_slow: bool,
}

impl StateMachine {
    /// A breaker in the configured initial state at `now`.
    pub fn new(
        name: impl Into<Arc<str>>,
        config: CircuitBreakerConfig,
        random: Arc<dyn RandomSource>,
        now: Instant,
    ) -> Self {
        let window = PlainWindow::new(config.sliding_window);
        let mut machine = Self {
            name: name.into(),
            random,
            state: State::Closed,
            generation: 0,
            attempts: 0,
            open_until: now,
            half_open_since: now,
            half_open_used: 0,
            half_open: Counts::default(),
            window,
            frozen: Counts::default(),
            frozen_minimum: config.effective_minimum_number_of_calls(),
            not_permitted: 0,
            announced_failure: false,
            announced_slow: false,
            config,
        };
        let initial = machine.config.initial_state;
        if initial != State::Closed {
            machine.enter(initial, now);
        }
        machine
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The current state generation (bumped by every transition).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Consecutive openings since the breaker was last closed.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The configuration.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.config
    }

    /// Asks permission for a call at `now`.
    ///
    /// # Errors
    ///
    /// [`Rejected`] when the state does not permit the call (the events then include
    /// [`CircuitBreakerEvent::CallNotPermitted`], except in FORCED_OPEN).
    pub fn try_acquire(
        &mut self,
        now: Instant,
        events: &mut Vec<CircuitBreakerEvent>,
    ) -> Result<Ticket, Rejected> {
        match self.state {
            State::Closed | State::Disabled | State::MetricsOnly => Ok(self.ticket()),
            State::ForcedOpen => {
                self.not_permitted += 1;
                Err(Rejected {
                    state: State::ForcedOpen,
                    retry_after: None,
                })
            }
            State::Open if now > self.open_until => {
                self.enter(State::HalfOpen, now);
                self.push_transition(events, State::Open, TransitionReason::OpenWaitElapsed);
                self.try_acquire(now, events)
            }
            State::Open => {
                let retry_after = self.open_until - now;
                Err(self.reject(State::Open, Some(retry_after), events))
            }
            State::HalfOpen => {
                let max_wait = self.config.max_wait_in_half_open;
                if !max_wait.is_zero() && now > self.half_open_since + max_wait {
                    let target = self.config.state_after_half_open_wait;
                    self.enter(target, now);
                    self.push_transition(
                        events,
                        State::HalfOpen,
                        TransitionReason::HalfOpenMaxWaitElapsed,
                    );
                    return self.try_acquire(now, events);
                }
                if self.half_open_used < self.config.permitted_calls_in_half_open {
                    self.half_open_used += 1;
                    Ok(self.ticket())
                } else {
                    Err(self.reject(State::HalfOpen, None, events))
                }
            }
        }
    }

    fn ticket(&self) -> Ticket {
        Ticket {
            generation: self.generation,
        }
    }

    /// A permitted call was abandoned (its future dropped): its half-open slot comes back and
    /// nothing is recorded.
    pub fn release(&mut self, ticket: Ticket) {
        if ticket.generation == self.generation && self.state == State::HalfOpen {
            self.half_open_used = self.half_open_used.saturating_sub(1);
        }
    }

    /// Records a permitted call's outcome. A ticket from an earlier generation is ignored: a
    /// call admitted before a transition never decides the state after it.
    pub fn on_result(
        &mut self,
        ticket: Ticket,
        outcome: Outcome,
        elapsed: Duration,
        now: Instant,
        events: &mut Vec<CircuitBreakerEvent>,
    ) {
        if ticket.generation != self.generation {
            return;
        }
        let failure = match outcome {
            Outcome::Ignored => {
                self.release(ticket);
                return;
            }
            Outcome::Success => false,
            Outcome::Failure => true,
        };
        let slow = is_slow(elapsed, self.config.slow_call_duration_threshold);
        match self.state {
            State::Closed | State::MetricsOnly => {
                self.window.record(now, code(failure, slow));
                let counts = self.window.counts(now);
                let minimum = self.config.effective_minimum_number_of_calls();
                let over = exceeded(counts.rates(minimum), &self.config);
                if !over.any() {
                    return;
                }
                if self.state == State::MetricsOnly {
                    self.announce_once(over, events);
                    return;
                }
                self.push_exceeded(over, events);
                self.enter(State::Open, now);
                self.push_transition(events, State::Closed, over.reason());
            }
            State::HalfOpen => {
                self.half_open.add(code(failure, slow));
                let needed = self.config.half_open_decision_calls();
                if self.half_open.calls < u64::from(needed) {
                    return;
                }
                let over = exceeded(self.half_open.rates(needed), &self.config);
                if over.any() {
                    self.enter(State::Open, now);
                    self.push_transition(events, State::HalfOpen, TransitionReason::ProbesFailed);
                } else {
                    self.enter(State::Closed, now);
                    self.push_transition(
                        events,
                        State::HalfOpen,
                        TransitionReason::ProbesSucceeded,
                    );
                }
            }
            State::Open | State::ForcedOpen | State::Disabled => {}
        }
    }

    /// Moves to `to` by hand, following Resilience4j's transition table. A same-state
    /// transition is silent but still restarts the state (a fresh window for CLOSED, a new
    /// wait for OPEN).
    ///
    /// # Errors
    ///
    /// [`IllegalTransition`] for a transition the table forbids; nothing changes.
    pub fn transition_to(
        &mut self,
        to: State,
        now: Instant,
        events: &mut Vec<CircuitBreakerEvent>,
    ) -> Result<(), IllegalTransition> {
        let from = self.state;
        if !transition_allowed(from, to) {
            return Err(IllegalTransition::new(self.name.clone(), from, to));
        }
        self.enter(to, now);
        if from != to {
            self.push_transition(events, from, TransitionReason::Manual);
        }
        Ok(())
    }

    /// Opens for exactly `wait`, keeping the count of consecutive openings.
    ///
    /// # Errors
    ///
    /// [`IllegalTransition`] from METRICS_ONLY.
    pub fn open_for(
        &mut self,
        wait: Duration,
        now: Instant,
        events: &mut Vec<CircuitBreakerEvent>,
    ) -> Result<(), IllegalTransition> {
        let from = self.state;
        if !transition_allowed(from, State::Open) {
            return Err(IllegalTransition::new(self.name.clone(), from, State::Open));
        }
        self.enter_with(State::Open, now, Some(wait));
        if from != State::Open {
            self.push_transition(events, from, TransitionReason::Manual);
        }
        Ok(())
    }

    /// Back to a fresh CLOSED state: metrics and consecutive openings forgotten.
    pub fn reset(&mut self, now: Instant, events: &mut Vec<CircuitBreakerEvent>) {
        let from = self.state;
        self.enter(State::Closed, now);
        if from != State::Closed {
            self.push_transition(events, from, TransitionReason::Reset);
        }
        events.push(CircuitBreakerEvent::Reset {
            name: self.name.clone(),
        });
    }

    /// The timer the breaker wants armed in its current state, if any.
    pub fn pending_timer(&self) -> Option<Timer> {
        match self.state {
            State::Open if self.config.automatic_half_open => Some(Timer {
                kind: TimerKind::OpenElapsed,
                generation: self.generation,
                at: self.open_until,
            }),
            State::HalfOpen if !self.config.max_wait_in_half_open.is_zero() => Some(Timer {
                kind: TimerKind::HalfOpenExpired,
                generation: self.generation,
                at: self.half_open_since + self.config.max_wait_in_half_open,
            }),
            _ => None,
        }
    }

    /// A timer fired. It is ignored if the state it was armed for is gone.
    pub fn on_timer(&mut self, timer: Timer, now: Instant, events: &mut Vec<CircuitBreakerEvent>) {
        if timer.generation != self.generation {
            return;
        }
        match (timer.kind, self.state) {
            (TimerKind::OpenElapsed, State::Open) => {
                self.enter(State::HalfOpen, now);
                self.push_transition(events, State::Open, TransitionReason::OpenWaitElapsed);
            }
            (TimerKind::HalfOpenExpired, State::HalfOpen) => {
                let target = self.config.state_after_half_open_wait;
                self.enter(target, now);
                self.push_transition(
                    events,
                    State::HalfOpen,
                    TransitionReason::HalfOpenMaxWaitElapsed,
                );
            }
            _ => {}
        }
    }

    /// Replaces the configuration, keeping the state and its counts (a window whose shape
    /// changes starts empty).
    pub fn reconfigure(&mut self, config: CircuitBreakerConfig, now: Instant) {
        if config.sliding_window != self.config.sliding_window {
            self.window = self.window.resized(config.sliding_window, now);
        }
        self.config = config;
    }

    /// The metrics at `now`.
    pub fn metrics(&mut self, now: Instant) -> MetricsSnapshot {
        let (counts, minimum) = match self.state {
            State::Closed | State::MetricsOnly => (
                self.window.counts(now),
                self.config.effective_minimum_number_of_calls(),
            ),
            State::HalfOpen => (self.half_open, self.config.half_open_decision_calls()),
            State::Open | State::ForcedOpen => (self.frozen, self.frozen_minimum),
            State::Disabled => (Counts::default(), 1),
        };
        MetricsSnapshot::new(self.state, counts, minimum, self.not_permitted)
    }

    /// Enters `to`: a new generation and the state's own bookkeeping.
    fn enter(&mut self, to: State, now: Instant) {
        self.enter_with(to, now, None);
    }

    /// Enters `to`; for OPEN, `fixed_wait` replaces the configured wait and leaves the count of
    /// consecutive openings alone (`open_for`).
    fn enter_with(&mut self, to: State, now: Instant, fixed_wait: Option<Duration>) {
        let from = self.state;
        // OPEN shows the counts of the state it leaves; FORCED_OPEN shows nothing.
        match (to, from) {
            (State::Open, State::Closed | State::MetricsOnly) => {
                self.frozen = self.window.counts(now);
                self.frozen_minimum = self.config.effective_minimum_number_of_calls();
            }
            (State::Open, State::HalfOpen) => {
                self.frozen = self.half_open;
                self.frozen_minimum = self.config.half_open_decision_calls();
            }
            (State::Open, State::Disabled) | (State::ForcedOpen, _) => {
                self.frozen = Counts::default();
                self.frozen_minimum = self.config.effective_minimum_number_of_calls();
            }
            _ => {}
        }
        self.generation += 1;
        self.state = to;
        match to {
            State::Closed => {
                self.attempts = 0;
                self.window = PlainWindow::new(self.config.sliding_window);
                self.not_permitted = 0;
            }
            State::Open => {
                // Entering OPEN keeps the not-permitted count of the CLOSED state it leaves
                // (Resilience4j shares that metrics object); other origins start afresh.
                if from != State::Closed {
                    self.not_permitted = 0;
                }
                let wait = match fixed_wait {
                    Some(wait) => wait,
                    None => {
                        self.attempts += 1;
                        self.config.open_wait.wait(self.attempts, &*self.random)
                    }
                };
                self.open_until = now + wait;
            }
            State::HalfOpen => {
                self.half_open_since = now;
                self.half_open_used = 0;
                self.half_open = Counts::default();
                self.not_permitted = 0;
            }
            State::Disabled => {
                self.attempts = 0;
                self.not_permitted = 0;
            }
            State::MetricsOnly => {
                self.attempts = 0;
                self.window = PlainWindow::new(self.config.sliding_window);
                self.not_permitted = 0;
                self.announced_failure = false;
                self.announced_slow = false;
            }
            State::ForcedOpen => {
                self.attempts += 1;
                self.not_permitted = 0;
            }
        }
    }

    /// Counts and reports a call the state does not permit.
    fn reject(
        &mut self,
        state: State,
        retry_after: Option<Duration>,
        events: &mut Vec<CircuitBreakerEvent>,
    ) -> Rejected {
        self.not_permitted += 1;
        events.push(CircuitBreakerEvent::CallNotPermitted {
            name: self.name.clone(),
            state,
        });
        Rejected { state, retry_after }
    }

    fn push_transition(
        &self,
        events: &mut Vec<CircuitBreakerEvent>,
        from: State,
        reason: TransitionReason,
    ) {
        events.push(CircuitBreakerEvent::StateTransition {
            name: self.name.clone(),
            from,
            to: self.state,
            reason,
        });
    }

    fn push_exceeded(&self, over: Exceeded, events: &mut Vec<CircuitBreakerEvent>) {
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
    }

    /// METRICS_ONLY announces each threshold breach once per episode.
    fn announce_once(&mut self, over: Exceeded, events: &mut Vec<CircuitBreakerEvent>) {
        let failure = over.failure.filter(|_| !self.announced_failure);
        let slow = over.slow.filter(|_| !self.announced_slow);
        self.announced_failure |= failure.is_some();
        self.announced_slow |= slow.is_some();
        self.push_exceeded(Exceeded { failure, slow }, events);
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;

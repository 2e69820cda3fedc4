//! The breaker's reference model (test-only): every rule of the circuit breaker applied to a
//! plainly written, single-threaded state — a `VecDeque` count window, a list of time
//! buckets, explicit timers. It is the executable specification the lock-free engine is
//! checked against (`tests.rs`), and the place where each rule's boundaries are tested
//! (`model_tests.rs`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::config::{CircuitBreakerConfig, SlidingWindow};
use super::rules::{Counts, Exceeded, Ticket, code, exceeded, is_slow, transition_allowed};
use super::{
    CircuitBreakerEvent, IllegalTransition, MetricsSnapshot, Outcome, State, TransitionReason,
};
use crate::clock::{Instant, duration_to_nanos};
use crate::retry::RandomSource;
/// A call was not permitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rejected {
    /// The state that rejected it.
    pub(crate) state: State,
    /// The rest of the open wait, when known.
    pub(crate) retry_after: Option<Duration>,
}

/// A timer the breaker wants armed: fire [`StateMachine::on_timer`] with it at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timer {
    /// What the timer is for.
    pub(crate) kind: TimerKind,
    /// The state generation it belongs to (a later state ignores it).
    pub(crate) generation: u64,
    /// When it fires.
    pub(crate) at: Instant,
}

/// What a [`Timer`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerKind {
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
            // The striped window is approximate; the model (run on one thread) takes it for
            // the exact window it approximates, and the property test in `window_tests.rs`
            // checks its bound instead.
            SlidingWindow::Count(size) | SlidingWindow::StripedCount(size) => Self::Count {
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
pub(crate) struct StateMachine {
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
    pub(crate) fn new(
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
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// Consecutive openings since the breaker was last closed.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &CircuitBreakerConfig {
        &self.config
    }

    /// Asks permission for a call at `now`.
    ///
    /// # Errors
    ///
    /// [`Rejected`] when the state does not permit the call (the events then include
    /// [`CircuitBreakerEvent::CallNotPermitted`], except in FORCED_OPEN).
    pub(crate) fn try_acquire(
        &mut self,
        now: Instant,
        events: &mut Vec<CircuitBreakerEvent>,
    ) -> Result<Ticket, Rejected> {
        self.tick(now, events);
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
        Ticket::from_generation(self.generation)
    }

    /// A permitted call was abandoned (its future dropped): its half-open slot comes back and
    /// nothing is recorded.
    pub(crate) fn release(&mut self, ticket: Ticket) {
        if ticket.generation() == self.generation && self.state == State::HalfOpen {
            self.half_open_used = self.half_open_used.saturating_sub(1);
        }
    }

    /// Records a permitted call's outcome. A ticket from an earlier generation is ignored: a
    /// call admitted before a transition never decides the state after it.
    pub(crate) fn on_result(
        &mut self,
        ticket: Ticket,
        outcome: Outcome,
        elapsed: Duration,
        now: Instant,
        events: &mut Vec<CircuitBreakerEvent>,
    ) {
        if ticket.generation() != self.generation {
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
    pub(crate) fn transition_to(
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
    pub(crate) fn open_for(
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
    pub(crate) fn reset(&mut self, now: Instant, events: &mut Vec<CircuitBreakerEvent>) {
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
    pub(crate) fn pending_timer(&self) -> Option<Timer> {
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

    /// Makes the moves time alone decides, if their time has come (at or after the
    /// deadline): what the breaker does whenever it is asked for a permit or its state.
    pub(crate) fn tick(&mut self, now: Instant, events: &mut Vec<CircuitBreakerEvent>) {
        while let Some(timer) = self.pending_timer().filter(|timer| timer.at <= now) {
            self.on_timer(timer, now, events);
        }
    }

    /// A timer fired. It is ignored if the state it was armed for is gone.
    pub(crate) fn on_timer(
        &mut self,
        timer: Timer,
        now: Instant,
        events: &mut Vec<CircuitBreakerEvent>,
    ) {
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
    pub(crate) fn reconfigure(&mut self, config: CircuitBreakerConfig, now: Instant) {
        if config.sliding_window != self.config.sliding_window {
            self.window = self.window.resized(config.sliding_window, now);
        }
        self.config = config;
    }

    /// The metrics at `now`.
    pub(crate) fn metrics(&mut self, now: Instant) -> MetricsSnapshot {
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
#[path = "model_tests.rs"]
mod tests;

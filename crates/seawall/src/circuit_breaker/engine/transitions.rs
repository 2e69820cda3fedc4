//! Transitions: how the engine moves from one state generation to the next, one caller at
//! a time, and tells the listeners once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use super::{Live, Shared, WindowRef, pack_live};
use crate::circuit_breaker::config::{CircuitBreakerConfig, SlidingWindow};
use crate::circuit_breaker::hot::twin;
use crate::circuit_breaker::probes::ProbeSlots;
use crate::circuit_breaker::rules::{Counts, Exceeded, transition_allowed};
use crate::circuit_breaker::window::{AtomicCounts, Window};
use crate::circuit_breaker::{CircuitBreakerEvent, IllegalTransition, State, TransitionReason};
use crate::clock::{Instant, duration_to_nanos};
use crate::config::ConfigError;

impl Shared {
    /// Performs `expected generation → to` if the generation is still current; only one
    /// caller can win, and only it emits the events (after releasing the lock, so a listener
    /// may call back into the breaker). `over` holds the rates that tripped a CLOSED breaker.
    /// Returns whether this caller made the transition.
    pub(super) fn transition(
        &self,
        expected: u64,
        to: State,
        reason: TransitionReason,
        now: Instant,
        over: Exceeded,
    ) -> bool {
        let from = {
            let _serial = self.lock();
            let current = self.live.load_full();
            if current.generation != expected {
                return false;
            }
            self.install(&current, to, now, None);
            current.state
        };
        if let Some(rate) = over.failure {
            self.listeners
                .emit(|| CircuitBreakerEvent::FailureRateExceeded {
                    name: self.name.clone(),
                    rate,
                });
        }
        if let Some(rate) = over.slow {
            self.listeners
                .emit(|| CircuitBreakerEvent::SlowCallRateExceeded {
                    name: self.name.clone(),
                    rate,
                });
        }
        if from != to {
            self.listeners
                .emit(|| CircuitBreakerEvent::StateTransition {
                    name: self.name.clone(),
                    from,
                    to,
                    reason,
                });
        }
        true
    }

    /// Makes `next` the current state. Must hold the transition lock.
    pub(super) fn publish(&self, next: Live) {
        let next = Arc::new(next);
        self.live.store(next.clone());
        self.publish_hot(&next);
    }

    /// Publishes `live`'s `hot` word (and the slow-call threshold the closed path reads
    /// with it). Must hold the transition lock.
    pub(super) fn publish_hot(&self, live: &Live) {
        let threshold = live
            .config
            .slow_call_duration_threshold
            .map_or(u64::MAX, duration_to_nanos);
        self.slow_threshold.store(threshold, Ordering::Relaxed);
        // Release (in `publish`): a reader of the new word finds `live` and the threshold
        // already current.
        self.hot.publish(pack_live(live));
    }

    /// A fresh, empty window of the current one's shape for a new CLOSED state: the other
    /// window of its pair, created or cleared. Must hold the transition lock.
    fn fresh_window(&self, current: &WindowRef, shape: SlidingWindow, now: Instant) -> WindowRef {
        let twin = match current {
            WindowRef::Table(index) => twin(*index),
            WindowRef::Owned(_) => return WindowRef::Owned(Arc::new(Window::new(shape, now))),
        };
        let Some(cell) = self.windows.get(twin) else {
            return WindowRef::Owned(Arc::new(Window::new(shape, now)));
        };
        let mut created = false;
        let window = cell.get_or_init(|| {
            created = true;
            Box::new(Window::new(shape, now))
        });
        if !created {
            window.clear(now);
        }
        WindowRef::Table(twin)
    }

    /// A window of a new shape holding `current`'s newest outcomes: the next free pair of
    /// the table, or an idle pair of that shape, or else one of the state's own. Must hold
    /// the transition lock.
    fn reshaped_window(
        &self,
        current: &WindowRef,
        shape: SlidingWindow,
        now: Instant,
    ) -> WindowRef {
        let (old, in_use) = match current {
            WindowRef::Table(index) => (self.window(*index), Some(index & !1)),
            WindowRef::Owned(window) => (Some(&**window), None),
        };
        let Some(old) = old else {
            return WindowRef::Owned(Arc::new(Window::new(shape, now)));
        };
        for pair in (0..self.windows.len()).step_by(2) {
            if Some(pair) == in_use {
                continue;
            }
            let mut created = false;
            let window = self.windows[pair].get_or_init(|| {
                created = true;
                Box::new(old.resized(shape, now))
            });
            if created {
                return WindowRef::Table(pair);
            }
            if window.has_shape(shape) {
                window.clear(now);
                window.refill_from(old, now);
                return WindowRef::Table(pair);
            }
        }
        WindowRef::Owned(Arc::new(old.resized(shape, now)))
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.transitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Builds and publishes the state that follows `current`. Must hold the transition lock.
    /// `fixed_wait` is `open_for`'s wait; `config` replaces the configuration (same state).
    pub(super) fn install(
        &self,
        current: &Live,
        to: State,
        now: Instant,
        fixed_wait: Option<Duration>,
    ) {
        let config = current.config.clone();
        let (frozen, frozen_minimum) = match (to, current.state) {
            (State::Open, State::Closed | State::MetricsOnly) => (
                self.window_of(current)
                    .map_or_else(Counts::default, |window| window.counts(|| now)),
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
            State::Closed | State::MetricsOnly => {
                self.fresh_window(&current.window, config.sliding_window, now)
            }
            _ => current.window.clone(),
        };
        self.evaluate_next.store(false, Ordering::Relaxed);
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
            half_open_used: Arc::new(ProbeSlots::new()),
            half_open: AtomicCounts::default(),
            window,
            frozen,
            frozen_minimum,
            not_permitted: AtomicU64::new(not_permitted),
            announced_failure: AtomicBool::new(false),
            announced_slow: AtomicBool::new(false),
        };
        let deadline = Self::deadline(&next).map(|(deadline, ..)| deadline);
        let generation = next.generation;
        self.publish(next);
        if let Some(deadline) = deadline {
            self.arm_timer(deadline, generation);
        }
    }

    /// Announces the end of a state that ends by itself on time: a timer task on the current
    /// tokio runtime, if there is one. Without one, the same transition is made by the next
    /// permission request or state read ([`Shared::current`]).
    pub(super) fn arm_timer(&self, deadline: Instant, generation: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = self.this.clone();
        let sleep = self.clock.sleep_until(deadline);
        runtime.spawn(async move {
            sleep.await;
            if let Some(shared) = this.upgrade() {
                let live = shared.live.load();
                if live.generation == generation {
                    shared.time_transition(&live);
                }
            }
        });
    }

    /// Delivers events gathered under the transition lock, after it is released.
    pub(super) fn emit_all(&self, events: Vec<CircuitBreakerEvent>) {
        for event in events {
            self.listeners.emit(|| event);
        }
    }

    /// A manual transition: `to` replaces the current state if the table allows it.
    pub(crate) fn manual(
        &self,
        to: State,
        fixed_wait: Option<Duration>,
    ) -> Result<(), IllegalTransition> {
        let mut events = Vec::new();
        {
            let _serial = self.lock();
            let current = self.live.load_full();
            if !transition_allowed(current.state, to) {
                return Err(IllegalTransition::new(self.name.clone(), current.state, to));
            }
            let now = self.clock.now();
            self.install(&current, to, now, fixed_wait);
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

    pub(crate) fn reset(&self) {
        let mut events = Vec::new();
        {
            let _serial = self.lock();
            let current = self.live.load_full();
            let now = self.clock.now();
            // A reset forgets everything, consecutive openings included.
            let window = self.fresh_window(&current.window, current.config.sliding_window, now);
            let fresh = Self::initial_live(
                current.config.clone(),
                State::Closed,
                current.generation,
                now,
                window,
            );
            self.evaluate_next.store(false, Ordering::Relaxed);
            self.publish(fresh);
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

    /// A CLOSED state of generation `previous + 1`, recording into window `window`.
    pub(super) fn initial_live(
        config: Arc<CircuitBreakerConfig>,
        state: State,
        previous: u64,
        now: Instant,
        window: WindowRef,
    ) -> Live {
        Live {
            state,
            generation: previous + 1,
            attempts: 0,
            open_until: now,
            half_open_since: now,
            half_open_used: Arc::new(ProbeSlots::new()),
            half_open: AtomicCounts::default(),
            window,
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
    pub(crate) fn reconfigure(&self, config: CircuitBreakerConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let _serial = self.lock();
        let current = self.live.load_full();
        let now = self.clock.now();
        let window = if config.sliding_window == current.config.sliding_window {
            current.window.clone()
        } else {
            self.reshaped_window(&current.window, config.sliding_window, now)
        };
        let next = Live {
            state: current.state,
            generation: current.generation,
            config: Arc::new(config),
            attempts: current.attempts,
            open_until: current.open_until,
            half_open_since: current.half_open_since,
            // The same slots: a probe admitted through the replaced generation stays
            // counted, and its release lands in the slots that counted it.
            half_open_used: current.half_open_used.clone(),
            half_open: AtomicCounts::default(),
            window,
            frozen: current.frozen,
            frozen_minimum: current.frozen_minimum,
            not_permitted: AtomicU64::new(current.not_permitted.load(Ordering::Relaxed)),
            announced_failure: AtomicBool::new(current.announced_failure.load(Ordering::Relaxed)),
            announced_slow: AtomicBool::new(current.announced_slow.load(Ordering::Relaxed)),
        };
        self.evaluate_next.store(true, Ordering::Relaxed);
        next.half_open.add_counts(&current.half_open.load());
        self.publish(next);
        Ok(())
    }
}

//! The lock-free engine behind a [`CircuitBreaker`](super::CircuitBreaker): admission,
//! recording and transitions.
//!
//! The closed path is lock-free: one atomic load of the `hot` word (state, slow-call tracking,
//! window and generation) admits a call; recording loads the `hot` word again and writes the
//! outcome into the window it names with atomics. Only a call that may change the breaker's
//! state (one that can raise a rate) loads the state generation (an `ArcSwap`) to evaluate
//! the thresholds.
//!
//! Windows live in a table of [`WINDOW_SLOTS`] entries set once each, in pairs of the same
//! shape: a new CLOSED state clears the other window of its pair, so a call still recording
//! into the previous CLOSED state's window does not land in the fresh one (it would have to
//! stall across two whole CLOSED states: the loom models in `hot_loom_tests.rs` check the
//! first and find the second). The `hot` word's protocol is `hot.rs`, on `crate::sync`. A
//! reconfiguration that changes the window's shape takes the next free pair, or reuses an
//! idle pair of that shape; with all pairs taken by other shapes the window is owned by the
//! state generation and recorded through it, as every state's window was before the table
//! (one `ArcSwap` load more per call). Transitions are serialised by a mutex and published by
//! swapping the state and then the `hot` word; exactly one caller performs each transition
//! and emits its event. Half-open probe slots are an atomic counter of the generation that
//! issued them, so the number of probes never exceeds the limit.
//!
//! Time-driven transitions (open → half-open with `automatic_half_open`, and the end of
//! half-open's maximum wait) are decided from the clock whenever the breaker is asked for a
//! permit or for its state, so they happen with or without a runtime; where a tokio runtime
//! is current at the transition, a timer also announces them on time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};

use super::config::CircuitBreakerConfig;
use super::hot::{Hot, HotWord};
use super::metrics::{MetricsSnapshot, Totals};
use super::probes::ProbeSlots;
use super::rules::{Counts, Exceeded, Ticket, code, exceeded, is_slow};
use super::window::{AtomicCounts, Window};
use super::{CircuitBreakerEvent, Outcome, State, TransitionReason};
use crate::clock::{Clock, Instant};
use crate::event::Listeners;
use crate::retry::RandomSource;

mod timing;
mod transitions;

use self::timing::Start;

/// One state generation: everything that a transition replaces at once.
#[derive(Debug)]
struct Live {
    state: State,
    generation: u64,
    config: Arc<CircuitBreakerConfig>,
    attempts: u32,
    open_until: Instant,
    half_open_since: Instant,
    /// Shared by the generations of one HALF_OPEN state (a reconfiguration keeps it).
    half_open_used: Arc<ProbeSlots>,
    half_open: AtomicCounts,
    /// The CLOSED / METRICS_ONLY window.
    window: WindowRef,
    /// What OPEN and FORCED_OPEN show.
    frozen: Counts,
    frozen_minimum: u32,
    not_permitted: AtomicU64,
    announced_failure: AtomicBool,
    announced_slow: AtomicBool,
}

/// Entries in the window table: pairs of windows of one shape.
pub(crate) const WINDOW_SLOTS: usize = 14;

/// Where a state's window is.
#[derive(Clone, Debug)]
pub(super) enum WindowRef {
    /// In the window table, reached from the `hot` word on the closed path.
    Table(usize),
    /// Owned by the state generation, once every pair of the table holds another shape:
    /// recorded through the state generation (an `ArcSwap` load per call).
    Owned(Arc<Window>),
}

impl WindowRef {
    /// The index the `hot` word carries: the table entry, or [`Hot::OWNED`].
    fn index(&self) -> usize {
        match self {
            Self::Table(index) => *index,
            Self::Owned(_) => Hot::OWNED,
        }
    }
}

pub(crate) struct Shared {
    pub(crate) name: Arc<str>,
    /// What a rejection points to, one per state (built once: a rejection allocates nothing).
    pub(crate) origins: crate::error::BreakerOrigins,
    live: ArcSwap<Live>,
    /// The current state, slow-call tracking, window and generation in one word, for the
    /// admission fast path (see `hot.rs`); written after `live` by every state change.
    hot: HotWord,
    /// The windows, set once each; the `hot` word and [`Live::window`] name the current one.
    windows: Box<[OnceLock<Box<Window>>]>,
    /// The slow-call threshold in nanoseconds (`u64::MAX`: none), published with `hot`.
    slow_threshold: AtomicU64,
    /// Set by a reconfiguration: the next recorded call evaluates the rates even if it could
    /// not have raised them (the thresholds may have moved under them).
    evaluate_next: AtomicBool,
    pub(crate) totals: Totals,
    /// Serialises transitions; never taken on the closed path.
    transitions: Mutex<()>,
    pub(crate) clock: Clock,
    /// Whether a call run as a future is timed lazily (see [`Start::FirstPoll`]): on tokio's
    /// clock only, whose reads cost a `clock_gettime` each.
    lazy_timing: bool,
    random: Arc<dyn RandomSource>,
    pub(crate) listeners: Listeners<CircuitBreakerEvent>,
    per_call_events: bool,
    this: Weak<Self>,
}

/// The `hot` word that publishes `live` (the protocol lives in `hot.rs`, loom-checked).
fn pack_live(live: &Live) -> u64 {
    Hot::pack(
        live.state,
        live.config.slow_call_duration_threshold.is_some(),
        live.window.index(),
        live.generation,
    )
}

/// How a call admitted under `word` (a state that permits all) is recorded.
#[inline]
fn admission(word: u64) -> Admission {
    if Hot::unrecorded(word) {
        Admission::Unrecorded
    } else {
        Admission::Plain
    }
}

/// What a permitted call holds: the generation that admitted it, when it started (if
/// slow-call tracking is on), and what kind of admission it was. The public permits
/// (`permit.rs`) wrap it; giving it back unrecorded ([`Shared::release`]) returns a half-open
/// slot.
#[must_use = "a slot is recorded or released"]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    ticket: Ticket,
    start: Start,
    admission: Admission,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admission {
    /// Closed or metrics-only: recorded into the window.
    Plain,
    /// A half-open probe: holds one of the limited slots.
    Probe,
    /// Disabled: nothing is recorded, not even the call's totals.
    Unrecorded,
}

impl Slot {
    #[cfg(test)]
    pub(crate) fn is_probe(&self) -> bool {
        self.admission == Admission::Probe
    }

    #[cfg(test)]
    pub(crate) fn generation(&self) -> u64 {
        self.ticket.generation()
    }
}

/// Why a call was not permitted: the rejecting state and the rest of its open wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) state: State,
    pub(crate) retry_after: Option<Duration>,
}

impl Shared {
    /// A breaker in `config`'s initial state. The configuration must be valid.
    pub(crate) fn new(
        name: Arc<str>,
        config: CircuitBreakerConfig,
        clock: Clock,
        random: Arc<dyn RandomSource>,
        per_call_events: bool,
    ) -> Arc<Self> {
        let now = clock.now();
        let initial = config.initial_state;
        let config = Arc::new(config);
        // Boxed, so an unused entry takes a pointer and a state word, not a whole window.
        let windows: Box<[OnceLock<Box<Window>>]> =
            (0..WINDOW_SLOTS).map(|_| OnceLock::new()).collect();
        if let Some(first) = windows.first() {
            let _ = first.set(Box::new(Window::new(config.sliding_window, now)));
        }
        let shared = Arc::new_cyclic(|this| Self {
            origins: crate::error::BreakerOrigins::new(&name),
            name,
            hot: HotWord::new(),
            windows,
            slow_threshold: AtomicU64::new(u64::MAX),
            evaluate_next: AtomicBool::new(false),
            live: ArcSwap::from_pointee(Self::initial_live(
                config,
                State::Closed,
                0,
                now,
                WindowRef::Table(0),
            )),
            transitions: Mutex::new(()),
            totals: Totals::default(),
            lazy_timing: clock.is_tokio(),
            clock,
            random,
            listeners: Listeners::new(),
            per_call_events,
            this: this.clone(),
        });
        {
            let _serial = shared.lock();
            let current = shared.live.load_full();
            if initial == State::Closed {
                shared.publish_hot(&current);
            } else {
                shared.install(&current, initial, now, None);
            }
        }
        shared
    }

    /// Asks permission for a call timed precisely (the permit API).
    #[inline]
    pub(crate) fn acquire(&self) -> Result<Slot, Rejection> {
        self.acquire_timed(false)
    }

    /// Asks permission for a call run as a future, which reports a pending poll through
    /// [`polled_pending`](Self::polled_pending): timed lazily on tokio's clock (see [`Start`]).
    #[inline]
    pub(crate) fn acquire_lazy(&self) -> Result<Slot, Rejection> {
        self.acquire_timed(true)
    }

    // Always inlined: `lazy` is a constant at each caller, and the closed path is this load
    // and a branch.
    #[inline(always)]
    fn acquire_timed(&self, lazy: bool) -> Result<Slot, Rejection> {
        // Acquire (in `load`): pairs with the Release store in `publish`.
        let word = self.hot.load();
        if let Some(generation) = Hot::permits_all(word) {
            let start = if word & Hot::SLOW != 0 {
                self.start(lazy)
            } else {
                Start::Untimed
            };
            return Ok(Slot {
                ticket: Ticket::from_generation(generation),
                start,
                admission: admission(word),
            });
        }
        self.acquire_slow(lazy)
    }

    #[cold]
    fn acquire_slow(&self, lazy: bool) -> Result<Slot, Rejection> {
        // Each transition below moves strictly forward; two are the most one call can see
        // (open → half-open → open/closed on an expired half-open wait).
        for _ in 0..4 {
            let live = self.live.load();
            if self.time_transition(&live) {
                continue;
            }
            match live.state {
                State::Closed | State::Disabled | State::MetricsOnly => {
                    let start = self.start_under(&live.config, lazy);
                    let admission = if live.state == State::Disabled {
                        Admission::Unrecorded
                    } else {
                        Admission::Plain
                    };
                    return Ok(Slot {
                        ticket: Ticket::from_generation(live.generation),
                        start,
                        admission,
                    });
                }
                State::ForcedOpen => {
                    live.not_permitted.fetch_add(1, Ordering::Relaxed);
                    self.totals.count(&self.totals.not_permitted);
                    return Err(Rejection {
                        state: State::ForcedOpen,
                        retry_after: None,
                    });
                }
                State::Open => {
                    // The first permission request strictly after the wait becomes a probe.
                    let now = self.clock.now();
                    if now > live.open_until {
                        self.transition(
                            live.generation,
                            State::HalfOpen,
                            TransitionReason::OpenWaitElapsed,
                            now,
                            Exceeded::default(),
                        );
                        continue;
                    }
                    self.not_permitted(&live);
                    return Err(Rejection {
                        state: State::Open,
                        retry_after: Some(live.open_until - now),
                    });
                }
                State::HalfOpen => {
                    let permitted = live.config.permitted_calls_in_half_open;
                    if live.half_open_used.try_take(permitted) {
                        let start = self.start_under(&live.config, lazy);
                        return Ok(Slot {
                            ticket: Ticket::from_generation(live.generation),
                            start,
                            admission: Admission::Probe,
                        });
                    }
                    self.not_permitted(&live);
                    return Err(Rejection {
                        state: State::HalfOpen,
                        retry_after: None,
                    });
                }
            }
        }
        // Only reachable if transitions keep racing ahead of this caller: reject, safely.
        Err(Rejection {
            state: State::Open,
            retry_after: None,
        })
    }

    /// The current state generation, after any transition that time alone decides.
    fn current(&self) -> Guard<Arc<Live>> {
        for _ in 0..4 {
            let live = self.live.load();
            if !self.time_transition(&live) {
                return live;
            }
        }
        self.live.load()
    }

    /// When the state `live` ends by itself, where it goes and why: OPEN → HALF_OPEN once the
    /// wait is over (with `automatic_half_open`), HALF_OPEN → the configured state once its
    /// maximum wait is over.
    fn deadline(live: &Live) -> Option<(Instant, State, TransitionReason)> {
        match live.state {
            State::Open if live.config.automatic_half_open => Some((
                live.open_until,
                State::HalfOpen,
                TransitionReason::OpenWaitElapsed,
            )),
            State::HalfOpen if !live.config.max_wait_in_half_open.is_zero() => Some((
                live.half_open_since + live.config.max_wait_in_half_open,
                live.config.state_after_half_open_wait,
                TransitionReason::HalfOpenMaxWaitElapsed,
            )),
            _ => None,
        }
    }

    /// Makes the transition time alone decides for `live`'s state if its deadline has come;
    /// returns whether `live` is no longer current. Decided from the clock, so it happens
    /// whether or not a timer could be armed.
    fn time_transition(&self, live: &Live) -> bool {
        let Some((deadline, to, reason)) = Self::deadline(live) else {
            return false;
        };
        let now = self.clock.now();
        if now < deadline {
            return false;
        }
        self.transition(live.generation, to, reason, now, Exceeded::default());
        true
    }

    /// Counts a rejection and reports it.
    fn not_permitted(&self, live: &Live) {
        live.not_permitted.fetch_add(1, Ordering::Relaxed);
        self.totals.count(&self.totals.not_permitted);
        // Per call: delivered to listeners, never traced, so built only for a listener.
        self.listeners
            .emit_to_listeners(|| CircuitBreakerEvent::CallNotPermitted {
                name: self.name.clone(),
                state: live.state,
            });
    }

    /// An abandoned call: gives back its half-open slot, records nothing.
    pub(crate) fn release(&self, slot: &Slot) {
        if slot.admission != Admission::Probe {
            return; // only probes hold anything
        }
        let live = self.live.load();
        if live.generation == slot.ticket.generation() && live.state == State::HalfOpen {
            live.half_open_used.give_back();
        }
    }

    /// The window at `index` of the table.
    #[inline]
    pub(super) fn window(&self, index: usize) -> Option<&Window> {
        self.windows
            .get(index)
            .and_then(OnceLock::get)
            .map(|window| &**window)
    }

    /// The window of state generation `live`.
    fn window_of<'a>(&'a self, live: &'a Live) -> Option<&'a Window> {
        match &live.window {
            WindowRef::Table(index) => self.window(*index),
            WindowRef::Owned(window) => Some(window),
        }
    }

    /// Records a finished call's outcome.
    #[inline]
    pub(crate) fn record(&self, slot: Slot, outcome: Outcome) {
        if !(slot.admission == Admission::Plain
            && outcome == Outcome::Success
            && self.known_not_slow(&slot)
            && self.record_plain_success(slot.ticket))
        {
            self.record_outcome(slot, outcome);
        }
    }

    /// The closed path's common case, inlined into the caller: a success known not to be
    /// slow without a clock read (untimed, or finished on its first poll within the
    /// threshold: see `timing.rs`) admitted by the current CLOSED / METRICS_ONLY state. Returns whether it was recorded (`false`:
    /// nothing was done, take the general path). In a full window whose replaced position
    /// also held a plain success it is one `fetch_add` and loads.
    #[inline]
    fn record_plain_success(&self, ticket: Ticket) -> bool {
        if self.per_call_events {
            return false;
        }
        let Some(window) = self
            .hot
            .recording_window(ticket.generation())
            .and_then(|index| self.window(index))
        else {
            return false;
        };
        self.totals.count(&self.totals.successful);
        // A time window reads the clock for its bucket; the evaluation shares the reading.
        let mut cached_now = None;
        let clock = &self.clock;
        let mut now = || *cached_now.get_or_insert_with(|| clock.now());
        let replaced = window.record(false, false, &mut now);
        if !replaced || self.evaluate_next.load(Ordering::Relaxed) {
            self.after_record(window, ticket, false, false, replaced, now);
        }
        true
    }

    /// Records a finished call's outcome: the general path.
    #[inline(never)]
    fn record_outcome(&self, slot: Slot, outcome: Outcome) {
        match slot.admission {
            Admission::Unrecorded => return, // admitted by DISABLED: nothing is recorded
            Admission::Probe => return self.record_in(&self.live.load(), slot, outcome),
            Admission::Plain => {}
        }
        let failure = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Ignored => return self.record_in(&self.live.load(), slot, outcome),
        };
        if self.per_call_events {
            return self.record_in(&self.live.load(), slot, outcome);
        }
        // The closed path: the `hot` word names the generation and its window.
        let window = self
            .hot
            .recording_window(slot.ticket.generation())
            .and_then(|index| self.window(index));
        match window {
            Some(window) => {
                self.totals.count(if failure {
                    &self.totals.failed
                } else {
                    &self.totals.successful
                });
                let mut cached_now = None;
                let clock = &self.clock;
                let mut now = || *cached_now.get_or_insert_with(|| clock.now());
                // An untimed call (no slow-call tracking) reads neither the threshold nor a clock.
                let slow = !matches!(slot.start, Start::Untimed) && {
                    let threshold = self.slow_threshold.load(Ordering::Relaxed);
                    Self::elapsed_nanos(&slot, &mut now).is_some_and(|elapsed| elapsed > threshold)
                };
                self.record_closed(window, slot.ticket, failure, slow, &mut now);
            }
            _ => self.record_in(&self.live.load(), slot, outcome),
        }
    }

    /// Records into a CLOSED / METRICS_ONLY window and evaluates the rates if this outcome
    /// can have changed the verdict.
    #[inline]
    fn record_closed(
        &self,
        window: &Window,
        ticket: Ticket,
        failure: bool,
        slow: bool,
        mut now: impl FnMut() -> Instant,
    ) {
        let replaced = window.record(failure, slow, &mut now);
        // A plain success can raise neither rate. In a full count window it cannot bring
        // the window to its minimum either (the steady state, decided here inline); in a
        // time window holding no failure and no slow call both rates are 0, under any
        // (positive) threshold. Either way there is nothing to evaluate, unless a
        // reconfiguration moved the thresholds since the last evaluation. Deciding this
        // takes loads only.
        if !failure && !slow && replaced && !self.evaluate_next.load(Ordering::Relaxed) {
            return;
        }
        self.after_record(window, ticket, failure, slow, replaced, now);
    }

    /// The rest of [`record_closed`](Self::record_closed), out of the steady state's line.
    #[inline(never)]
    fn after_record(
        &self,
        window: &Window,
        ticket: Ticket,
        failure: bool,
        slow: bool,
        settled: bool,
        now: impl FnMut() -> Instant,
    ) {
        if settled && !failure && !slow && !self.evaluate_next.load(Ordering::Relaxed) {
            return;
        }
        self.evaluate(window, ticket, now);
    }

    #[cold]
    fn evaluate(&self, window: &Window, ticket: Ticket, mut now: impl FnMut() -> Instant) {
        let live = self.live.load();
        if live.generation != ticket.generation()
            || !matches!(live.state, State::Closed | State::MetricsOnly)
            || !self
                .window_of(&live)
                .is_some_and(|current| std::ptr::eq(current, window))
        {
            return; // the state moved on while this call recorded
        }
        if self.evaluate_next.load(Ordering::Relaxed) {
            self.evaluate_next.store(false, Ordering::Relaxed);
        }
        let counts = window.counts(&mut now);
        let over = exceeded(
            counts.rates(live.config.effective_minimum_number_of_calls()),
            &live.config,
        );
        if !over.any() {
            return;
        }
        if live.state == State::MetricsOnly {
            self.announce_once(&live, over);
        } else {
            let now = now();
            self.transition(live.generation, State::Open, over.reason(), now, over);
        }
    }

    fn record_in(&self, live: &Live, slot: Slot, outcome: Outcome) {
        if slot.admission == Admission::Unrecorded {
            return;
        }
        let mut cached_now = None;
        let clock = &self.clock;
        let mut now = || *cached_now.get_or_insert_with(|| clock.now());
        let elapsed = Self::elapsed_nanos(&slot, &mut now).map(Duration::from_nanos);
        self.totals.count(match outcome {
            Outcome::Success => &self.totals.successful,
            Outcome::Failure => &self.totals.failed,
            Outcome::Ignored => &self.totals.ignored,
        });
        if live.generation != slot.ticket.generation() {
            return; // admitted by an earlier state: never applied to a newer one
        }
        if self.per_call_events {
            self.listeners.emit_to_listeners(|| {
                let name = self.name.clone();
                match outcome {
                    Outcome::Success => CircuitBreakerEvent::Success { name, elapsed },
                    Outcome::Failure => CircuitBreakerEvent::Error { name, elapsed },
                    Outcome::Ignored => CircuitBreakerEvent::Ignored { name, elapsed },
                }
            });
        }
        let failure = match outcome {
            Outcome::Ignored => {
                self.release(&slot);
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
                if let Some(window) = self.window_of(live) {
                    self.record_closed(window, slot.ticket, failure, slow, &mut now);
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
                    self.transition(live.generation, to, reason, now, Exceeded::default());
                }
            }
            State::Open | State::ForcedOpen | State::Disabled => {}
        }
    }

    fn announce_once(&self, live: &Live, over: Exceeded) {
        if let Some(rate) = over.failure
            && !live.announced_failure.swap(true, Ordering::AcqRel)
        {
            self.listeners
                .emit(|| CircuitBreakerEvent::FailureRateExceeded {
                    name: self.name.clone(),
                    rate,
                });
        }
        if let Some(rate) = over.slow
            && !live.announced_slow.swap(true, Ordering::AcqRel)
        {
            self.listeners
                .emit(|| CircuitBreakerEvent::SlowCallRateExceeded {
                    name: self.name.clone(),
                    rate,
                });
        }
    }

    pub(crate) fn metrics(&self) -> MetricsSnapshot {
        let live = self.current();
        let (counts, minimum) = match live.state {
            State::Closed | State::MetricsOnly => (
                self.window_of(&live)
                    .map_or_else(Counts::default, |window| window.counts(|| self.clock.now())),
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

    #[cfg(test)]
    pub(crate) fn generation(&self) -> u64 {
        self.live.load().generation
    }

    /// The current state (after any transition time alone decides).
    pub(crate) fn state(&self) -> State {
        self.current().state
    }

    /// The current configuration.
    pub(crate) fn config(&self) -> CircuitBreakerConfig {
        (*self.live.load().config).clone()
    }

    /// The rest of the open wait, while the breaker is OPEN.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        let live = self.current();
        (live.state == State::Open).then(|| live.open_until - self.clock.now())
    }

    /// Whether a call would be permitted now, without taking a permit or a probe slot.
    pub(crate) fn is_call_permitted(&self) -> bool {
        let live = self.current();
        match live.state {
            State::Closed | State::Disabled | State::MetricsOnly => true,
            State::ForcedOpen => false,
            State::Open => self.clock.now() > live.open_until,
            State::HalfOpen => {
                live.half_open_used.taken() < live.config.permitted_calls_in_half_open
            }
        }
    }

    /// Starts tracking cumulative totals (for metrics output and `call_totals`).
    pub(crate) fn track_totals(&self) {
        self.totals.tracking.store(true, Ordering::Relaxed);
    }
}

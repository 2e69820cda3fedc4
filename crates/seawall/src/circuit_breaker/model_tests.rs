//! Every rule and boundary of the breaker, on the pure state machine.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::circuit_breaker::CircuitBreakerBuilder;
use crate::circuit_breaker::CircuitBreakerEvent as Ev;
use crate::circuit_breaker::config::{CircuitBreakerConfig, SlidingWindow};
use crate::clock::Instant;
use crate::retry::{Backoff, SplitMix64};

const S: Outcome = Outcome::Success;
const F: Outcome = Outcome::Failure;
const I: Outcome = Outcome::Ignored;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// A test harness: the machine, a clock, and the events so far.
struct Harness {
    machine: StateMachine,
    now: Instant,
    events: Vec<Ev>,
}

impl Harness {
    fn new(config: CircuitBreakerConfig) -> Self {
        Self {
            machine: StateMachine::new(
                "pg",
                config,
                Arc::new(SplitMix64::seeded(1)),
                Instant::ZERO,
            ),
            now: Instant::ZERO,
            events: Vec::new(),
        }
    }

    fn count(size: u32, minimum: u32) -> Self {
        Self::new(
            CircuitBreakerConfig::builder()
                .sliding_window(SlidingWindow::count(size))
                .minimum_number_of_calls(minimum)
                .wait_in_open(ms(1_000))
                .permitted_calls_in_half_open(3)
                .build_config()
                .unwrap(),
        )
    }

    fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
    }

    fn acquire(&mut self) -> Result<Ticket, Rejected> {
        self.machine.try_acquire(self.now, &mut self.events)
    }

    /// A whole call: permission, `elapsed` of work, result.
    fn call(&mut self, outcome: Outcome, elapsed: Duration) -> Result<(), Rejected> {
        let ticket = self.acquire()?;
        self.advance(elapsed);
        self.machine
            .on_result(ticket, outcome, elapsed, self.now, &mut self.events);
        Ok(())
    }

    fn calls(&mut self, outcomes: &[Outcome]) {
        for outcome in outcomes {
            self.call(*outcome, Duration::ZERO).expect("permitted");
        }
    }

    fn state(&self) -> State {
        self.machine.state()
    }

    fn metrics(&mut self) -> MetricsSnapshot {
        self.machine.metrics(self.now)
    }

    fn transitions(&self) -> Vec<(State, State)> {
        self.events
            .iter()
            .filter_map(|event| match event {
                Ev::StateTransition { from, to, .. } => Some((*from, *to)),
                _ => None,
            })
            .collect()
    }

    fn trip(&mut self) {
        let size = match self.machine.config().sliding_window {
            SlidingWindow::Count(size) | SlidingWindow::StripedCount(size) => size,
            SlidingWindow::Time { .. } => self.machine.config().minimum_number_of_calls,
        };
        for _ in 0..size {
            if self.state() != State::Closed {
                break;
            }
            self.call(F, Duration::ZERO).unwrap();
        }
        assert_eq!(self.state(), State::Open);
    }
}

#[test]
fn a_failure_rate_equal_to_the_threshold_opens() {
    let mut h = Harness::count(4, 4);
    h.calls(&[S, F, S]);
    assert_eq!(
        h.state(),
        State::Closed,
        "below the minimum nothing happens"
    );
    h.calls(&[F]); // 2 of 4 = 50 % = threshold
    assert_eq!(h.state(), State::Open);
    assert_eq!(h.transitions(), [(State::Closed, State::Open)]);
    assert!(matches!(h.events[0], Ev::FailureRateExceeded { rate, .. } if rate == 50.0));
}

#[test]
fn a_failure_rate_just_below_the_threshold_stays_closed() {
    let mut h = Harness::new(
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::count(3))
            .minimum_number_of_calls(3)
            .failure_rate_threshold(34.0)
            .build_config()
            .unwrap(),
    );
    h.calls(&[F, S, S]); // 33.3 % < 34 %
    assert_eq!(h.state(), State::Closed);
    let rate = h.metrics().failure_rate.unwrap();
    assert!((rate - 100.0 / 3.0).abs() < 1e-9, "{rate}");
}

#[test]
fn rates_are_undefined_below_the_minimum_not_minus_one() {
    let mut h = Harness::count(10, 5);
    h.calls(&[F, F, F, F]);
    let metrics = h.metrics();
    assert_eq!(metrics.failure_rate, None);
    assert_eq!(metrics.slow_call_rate, None);
    assert_eq!(metrics.buffered_calls, 4);
    assert_eq!(metrics.failed_calls, 4);
    assert_eq!(h.state(), State::Closed);
}

#[test]
fn a_count_window_clamps_the_minimum_to_its_size() {
    let mut h = Harness::count(5, 100);
    assert_eq!(h.machine.config().effective_minimum_number_of_calls(), 5);
    h.calls(&[F, F, F, S, S]); // 60 % after 5 calls, although the minimum says 100
    assert_eq!(h.state(), State::Open);
}

#[test]
fn the_count_window_slides_one_outcome_at_a_time() {
    let mut h = Harness::new(
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::count(4))
            .minimum_number_of_calls(4)
            .failure_rate_threshold(75.0)
            .build_config()
            .unwrap(),
    );
    h.calls(&[F, F, S, S, S]); // window now F S S S: 25 %
    assert_eq!(h.metrics().failed_calls, 1);
    h.calls(&[F, F]); // S S F F: 50 %
    assert_eq!(h.state(), State::Closed);
    h.calls(&[F]); // S F F F: 75 % -> open
    assert_eq!(h.state(), State::Open);
}

#[test]
fn a_time_window_does_not_clamp_the_minimum_and_forgets_old_buckets() {
    let mut h = Harness::new(
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::time(Duration::from_secs(3)))
            .minimum_number_of_calls(4)
            .build_config()
            .unwrap(),
    );
    h.calls(&[F, F, F]);
    assert_eq!(h.metrics().failure_rate, None, "3 calls < minimum 4");
    h.advance(Duration::from_secs(3)); // the bucket of those three calls has left
    assert_eq!(h.metrics().buffered_calls, 0);
    h.calls(&[F, S, S]);
    h.advance(ms(1_000));
    h.calls(&[S]);
    assert_eq!(h.metrics().failure_rate, Some(25.0));
    assert_eq!(h.state(), State::Closed);
}

#[test]
fn a_call_as_long_as_the_threshold_is_not_slow_and_one_nanosecond_more_is() {
    let threshold = ms(200);
    assert!(!is_slow(threshold, Some(threshold)));
    assert!(is_slow(
        threshold + Duration::from_nanos(1),
        Some(threshold)
    ));
    assert!(!is_slow(Duration::from_secs(3600), None));

    let mut h = Harness::new(
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::count(2))
            .minimum_number_of_calls(2)
            .slow_call_duration_threshold(threshold)
            .slow_call_rate_threshold(50.0)
            .build_config()
            .unwrap(),
    );
    h.call(S, threshold).unwrap();
    h.call(S, threshold).unwrap();
    assert_eq!(h.metrics().slow_calls, 0);
    assert_eq!(h.state(), State::Closed);
    h.call(S, threshold + Duration::from_nanos(1)).unwrap();
    assert_eq!(h.state(), State::Open, "1 slow of 2 = 50 %");
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e, Ev::SlowCallRateExceeded { rate, .. } if *rate == 50.0))
    );
    let metrics = h.metrics();
    assert_eq!((metrics.slow_calls, metrics.slow_successful_calls), (1, 1));
}

#[test]
fn the_open_wait_expires_strictly_after_its_end() {
    let mut h = Harness::count(2, 2);
    h.trip();
    let rejected = h.acquire().unwrap_err();
    assert_eq!(rejected.retry_after, Some(ms(1_000)));
    h.advance(ms(1_000)); // exactly at the end: still open
    assert_eq!(h.acquire().unwrap_err().state, State::Open);
    h.advance(Duration::from_nanos(1));
    assert!(
        h.acquire().is_ok(),
        "the first request after the wait is a probe"
    );
    assert_eq!(h.state(), State::HalfOpen);
    assert_eq!(
        h.metrics().not_permitted_calls,
        0,
        "half-open starts its own count"
    );
}

#[test]
fn rejections_while_open_are_counted_and_carried_from_closed() {
    let mut h = Harness::count(2, 2);
    h.trip();
    h.acquire().unwrap_err();
    h.acquire().unwrap_err();
    let metrics = h.metrics();
    assert_eq!(metrics.not_permitted_calls, 2);
    assert_eq!(
        metrics.failure_rate,
        Some(100.0),
        "open shows the window that tripped"
    );
    let not_permitted = h
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Ev::CallNotPermitted {
                    state: State::Open,
                    ..
                }
            )
        })
        .count();
    assert_eq!(not_permitted, 2);
}

fn half_open(permitted: u32, minimum: u32) -> Harness {
    let mut h = Harness::new(
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::count(2))
            .minimum_number_of_calls(minimum)
            .permitted_calls_in_half_open(permitted)
            .wait_in_open(ms(100))
            .build_config()
            .unwrap(),
    );
    h.trip();
    h.advance(ms(101));
    h
}

#[test]
fn half_open_decides_after_the_minimum_when_it_is_smaller_than_the_probes() {
    let mut h = half_open(5, 3);
    h.calls(&[S, F]);
    assert_eq!(h.state(), State::HalfOpen);
    h.calls(&[S]); // 3 results: 33 % < 50 %
    assert_eq!(h.state(), State::Closed);
    assert_eq!(h.machine.attempts(), 0);
}

#[test]
fn half_open_decides_after_all_probes_when_the_minimum_is_larger() {
    let mut h = half_open(3, 10);
    h.calls(&[F, S]);
    assert_eq!(h.state(), State::HalfOpen);
    h.calls(&[F]); // 3 probes, 66 % >= 50 %
    assert_eq!(h.state(), State::Open);
    assert_eq!(
        h.transitions().last(),
        Some(&(State::HalfOpen, State::Open))
    );
    assert_eq!(h.machine.attempts(), 2);
    assert_eq!(
        h.metrics().failed_calls,
        2,
        "open shows the probes that reopened it"
    );
}

#[test]
fn half_open_never_admits_more_probes_than_permitted() {
    let mut h = half_open(3, 10);
    let probes: Vec<_> = (0..3).map(|_| h.acquire().unwrap()).collect();
    let rejected = h.acquire().unwrap_err();
    assert_eq!(rejected.state, State::HalfOpen);
    assert_eq!(probes.len(), 3);
    assert_eq!(h.metrics().not_permitted_calls, 1);
}

#[test]
fn an_ignored_probe_gives_back_its_slot_and_is_not_counted() {
    let mut h = half_open(2, 10);
    let first = h.acquire().unwrap();
    let second = h.acquire().unwrap();
    assert!(h.acquire().is_err());
    h.machine
        .on_result(first, I, Duration::ZERO, h.now, &mut h.events);
    assert_eq!(h.metrics().buffered_calls, 0);
    let third = h.acquire().expect("the ignored probe's slot is free again");
    h.machine
        .on_result(second, S, Duration::ZERO, h.now, &mut h.events);
    h.machine
        .on_result(third, S, Duration::ZERO, h.now, &mut h.events);
    assert_eq!(h.state(), State::Closed);
}

#[test]
fn an_abandoned_probe_gives_back_its_slot() {
    let mut h = half_open(1, 10);
    let probe = h.acquire().unwrap();
    assert!(h.acquire().is_err());
    h.machine.release(probe);
    assert!(h.acquire().is_ok());
}

#[test]
fn ignored_calls_are_not_counted_in_closed() {
    let mut h = Harness::count(2, 2);
    h.calls(&[I, I, I, F]);
    assert_eq!(h.metrics().buffered_calls, 1);
    assert_eq!(h.state(), State::Closed);
}

#[test]
fn a_result_admitted_in_an_earlier_state_is_not_applied() {
    let mut h = Harness::count(2, 2);
    let slow_call = h.acquire().unwrap();
    h.trip();
    h.advance(ms(1_001));
    let probe = h.acquire().unwrap();
    // The call admitted while closed finishes now, in half-open: it must not decide the trial.
    h.machine
        .on_result(slow_call, S, Duration::ZERO, h.now, &mut h.events);
    h.machine
        .on_result(slow_call, S, Duration::ZERO, h.now, &mut h.events);
    assert_eq!(h.state(), State::HalfOpen);
    assert_eq!(h.metrics().buffered_calls, 0);
    h.machine
        .on_result(probe, F, Duration::ZERO, h.now, &mut h.events);
    assert_eq!(h.metrics().buffered_calls, 1);
}

#[test]
fn illegal_transitions_fail_and_change_nothing() {
    let mut h = Harness::count(2, 2);
    let err = h
        .machine
        .transition_to(State::HalfOpen, h.now, &mut h.events)
        .unwrap_err();
    assert_eq!((err.from(), err.to()), (State::Closed, State::HalfOpen));
    assert_eq!(
        err.to_string(),
        "circuit breaker 'pg' tried an illegal state transition from CLOSED to HALF_OPEN"
    );
    assert_eq!(h.state(), State::Closed);
    h.machine
        .transition_to(State::MetricsOnly, h.now, &mut h.events)
        .unwrap();
    assert!(
        h.machine
            .transition_to(State::Open, h.now, &mut h.events)
            .is_err()
    );
    assert!(
        h.machine
            .transition_to(State::HalfOpen, h.now, &mut h.events)
            .is_err()
    );
    assert!(h.machine.open_for(ms(5), h.now, &mut h.events).is_err());
    assert_eq!(h.state(), State::MetricsOnly);
    for from in State::ALL {
        for to in State::ALL {
            let forbidden = matches!(
                (from, to),
                (State::Closed, State::HalfOpen)
                    | (State::MetricsOnly, State::Open)
                    | (State::MetricsOnly, State::HalfOpen)
            );
            assert_eq!(transition_allowed(from, to), !forbidden, "{from} -> {to}");
        }
    }
}

#[test]
fn a_same_state_transition_is_silent_but_restarts_the_state() {
    let mut h = Harness::count(4, 4);
    h.calls(&[F, F, S]);
    h.machine
        .transition_to(State::Closed, h.now, &mut h.events)
        .unwrap();
    assert!(h.events.is_empty());
    assert_eq!(h.metrics().buffered_calls, 0, "a fresh window");

    h.trip();
    let attempts = h.machine.attempts();
    h.events.clear();
    h.advance(ms(500));
    h.machine
        .transition_to(State::Open, h.now, &mut h.events)
        .unwrap();
    assert!(h.events.is_empty());
    assert_eq!(h.machine.attempts(), attempts + 1);
    h.advance(ms(1_000));
    assert!(h.acquire().is_err(), "the wait restarted");
}

#[test]
fn forced_open_rejects_everything_without_events_and_ignores_the_wait() {
    let mut h = Harness::count(2, 2);
    h.machine
        .transition_to(State::ForcedOpen, h.now, &mut h.events)
        .unwrap();
    h.events.clear();
    h.advance(Duration::from_secs(3600));
    for _ in 0..3 {
        let rejected = h.acquire().unwrap_err();
        assert_eq!(rejected.state, State::ForcedOpen);
    }
    assert!(
        h.events.is_empty(),
        "no NOT_PERMITTED events in FORCED_OPEN"
    );
    assert_eq!(h.metrics().not_permitted_calls, 3);
}

#[test]
fn disabled_permits_everything_and_records_nothing() {
    let mut h = Harness::count(2, 2);
    h.machine
        .transition_to(State::Disabled, h.now, &mut h.events)
        .unwrap();
    h.calls(&[F, F, F, F]);
    assert_eq!(h.state(), State::Disabled);
    assert_eq!(h.metrics().buffered_calls, 0);
}

#[test]
fn metrics_only_records_and_announces_each_breach_once_but_never_blocks() {
    let mut h = Harness::new(
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::count(2))
            .minimum_number_of_calls(2)
            .slow_call_duration_threshold(ms(10))
            .slow_call_rate_threshold(50.0)
            .build_config()
            .unwrap(),
    );
    h.machine
        .transition_to(State::MetricsOnly, h.now, &mut h.events)
        .unwrap();
    h.events.clear();
    for _ in 0..5 {
        h.call(F, ms(20)).unwrap();
    }
    assert_eq!(h.state(), State::MetricsOnly);
    let failure = h
        .events
        .iter()
        .filter(|e| matches!(e, Ev::FailureRateExceeded { .. }))
        .count();
    let slow = h
        .events
        .iter()
        .filter(|e| matches!(e, Ev::SlowCallRateExceeded { .. }))
        .count();
    assert_eq!((failure, slow), (1, 1));
    assert_eq!(h.metrics().failed_calls, 2);

    // A new episode announces again.
    h.machine
        .transition_to(State::Closed, h.now, &mut h.events)
        .unwrap();
    h.machine
        .transition_to(State::MetricsOnly, h.now, &mut h.events)
        .unwrap();
    h.events.clear();
    h.calls(&[F, F]);
    assert_eq!(
        h.events
            .iter()
            .filter(|e| matches!(e, Ev::FailureRateExceeded { .. }))
            .count(),
        1
    );
}

#[test]
fn reset_returns_to_a_fresh_closed_state() {
    let mut h = Harness::count(2, 2);
    h.trip();
    h.events.clear();
    h.machine.reset(h.now, &mut h.events);
    assert_eq!(h.state(), State::Closed);
    assert_eq!(h.machine.attempts(), 0);
    assert_eq!(h.metrics().buffered_calls, 0);
    assert_eq!(h.transitions(), [(State::Open, State::Closed)]);
    assert!(matches!(h.events.last(), Some(Ev::Reset { .. })));
    h.events.clear();
    h.machine.reset(h.now, &mut h.events);
    assert_eq!(h.events.len(), 1, "closed -> closed: only the reset event");
}

#[test]
fn the_open_wait_grows_with_consecutive_openings_and_resets_when_closed() {
    let mut h = Harness::new(
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::count(1))
            .minimum_number_of_calls(1)
            .permitted_calls_in_half_open(1)
            .wait_in_open_backoff(Backoff::exponential(ms(100)))
            .build_config()
            .unwrap(),
    );
    let mut waits = Vec::new();
    h.trip();
    for _ in 0..3 {
        let wait = h.acquire().unwrap_err().retry_after.unwrap();
        waits.push(wait);
        h.advance(wait + Duration::from_nanos(1));
        h.call(F, Duration::ZERO).unwrap(); // the probe fails: reopen
    }
    assert_eq!(waits, [ms(100), ms(200), ms(400)]);
    let wait = h.acquire().unwrap_err().retry_after.unwrap();
    h.advance(wait + Duration::from_nanos(1));
    h.call(S, Duration::ZERO).unwrap(); // closes
    assert_eq!(h.state(), State::Closed);
    h.trip();
    assert_eq!(h.acquire().unwrap_err().retry_after, Some(ms(100)));
}

#[test]
fn open_for_opens_for_exactly_the_given_time_and_keeps_attempts() {
    let mut h = Harness::count(2, 2);
    h.machine.open_for(ms(250), h.now, &mut h.events).unwrap();
    assert_eq!(h.state(), State::Open);
    assert_eq!(h.machine.attempts(), 0);
    h.advance(ms(250));
    assert!(h.acquire().is_err());
    h.advance(Duration::from_nanos(1));
    assert!(h.acquire().is_ok());
}

#[test]
fn half_open_gives_up_after_its_maximum_wait_into_the_configured_state() {
    for then in [State::Open, State::Closed] {
        let mut h = Harness::new(
            CircuitBreakerConfig::builder()
                .sliding_window(SlidingWindow::count(1))
                .minimum_number_of_calls(1)
                .permitted_calls_in_half_open(1)
                .wait_in_open(ms(100))
                .max_wait_in_half_open(ms(500), then)
                .build_config()
                .unwrap(),
        );
        h.trip();
        h.advance(ms(101));
        let _stuck_probe = h.acquire().unwrap();
        let timer = h.machine.pending_timer().unwrap();
        assert_eq!(timer.kind, TimerKind::HalfOpenExpired);
        assert_eq!(timer.at, h.now + ms(500));
        h.advance(ms(500) - Duration::from_nanos(1));
        assert!(
            h.acquire().is_err(),
            "just before the limit: still half-open and full"
        );
        h.advance(Duration::from_nanos(1));
        let next = h.acquire();
        assert_eq!(
            h.transitions().last(),
            Some(&(State::HalfOpen, then)),
            "at the limit, half-open is over (as its timer would say)"
        );
        assert_eq!(next.is_ok(), then == State::Closed);
    }
}

#[test]
fn timers_move_the_state_only_in_the_generation_they_were_armed_for() {
    let mut h = Harness::new(
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::count(1))
            .minimum_number_of_calls(1)
            .wait_in_open(ms(100))
            .automatic_half_open(true)
            .build_config()
            .unwrap(),
    );
    h.trip();
    let timer = h.machine.pending_timer().unwrap();
    assert_eq!(
        (timer.kind, timer.at),
        (TimerKind::OpenElapsed, h.now + ms(100))
    );
    h.advance(ms(100));
    h.machine.on_timer(timer, h.now, &mut h.events);
    assert_eq!(h.state(), State::HalfOpen, "automatic: no call needed");
    // A stale timer does nothing.
    h.machine
        .transition_to(State::Open, h.now, &mut h.events)
        .unwrap();
    h.machine.on_timer(timer, h.now, &mut h.events);
    assert_eq!(h.state(), State::Open);
}

#[test]
fn the_initial_state_is_configurable() {
    let h = Harness::new(
        CircuitBreakerConfig::builder()
            .initial_state(State::ForcedOpen)
            .build_config()
            .unwrap(),
    );
    assert_eq!(h.state(), State::ForcedOpen);
    assert_eq!(h.machine.attempts(), 1);
}

#[test]
fn the_configuration_is_validated_with_keys_and_rules() {
    let cases: Vec<(CircuitBreakerBuilder, &str)> = vec![
        (
            CircuitBreakerConfig::builder().failure_rate_threshold(0.0),
            "failure_rate_threshold: must be in (0, 100], got 0",
        ),
        (
            CircuitBreakerConfig::builder().failure_rate_threshold(120.0),
            "failure_rate_threshold: must be in (0, 100], got 120",
        ),
        (
            CircuitBreakerConfig::builder().slow_call_rate_threshold(f64::NAN),
            "slow_call_rate_threshold: must be in (0, 100], got NaN",
        ),
        (
            CircuitBreakerConfig::builder().slow_call_duration_threshold(Duration::ZERO),
            "slow_call_duration_threshold: must be >= 1ns, got 0ns",
        ),
        (
            CircuitBreakerConfig::builder().permitted_calls_in_half_open(0),
            "permitted_number_of_calls_in_half_open_state: must be >= 1, got 0",
        ),
        (
            CircuitBreakerConfig::builder().max_wait_in_half_open(ms(1), State::HalfOpen),
            "transition_to_state_after_wait_duration: must be OPEN or CLOSED, got HALF_OPEN",
        ),
        (
            CircuitBreakerConfig::builder().sliding_window(SlidingWindow::count(0)),
            "sliding_window_size: must be >= 1, got 0",
        ),
        (
            CircuitBreakerConfig::builder().minimum_number_of_calls(0),
            "minimum_number_of_calls: must be >= 1, got 0",
        ),
        (
            CircuitBreakerConfig::builder().wait_in_open(Duration::from_micros(10)),
            "wait_duration_in_open_state: must be >= 1ms, got 10µs",
        ),
        (
            CircuitBreakerConfig::builder()
                .sliding_window(SlidingWindow::time_with_buckets(ms(10), ms(100))),
            "sliding_window_size: must be >= the bucket width 100ms, got 10ms",
        ),
        (
            CircuitBreakerConfig::builder()
                .wait_in_open_backoff(Backoff::exponential(ms(1)).multiplier(0.1)),
            "exponential_backoff_multiplier: must be a finite number >= 1, got 0.1",
        ),
    ];
    for (builder, expected) in cases {
        assert_eq!(builder.build_config().unwrap_err().to_string(), expected);
    }
    let defaults = CircuitBreakerConfig::default();
    assert_eq!(defaults.failure_rate_threshold, 50.0);
    assert_eq!(defaults.slow_call_rate_threshold, 100.0);
    assert_eq!(
        defaults.slow_call_duration_threshold,
        Some(Duration::from_secs(60))
    );
    assert_eq!(defaults.permitted_calls_in_half_open, 10);
    assert_eq!(defaults.max_wait_in_half_open, Duration::ZERO);
    assert_eq!(defaults.state_after_half_open_wait, State::Open);
    assert_eq!(defaults.sliding_window, SlidingWindow::Count(100));
    assert_eq!(defaults.minimum_number_of_calls, 100);
    assert_eq!(
        defaults.open_wait,
        crate::circuit_breaker::OpenWait::Fixed(Duration::from_secs(60))
    );
    assert!(!defaults.automatic_half_open);
    assert_eq!(defaults.initial_state, State::Closed);
    defaults.validate().unwrap();
}

//! The lock-free breaker against its specification, and under concurrency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;

use super::engine::{Rejection, Slot};
use super::model::{Rejected, StateMachine};
use super::rules::Ticket;
use super::*;
use crate::clock::{Instant, ManualClock};
use crate::retry::{RandomSource, SplitMix64};

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Acquire,
    Complete {
        pick: usize,
        outcome: Outcome,
    },
    Abandon {
        pick: usize,
    },
    Transition(State),
    OpenFor(u64),
    Reset,
    Reconfigure {
        threshold: f64,
        window: Option<SlidingWindow>,
    },
}

fn any_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => Just(Outcome::Failure),
        4 => Just(Outcome::Success),
        1 => Just(Outcome::Ignored),
    ]
}

fn any_state() -> impl Strategy<Value = State> {
    proptest::sample::select(State::ALL.to_vec())
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..400).prop_map(Op::Advance),
        8 => Just(Op::Acquire),
        8 => (any::<usize>(), any_outcome()).prop_map(|(pick, outcome)| Op::Complete { pick, outcome }),
        1 => any::<usize>().prop_map(|pick| Op::Abandon { pick }),
        1 => any_state().prop_map(Op::Transition),
        1 => (1u64..500).prop_map(Op::OpenFor),
        1 => Just(Op::Reset),
        1 => (
            proptest::sample::select(vec![30.0, 60.0, 90.0]),
            proptest::option::of(prop_oneof![
                (1u32..8).prop_map(SlidingWindow::count),
                (1u64..8).prop_map(|buckets| SlidingWindow::time_with_buckets(
                    Duration::from_millis(100 * buckets),
                    Duration::from_millis(100)
                )),
            ]),
        )
            .prop_map(|(threshold, window)| Op::Reconfigure { threshold, window }),
    ]
}

fn any_config() -> impl Strategy<Value = CircuitBreakerConfig> {
    let window = prop_oneof![
        (1u32..8).prop_map(SlidingWindow::count),
        (1u64..8).prop_map(|buckets| SlidingWindow::time_with_buckets(
            Duration::from_millis(100 * buckets),
            Duration::from_millis(100)
        )),
    ];
    (
        window,
        1u32..8,
        proptest::sample::select(vec![25.0, 50.0, 75.0, 100.0]),
        proptest::sample::select(vec![34.0, 50.0, 100.0]),
        proptest::option::of(Just(Duration::from_millis(50))),
        1u32..4,
        1u64..500,
        proptest::sample::select(vec![0u64, 300]),
        any::<bool>(),
    )
        .prop_map(
            |(window, minimum, failure, slow, slow_threshold, permitted, wait, max_wait, grow)| {
                let mut builder = CircuitBreakerConfig::builder()
                    .sliding_window(window)
                    .minimum_number_of_calls(minimum)
                    .failure_rate_threshold(failure)
                    .slow_call_rate_threshold(slow)
                    .permitted_calls_in_half_open(permitted)
                    .max_wait_in_half_open(Duration::from_millis(max_wait), State::Open);
                builder = match slow_threshold {
                    Some(threshold) => builder.slow_call_duration_threshold(threshold),
                    None => builder.disable_slow_call_tracking(),
                };
                builder = if grow {
                    builder.wait_in_open_backoff(
                        crate::Backoff::exponential(Duration::from_millis(wait)).full_jitter(),
                    )
                } else {
                    builder.wait_in_open(Duration::from_millis(wait))
                };
                builder.build_config().unwrap()
            },
        )
}

/// Runs the same operations on the lock-free breaker and on the specification.
struct Twin {
    clock: ManualClock,
    breaker: CircuitBreaker,
    events: Arc<Mutex<Vec<CircuitBreakerEvent>>>,
    model: StateMachine,
    model_events: Vec<CircuitBreakerEvent>,
    in_flight: Vec<(Slot, Ticket, Instant)>,
}

impl Twin {
    fn new(config: CircuitBreakerConfig, seed: u64) -> Self {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(1));
        let breaker = CircuitBreaker::builder()
            .name("twin")
            .config(config.clone())
            .clock(clock.clone().into())
            .random(SplitMix64::seeded(seed))
            .build()
            .unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        breaker.on_event(move |event| sink.lock().unwrap().push(event.clone()));
        let model = StateMachine::new(
            "twin",
            config,
            Arc::new(SplitMix64::seeded(seed)),
            clock.now(),
        );
        Self {
            clock,
            breaker,
            events,
            model,
            model_events: Vec::new(),
            in_flight: Vec::new(),
        }
    }

    fn apply(&mut self, op: &Op) {
        let shared = self.breaker.shared().clone();
        let now = self.clock.now();
        match op {
            Op::Advance(ms) => self.clock.advance(Duration::from_millis(*ms)),
            Op::Acquire => {
                let real = shared.acquire();
                let model = self.model.try_acquire(now, &mut self.model_events);
                match (real, model) {
                    (Ok(slot), Ok(ticket)) => self.in_flight.push((slot, ticket, now)),
                    (Err(rejection), Err(Rejected { state, retry_after })) => {
                        assert_eq!(rejection, Rejection { state, retry_after });
                    }
                    (real, model) => panic!("admission differs: {real:?} vs {model:?}"),
                }
            }
            Op::Complete { pick, outcome } => {
                if self.in_flight.is_empty() {
                    return;
                }
                let (permit, ticket, start) = self.in_flight.remove(pick % self.in_flight.len());
                shared.record(permit, *outcome);
                self.model
                    .on_result(ticket, *outcome, now - start, now, &mut self.model_events);
            }
            Op::Abandon { pick } => {
                if self.in_flight.is_empty() {
                    return;
                }
                let (permit, ticket, _) = self.in_flight.remove(pick % self.in_flight.len());
                shared.release(&permit);
                self.model.release(ticket);
            }
            Op::Transition(state) => {
                let real = self.breaker.transition_to(*state);
                let model = self
                    .model
                    .transition_to(*state, now, &mut self.model_events);
                assert_eq!(real, model);
            }
            Op::OpenFor(ms) => {
                let wait = Duration::from_millis(*ms);
                let real = self.breaker.open_for(wait);
                let model = self.model.open_for(wait, now, &mut self.model_events);
                assert_eq!(real, model);
            }
            Op::Reset => {
                self.breaker.reset();
                self.model.reset(now, &mut self.model_events);
            }
            Op::Reconfigure { threshold, window } => {
                // The state and the counts that fit must carry over.
                let mut config = self
                    .breaker
                    .config()
                    .to_builder()
                    .failure_rate_threshold(*threshold);
                if let Some(window) = window {
                    config = config.sliding_window(*window);
                }
                let config = config.build_config().unwrap();
                self.breaker.reconfigure(config.clone()).unwrap();
                self.model.reconfigure(config, now);
            }
        }
    }

    fn check(&mut self) {
        let now = self.clock.now();
        // Reading the state makes the moves time alone decides, on both sides.
        self.model.tick(now, &mut self.model_events);
        assert_eq!(self.breaker.state(), self.model.state());
        assert_eq!(self.breaker.metrics(), self.model.metrics(now));
        assert_eq!(*self.events.lock().unwrap(), self.model_events);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Random sequences of clock steps, calls (finished, ignored or abandoned, overlapping
    /// across transitions) and manual transitions give the same admissions, states, metrics
    /// and events on the lock-free breaker as on the plainly written specification.
    #[test]
    fn the_lock_free_breaker_behaves_exactly_like_its_specification(
        config in any_config(),
        seed: u64,
        ops in proptest::collection::vec(any_op(), 1..120),
    ) {
        let mut twin = Twin::new(config, seed);
        twin.check();
        for op in &ops {
            twin.apply(op);
            twin.check();
        }
    }
}

#[test]
fn concurrent_callers_never_exceed_the_probe_limit_and_each_transition_is_emitted_once() {
    const THREADS: usize = 4;
    const CALLS: usize = 20_000;
    const PERMITTED: u32 = 3;
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder()
        .name("stress")
        .sliding_window(SlidingWindow::count(20))
        .minimum_number_of_calls(10)
        .permitted_calls_in_half_open(PERMITTED)
        .wait_in_open(Duration::from_millis(2))
        .disable_slow_call_tracking()
        .clock(clock.clone().into())
        .build()
        .unwrap();
    let transitions = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = transitions.clone();
    breaker.on_event(move |event| {
        if matches!(event, CircuitBreakerEvent::StateTransition { .. }) {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let probes: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let initial_generation = breaker.shared().generation();

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let breaker = breaker.clone();
            let clock = clock.clone();
            let probes = probes.clone();
            scope.spawn(move || {
                let random = SplitMix64::seeded(thread as u64);
                for call in 0..CALLS {
                    if call % 16 == 0 {
                        clock.advance(Duration::from_millis(1));
                    }
                    let Ok(permit) = breaker.shared().acquire() else {
                        continue;
                    };
                    if permit.is_probe() {
                        let mut probes = probes.lock().unwrap();
                        let issued = probes.entry(permit.generation()).or_default();
                        *issued += 1;
                        assert!(
                            *issued <= PERMITTED,
                            "{issued} probes in one half-open state"
                        );
                    }
                    // Phases of mostly failures and mostly successes keep the breaker cycling.
                    let failing = (call / 500) % 2 == 0;
                    let outcome = if random.next_u64() % 10 < if failing { 8 } else { 1 } {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    };
                    breaker.shared().record(permit, outcome);
                }
            });
        }
    });

    let generations = breaker.shared().generation() - initial_generation;
    assert!(
        generations > 10,
        "the breaker cycled ({generations} transitions)"
    );
    assert_eq!(
        transitions.load(std::sync::atomic::Ordering::SeqCst),
        generations,
        "every transition emitted exactly once"
    );
    assert!(probes.lock().unwrap().len() > 3, "half-open was exercised");
}

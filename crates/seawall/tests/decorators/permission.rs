//! The breaker's permission API and its time-driven transitions, through the public API only,
//! as a user would write them.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use proptest::prelude::*;
use seawall::circuit_breaker::{
    CircuitBreaker, CircuitBreakerEvent, Outcome, SlidingWindow, State, TransitionReason,
};
use seawall::clock::ManualClock;
use seawall::{Clock, Error};

use crate::support::{Failure, ms};

fn breaker_on(clock: &ManualClock) -> CircuitBreaker {
    CircuitBreaker::builder()
        .name("feed")
        .sliding_window(SlidingWindow::count(4))
        .minimum_number_of_calls(4)
        .slow_call_duration_threshold(ms(100))
        .slow_call_rate_threshold(50.0)
        .wait_in_open(ms(1_000))
        .permitted_calls_in_half_open(2)
        .per_call_events(true)
        .clock(Clock::from(clock.clone()))
        .build()
        .unwrap()
}

fn record_events(breaker: &CircuitBreaker) -> Arc<Mutex<Vec<CircuitBreakerEvent>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    breaker.on_event(move |event| sink.lock().unwrap().push(event.clone()));
    events
}

/// Polls a future once, with no runtime: what a call that is ready at once needs.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    pin!(future).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_permit_reports_success_failure_and_ignored_outcomes_without_a_runtime() {
    let clock = ManualClock::new();
    let breaker = breaker_on(&clock);
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().failure();
    breaker.try_acquire().unwrap().ignore();
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.buffered_calls, metrics.failed_calls),
        (2, 1),
        "the ignored call is not counted"
    );

    let result: Result<&str, Failure> = Err(Failure::transient());
    let result = breaker.try_acquire().unwrap().record_result(result);
    assert_eq!(
        result,
        Err(Failure::transient()),
        "the result is handed back"
    );
    let result = breaker
        .try_acquire()
        .unwrap()
        .record_result(Ok::<_, Failure>("ok"));
    assert_eq!(result, Ok("ok"));
    assert_eq!(breaker.metrics().failed_calls, 2);
    assert_eq!(breaker.state(), State::Open, "2 failures of 4 is 50 %");
    assert!(breaker.try_acquire().is_err());
}

#[test]
fn a_permit_measures_its_own_duration_so_a_slow_stream_counts_as_slow() {
    let clock = ManualClock::new();
    let breaker = breaker_on(&clock);
    for _ in 0..4 {
        let permit = breaker.try_acquire().unwrap();
        clock.advance(ms(150)); // the body takes a while to arrive
        assert_eq!(permit.elapsed(), Some(ms(150)));
        permit.success();
    }
    assert_eq!(breaker.metrics().slow_calls, 4);
    assert_eq!(breaker.state(), State::Open, "slow-call rate 100 % >= 50 %");
}

#[test]
fn a_dropped_permit_gives_back_its_half_open_slot_and_records_nothing() {
    let clock = ManualClock::new();
    let breaker = breaker_on(&clock);
    breaker.open_for(ms(10)).unwrap();
    clock.advance(ms(11));
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);
    assert!(breaker.try_acquire().is_err(), "both probe slots are taken");

    drop(first); // the caller gave up: a cancellation
    let third = breaker.try_acquire().expect("the slot came back");
    assert_eq!(breaker.metrics().buffered_calls, 0, "nothing was recorded");
    second.success();
    third.success();
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn an_owned_permit_moves_to_another_thread_and_reports_there() {
    let clock = ManualClock::new();
    let breaker = breaker_on(&clock);
    let permit = breaker.try_acquire_owned().unwrap();
    std::thread::spawn(move || permit.failure()).join().unwrap();
    assert_eq!(breaker.metrics().failed_calls, 1);
}

#[test]
fn record_judges_a_result_with_the_breakers_classifier() {
    let clock = ManualClock::new();
    let breaker = breaker_on(&clock).ignore_if(|e: &Failure| !e.transient);
    let declined: Result<(), Error<Failure>> = Err(Error::from_inner(Failure::permanent()));
    breaker.try_acquire().unwrap().record(&declined);
    assert_eq!(
        breaker.metrics().buffered_calls,
        0,
        "ignored by the classifier"
    );
    let failed: Result<(), Error<Failure>> = Err(Error::from_inner(Failure::transient()));
    breaker.try_acquire().unwrap().record(&failed);
    assert_eq!(breaker.metrics().failed_calls, 1);
}

#[test]
fn the_open_wait_ends_by_itself_on_a_state_read_from_a_plain_thread() {
    // No tokio runtime anywhere: the automatic move is decided from the clock when asked.
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder()
        .name("no-runtime")
        .wait_in_open(ms(1_000))
        .automatic_half_open(true)
        .clock(Clock::from(clock.clone()))
        .build()
        .unwrap();
    let events = record_events(&breaker);
    std::thread::scope(|scope| {
        scope.spawn(|| breaker.transition_to_open().unwrap());
    });
    clock.advance(ms(999));
    assert_eq!(breaker.state(), State::Open);
    clock.advance(ms(1));
    let seen = std::thread::spawn(move || breaker.state()).join().unwrap();
    assert_eq!(seen, State::HalfOpen, "no call was needed");
    assert!(
        events
            .lock()
            .unwrap()
            .contains(&CircuitBreakerEvent::StateTransition {
                name: "no-runtime".into(),
                from: State::Open,
                to: State::HalfOpen,
                reason: TransitionReason::OpenWaitElapsed,
            })
    );
}

#[test]
fn half_opens_maximum_wait_ends_it_on_the_next_read_without_a_runtime() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::builder()
        .name("stuck")
        .permitted_calls_in_half_open(1)
        .max_wait_in_half_open(ms(500), State::Open)
        .clock(Clock::from(clock.clone()))
        .build()
        .unwrap();
    breaker.transition_to_open().unwrap();
    breaker.transition_to_half_open().unwrap();
    let _stuck_probe = breaker.try_acquire().unwrap(); // never reports
    clock.advance(ms(500));
    let state = std::thread::scope(|scope| scope.spawn(|| breaker.state()).join().unwrap());
    assert_eq!(
        state,
        State::Open,
        "half-open gave up after its maximum wait"
    );
    assert!(breaker.retry_after().is_some());
}

#[tokio::test(start_paused = true)]
async fn with_a_runtime_a_timer_announces_the_automatic_move_without_any_read() {
    let breaker = CircuitBreaker::builder()
        .name("timer")
        .wait_in_open(ms(1_000))
        .automatic_half_open(true)
        .build()
        .unwrap();
    let events = record_events(&breaker);
    breaker.transition_to_open().unwrap();
    tokio::time::advance(ms(1_001)).await;
    tokio::task::yield_now().await;
    let moved = events.lock().unwrap().iter().any(|event| {
        matches!(
            event,
            CircuitBreakerEvent::StateTransition {
                to: State::HalfOpen,
                ..
            }
        )
    });
    assert!(moved, "announced by the timer, before anyone asked");
}

/// One step of a call sequence: how it ends and how long it takes.
#[derive(Clone, Copy, Debug)]
enum Step {
    Finish(Outcome, u64),
    Abandon,
    Wait(u64),
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (
            prop_oneof![Just(Outcome::Success), Just(Outcome::Failure), Just(Outcome::Ignored)],
            prop_oneof![Just(0u64), Just(50), Just(150)],
        )
            .prop_map(|(outcome, ms)| Step::Finish(outcome, ms)),
        1 => Just(Step::Abandon),
        2 => (1u64..1_500).prop_map(Step::Wait),
    ]
}

fn result_of(outcome: Outcome) -> Result<(), Failure> {
    match outcome {
        Outcome::Success => Ok(()),
        Outcome::Failure => Err(Failure::transient()),
        Outcome::Ignored => Err(Failure::permanent()),
    }
}

/// The same step through `call` (a future) and through a permit.
fn run_both(
    step: Step,
    (by_call, clock_a): (
        &CircuitBreaker<impl seawall::circuit_breaker::CircuitClassifier<(), Failure>>,
        &ManualClock,
    ),
    (by_permit, clock_b): (
        &CircuitBreaker<impl seawall::circuit_breaker::CircuitClassifier<(), Failure>>,
        &ManualClock,
    ),
) {
    match step {
        Step::Wait(millis) => {
            clock_a.advance(ms(millis));
            clock_b.advance(ms(millis));
        }
        Step::Finish(outcome, millis) => {
            let call = by_call.call(|| {
                clock_a.advance(ms(millis));
                async move { result_of(outcome) }
            });
            let called = poll_once(call);
            let permitted = match by_permit.try_acquire() {
                Ok(permit) => {
                    clock_b.advance(ms(millis));
                    Ok(permit.record_result(result_of(outcome)))
                }
                Err(open) => Err(open),
            };
            match (called, permitted) {
                (Poll::Ready(Err(error)), Err(_)) => assert!(error.is_circuit_open()),
                (Poll::Ready(Ok(())), Ok(Ok(()))) => {}
                (Poll::Ready(Err(error)), Ok(Err(failure))) => {
                    assert_eq!(error.into_inner(), Some(failure));
                }
                (called, permitted) => panic!("differ: {called:?} vs {permitted:?}"),
            }
        }
        Step::Abandon => {
            let call = by_call.call(std::future::pending::<Result<(), Failure>>);
            let mut call = Box::pin(call);
            let started = call.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            drop(call);
            let permit = by_permit.try_acquire();
            assert_eq!(started.is_pending(), permit.is_ok(), "admitted alike");
            drop(permit);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random sequences of calls (finished, slow, ignored or abandoned) and clock steps give
    /// the same admissions, states, metrics and events through `call` as through permits.
    #[test]
    fn a_call_and_a_permit_behave_identically(steps in proptest::collection::vec(any_step(), 1..80)) {
        let (clock_a, clock_b) = (ManualClock::new(), ManualClock::new());
        let by_call = breaker_on(&clock_a).ignore_if(|e: &Failure| !e.transient);
        let by_permit = breaker_on(&clock_b).ignore_if(|e: &Failure| !e.transient);
        let events_a = Arc::new(Mutex::new(Vec::new()));
        let events_b = Arc::new(Mutex::new(Vec::new()));
        let sink = events_a.clone();
        by_call.on_event(move |event| sink.lock().unwrap().push(event.clone()));
        let sink = events_b.clone();
        by_permit.on_event(move |event| sink.lock().unwrap().push(event.clone()));
        for step in steps {
            run_both(step, (&by_call, &clock_a), (&by_permit, &clock_b));
            prop_assert_eq!(by_call.state(), by_permit.state());
            prop_assert_eq!(by_call.metrics(), by_permit.metrics());
            prop_assert_eq!(&*events_a.lock().unwrap(), &*events_b.lock().unwrap());
        }
    }
}

#[test]
fn a_disabled_breaker_publishes_no_per_call_events_and_records_nothing() {
    let clock = ManualClock::new();
    let breaker = breaker_on(&clock);
    breaker.transition_to_disabled().unwrap();
    let events = record_events(&breaker);
    for _ in 0..3 {
        breaker.try_acquire().unwrap().failure();
        let _ = poll_once(breaker.call(|| async { Err::<(), _>(Failure::transient()) }));
    }
    assert!(
        events.lock().unwrap().is_empty(),
        "{:?}",
        events.lock().unwrap()
    );
    assert_eq!(breaker.metrics().buffered_calls, 0);
    assert_eq!(breaker.state(), State::Disabled);
}

#[test]
fn a_permit_and_a_rejection_are_what_a_user_can_name_and_send() {
    fn bounds<T: Send + Sync>() {}
    bounds::<seawall::circuit_breaker::CallPermit<'static>>();
    bounds::<seawall::circuit_breaker::OwnedCallPermit>();
    bounds::<seawall::error::CircuitOpen>();
    let _: Duration = ms(1);
}

#[test]
fn retry_after_is_the_rest_of_the_open_wait_and_nothing_in_other_states() {
    let clock = ManualClock::new();
    let breaker = breaker_on(&clock);
    assert_eq!(breaker.retry_after(), None, "closed");
    breaker.open_for(ms(1_000)).unwrap();
    clock.advance(ms(400));
    assert_eq!(breaker.retry_after(), Some(ms(600)));
    // A call is permitted only strictly after the wait, as in Resilience4j.
    clock.advance(ms(600));
    assert!(
        !breaker.is_call_permitted(),
        "exactly at the end of the wait"
    );
    clock.advance(Duration::from_nanos(1));
    assert!(breaker.is_call_permitted());
    breaker.transition_to_forced_open().unwrap();
    assert_eq!(breaker.retry_after(), None, "forced open has no end");
}

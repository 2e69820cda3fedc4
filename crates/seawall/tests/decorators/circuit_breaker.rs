use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::circuit_breaker::{
    CircuitBreaker, CircuitBreakerEvent, Outcome, SlidingWindow, State, TransitionReason,
};
use seawall::{Backoff, Clock, Error, ErrorKind, Policy, Retry, Timeout};

use crate::support::{Failure, ms};

/// A PG-like error: 4xx business errors and 5xx system errors.
#[derive(Debug, Clone, PartialEq)]
enum PgError {
    Declined(u16),
    Server(u16),
}

fn breaker(window: u32) -> CircuitBreaker {
    CircuitBreaker::builder()
        .name("pg")
        .sliding_window(SlidingWindow::count(window))
        .minimum_number_of_calls(window)
        .wait_in_open(ms(1_000))
        .permitted_calls_in_half_open(2)
        .disable_slow_call_tracking()
        .build()
        .unwrap()
}

fn record_events(breaker: &CircuitBreaker<impl Sized>) -> Arc<Mutex<Vec<CircuitBreakerEvent>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    breaker.on_event(move |event| sink.lock().unwrap().push(event.clone()));
    events
}

#[tokio::test(start_paused = true)]
async fn ten_server_errors_open_the_breaker_and_the_eleventh_call_never_runs() {
    // The classic acceptance test: 10 calls to a server answering 500 -> OPEN; the 11th is rejected
    // without a network call.
    let breaker = breaker(10).ignore_if(|e: &PgError| matches!(e, PgError::Declined(_)));
    let calls = AtomicUsize::new(0);
    for _ in 0..10 {
        let err = breaker
            .call(|| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(PgError::Server(500)) }
            })
            .await
            .unwrap_err();
        assert!(err.is_inner());
    }
    assert_eq!(breaker.state(), State::Open);
    let err = breaker
        .call(|| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), PgError>(()) }
        })
        .await
        .unwrap_err();
    assert!(err.is_circuit_open());
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(err.rejected_by(), Some("pg"));
    assert_eq!(err.retry_after(), Some(ms(1_000)));
    assert_eq!(calls.load(Ordering::SeqCst), 10, "the 11th call never ran");
}

#[tokio::test(start_paused = true)]
async fn business_errors_are_ignored_and_never_move_the_breaker() {
    let breaker = breaker(4).ignore_if(|e: &PgError| matches!(e, PgError::Declined(_)));
    for _ in 0..50 {
        let _ = breaker
            .call(|| async { Err::<(), _>(PgError::Declined(402)) })
            .await;
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().buffered_calls, 0);
}

#[tokio::test(start_paused = true)]
async fn timeouts_inside_the_breaker_count_as_failures() {
    let breaker = breaker(3);
    let policy = Policy::builder()
        .circuit_breaker(breaker.clone())
        .timeout(Timeout::new(ms(50)))
        .build();
    for _ in 0..3 {
        let err = policy
            .call(|| async {
                pending::<()>().await;
                Ok::<(), Failure>(())
            })
            .await
            .unwrap_err();
        assert!(err.is_timeout());
    }
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_half_open_probe_frees_its_slot_and_records_nothing() {
    let breaker = breaker(1);
    let _ = breaker
        .call(|| async { Err::<(), _>(Failure::transient()) })
        .await;
    assert_eq!(breaker.state(), State::Open);
    Clock::tokio().sleep(ms(1_001)).await;

    // Two probes take both slots; neither finishes.
    let mut first = tokio_test::task::spawn(breaker.call(|| async {
        pending::<()>().await;
        Ok::<(), Failure>(())
    }));
    let mut second = tokio_test::task::spawn(breaker.call(|| async {
        pending::<()>().await;
        Ok::<(), Failure>(())
    }));
    assert!(first.poll().is_pending());
    assert!(second.poll().is_pending());
    assert_eq!(breaker.state(), State::HalfOpen);
    assert!(!breaker.is_call_permitted(), "both probe slots are taken");
    let err = breaker
        .call(|| async { Ok::<(), Failure>(()) })
        .await
        .unwrap_err();
    assert!(err.is_circuit_open());
    assert_eq!(
        err.to_string(),
        "circuit breaker 'pg' is HALF_OPEN and does not permit further calls"
    );

    drop(first); // cancelled: the slot comes back, nothing is recorded
    assert!(breaker.is_call_permitted());
    assert_eq!(breaker.metrics().buffered_calls, 0);
    breaker
        .call(|| async { Ok::<(), Failure>(()) })
        .await
        .unwrap();
    drop(second);
    breaker
        .call(|| async { Ok::<(), Failure>(()) })
        .await
        .unwrap();
    assert_eq!(
        breaker.state(),
        State::Closed,
        "two successful probes close it"
    );
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_is_not_retried_by_a_retry_outside_it() {
    let breaker = breaker(2);
    breaker.transition_to_open().unwrap();
    let policy = Policy::builder()
        .retry(
            Retry::builder()
                .max_attempts(5)
                .backoff(Backoff::constant(ms(1)))
                .build()
                .unwrap(),
        )
        .circuit_breaker(breaker.clone())
        .build();
    let calls = AtomicUsize::new(0);
    let err = policy
        .call(|| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), Failure>(()) }
        })
        .await
        .unwrap_err();
    assert!(err.is_circuit_open());
    assert_eq!(err.attempts(), Some(1));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(breaker.metrics().not_permitted_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_the_breaker_when_their_rate_reaches_the_threshold() {
    let breaker = CircuitBreaker::builder()
        .sliding_window(SlidingWindow::count(4))
        .minimum_number_of_calls(4)
        .slow_call_duration_threshold(ms(100))
        .slow_call_rate_threshold(50.0)
        .build()
        .unwrap();
    let clock = Clock::tokio();
    for delay in [10, 100, 101] {
        let clock = clock.clone();
        breaker
            .call(|| {
                let clock = clock.clone();
                async move {
                    clock.sleep(ms(delay)).await;
                    Ok::<(), Failure>(())
                }
            })
            .await
            .unwrap();
    }
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.buffered_calls, metrics.slow_calls),
        (3, 1),
        "100 ms is not slow, 101 ms is"
    );
    let clock2 = clock.clone();
    breaker
        .call(|| {
            let clock = clock2.clone();
            async move {
                clock.sleep(ms(500)).await;
                Ok::<(), Failure>(())
            }
        })
        .await
        .unwrap();
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().slow_call_rate, Some(50.0));
}

#[tokio::test(start_paused = true)]
async fn a_time_window_forgets_failures_older_than_the_window() {
    let breaker = CircuitBreaker::builder()
        .sliding_window(SlidingWindow::time(Duration::from_secs(10)))
        .minimum_number_of_calls(4)
        .disable_slow_call_tracking()
        .build()
        .unwrap();
    for _ in 0..3 {
        let _ = breaker
            .call(|| async { Err::<(), _>(Failure::transient()) })
            .await;
    }
    Clock::tokio().sleep(Duration::from_secs(10)).await;
    assert_eq!(breaker.metrics().buffered_calls, 0);
    let _ = breaker
        .call(|| async { Err::<(), _>(Failure::transient()) })
        .await;
    assert_eq!(
        breaker.state(),
        State::Closed,
        "one failure in the window, below the minimum"
    );
}

#[tokio::test(start_paused = true)]
async fn an_automatic_breaker_half_opens_on_a_timer_without_any_call() {
    let breaker = CircuitBreaker::builder()
        .sliding_window(SlidingWindow::count(1))
        .minimum_number_of_calls(1)
        .wait_in_open(ms(200))
        .automatic_half_open(true)
        .build()
        .unwrap();
    let events = record_events(&breaker);
    let _ = breaker
        .call(|| async { Err::<(), _>(Failure::transient()) })
        .await;
    assert_eq!(breaker.state(), State::Open);
    Clock::tokio().sleep(ms(199)).await;
    assert_eq!(breaker.state(), State::Open);
    Clock::tokio().sleep(ms(2)).await;
    assert_eq!(breaker.state(), State::HalfOpen);
    assert!(events.lock().unwrap().iter().any(|e| matches!(
        e,
        CircuitBreakerEvent::StateTransition {
            from: State::Open,
            to: State::HalfOpen,
            reason: TransitionReason::OpenWaitElapsed,
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn a_stuck_half_open_state_gives_up_after_its_maximum_wait() {
    let breaker = CircuitBreaker::builder()
        .sliding_window(SlidingWindow::count(1))
        .minimum_number_of_calls(1)
        .permitted_calls_in_half_open(1)
        .wait_in_open(ms(100))
        .max_wait_in_half_open(ms(300), State::Open)
        .build()
        .unwrap();
    breaker.transition_to_open().unwrap();
    Clock::tokio().sleep(ms(101)).await;
    // A probe that never completes (and is never dropped) holds the only slot.
    let stuck = tokio::spawn({
        let breaker = breaker.clone();
        async move {
            breaker
                .call(|| async {
                    pending::<()>().await;
                    Ok::<(), Failure>(())
                })
                .await
        }
    });
    tokio::task::yield_now().await;
    assert_eq!(breaker.state(), State::HalfOpen);
    Clock::tokio().sleep(ms(301)).await;
    assert_eq!(
        breaker.state(),
        State::Open,
        "the timer ended the stuck half-open state"
    );
    stuck.abort();
}

#[tokio::test(start_paused = true)]
async fn results_can_be_classified_as_failures() {
    let breaker = breaker(2).failure_if_result(|status: &&str| *status == "FAILED");
    for _ in 0..2 {
        breaker
            .call(|| async { Ok::<_, Failure>("FAILED") })
            .await
            .unwrap();
    }
    assert_eq!(breaker.state(), State::Open);

    let custom = CircuitBreaker::builder()
        .sliding_window(SlidingWindow::count(2))
        .minimum_number_of_calls(2)
        .build()
        .unwrap()
        .classify(|result: &Result<u16, Error<Failure>>| match result {
            Ok(status) if *status >= 500 => Outcome::Failure,
            Ok(status) if *status >= 400 => Outcome::Ignored,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        });
    for status in [404, 404, 200, 503] {
        custom
            .call(|| async move { Ok::<_, Failure>(status) })
            .await
            .unwrap();
    }
    assert_eq!(custom.metrics().buffered_calls, 2);
    assert_eq!(custom.metrics().failure_rate, Some(50.0));
    assert_eq!(custom.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn each_transition_is_reported_once_with_its_reason_and_per_call_events_are_opt_in() {
    let breaker = breaker(2);
    let events = record_events(&breaker);
    for _ in 0..2 {
        let _ = breaker
            .call(|| async { Err::<(), _>(Failure::transient()) })
            .await;
    }
    let _ = breaker.call(|| async { Ok::<(), Failure>(()) }).await;
    let events = events.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            CircuitBreakerEvent::FailureRateExceeded {
                name: "pg".into(),
                rate: 100.0
            },
            CircuitBreakerEvent::StateTransition {
                name: "pg".into(),
                from: State::Closed,
                to: State::Open,
                reason: TransitionReason::FailureRateExceeded,
            },
            CircuitBreakerEvent::CallNotPermitted {
                name: "pg".into(),
                state: State::Open
            },
        ]
    );

    let chatty = CircuitBreaker::builder()
        .per_call_events(true)
        .build()
        .unwrap();
    let chatter = record_events(&chatty);
    chatty
        .call(|| async { Ok::<(), Failure>(()) })
        .await
        .unwrap();
    assert!(matches!(
        chatter.lock().unwrap()[0],
        CircuitBreakerEvent::Success {
            elapsed: Some(_),
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn reconfiguring_keeps_an_open_breaker_open_and_the_window_counts() {
    let breaker = breaker(4);
    for _ in 0..3 {
        let _ = breaker
            .call(|| async { Err::<(), _>(Failure::transient()) })
            .await;
    }
    assert_eq!(breaker.metrics().buffered_calls, 3);
    let mut stricter = breaker.config();
    stricter.failure_rate_threshold = 20.0;
    breaker.reconfigure(stricter).unwrap();
    assert_eq!(breaker.metrics().buffered_calls, 3, "the window was kept");
    breaker
        .call(|| async { Ok::<(), Failure>(()) })
        .await
        .unwrap();
    assert_eq!(breaker.state(), State::Open, "75 % >= 20 %");
    let mut relaxed = breaker.config();
    relaxed.failure_rate_threshold = 90.0;
    breaker.reconfigure(relaxed).unwrap();
    assert_eq!(breaker.state(), State::Open, "an open breaker stays open");
    let mut invalid = breaker.config();
    invalid.failure_rate_threshold = 120.0;
    let err = breaker.reconfigure(invalid).unwrap_err();
    assert_eq!(err.key(), "failure_rate_threshold");
    assert_eq!(
        breaker.config().failure_rate_threshold,
        90.0,
        "nothing changed"
    );
}

#[tokio::test(start_paused = true)]
async fn manual_transitions_follow_the_table() {
    let breaker = breaker(2);
    let err = breaker.transition_to_half_open().unwrap_err();
    assert_eq!((err.from(), err.to()), (State::Closed, State::HalfOpen));
    breaker.transition_to_forced_open().unwrap();
    assert!(
        breaker
            .call(|| async { Ok::<(), Failure>(()) })
            .await
            .unwrap_err()
            .is_circuit_open()
    );
    breaker.transition_to_disabled().unwrap();
    for _ in 0..10 {
        let _ = breaker
            .call(|| async { Err::<(), _>(Failure::transient()) })
            .await;
    }
    assert_eq!(breaker.state(), State::Disabled);
    breaker.transition_to_metrics_only().unwrap();
    assert!(breaker.transition_to_open().is_err());
    breaker.open_for(ms(10)).unwrap_err();
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    breaker.open_for(ms(10)).unwrap();
    Clock::tokio().sleep(ms(11)).await;
    assert!(breaker.is_call_permitted());
}

#[tokio::test(start_paused = true)]
async fn switching_between_two_window_sizes_keeps_the_newest_outcomes_every_time() {
    let breaker = breaker(4);
    for round in 0..20 {
        breaker
            .call(|| async { Ok::<(), Failure>(()) })
            .await
            .unwrap();
        let mut config = breaker.config();
        config.sliding_window = SlidingWindow::count(if round % 2 == 0 { 8 } else { 4 });
        breaker.reconfigure(config).unwrap();
        let metrics = breaker.metrics();
        assert_eq!(
            metrics.buffered_calls,
            (round + 1).min(4),
            "round {round}: the newest outcomes that fit were kept"
        );
        assert_eq!(metrics.successful_calls, metrics.buffered_calls);
    }
}

#[tokio::test(start_paused = true)]
async fn a_breaker_given_many_window_shapes_keeps_its_outcomes_and_keeps_recording() {
    let breaker = breaker(4);
    let _ = breaker
        .call(|| async { Err::<(), _>(Failure::transient()) })
        .await;
    for size in (5..40).chain([4, 40, 41]) {
        let mut config = breaker.config();
        config.sliding_window = SlidingWindow::count(size);
        breaker.reconfigure(config).unwrap();
        assert_eq!(breaker.metrics().failed_calls, 1, "size {size}");
    }
    breaker.transition_to_open().unwrap();
    breaker.transition_to_closed().unwrap();
    for _ in 0..41 {
        let _ = breaker
            .call(|| async { Err::<(), _>(Failure::transient()) })
            .await;
    }
    assert_eq!(
        breaker.state(),
        State::Open,
        "41 failures in a window of 41"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_admitted_before_the_breaker_closed_again_is_not_counted_in_the_new_window() {
    let breaker = breaker(4);
    let stale = breaker.try_acquire().unwrap();
    breaker.transition_to_open().unwrap();
    breaker.transition_to_closed().unwrap();
    stale.failure();
    assert_eq!(breaker.metrics().buffered_calls, 0);
    let stale = breaker.try_acquire().unwrap();
    breaker.transition_to_open().unwrap();
    breaker.transition_to_closed().unwrap();
    stale.failure();
    let metrics = breaker.metrics();
    assert_eq!((metrics.buffered_calls, metrics.failed_calls), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_striped_count_window_opens_on_failures_and_closes_again_after_good_probes() {
    let breaker = CircuitBreaker::builder()
        .name("pg")
        .sliding_window(SlidingWindow::striped_count(10))
        .minimum_number_of_calls(10)
        .wait_in_open(ms(1_000))
        .permitted_calls_in_half_open(2)
        .disable_slow_call_tracking()
        .build()
        .unwrap();
    for _ in 0..9 {
        let _ = breaker.call(|| async { Ok::<(), PgError>(()) }).await;
    }
    assert_eq!(breaker.state(), State::Closed);
    // One thread fills its stripe with failures: its newest calls all failed.
    for _ in 0..10 {
        let _ = breaker
            .call(|| async { Err::<(), _>(PgError::Server(503)) })
            .await;
        if breaker.state() == State::Open {
            break;
        }
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        breaker.config().sliding_window,
        SlidingWindow::striped_count(10)
    );
    tokio::time::advance(ms(1_001)).await;
    for _ in 0..2 {
        breaker
            .call(|| async { Ok::<(), PgError>(()) })
            .await
            .unwrap();
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(
        breaker.metrics().buffered_calls,
        0,
        "a fresh striped window"
    );
}

//! How the circuit breaker times calls for slow-call tracking: lazily on tokio's clock (a
//! coarse reading at the start, a precise one only once the call is pending), exactly on a
//! manual clock. See the slow-call section of `seawall::circuit_breaker`'s docs.

use std::future::{Future, poll_fn};
use std::task::Poll;
use std::time::Duration;

use seawall::Clock;
use seawall::circuit_breaker::{CircuitBreaker, SlidingWindow};
use seawall::clock::ManualClock;

use crate::support::{Failure, ms};

/// A breaker that never opens (so every call is recorded) with a slow-call threshold.
fn breaker_on(clock: Clock, threshold: Duration) -> CircuitBreaker {
    CircuitBreaker::builder()
        .sliding_window(SlidingWindow::count(10))
        .minimum_number_of_calls(10)
        .slow_call_duration_threshold(threshold)
        .clock(clock)
        .build()
        .unwrap()
}

/// Blocks the polling thread: the case lazy timing must still catch.
#[allow(clippy::disallowed_methods)] // blocking a thread is the behaviour under test
fn block_thread(duration: Duration) {
    std::thread::sleep(duration);
}

/// A future pending once (it wakes itself), then ready.
fn pending_once() -> impl Future<Output = ()> {
    let mut polled = false;
    poll_fn(move |cx| {
        if polled {
            Poll::Ready(())
        } else {
            polled = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

fn slow_calls(breaker: &CircuitBreaker) -> (u64, u64) {
    let metrics = breaker.metrics();
    (metrics.buffered_calls, metrics.slow_calls)
}

#[tokio::test(start_paused = true)]
async fn a_pending_call_longer_than_the_threshold_is_slow_under_paused_time() {
    let clock = Clock::tokio();
    let breaker = breaker_on(clock.clone(), ms(100));
    for delay in [100, 150] {
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
    assert_eq!(
        slow_calls(&breaker),
        (2, 1),
        "100 ms is not slow, 150 ms is"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fast_call_is_not_slow() {
    let breaker = breaker_on(Clock::tokio(), ms(100));
    for _ in 0..5 {
        breaker
            .call(|| async { Ok::<(), Failure>(()) })
            .await
            .unwrap();
    }
    assert_eq!(slow_calls(&breaker), (5, 0));
}

// Real time: the coarse clock measures how long a poll blocks its thread. The margin is 5× the
// threshold (and the coarse clock's resolution is 1 ms), so the assertion cannot race it.
#[tokio::test]
async fn a_call_that_blocks_its_thread_on_the_first_poll_longer_than_the_threshold_is_slow() {
    let breaker = breaker_on(Clock::tokio(), ms(20));
    breaker
        .call(|| async {
            block_thread(ms(100));
            Ok::<(), Failure>(())
        })
        .await
        .unwrap();
    assert_eq!(slow_calls(&breaker), (1, 1));
}

// Under paused time the pending part of this call takes no virtual time: only the first
// poll's blocking, measured by the coarse clock, makes it slow.
#[tokio::test(start_paused = true)]
async fn a_call_that_blocks_its_first_poll_and_then_waits_counts_the_blocked_time() {
    let breaker = breaker_on(Clock::tokio(), ms(20));
    breaker
        .call(|| async {
            block_thread(ms(100));
            pending_once().await;
            Ok::<(), Failure>(())
        })
        .await
        .unwrap();
    assert_eq!(slow_calls(&breaker), (1, 1));
}

// The first poll's coarse duration is added as its own length: 30 ms of blocking against a
// 1 s threshold is far from slow (the margin absorbs any lateness of the coarse clock).
#[tokio::test(start_paused = true)]
async fn a_blocked_first_poll_adds_its_own_length_and_no_more() {
    let breaker = breaker_on(Clock::tokio(), ms(1_000));
    breaker
        .call(|| async {
            block_thread(ms(30));
            pending_once().await;
            Ok::<(), Failure>(())
        })
        .await
        .unwrap();
    assert_eq!(slow_calls(&breaker), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_permit_on_tokios_clock_is_timed_precisely_under_paused_time() {
    let clock = Clock::tokio();
    let breaker = breaker_on(clock.clone(), ms(100));
    let permit = breaker.try_acquire().unwrap();
    clock.sleep(ms(150)).await;
    assert_eq!(permit.elapsed(), Some(ms(150)));
    permit.success();
    assert_eq!(slow_calls(&breaker), (1, 1));
}

#[tokio::test]
async fn a_manual_clock_advanced_inside_a_synchronous_call_is_timed_exactly() {
    let manual = ManualClock::new();
    let breaker = breaker_on(Clock::from(manual.clone()), ms(100));
    for advance in [ms(100), ms(100) + Duration::from_nanos(1)] {
        breaker
            .call(|| {
                manual.advance(advance);
                async { Ok::<(), Failure>(()) }
            })
            .await
            .unwrap();
    }
    assert_eq!(
        slow_calls(&breaker),
        (2, 1),
        "exactly the threshold is not slow, one nanosecond more is"
    );
}

#[cfg(feature = "tower")]
mod tower_layer {
    use seawall::BoxError;
    use seawall::circuit_breaker::CircuitBreakerLayer;
    use tower::{Layer, ServiceExt, service_fn};

    use super::*;

    #[tokio::test]
    async fn the_tower_layer_counts_a_first_poll_that_blocks_longer_than_the_threshold_as_slow() {
        let breaker = breaker_on(Clock::tokio(), ms(20));
        let service = CircuitBreakerLayer::new(breaker.clone()).layer(service_fn(
            |blocked: Duration| async move {
                block_thread(blocked);
                Ok::<(), BoxError>(())
            },
        ));
        service.clone().oneshot(Duration::ZERO).await.unwrap();
        service.oneshot(ms(100)).await.unwrap();
        assert_eq!(slow_calls(&breaker), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_tower_layer_times_a_pending_call_on_paused_time() {
        let clock = Clock::tokio();
        let breaker = breaker_on(clock.clone(), ms(100));
        let service =
            CircuitBreakerLayer::new(breaker.clone()).layer(service_fn(move |delay: u64| {
                let clock = clock.clone();
                async move {
                    clock.sleep(ms(delay)).await;
                    Ok::<(), BoxError>(())
                }
            }));
        service.clone().oneshot(100).await.unwrap();
        service.oneshot(101).await.unwrap();
        assert_eq!(
            slow_calls(&breaker),
            (2, 1),
            "100 ms is not slow, 101 ms is"
        );
    }
}

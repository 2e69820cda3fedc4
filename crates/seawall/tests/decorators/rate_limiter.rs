use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use seawall::rate_limiter::{RateLimiterConfig, RateLimiterEvent};
use seawall::{Clock, Policy, RateLimiter, Retry};

use crate::support::{AttemptLog, Failure, ms};

fn limiter(limit: u32, period_ms: u64, timeout_ms: u64) -> RateLimiter {
    RateLimiter::builder()
        .name("pg")
        .limit_for_period(limit)
        .limit_refresh_period(ms(period_ms))
        .timeout(ms(timeout_ms))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn calls_beyond_the_burst_wait_for_their_slot_in_order() {
    let limiter = limiter(2, 1_000, 2_000);
    let log = AttemptLog::new();
    for _ in 0..5 {
        limiter
            .call(|| {
                log.record();
                async { Ok::<_, Failure>(()) }
            })
            .await
            .unwrap();
    }
    assert_eq!(log.starts(), [ms(0), ms(0), ms(500), ms(1_000), ms(1_500)]);
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_slot_is_beyond_the_timeout_is_rejected_at_once_with_a_hint() {
    let limiter = limiter(1, 1_000, 300);
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    limiter.on_event(move |event| sink.lock().unwrap().push(event.clone()));
    limiter
        .call(|| async { Ok::<_, Failure>(()) })
        .await
        .unwrap();
    let started = AtomicUsize::new(0);
    let clock = Clock::tokio();
    let before = clock.now();
    let err = limiter
        .call(|| {
            started.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Failure>(()) }
        })
        .await
        .unwrap_err();
    assert!(err.is_rate_limited());
    assert_eq!(err.retry_after(), Some(ms(1_000)));
    assert_eq!(
        clock.now(),
        before,
        "rejected without waiting for the timeout"
    );
    assert_eq!(started.load(Ordering::SeqCst), 0);
    assert_eq!(
        *events.lock().unwrap(),
        [RateLimiterEvent::Rejected {
            name: "pg".into(),
            retry_after: ms(1_000)
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_waiting_call_gives_its_slot_back() {
    let limiter = limiter(1, 1_000, 5_000);
    limiter
        .call(|| async { Ok::<_, Failure>(()) })
        .await
        .unwrap();
    let mut waiting = tokio_test::task::spawn(limiter.call(|| async { Ok::<_, Failure>(()) }));
    assert!(waiting.poll().is_pending());
    assert_eq!(limiter.waiting_calls(), 1);
    drop(waiting);
    assert_eq!(limiter.waiting_calls(), 0);
    let clock = Clock::tokio();
    let before = clock.now();
    limiter
        .call(|| async { Ok::<_, Failure>(()) })
        .await
        .unwrap();
    assert_eq!(
        clock.now() - before,
        ms(1_000),
        "the freed slot, not one after it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_honours_the_limiters_hint() {
    let policy = Policy::builder()
        .retry(
            Retry::builder()
                .max_attempts(2)
                .backoff(seawall::Backoff::constant(ms(1)))
                .build()
                .unwrap(),
        )
        .rate_limiter(limiter(1, 1_000, 0))
        .build();
    policy
        .call(|| async { Ok::<_, Failure>(()) })
        .await
        .unwrap();
    let log = AttemptLog::new();
    policy
        .call(|| {
            log.record();
            async { Ok::<_, Failure>(()) }
        })
        .await
        .unwrap();
    assert_eq!(
        log.starts(),
        [ms(1_000)],
        "the first attempt was rejected; the retry waited the hint"
    );
}

#[tokio::test(start_paused = true)]
async fn reconfiguring_the_rate_applies_to_the_next_call() {
    let limiter = limiter(1, 1_000, 0);
    limiter
        .call(|| async { Ok::<_, Failure>(()) })
        .await
        .unwrap();
    limiter
        .reconfigure({
            let mut config = RateLimiterConfig::new(10, Duration::from_secs(1));
            config.timeout = ms(200);
            config
        })
        .unwrap();
    // The schedule already admitted is kept; the next slot is 100 ms after the first call.
    let clock = Clock::tokio();
    let before = clock.now();
    limiter
        .call(|| async { Ok::<_, Failure>(()) })
        .await
        .unwrap();
    assert!(clock.now() - before <= ms(1_000));
    assert!(
        limiter
            .reconfigure({
                let mut config = limiter.config();
                config.limit_for_period = 0;
                config
            })
            .is_err()
    );
}

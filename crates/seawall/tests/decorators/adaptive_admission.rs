//! The adaptive limiter's shell: admission, waiting, cancellation, drops, events and live
//! reconfiguration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::AdaptiveLimiter;
use seawall::adaptive::{AdaptiveLimiterConfig, AdaptiveLimiterEvent, LimitAlgorithm};
use seawall::{Policy, Timeout};
use tokio::sync::oneshot;

use crate::support::{Failure, ms};

fn aimd(initial: usize, max: usize) -> AdaptiveLimiterConfig {
    let mut config = AdaptiveLimiterConfig::new(LimitAlgorithm::Aimd);
    config.initial_limit = initial;
    config.max_limit = max;
    config
}

fn limiter(config: AdaptiveLimiterConfig) -> AdaptiveLimiter {
    AdaptiveLimiter::builder()
        .name("pg")
        .config(config)
        .build()
        .unwrap()
}

/// Spawns a call through `limiter` that runs until its sender fires.
fn gated_call(
    limiter: &AdaptiveLimiter,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), seawall::Error<Failure>>>,
) {
    let (release, gate) = oneshot::channel::<()>();
    let limiter = limiter.clone();
    let handle = tokio::spawn(async move {
        let mut gate = Some(gate);
        limiter
            .call(|| {
                let gate = gate.take();
                async move {
                    if let Some(gate) = gate {
                        let _ = gate.await;
                    }
                    Ok(())
                }
            })
            .await
    });
    (release, handle)
}

#[tokio::test(start_paused = true)]
async fn a_call_beyond_the_limit_is_rejected_at_once_without_running() {
    let limiter = limiter(aimd(1, 1));
    let (release, first) = gated_call(&limiter);
    tokio::task::yield_now().await;
    assert_eq!(limiter.inflight(), 1);

    let mut ran = false;
    let err = limiter
        .call(|| {
            ran = true;
            async { Ok::<_, Failure>(()) }
        })
        .await
        .unwrap_err();
    assert!(err.is_limit_exceeded());
    assert_eq!(err.kind(), seawall::ErrorKind::LimitExceeded);
    assert_eq!(err.rejected_by(), Some("pg"));
    assert!(!ran, "the operation never starts without a permit");
    assert_eq!(limiter.rejected_calls(), 1);

    release.send(()).unwrap();
    first.await.unwrap().unwrap();
    assert_eq!(limiter.inflight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_gets_a_returned_permit_and_a_late_one_is_rejected_after_max_wait() {
    let mut config = aimd(1, 1);
    config.max_wait = ms(100);
    let limiter = limiter(config);
    let (release, first) = gated_call(&limiter);
    tokio::task::yield_now().await;

    let (second_release, second) = gated_call(&limiter);
    seawall::Clock::tokio().sleep(ms(50)).await;
    release.send(()).unwrap();
    first.await.unwrap().unwrap();
    tokio::task::yield_now().await;
    assert_eq!(limiter.inflight(), 1, "the waiter took the returned permit");

    let clock = seawall::Clock::tokio();
    let started = clock.now();
    let third = limiter.call(|| async { Ok::<_, Failure>(()) }).await;
    assert!(third.unwrap_err().is_limit_exceeded());
    assert_eq!(clock.now() - started, ms(100));

    second_release.send(()).unwrap();
    second.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_gives_its_permit_back_and_records_nothing() {
    let limiter = limiter(aimd(10, 100));
    let (_release, call) = gated_call(&limiter);
    tokio::task::yield_now().await;
    assert_eq!(limiter.available_permits(), 9);
    call.abort();
    let _ = call.await;
    assert_eq!(limiter.available_permits(), 10);
    assert_eq!(limiter.inflight(), 0);
    assert_eq!(limiter.limit(), 10, "no sample was recorded");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_inside_the_limiter_is_a_drop_and_lowers_the_limit() {
    let limiter = limiter(aimd(20, 100));
    let policy = Policy::builder()
        .adaptive_limiter(limiter.clone())
        .timeout(Timeout::new(ms(10)))
        .build();
    let err = policy
        .call(|| async {
            std::future::pending::<()>().await;
            Ok::<(), Failure>(())
        })
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(limiter.limit(), 18, "20 × 0.9");
    assert_eq!(limiter.available_permits(), 18);
}

#[tokio::test(start_paused = true)]
async fn a_success_grows_the_aimd_limit_when_half_of_it_is_in_use() {
    let limiter = limiter(aimd(2, 100));
    limiter
        .call(|| async { Ok::<_, Failure>(()) })
        .await
        .unwrap();
    assert_eq!(limiter.limit(), 3);
    // Now 1 in flight of 3: not enough use to grow.
    limiter
        .call(|| async { Ok::<_, Failure>(()) })
        .await
        .unwrap();
    assert_eq!(limiter.limit(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_classifier_decides_what_counts_as_a_drop() {
    let limiter = limiter(aimd(20, 100)).classify(
        |result: &Result<(), seawall::Error<Failure>>| match result {
            Err(error) if error.inner().is_some_and(|f| !f.transient) => {
                seawall::circuit_breaker::Outcome::Ignored
            }
            Ok(_) => seawall::circuit_breaker::Outcome::Success,
            Err(_) => seawall::circuit_breaker::Outcome::Failure,
        },
    );
    let _ = limiter
        .call(|| async { Err::<(), _>(Failure::permanent()) })
        .await;
    assert_eq!(limiter.limit(), 20, "a business error is ignored");
    let _ = limiter
        .call(|| async { Err::<(), _>(Failure::transient()) })
        .await;
    assert_eq!(limiter.limit(), 18);
}

#[tokio::test(start_paused = true)]
async fn limit_events_fire_only_on_changes_of_ten_percent() {
    let mut config = aimd(100, 100);
    config.backoff_ratio = 0.95;
    let limiter = limiter(config);
    let events = Arc::new(Mutex::new(Vec::new()));
    limiter.on_event({
        let events = events.clone();
        move |event| {
            if let AdaptiveLimiterEvent::LimitChanged { from, to, .. } = event {
                events.lock().unwrap().push((*from, *to));
            }
        }
    });
    let mut limits = Vec::new();
    for _ in 0..4 {
        let permit = limiter.try_acquire().unwrap();
        permit.dropped();
        limits.push(limiter.limit());
    }
    assert_eq!(limits, [95, 90, 85, 81]);
    assert_eq!(*events.lock().unwrap(), [(100, 90), (90, 81)]);
}

#[tokio::test(start_paused = true)]
async fn reconfiguring_keeps_the_limit_within_the_new_bounds_and_the_permits_in_use() {
    let limiter = limiter(aimd(20, 100));
    let (release, call) = gated_call(&limiter);
    tokio::task::yield_now().await;

    let mut config = AdaptiveLimiterConfig::new(LimitAlgorithm::Vegas);
    config.initial_limit = 5;
    config.max_limit = 10;
    limiter.reconfigure(config).unwrap();
    assert_eq!(
        limiter.limit(),
        10,
        "clamped to the new maximum, not reset to 5"
    );
    assert_eq!(
        limiter.available_permits(),
        9,
        "the call in flight keeps its permit"
    );
    assert_eq!(limiter.config(), config);

    let mut invalid = config;
    invalid.min_limit = 0;
    assert_eq!(limiter.reconfigure(invalid).unwrap_err().key(), "min_limit");
    assert_eq!(limiter.config(), config);

    release.send(()).unwrap();
    call.await.unwrap().unwrap();
    assert_eq!(limiter.available_permits(), 10);
}

#[tokio::test(start_paused = true)]
async fn a_permit_measures_its_rtt_on_the_limiters_clock() {
    let mut config = aimd(4, 100);
    config.rtt_timeout = Duration::from_millis(100);
    let limiter = limiter(config);
    let permit = limiter.try_acquire().unwrap();
    let other = limiter.try_acquire().unwrap();
    seawall::Clock::tokio().sleep(ms(150)).await;
    permit.success(); // 150 ms > 100 ms: a drop, 4 × 0.9
    assert_eq!(limiter.limit(), 3);
    drop(other);
    assert_eq!(limiter.limit(), 3);
}

//! The tower layers follow tower's `poll_ready` contract and return downcastable markers.
#![cfg(feature = "tower")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use seawall::bulkhead::{BulkheadLayer, BulkheadMode};
use seawall::error::{BulkheadFull, CircuitOpen, Elapsed};
use seawall::fallback::FallbackLayer;
use seawall::retry::RetryLayer;
use seawall::timeout::TimeoutLayer;
use seawall::{BoxError, Bulkhead, Retry, Timeout};
use tokio_test::assert_ready_ok;
use tower::{Layer, Service, ServiceExt, service_fn};

use crate::support::ms;

#[tokio::test(start_paused = true)]
async fn the_timeout_layer_returns_a_downcastable_elapsed() {
    let service = TimeoutLayer::new(Timeout::new(ms(20))).layer(service_fn(|_: ()| async {
        std::future::pending::<()>().await;
        Ok::<_, BoxError>("late")
    }));
    let err = service.oneshot(()).await.unwrap_err();
    assert_eq!(err.downcast_ref::<Elapsed>().unwrap().after(), ms(20));
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_layer_is_ready_but_rejects_in_call_without_calling_inner() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let bulkhead = Bulkhead::builder()
        .name("db")
        .max_concurrent_calls(1)
        .build()
        .unwrap();
    let inner = service_fn(move |_: ()| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, BoxError>(()) }
    });
    let mut first = BulkheadLayer::new(bulkhead.clone()).layer(inner.clone());
    let mut second = BulkheadLayer::new(bulkhead.clone()).layer(inner);

    // The first service takes the only permit in poll_ready and holds it until its call ends.
    first.ready().await.unwrap();
    assert_eq!(bulkhead.available_permits(), 0);

    let mut ready = tokio_test::task::spawn(second.ready());
    assert!(
        ready.poll().is_ready(),
        "a full bulkhead never reports an error from poll_ready"
    );
    drop(ready);
    let err = second.call(()).await.unwrap_err();
    assert!(err.is::<BulkheadFull>());
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let response = first.call(());
    assert_eq!(
        bulkhead.available_permits(),
        0,
        "the response future holds the permit"
    );
    response.await.unwrap();
    assert_eq!(bulkhead.available_permits(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_backpressure_bulkhead_layer_stays_pending_until_a_permit_frees() {
    let bulkhead = Bulkhead::new(1);
    let inner = service_fn(|_: ()| async { Ok::<_, BoxError>(()) });
    let layer = BulkheadLayer::new(bulkhead.clone()).mode(BulkheadMode::Backpressure);
    let mut holder = layer.layer(inner);
    let mut waiter = layer.layer(inner);
    holder.ready().await.unwrap();

    let mut task = tokio_test::task::spawn(());
    task.enter(|cx, _| assert!(waiter.poll_ready(cx).is_pending()));
    drop(holder);
    assert!(task.is_woken());
    task.enter(|cx, _| assert!(waiter.poll_ready(cx).is_ready()));
    waiter.call(()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_reject_mode_bulkhead_layer_waits_up_to_max_wait_in_poll_ready() {
    let bulkhead = Bulkhead::builder()
        .max_concurrent_calls(1)
        .max_wait(ms(50))
        .build()
        .unwrap();
    let inner = service_fn(|_: ()| async { Ok::<_, BoxError>(()) });
    let layer = BulkheadLayer::new(bulkhead.clone());
    let mut holder = layer.layer(inner);
    let mut waiter = layer.layer(inner);
    holder.ready().await.unwrap();

    let clock = seawall::Clock::tokio();
    let before = clock.now();
    waiter.ready().await.unwrap();
    assert_eq!(clock.now() - before, ms(50));
    assert!(waiter.call(()).await.unwrap_err().is::<BulkheadFull>());
}

#[tokio::test(start_paused = true)]
async fn the_retry_layer_retries_failures_and_not_an_inner_open_circuit() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let flaky = service_fn(move |request: u32| {
        let attempt = counted.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if attempt < 3 {
                Err::<u32, BoxError>("transient".into())
            } else {
                Ok(request * 2)
            }
        }
    });
    let retry = Retry::builder()
        .max_attempts(3)
        .backoff(seawall::Backoff::constant(ms(5)))
        .build()
        .unwrap();
    let service = RetryLayer::new(retry.clone()).layer(flaky);
    assert_eq!(service.oneshot(21).await.unwrap(), 42);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(retry.metrics().successful_with_retry, 1);

    let rejections = Arc::new(AtomicUsize::new(0));
    let counted = rejections.clone();
    let open = service_fn(move |_: u32| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Err::<u32, BoxError>(Box::new(crate::support::circuit_open())) }
    });
    let err = RetryLayer::new(retry)
        .layer(open)
        .oneshot(1)
        .await
        .unwrap_err();
    assert!(err.is::<CircuitOpen>());
    assert_eq!(
        rejections.load(Ordering::SeqCst),
        1,
        "an open circuit is not retried"
    );
}

#[tokio::test]
async fn the_fallback_layer_answers_for_a_failed_call() {
    let failing = service_fn(|_: ()| async {
        Err::<&str, BoxError>(Box::new(crate::support::circuit_open()))
    });
    let service = FallbackLayer::new(|error: BoxError| {
        if error.is::<CircuitOpen>() {
            Ok("try again later")
        } else {
            Err(error)
        }
    })
    .layer(failing);
    assert_eq!(service.oneshot(()).await.unwrap(), "try again later");
}

#[tokio::test(start_paused = true)]
async fn layers_stack_with_tower_service_builder() {
    let service = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(
            Retry::builder()
                .max_attempts(2)
                .no_backoff()
                .build()
                .unwrap(),
        ))
        .layer(TimeoutLayer::new(Timeout::new(ms(10))))
        .layer(BulkheadLayer::new(Bulkhead::new(4)))
        .service(service_fn(|x: u8| async move { Ok::<_, BoxError>(x + 1) }));
    let mut service = service;
    let mut task = tokio_test::task::spawn(());
    task.enter(|cx, _| assert_ready_ok!(service.poll_ready(cx)));
    assert_eq!(service.call(1).await.unwrap(), 2);
}

mod circuit_breaker {
    use super::*;
    use seawall::circuit_breaker::{
        CircuitBreaker, CircuitBreakerLayer, CircuitBreakerMode, SlidingWindow, State,
    };

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::builder()
            .name("pg")
            .sliding_window(SlidingWindow::count(2))
            .minimum_number_of_calls(2)
            .wait_in_open(ms(100))
            .build()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_layer_rejects_in_call_without_polling_the_inner_service() {
        let breaker = breaker();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inner = service_fn(move |_: ()| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), BoxError>("500".into()) }
        });
        let mut service = CircuitBreakerLayer::new(breaker.clone()).layer(inner);
        for _ in 0..2 {
            assert!(service.ready().await.unwrap().call(()).await.is_err());
        }
        assert_eq!(breaker.state(), State::Open);
        let err = service.ready().await.unwrap().call(()).await.unwrap_err();
        assert!(err.is::<CircuitOpen>());
        assert!(
            breaker.retry_after().is_some(),
            "the breaker tells the wait"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_inner_timeout_marker_counts_as_a_failure() {
        let breaker = breaker();
        let service = tower::ServiceBuilder::new()
            .layer(CircuitBreakerLayer::new(breaker.clone()))
            .layer(TimeoutLayer::new(Timeout::new(ms(10))))
            .service(service_fn(|_: ()| async {
                std::future::pending::<()>().await;
                Ok::<(), BoxError>(())
            }));
        for _ in 0..2 {
            let err = service.clone().oneshot(()).await.unwrap_err();
            assert!(err.is::<Elapsed>());
        }
        assert_eq!(breaker.state(), State::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_backpressure_breaker_layer_waits_for_the_open_wait_then_probes() {
        let breaker = breaker();
        breaker.transition_to_open().unwrap();
        let mut service = CircuitBreakerLayer::new(breaker.clone())
            .mode(CircuitBreakerMode::Backpressure)
            .layer(service_fn(|_: ()| async { Ok::<_, BoxError>("ok") }));
        let clock = seawall::Clock::tokio();
        let before = clock.now();
        service.ready().await.unwrap();
        assert!(clock.now() - before > ms(100));
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_eq!(service.call(()).await.unwrap(), "ok");
    }
}

#[tokio::test(start_paused = true)]
async fn the_rate_limiter_layer_shares_one_rate_across_clones_and_rejects_in_call() {
    use seawall::rate_limiter::{RateLimiterConfig, RateLimiterLayer};
    let limiter = seawall::RateLimiter::builder()
        .config({
            let mut config = RateLimiterConfig::new(1, ms(1_000));
            config.timeout = ms(0);
            config
        })
        .build()
        .unwrap();
    let service =
        RateLimiterLayer::new(limiter).layer(service_fn(|_: ()| async { Ok::<_, BoxError>("ok") }));
    assert_eq!(service.clone().oneshot(()).await.unwrap(), "ok");
    let err = service.clone().oneshot(()).await.unwrap_err();
    assert!(err.is::<seawall::error::RateLimited>());
}

#[test]
fn every_layered_service_is_send_and_sync_so_axum_routers_accept_it() {
    fn sync_service<S: Send + Sync>(_: &S) {}
    let inner = service_fn(|_: ()| async { Ok::<_, BoxError>(()) });
    sync_service(&BulkheadLayer::new(seawall::Bulkhead::new(1)).layer(inner));
    sync_service(&TimeoutLayer::new(Timeout::new(ms(10))).layer(inner));
    sync_service(&RetryLayer::new(seawall::Retry::builder().build().unwrap()).layer(inner));
    sync_service(
        &seawall::circuit_breaker::CircuitBreakerLayer::new(
            seawall::CircuitBreaker::builder().build().unwrap(),
        )
        .layer(inner),
    );
    sync_service(
        &seawall::rate_limiter::RateLimiterLayer::new(
            seawall::RateLimiter::builder().build().unwrap(),
        )
        .layer(inner),
    );
    let mut hedged =
        seawall::hedge::HedgeLayer::new(seawall::Hedge::builder().build().unwrap()).layer(inner);
    sync_service(&hedged);
    fn send_future<F: Send>(_: &F) {}
    send_future(&hedged.call(()));
}

#[tokio::test(start_paused = true)]
async fn the_hedge_layer_sends_a_copy_after_the_delay_and_returns_the_first_answer() {
    use seawall::Hedge;
    use seawall::hedge::{HedgeConfig, HedgeLayer};

    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let inner = service_fn(move |request: &'static str| {
        let call = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            // The first request hangs; the copy answers.
            seawall::Clock::tokio()
                .sleep(if call == 0 { ms(10_000) } else { ms(5) })
                .await;
            Ok::<_, BoxError>((request, call))
        }
    });
    let hedge = Hedge::builder()
        .config(HedgeConfig::fixed(ms(50)))
        .build()
        .unwrap();
    let service = HedgeLayer::new(hedge.clone()).layer(inner);
    let clock = seawall::Clock::tokio();
    let start = clock.now();
    let answer = service.oneshot("status?").await.unwrap();
    assert_eq!(answer, ("status?", 1));
    assert_eq!(clock.now() - start, ms(55));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(hedge.metrics().hedges_won, 1);
}

#[tokio::test(start_paused = true)]
async fn an_adaptive_limiter_layer_rejects_with_a_zero_sized_marker_and_learns_from_inner_timeouts()
{
    use seawall::AdaptiveLimiter;
    use seawall::adaptive::{AdaptiveLimiterConfig, AdaptiveLimiterLayer, LimitExceeded};

    let mut config = AdaptiveLimiterConfig::default();
    config.initial_limit = 2;
    let limiter = AdaptiveLimiter::builder().config(config).build().unwrap();
    let layer = AdaptiveLimiterLayer::new(limiter.clone());
    let slow = service_fn(|_: ()| async {
        std::future::pending::<()>().await;
        Ok::<_, BoxError>(())
    });
    let mut first = layer.layer(TimeoutLayer::new(Timeout::new(ms(20))).layer(slow));
    let mut second = layer.layer(service_fn(|_: ()| async { Ok::<_, BoxError>(()) }));
    let mut third = second.clone();

    first.ready().await.unwrap();
    second.ready().await.unwrap();
    assert_eq!(limiter.available_permits(), 0);
    third.ready().await.unwrap();
    let err = third.call(()).await.unwrap_err();
    assert!(err.is::<LimitExceeded>());
    assert_eq!(limiter.rejected_calls(), 1);

    // A success with 2 of 2 in flight: +1.
    second.call(()).await.unwrap();
    assert_eq!(limiter.limit(), 3);
    // The inner timeout layer's Elapsed is a drop: 3 × 0.9 rounds down to 2.
    let err = first.call(()).await.unwrap_err();
    assert!(err.is::<Elapsed>());
    assert_eq!(limiter.limit(), 2);
    assert_eq!(limiter.inflight(), 0);
}

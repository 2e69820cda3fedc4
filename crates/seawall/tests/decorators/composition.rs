use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use seawall::{Backoff, Bulkhead, Error, ErrorKind, Fallback, GaveUp, Policy, Retry, Timeout};

use crate::support::{AttemptLog, DropCounter, Failure, ms};

fn retry(max_attempts: u32) -> Retry {
    Retry::builder()
        .max_attempts(max_attempts)
        .backoff(Backoff::constant(ms(100)))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_timeout_inside_a_retry_bounds_each_attempt() {
    let policy = Policy::builder()
        .retry(retry(3))
        .timeout(Timeout::new(ms(50)))
        .build();
    let log = AttemptLog::new();
    let drops = DropCounter::default();
    let err = policy
        .call(|| {
            log.record();
            let guard = drops.guard();
            async move {
                let _guard = guard;
                pending::<()>().await;
                Ok::<(), Failure>(())
            }
        })
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "the last attempt timed out");
    assert!(err.is_retries_exhausted());
    assert_eq!(err.attempts(), Some(3));
    // Attempt, 50 ms timeout, 100 ms backoff, …
    assert_eq!(log.starts(), [ms(0), ms(150), ms(300)]);
    assert_eq!(drops.dropped(), 3, "every timed-out attempt was cancelled");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_outside_a_retry_bounds_the_whole_loop() {
    let policy = Policy::builder()
        .timeout(Timeout::new(ms(250)))
        .retry(retry(10))
        .build();
    let log = AttemptLog::new();
    let err = policy
        .call(|| {
            log.record();
            async { Err::<(), _>(Failure::transient()) }
        })
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert!(
        !err.is_retries_exhausted(),
        "the retry did not give up; it was cut short"
    );
    assert_eq!(log.starts(), [ms(0), ms(100), ms(200)]);
}

#[tokio::test(start_paused = true)]
async fn a_full_stack_keeps_one_flat_error_with_working_predicates() {
    let bulkhead = Bulkhead::new(1);
    let held = bulkhead.try_acquire().unwrap();
    let policy = Policy::builder()
        .fallback(Fallback::value("degraded").when_kind([ErrorKind::CircuitOpen]))
        .timeout(Timeout::new(ms(1_000)))
        .retry(
            Retry::builder()
                .max_attempts(2)
                .no_backoff()
                .build()
                .unwrap(),
        )
        .bulkhead(bulkhead.clone())
        .timeout(Timeout::new(ms(100)))
        .build();
    let started = Arc::new(AtomicUsize::new(0));
    let err: Error<Failure> = policy
        .call(|| {
            started.fetch_add(1, Ordering::SeqCst);
            async { Ok("never") }
        })
        .await
        .unwrap_err();
    assert!(err.is_bulkhead_full());
    assert_eq!(err.kind(), ErrorKind::BulkheadFull);
    assert_eq!(err.gave_up(), Some(GaveUp::MaxAttempts));
    assert_eq!(err.attempts(), Some(2));
    assert!(err.inner().is_none());
    assert_eq!(started.load(Ordering::SeqCst), 0, "the operation never ran");

    drop(held);
    let ok = policy
        .call(|| async { Ok::<_, Failure>("fresh") })
        .await
        .unwrap();
    assert_eq!(ok, "fresh");
    assert_eq!(bulkhead.available_permits(), 1);
}

#[tokio::test(start_paused = true)]
async fn cloned_policies_share_bulkhead_permits() {
    let policy = Policy::builder().bulkhead(Bulkhead::new(1)).build();
    let clone = policy.clone();
    let (release, gate) = tokio::sync::oneshot::channel::<()>();
    let mut gate = Some(gate);
    let mut first = tokio_test::task::spawn(policy.call(move || {
        let gate = gate.take().unwrap();
        async move {
            let _ = gate.await;
            Ok::<_, Failure>(())
        }
    }));
    assert!(first.poll().is_pending());
    let err = clone
        .call(|| async { Ok::<_, Failure>(()) })
        .await
        .unwrap_err();
    assert!(err.is_bulkhead_full());
    release.send(()).unwrap();
    assert!(first.poll().is_ready());
}

#[test]
fn decorators_policies_and_their_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let policy = Policy::builder()
        .fallback(Fallback::value(1u8))
        .timeout(Timeout::new(ms(1)))
        .retry(retry(2).retry_if(|e: &Failure| e.transient))
        .bulkhead(Bulkhead::new(1))
        .build();
    send_sync(&policy);
    let future = policy.call(|| async { Ok::<u8, Failure>(1) });
    send(&future);
    send_sync(&seawall::RetryBudget::new(1.0, 1.0).unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_policy_call_can_be_spawned_even_with_borrowed_result_types() {
    // Futures whose output holds a lifetime (`&'static str`) must still be `Send` inside a
    // spawned task; this is a compile-time check as much as a runtime one.
    let policy = Policy::builder()
        .timeout(Timeout::new(ms(100)))
        .retry(retry(2).retry_if(|e: &Failure| e.transient))
        .bulkhead(Bulkhead::new(2))
        .build();
    let task = tokio::spawn(async move {
        policy
            .call(|| async { Ok::<&'static str, Failure>("spawned") })
            .await
    });
    assert_eq!(task.await.unwrap().unwrap(), "spawned");
}

type BoxedCall = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<&'static str, Error<Failure>>> + Send>,
>;

async fn answer_later(clock: &seawall::Clock) -> Result<&'static str, Failure> {
    clock.sleep(ms(1)).await;
    Ok("later")
}

#[tokio::test(start_paused = true)]
async fn a_policy_call_borrowing_in_its_operation_can_be_boxed_as_send() {
    // Regression: an `async fn` borrowing a captured value inside the operation, with a
    // borrowed output type, must still give a `Send` future (no projections in future fields).
    let policy = Policy::builder()
        .fallback(Fallback::new(|err: Error<Failure>| Err(err)).when_kind([ErrorKind::Timeout]))
        .retry(retry(2).retry_if(|e: &Failure| e.transient))
        .bulkhead(Bulkhead::new(2))
        .timeout(Timeout::new(ms(100)))
        .build();
    let boxed: BoxedCall = Box::pin(async move {
        let clock = seawall::Clock::tokio();
        policy
            .call(|| {
                let clock = clock.clone();
                async move { answer_later(&clock).await }
            })
            .await
    });
    assert_eq!(boxed.await.unwrap(), "later");
}

/// A client that keeps its policy in a field: the point of `BoxPolicy`.
struct Catalog {
    policy: seawall::policy::BoxPolicy<u32, Failure>,
}

#[tokio::test]
async fn a_boxed_policy_is_stored_in_a_struct_sent_to_tasks_and_shares_its_decorators() {
    let bulkhead = seawall::Bulkhead::new(1);
    let retry = seawall::Retry::builder()
        .max_attempts(3)
        .no_backoff()
        .build()
        .unwrap()
        .retry_if(|e: &Failure| e.transient); // a closure: the type cannot be written
    let catalog = Catalog {
        policy: Policy::builder()
            .retry(retry)
            .bulkhead(bulkhead.clone())
            .build()
            .boxed(),
    };
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let value = catalog
        .policy
        .call_with_attempt({
            let seen = seen.clone();
            move |attempt| {
                seen.lock().unwrap().push(attempt.number());
                async move {
                    if attempt.is_first() {
                        Err(Failure::transient())
                    } else {
                        Ok(7)
                    }
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 7);
    assert_eq!(*seen.lock().unwrap(), [1, 2]);

    // A clone in another task holds the one permit: the bulkhead is shared.
    let (started, release) = (
        std::sync::Arc::new(tokio::sync::Notify::new()),
        std::sync::Arc::new(tokio::sync::Notify::new()),
    );
    let policy = catalog.policy.clone();
    let task = tokio::spawn({
        let (started, release) = (started.clone(), release.clone());
        async move {
            policy
                .call(move || {
                    let (started, release) = (started.clone(), release.clone());
                    async move {
                        started.notify_one();
                        release.notified().await;
                        Ok(1)
                    }
                })
                .await
        }
    });
    started.notified().await;
    assert_eq!(bulkhead.available_permits(), 0);
    let err = catalog.policy.call(|| async { Ok(2) }).await.unwrap_err();
    assert!(err.is_bulkhead_full());
    release.notify_one();
    assert_eq!(task.await.unwrap().unwrap(), 1);
}

#[tokio::test]
async fn a_registry_hands_out_a_policy_a_struct_can_keep() {
    let registries = seawall::registry::Registries::new();
    let policy: seawall::policy::BoxPolicy<u32, Failure> = registries.policy("catalog").boxed();
    assert_eq!(policy.call(|| async { Ok(3) }).await.unwrap(), 3);
    assert!(
        registries.circuit_breakers().find("catalog").is_some(),
        "shared with the registry"
    );
}

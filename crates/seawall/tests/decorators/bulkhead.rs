use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use proptest::prelude::*;
use seawall::Bulkhead;
use seawall::bulkhead::BulkheadEvent;
use tokio::sync::oneshot;
use tokio_test::task::{Spawn, spawn};

use crate::support::{Failure, ms};

/// A call through `bulkhead` that runs until its sender fires.
fn gated_call<'b>(
    bulkhead: &'b Bulkhead,
    started: &Arc<AtomicUsize>,
) -> (
    oneshot::Sender<()>,
    Spawn<impl Future<Output = Result<(), seawall::Error<Failure>>> + 'b>,
) {
    let (release, gate) = oneshot::channel::<()>();
    let started = started.clone();
    let mut gate = Some(gate);
    let call = bulkhead.call(move || {
        started.fetch_add(1, Ordering::SeqCst);
        let gate = gate.take().expect("called once");
        async move {
            let _ = gate.await;
            Ok::<_, Failure>(())
        }
    });
    (release, spawn(call))
}

fn bulkhead(max: usize, max_wait_ms: u64) -> Bulkhead {
    Bulkhead::builder()
        .name("pg")
        .max_concurrent_calls(max)
        .max_wait(ms(max_wait_ms))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_rejects_at_once_without_starting_the_operation() {
    let bulkhead = bulkhead(2, 0);
    let started = Arc::new(AtomicUsize::new(0));
    let (_a, mut first) = gated_call(&bulkhead, &started);
    let (_b, mut second) = gated_call(&bulkhead, &started);
    assert!(first.poll().is_pending());
    assert!(second.poll().is_pending());
    assert_eq!(bulkhead.available_permits(), 0);

    let (_c, mut third) = gated_call(&bulkhead, &started);
    match third.poll() {
        Poll::Ready(Err(err)) => {
            assert!(err.is_bulkhead_full());
            assert_eq!(
                err.to_string(),
                "bulkhead 'pg' is full and does not permit further calls"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        started.load(Ordering::SeqCst),
        2,
        "the rejected operation never started"
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_is_rejected_exactly_when_its_max_wait_expires() {
    let bulkhead = bulkhead(1, 100);
    let started = Arc::new(AtomicUsize::new(0));
    let (_hold, mut holder) = gated_call(&bulkhead, &started);
    assert!(holder.poll().is_pending());

    let clock = seawall::Clock::tokio();
    let before = clock.now();
    let err = bulkhead
        .call(|| async { Ok::<_, Failure>(()) })
        .await
        .unwrap_err();
    assert!(err.is_bulkhead_full());
    assert_eq!(clock.now() - before, ms(100));
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_proceeds_when_a_permit_frees_within_its_max_wait() {
    let bulkhead = bulkhead(1, 100);
    let started = Arc::new(AtomicUsize::new(0));
    let (release, mut holder) = gated_call(&bulkhead, &started);
    assert!(holder.poll().is_pending());
    let (_w, mut waiter) = gated_call(&bulkhead, &started);
    assert!(waiter.poll().is_pending());
    assert_eq!(started.load(Ordering::SeqCst), 1);

    release.send(()).unwrap();
    assert!(holder.poll().is_ready());
    assert!(waiter.is_woken());
    assert!(waiter.poll().is_pending(), "now running, gated");
    assert_eq!(started.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_running_call_returns_its_permit() {
    let bulkhead = bulkhead(1, 0);
    let started = Arc::new(AtomicUsize::new(0));
    let (_hold, mut holder) = gated_call(&bulkhead, &started);
    assert!(holder.poll().is_pending());
    assert_eq!(bulkhead.available_permits(), 0);
    drop(holder);
    assert_eq!(bulkhead.available_permits(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_waiting_call_leaves_the_queue_and_loses_no_permit() {
    let bulkhead = bulkhead(1, 1_000);
    let started = Arc::new(AtomicUsize::new(0));
    let (release, mut holder) = gated_call(&bulkhead, &started);
    assert!(holder.poll().is_pending());
    let (_w1, mut dropped_waiter) = gated_call(&bulkhead, &started);
    let (_w2, mut next_waiter) = gated_call(&bulkhead, &started);
    assert!(dropped_waiter.poll().is_pending());
    assert!(next_waiter.poll().is_pending());

    drop(dropped_waiter);
    release.send(()).unwrap();
    assert!(holder.poll().is_ready());
    assert!(next_waiter.is_woken(), "the permit went to the next waiter");
    assert!(next_waiter.poll().is_pending());
    assert_eq!(started.load(Ordering::SeqCst), 2);
    drop(next_waiter);
    assert_eq!(bulkhead.available_permits(), 1);
}

#[tokio::test(start_paused = true)]
async fn waiting_calls_get_permits_in_arrival_order_and_newcomers_do_not_jump_the_line() {
    let bulkhead = bulkhead(1, 1_000);
    let started = Arc::new(AtomicUsize::new(0));
    let (release, mut holder) = gated_call(&bulkhead, &started);
    assert!(holder.poll().is_pending());
    let (release_first, mut first) = gated_call(&bulkhead, &started);
    let (_second_gate, mut second) = gated_call(&bulkhead, &started);
    assert!(first.poll().is_pending());
    assert!(second.poll().is_pending());

    release.send(()).unwrap();
    assert!(holder.poll().is_ready());
    // The permit is free but promised: a newcomer polled before the woken waiter must queue.
    let (_late_gate, mut newcomer) = gated_call(&bulkhead, &started);
    assert!(newcomer.poll().is_pending());
    assert_eq!(
        started.load(Ordering::SeqCst),
        1,
        "the newcomer did not start"
    );
    assert!(!second.is_woken(), "only the first waiter was woken");
    assert!(first.is_woken());
    assert!(first.poll().is_pending(), "running, gated");
    assert_eq!(started.load(Ordering::SeqCst), 2);

    release_first.send(()).unwrap();
    assert!(first.poll().is_ready());
    assert!(second.is_woken());
    assert!(second.poll().is_pending());
    assert_eq!(
        started.load(Ordering::SeqCst),
        3,
        "the second waiter ran before the newcomer"
    );
}

#[tokio::test(start_paused = true)]
async fn a_woken_waiter_that_is_dropped_hands_its_turn_to_the_next_one() {
    let bulkhead = bulkhead(1, 1_000);
    let started = Arc::new(AtomicUsize::new(0));
    let (release, mut holder) = gated_call(&bulkhead, &started);
    assert!(holder.poll().is_pending());
    let (_w1, mut woken) = gated_call(&bulkhead, &started);
    let (_w2, mut next) = gated_call(&bulkhead, &started);
    assert!(woken.poll().is_pending());
    assert!(next.poll().is_pending());

    release.send(()).unwrap();
    assert!(holder.poll().is_ready());
    assert!(woken.is_woken());
    drop(woken);
    assert!(next.is_woken(), "the wake-up was passed on");
    assert!(next.poll().is_pending(), "running, gated");
    assert_eq!(started.load(Ordering::SeqCst), 2);
    assert_eq!(bulkhead.available_permits(), 0);
}

#[tokio::test(start_paused = true)]
async fn growing_the_limit_admits_a_waiting_call_at_once() {
    let bulkhead = bulkhead(1, 1_000);
    let started = Arc::new(AtomicUsize::new(0));
    let (_hold, mut holder) = gated_call(&bulkhead, &started);
    assert!(holder.poll().is_pending());
    let (_w, mut waiter) = gated_call(&bulkhead, &started);
    assert!(waiter.poll().is_pending());

    bulkhead.set_max_concurrent_calls(2).unwrap();
    assert!(waiter.is_woken());
    assert!(waiter.poll().is_pending());
    assert_eq!(started.load(Ordering::SeqCst), 2);
    assert_eq!(bulkhead.max_concurrent_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn shrinking_the_limit_retires_permits_as_calls_finish() {
    let bulkhead = bulkhead(3, 0);
    let started = Arc::new(AtomicUsize::new(0));
    let (r1, mut c1) = gated_call(&bulkhead, &started);
    let (r2, mut c2) = gated_call(&bulkhead, &started);
    assert!(c1.poll().is_pending());
    assert!(c2.poll().is_pending());
    assert_eq!(bulkhead.available_permits(), 1);

    bulkhead.set_max_concurrent_calls(1).unwrap();
    assert_eq!(
        bulkhead.available_permits(),
        0,
        "the free permit is retired at once"
    );
    r1.send(()).unwrap();
    assert!(c1.poll().is_ready());
    assert_eq!(
        bulkhead.available_permits(),
        0,
        "a returning permit pays the rest of the shrink"
    );
    let (_r3, mut c3) = gated_call(&bulkhead, &started);
    assert!(
        matches!(c3.poll(), Poll::Ready(Err(_))),
        "still one call in flight: full"
    );
    r2.send(()).unwrap();
    assert!(c2.poll().is_ready());
    assert_eq!(bulkhead.available_permits(), 1);

    // Growing again pays nothing more than needed.
    bulkhead.set_max_concurrent_calls(4).unwrap();
    assert_eq!(bulkhead.available_permits(), 4);
}

#[test]
fn the_limit_is_validated() {
    let err = Bulkhead::builder()
        .max_concurrent_calls(usize::MAX)
        .build()
        .unwrap_err();
    assert_eq!(err.key(), "max_concurrent_calls");
    assert!(bulkhead(1, 0).set_max_concurrent_calls(usize::MAX).is_err());
}

#[tokio::test(start_paused = true)]
async fn rejections_are_reported_to_listeners() {
    let bulkhead = bulkhead(0, 0);
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    bulkhead.on_event(move |event| sink.lock().unwrap().push(event.clone()));
    let _ = bulkhead.call(|| async { Ok::<_, Failure>(()) }).await;
    assert_eq!(
        *events.lock().unwrap(),
        [BulkheadEvent::Rejected { name: "pg".into() }]
    );
}

/// Counts a call as running until dropped (also when cancelled).
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random concurrent calls that hold their permit for random times or are dropped at
    /// random points never exceed the limit, and every permit comes back.
    #[test]
    fn the_bulkhead_never_admits_more_than_its_limit(
        limit in 1usize..6,
        wait_ms in 0u64..30,
        calls in proptest::collection::vec((0u64..40, 0u64..60, any::<bool>()), 1..40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async move {
            let bulkhead = bulkhead(limit, wait_ms);
            let running = Arc::new(AtomicUsize::new(0));
            let peak = Arc::new(AtomicUsize::new(0));
            let clock = seawall::Clock::tokio();
            let mut tasks = Vec::new();
            for (start_ms, hold_ms, cancel) in calls {
                let bulkhead = bulkhead.clone();
                let running = running.clone();
                let peak = peak.clone();
                let clock = clock.clone();
                tasks.push(tokio::spawn(async move {
                    clock.sleep(ms(start_ms)).await;
                    let call = bulkhead.call(|| {
                        let running = running.clone();
                        let peak = peak.clone();
                        let clock = clock.clone();
                        async move {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            let _running = Running(running);
                            peak.fetch_max(now, Ordering::SeqCst);
                            clock.sleep(ms(hold_ms)).await;
                            Ok::<_, Failure>(())
                        }
                    });
                    if cancel {
                        // Cancel part-way: while waiting or while running.
                        let _ = tokio::time::timeout(ms(hold_ms / 2 + 1), call).await;
                    } else {
                        let _ = call.await;
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            assert!(peak.load(Ordering::SeqCst) <= limit, "peak {} > limit {limit}", peak.load(Ordering::SeqCst));
            assert_eq!(bulkhead.available_permits(), limit, "every permit came back");
        });
    }
}

/// Threads race on the permits while callers join, leave and are cancelled: no call is ever
/// admitted over the limit, no wake-up is lost (a call waiting without a deadline always gets
/// its turn), and every permit comes back.
#[test]
fn under_contention_from_many_threads_no_permit_or_wake_up_is_lost() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let limit = 3;
        // Long enough never to expire: a rejection here means a waiter was never woken.
        let bulkhead = bulkhead(limit, 60_000);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut finishing = Vec::new();
        let mut cancelled = Vec::new();
        for i in 0..2_000u32 {
            let bulkhead = bulkhead.clone();
            let running = running.clone();
            let peak = peak.clone();
            let task = tokio::spawn(async move {
                bulkhead
                    .call(|| {
                        let running = running.clone();
                        let peak = peak.clone();
                        async move {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            let _running = Running(running);
                            peak.fetch_max(now, Ordering::SeqCst);
                            for _ in 0..(i % 4) {
                                tokio::task::yield_now().await;
                            }
                            Ok::<_, Failure>(())
                        }
                    })
                    .await
            });
            if i % 5 == 0 {
                cancelled.push(task);
            } else {
                finishing.push(task);
            }
            if i % 7 == 0 {
                tokio::task::yield_now().await;
            }
            if i % 10 == 5 {
                // Cancel some caller at whatever point it has reached: waiting or running.
                if let Some(task) = cancelled.pop() {
                    task.abort();
                }
            }
        }
        for task in cancelled {
            task.abort();
        }
        for task in finishing {
            task.await
                .unwrap()
                .expect("every uncancelled call gets a permit");
        }
        assert!(peak.load(Ordering::SeqCst) <= limit);
        // Aborted tasks release what they hold when the runtime drops them; wait for that.
        for _ in 0..100_000 {
            if bulkhead.available_permits() == limit {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            bulkhead.available_permits(),
            limit,
            "every permit came back"
        );
    });
}

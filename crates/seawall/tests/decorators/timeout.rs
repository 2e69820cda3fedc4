use std::future::pending;

use seawall::clock::ManualClock;
use seawall::timeout::TimeoutEvent;
use seawall::{Clock, Timeout};

use crate::support::{DropCounter, Failure, ms};

#[tokio::test(start_paused = true)]
async fn a_call_that_finishes_in_time_returns_its_value() {
    let timeout = Timeout::new(ms(100));
    let value = timeout
        .call(|| async {
            seawall::clock::Clock::tokio().sleep(ms(99)).await;
            Ok::<_, Failure>(7)
        })
        .await
        .unwrap();
    assert_eq!(value, 7);
}

#[tokio::test(start_paused = true)]
async fn an_expired_timeout_drops_the_inner_future_before_returning() {
    let drops = DropCounter::default();
    let timeout = Timeout::new(ms(50));
    let err = timeout
        .call(|| {
            let guard = drops.guard();
            async move {
                let _guard = guard;
                pending::<()>().await;
                Ok::<_, Failure>(())
            }
        })
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.as_timeout().unwrap().after(), ms(50));
    assert_eq!(drops.dropped(), 1, "the operation's future was dropped");
    assert_eq!(err.to_string(), "operation timed out after 50ms");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_exact_on_virtual_time() {
    let timeout = Timeout::new(ms(250));
    let clock = Clock::tokio();
    let start = clock.now();
    let err = timeout
        .call(|| async {
            pending::<()>().await;
            Ok::<(), Failure>(())
        })
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(clock.now() - start, ms(250));
}

#[test]
fn a_manual_clock_drives_the_timeout_without_a_runtime() {
    let manual = ManualClock::new();
    let timeout = Timeout::builder(ms(30))
        .clock(manual.clone().into())
        .build();
    let mut call = tokio_test::task::spawn(timeout.call(|| async {
        pending::<()>().await;
        Ok::<(), Failure>(())
    }));
    assert!(call.poll().is_pending());
    manual.advance(ms(29));
    assert!(call.poll().is_pending());
    manual.advance(ms(1));
    assert!(call.is_woken());
    let err = match call.poll() {
        std::task::Poll::Ready(Err(err)) => err,
        other => panic!("expected a timeout, got {other:?}"),
    };
    assert!(err.is_timeout());
}

#[tokio::test(start_paused = true)]
async fn a_changed_duration_applies_to_the_next_call_and_events_report_it() {
    let timeout = Timeout::builder(ms(10)).name("pg").build();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    timeout.on_event(move |event| sink.lock().unwrap().push(event.clone()));
    timeout.set_duration(ms(40));
    let clone = timeout.clone();
    assert_eq!(clone.duration(), ms(40), "clones share the duration");
    let err = clone
        .call(|| async {
            pending::<()>().await;
            Ok::<(), Failure>(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.as_timeout().unwrap().after(), ms(40));
    assert_eq!(
        *events.lock().unwrap(),
        vec![TimeoutEvent::TimedOut {
            name: "pg".into(),
            after: ms(40)
        }]
    );
}

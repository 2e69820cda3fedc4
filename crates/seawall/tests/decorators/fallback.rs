use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use seawall::fallback::FallbackEvent;
use seawall::{Clock, Error, ErrorKind, Fallback, Policy, ResultFallback, Timeout};

use crate::support::{Failure, ms};

#[tokio::test]
async fn a_plain_fallback_replaces_every_error() {
    let fallback = Fallback::value("cached");
    let answer = fallback
        .call(|| async { Err::<&str, _>(Failure::permanent()) })
        .await;
    assert_eq!(answer.unwrap(), "cached");
}

#[tokio::test(start_paused = true)]
async fn a_kind_predicate_replaces_only_matching_errors() {
    let policy = Policy::builder()
        .fallback(Fallback::value(0).when_kind([ErrorKind::Timeout]))
        .timeout(Timeout::new(ms(10)))
        .build();
    let timed_out = policy
        .call(|| async {
            std::future::pending::<()>().await;
            Ok::<i32, Failure>(1)
        })
        .await;
    assert_eq!(timed_out.unwrap(), 0);
    let failed = policy
        .call(|| async { Err::<i32, _>(Failure::transient()) })
        .await;
    assert!(
        failed.unwrap_err().is_inner(),
        "an inner error is not a timeout"
    );
}

#[tokio::test]
async fn an_inner_predicate_sees_the_operations_own_error() {
    let fallback = Fallback::new(|err: Error<Failure>| match err.into_inner() {
        Some(failure) => Ok(format!("recovered from {failure}")),
        None => Ok("recovered".to_owned()),
    })
    .when_inner(|e: &Failure| e.transient);
    let recovered = fallback
        .call(|| async { Err::<String, _>(Failure::transient()) })
        .await;
    assert_eq!(recovered.unwrap(), "recovered from transient failure");
    let kept = fallback
        .call(|| async { Err::<String, _>(Failure::permanent()) })
        .await;
    assert_eq!(kept.unwrap_err().inner(), Some(&Failure::permanent()));
}

#[tokio::test]
async fn a_general_predicate_and_a_handler_can_keep_an_error() {
    let fallback = Fallback::new(|err: Error<Failure>| Err::<u8, _>(err))
        .when(|err: &Error<Failure>| err.is_inner());
    let err = fallback
        .call(|| async { Err::<u8, _>(Failure::permanent()) })
        .await
        .unwrap_err();
    assert_eq!(err.inner(), Some(&Failure::permanent()));
}

#[tokio::test]
async fn a_result_fallback_replaces_matching_values_and_reports_it() {
    let fallback = ResultFallback::new(|v: &Vec<u8>| v.is_empty(), |_| Ok(vec![9])).name("catalog");
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    fallback.on_event(move |event| sink.lock().unwrap().push(event.clone()));
    let replaced = fallback
        .call(|| async { Ok::<_, Failure>(Vec::new()) })
        .await
        .unwrap();
    assert_eq!(replaced, [9]);
    let kept = fallback
        .call(|| async { Ok::<_, Failure>(vec![1]) })
        .await
        .unwrap();
    assert_eq!(kept, [1]);
    assert_eq!(
        *events.lock().unwrap(),
        [FallbackEvent::Used {
            name: "catalog".into(),
            cause: None
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn an_async_fallback_reads_a_cache_only_for_the_errors_it_handles() {
    use tokio::sync::RwLock;

    let cache = Arc::new(RwLock::new(vec!["cached"]));
    let reads = Arc::new(AtomicUsize::new(0));
    let fallback = Fallback::from_async_fn({
        let (cache, reads) = (cache.clone(), reads.clone());
        move |_: Error<Failure>| {
            let (cache, reads) = (cache.clone(), reads.clone());
            async move {
                // A real cache read takes time; the caller waits for it.
                Clock::tokio().sleep(Duration::from_millis(5)).await;
                reads.fetch_add(1, Ordering::SeqCst);
                Ok(cache.read().await.clone())
            }
        }
    })
    .when_kind([ErrorKind::Timeout]);
    let policy = Policy::builder()
        .fallback(fallback)
        .timeout(Timeout::new(Duration::from_millis(100)))
        .build();

    let served = policy
        .call(|| async {
            std::future::pending::<()>().await;
            Ok(vec!["fresh"])
        })
        .await
        .unwrap();
    assert_eq!(served, ["cached"]);

    let err = policy
        .call(|| async { Err::<Vec<&str>, _>(Failure::permanent()) })
        .await
        .unwrap_err();
    assert!(err.is_inner(), "not a timeout: not handled");
    assert_eq!(reads.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_call_while_its_async_fallback_runs_cancels_the_fallback() {
    let finished = Arc::new(AtomicUsize::new(0));
    let fallback = Fallback::from_async_fn({
        let finished = finished.clone();
        move |_: Error<Failure>| {
            let finished = finished.clone();
            async move {
                Clock::tokio().sleep(Duration::from_secs(10)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(0)
            }
        }
    });
    let call = fallback.call(|| async { Err::<u32, _>(Failure::transient()) });
    let outcome = tokio::time::timeout(Duration::from_secs(1), call).await;
    assert!(outcome.is_err(), "the fallback was still running");
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "dropped, never finished"
    );
}

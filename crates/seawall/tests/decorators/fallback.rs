use seawall::fallback::FallbackEvent;
use seawall::{Error, ErrorKind, Fallback, Policy, ResultFallback, Timeout};

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

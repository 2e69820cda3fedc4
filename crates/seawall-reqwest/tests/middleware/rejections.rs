//! What the caller can tell from the error: the policy's rejections and timeouts against the
//! request's own errors.

use std::time::Duration;

use seawall::circuit_breaker::SlidingWindow;
use seawall::{Bulkhead, CircuitBreaker, GaveUp, Policy, Timeout};
use seawall_reqwest::{PolicyError, SeawallMiddleware};

use crate::support::{ATTEMPT_TIMEOUT, Reply, Server, client, retry};

#[tokio::test]
async fn an_open_breaker_rejects_the_next_request_without_reaching_the_server() {
    let server = Server::start([Reply::Status(500), Reply::Status(500)]).await;
    let breaker = CircuitBreaker::builder()
        .name("upstream")
        .sliding_window(SlidingWindow::count(2))
        .minimum_number_of_calls(2)
        .failure_rate_threshold(50.0)
        .wait_in_open(Duration::from_secs(60))
        .build()
        .unwrap();
    let client = client(SeawallMiddleware::new(
        Policy::builder().circuit_breaker(breaker).build(),
    ));

    for _ in 0..2 {
        let response = client.get(server.url()).send().await.unwrap();
        assert_eq!(response.status(), 500, "the caller still gets the response");
    }
    let err = client.get(server.url()).send().await.unwrap_err();

    let rejected = PolicyError::of(&err).expect("the breaker rejected the call");
    assert!(rejected.is_circuit_open(), "{rejected}");
    assert!(!rejected.is_timeout() && !rejected.is_bulkhead_full());
    assert_eq!(rejected.rejected_by(), Some("upstream"));
    let wait = rejected
        .retry_after()
        .expect("an open breaker says when to come back");
    assert!(wait <= Duration::from_secs(60), "{wait:?}");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_per_attempt_timeout_ends_each_hanging_attempt() {
    let server = Server::start([Reply::Hang, Reply::Hang]).await;
    let client = client(SeawallMiddleware::new(
        Policy::builder()
            .retry(retry(2))
            .timeout(Timeout::new(ATTEMPT_TIMEOUT))
            .build(),
    ));

    let err = client.get(server.url()).send().await.unwrap_err();

    let stopped = PolicyError::of(&err).expect("the timeout stopped the call");
    assert!(stopped.is_timeout(), "{stopped}");
    assert_eq!(stopped.attempts(), Some(2));
    assert_eq!(stopped.gave_up(), Some(GaveUp::MaxAttempts));
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_full_bulkhead_rejects_without_reaching_the_server() {
    let server = Server::start([Reply::Hang]).await;
    let client = client(SeawallMiddleware::new(
        Policy::builder().bulkhead(Bulkhead::new(1)).build(),
    ));
    let holder = tokio::spawn({
        let request = client.get(server.url());
        async move { request.send().await }
    });
    server.wait_for_hits(1).await;

    let err = client.get(server.url()).send().await.unwrap_err();

    let rejected = PolicyError::of(&err).expect("the bulkhead rejected the call");
    assert!(rejected.is_bulkhead_full(), "{rejected}");
    assert!(!rejected.is_circuit_open());
    assert_eq!(server.hits(), 1);
    holder.abort();
}

#[tokio::test]
async fn a_request_error_reaches_the_caller_unchanged() {
    // A port nothing listens on: bind one, then close it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/resource", listener.local_addr().unwrap());
    drop(listener);
    let client = client(SeawallMiddleware::new(
        Policy::builder().retry(retry(2)).build(),
    ));

    let err = client.get(url).send().await.unwrap_err();

    assert!(
        PolicyError::of(&err).is_none(),
        "not the policy's error: {err}"
    );
    assert!(err.is_connect(), "{err:?}");
}

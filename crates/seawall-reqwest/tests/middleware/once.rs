//! Requests sent at most once: non-idempotent methods and streamed bodies.

use seawall::{Policy, Timeout};
use seawall_reqwest::{PolicyError, Repeatable, SeawallMiddleware};

use crate::support::{ATTEMPT_TIMEOUT, Reply, Seen, Server, client, retry};

/// A policy that would retry anything three times, each attempt bounded.
fn eager_policy() -> seawall_reqwest::HttpPolicy {
    Policy::builder()
        .retry(retry(3))
        .timeout(Timeout::new(ATTEMPT_TIMEOUT))
        .build()
        .boxed()
}

#[tokio::test]
async fn a_post_answered_503_is_sent_once_and_the_caller_gets_the_503() {
    let server = Server::start([Reply::Status(503), Reply::Status(200)]).await;
    let client = client(SeawallMiddleware::new(eager_policy()));

    let response = client
        .post(server.url())
        .body("charge")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 503);
    assert_eq!(response.text().await.unwrap(), "Service Unavailable");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_post_whose_attempt_timed_out_is_not_resent() {
    let server = Server::start([Reply::Hang, Reply::Status(200)]).await;
    let client = client(SeawallMiddleware::new(eager_policy()));

    let err = client
        .post(server.url())
        .body("charge")
        .send()
        .await
        .unwrap_err();

    let stopped = PolicyError::of(&err).expect("the policy stopped the call");
    assert!(stopped.is_not_resent(), "{stopped}");
    assert!(stopped.is_timeout(), "{stopped}");
    assert_eq!(
        stopped.to_string(),
        "POST request not sent again: its attempt timed out"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_post_runs_through_the_single_attempt_policy_when_one_is_set() {
    let server = Server::start([Reply::Hang, Reply::Status(200)]).await;
    let single = Policy::builder()
        .timeout(Timeout::new(ATTEMPT_TIMEOUT))
        .build();
    let client = client(SeawallMiddleware::new(eager_policy()).single_attempt_policy(single));

    let err = client
        .post(server.url())
        .body("charge")
        .send()
        .await
        .unwrap_err();

    let stopped = PolicyError::of(&err).expect("the policy stopped the call");
    assert!(stopped.is_timeout(), "{stopped}");
    assert!(
        !stopped.is_not_resent(),
        "no retry asked for a second attempt"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_post_marked_repeatable_is_retried_with_the_same_body() {
    let server = Server::start([Reply::Status(503), Reply::Status(200)]).await;
    let client = client(SeawallMiddleware::new(eager_policy()));

    let response = client
        .post(server.url())
        .header("Idempotency-Key", "order-1")
        .body("charge")
        .with_extension(Repeatable)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let charge = Seen {
        method: reqwest::Method::POST,
        body: "charge".to_owned(),
    };
    assert_eq!(server.seen(), [charge.clone(), charge]);
}

#[tokio::test]
async fn a_streamed_body_is_sent_once_even_with_an_idempotent_method() {
    let server = Server::start([Reply::Status(503), Reply::Status(200)]).await;
    let client = client(SeawallMiddleware::new(eager_policy()));
    let streamed = reqwest::Body::wrap("streamed".to_owned());
    assert!(
        streamed.as_bytes().is_none(),
        "the body must not be copyable"
    );

    let response = client
        .put(server.url())
        .body(streamed)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 503);
    let seen = Seen {
        method: reqwest::Method::PUT,
        body: "streamed".to_owned(),
    };
    assert_eq!(server.seen(), [seen]);
}

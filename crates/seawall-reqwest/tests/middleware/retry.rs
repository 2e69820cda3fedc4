//! Repeatable requests: what is retried, how long the retry waits, what the caller gets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, Middleware, Next};
use seawall::Policy;
use seawall::retry::RetryEvent;
use seawall_reqwest::SeawallMiddleware;

use crate::support::{Reply, Server, client, plain_client, retry, retrying};

#[tokio::test]
async fn a_get_answered_503_is_retried_and_the_caller_gets_the_success() {
    let server = Server::start([Reply::Status(503), Reply::Status(200)]).await;
    let client = client(SeawallMiddleware::new(
        Policy::builder().retry(retry(3)).build(),
    ));

    let response = client.get(server.url()).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_404_is_an_answer_and_is_not_retried() {
    let server = Server::start([Reply::Status(404), Reply::Status(200)]).await;
    let client = client(SeawallMiddleware::new(
        Policy::builder().retry(retry(3)).build(),
    ));

    let response = client.get(server.url()).send().await.unwrap();

    assert_eq!(response.status(), 404);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn the_retry_waits_what_retry_after_asks_instead_of_its_backoff() {
    let server = Server::start([Reply::RetryAfter(503, "1"), Reply::Status(200)]).await;
    let retry = retry(2);
    let delays = Arc::new(Mutex::new(Vec::new()));
    let recorded = delays.clone();
    retry.on_event(move |event| {
        if let RetryEvent::Retrying { delay, .. } = event {
            recorded.lock().unwrap().push(*delay);
        }
    });
    let client = client(SeawallMiddleware::new(
        Policy::builder().retry(retry).build(),
    ));

    let response = client.get(server.url()).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(*delays.lock().unwrap(), [Duration::from_secs(1)]);
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_retry_after_past_the_retry_budget_ends_with_the_failure_response_intact() {
    let server = Server::start([Reply::RetryAfter(503, "3600")]).await;
    let retry = retrying(
        seawall::Retry::builder()
            .max_attempts(3)
            .no_backoff()
            .max_elapsed(Duration::from_secs(10)),
    );
    let client = client(SeawallMiddleware::new(
        Policy::builder().retry(retry).build(),
    ));

    let response = client.get(server.url()).send().await.unwrap();

    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "3600");
    assert_eq!(response.text().await.unwrap(), "Service Unavailable");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_retry_that_gives_up_returns_the_last_failure_response() {
    let server = Server::start([Reply::Status(500), Reply::Status(502)]).await;
    let client = client(SeawallMiddleware::new(
        Policy::builder().retry(retry(2)).build(),
    ));

    let response = client.get(server.url()).send().await.unwrap();

    assert_eq!(response.status(), 502);
    assert_eq!(server.hits(), 2);
}

/// Records the `Tag` extension each attempt carries, and adds one of its own.
struct SeeTags(Arc<Mutex<Vec<Option<Tag>>>>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tag(u32);

#[async_trait::async_trait]
impl Middleware for SeeTags {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        self.0
            .lock()
            .unwrap()
            .push(extensions.get::<Tag>().copied());
        extensions.insert(Tag(99));
        next.run(request, extensions).await
    }
}

#[tokio::test]
async fn every_attempt_gets_its_own_copy_of_the_request_extensions() {
    let server = Server::start([Reply::Status(503), Reply::Status(200)]).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let client = ClientBuilder::new(plain_client())
        .with(SeawallMiddleware::new(
            Policy::builder().retry(retry(3)).build(),
        ))
        .with(SeeTags(seen.clone()))
        .build();

    let response = client
        .get(server.url())
        .with_extension(Tag(7))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    // The second attempt does not see what the first attempt's middleware inserted.
    assert_eq!(*seen.lock().unwrap(), [Some(Tag(7)), Some(Tag(7))]);
}

#[tokio::test]
async fn the_default_policy_retries_a_get_but_sends_a_post_once() {
    let server = Server::start([
        Reply::Status(503),
        Reply::Status(200),
        Reply::Status(503),
        Reply::Status(200),
    ])
    .await;
    let client = client(SeawallMiddleware::with_default_policy("upstream").unwrap());

    let get = client.get(server.url()).send().await.unwrap();
    let post = client
        .post(server.url())
        .body("charge")
        .send()
        .await
        .unwrap();

    assert_eq!((get.status().as_u16(), post.status().as_u16()), (200, 503));
    assert_eq!(server.hits(), 3);
}

//! An in-process HTTP server that answers from a script and counts what reaches it, and a
//! client with the middleware in front of it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use reqwest::Response;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Error as MwError};
use seawall::Retry;
use seawall::retry::{RetryBuilder, RetryClassifier};
use seawall_reqwest::SeawallMiddleware;
use tokio::sync::Notify;

/// What the server answers to one request.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reply {
    /// This status, with its canonical reason as the body.
    Status(u16),
    /// This status with a `Retry-After` header.
    RetryAfter(u16, &'static str),
    /// Never answers.
    Hang,
}

/// A request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    pub(crate) body: String,
}

/// A running server: answers requests in order from its script (`200 OK` once it runs out).
#[derive(Clone)]
pub(crate) struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
    hits: AtomicUsize,
    hit: Notify,
}

impl Server {
    pub(crate) async fn start(script: impl IntoIterator<Item = Reply>) -> Self {
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into_iter().collect()),
            ..Shared::default()
        });
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, shared }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/resource", self.addr)
    }

    /// How many requests reached the server.
    pub(crate) fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have reached the server (bounded: fails the test
    /// after 5 s).
    pub(crate) async fn wait_for_hits(&self, n: usize) {
        let wait = async {
            loop {
                let notified = self.shared.hit.notified();
                if self.hits() >= n {
                    return;
                }
                notified.await;
            }
        };
        let limit = seawall::Clock::tokio().sleep(Duration::from_secs(5));
        tokio::select! {
            () = wait => {}
            () = limit => panic!("only {} of {n} requests reached the server", self.hits()),
        }
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    method: Method,
    body: Bytes,
) -> axum::response::Response {
    shared.seen.lock().unwrap().push(Seen {
        method,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let reply = shared.script.lock().unwrap().pop_front();
    shared.hits.fetch_add(1, Ordering::SeqCst);
    shared.hit.notify_waiters();
    match reply.unwrap_or(Reply::Status(200)) {
        Reply::Status(code) => status(code).into_response(),
        Reply::RetryAfter(code, after) => {
            let mut response = status(code).into_response();
            let value = HeaderValue::from_static(after);
            response.headers_mut().insert(header::RETRY_AFTER, value);
            response
        }
        Reply::Hang => std::future::pending().await,
    }
}

fn status(code: u16) -> (StatusCode, &'static str) {
    let status = StatusCode::from_u16(code).unwrap();
    (status, status.canonical_reason().unwrap_or("?"))
}

/// A client whose only middleware is `middleware`.
pub(crate) fn client(middleware: SeawallMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(plain_client()).with(middleware).build()
}

/// A reqwest client that ignores proxy settings from the environment.
pub(crate) fn plain_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A retry of `attempts` attempts without waits.
pub(crate) fn retry(attempts: u32) -> Retry<impl RetryClassifier<Response, MwError> + Clone> {
    retrying(Retry::builder().max_attempts(attempts).no_backoff())
}

/// The retry `builder` builds, retrying what the crate calls retryable and reading
/// `Retry-After`.
pub(crate) fn retrying(
    builder: RetryBuilder,
) -> Retry<impl RetryClassifier<Response, MwError> + Clone> {
    builder
        .name("upstream")
        .build()
        .unwrap()
        .retry_if(seawall_reqwest::is_retryable)
        .retry_after_hint(seawall_reqwest::retry_after_hint)
}

/// A short per-attempt timeout for servers that hang.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(100);

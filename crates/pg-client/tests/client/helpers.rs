//! Shared helpers: a simulator, a fast client config, requests, bounded polling, and a
//! scripted gateway that records what it receives.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use pg_client::{
    CardNumber, CardType, IdempotencyKey, Money, OrderId, PaymentRequest, PgClient, PgClientConfig,
    UserId,
};
use pg_simulator::{Simulator, SimulatorBuilder, SimulatorHandle};
use seawall::Backoff;

/// A card number that must never appear in full anywhere.
pub(crate) const CARD: &str = "4111-2222-3333-4444";
/// Its masked form.
pub(crate) const MASKED: &str = "4111-22**-****-4444";
/// The simulator's callback URL rule accepts any loopback URL in the instant preset.
pub(crate) const CALLBACK_URL: &str = "http://localhost:8080/api/v1/payments/callback";
/// Upper bound of every wait on a condition.
pub(crate) const GENEROUS: Duration = Duration::from_secs(10);

/// The simulator's magic card that forces `code` (e.g. 408 for charge-but-timeout).
pub(crate) fn magic_card(code: u16) -> String {
    format!("4000-0000-0000-{code:04}")
}

pub(crate) fn user() -> UserId {
    UserId::parse("135135").unwrap()
}

/// The instant preset (no latency, no random failure, instant processing), seeded, with the
/// magic cards on (the tests force faults with them).
pub(crate) fn sim() -> SimulatorBuilder {
    Simulator::builder()
        .config(pg_simulator::SimConfig::instant())
        .seed(7)
        .magic_cards(true)
}

pub(crate) async fn spawn(builder: SimulatorBuilder) -> SimulatorHandle {
    builder.spawn().await.expect("the simulator starts")
}

/// Defaults with short, exact waits: backoff 1 ms without jitter, read timeout 2 s.
pub(crate) fn fast_config(base_url: &str, name: &str) -> PgClientConfig {
    let mut config = PgClientConfig::with_base_url(base_url);
    config.name = name.to_owned();
    for path in [&mut config.charge, &mut config.query] {
        path.read_timeout = Duration::from_secs(2);
        path.retry.backoff =
            Backoff::exponential(Duration::from_millis(1)).max(Duration::from_millis(5));
    }
    config
}

pub(crate) fn client(config: PgClientConfig) -> PgClient {
    PgClient::new(config).expect("the client builds")
}

pub(crate) fn request_with_card(order: &str, card: &str) -> PaymentRequest {
    let order_id = OrderId::parse(order).unwrap();
    PaymentRequest {
        idempotency_key: IdempotencyKey::for_attempt(&order_id, 1).unwrap(),
        order_id,
        card_type: CardType::Samsung,
        card_number: CardNumber::parse(card).unwrap(),
        amount: Money::krw(5000).unwrap(),
        callback_url: CALLBACK_URL.to_owned(),
    }
}

pub(crate) fn request(order: &str) -> PaymentRequest {
    request_with_card(order, CARD)
}

/// Polls `condition` every few milliseconds until it holds or `GENEROUS` passes; returns
/// whether it held. The only real-time wait in the tests, and bounded.
#[allow(clippy::disallowed_methods)] // the test-side poller is the one place that sleeps
pub(crate) async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + GENEROUS;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs `future` on its own task, so the test can step a manual clock while it waits.
pub(crate) fn in_background<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future)
}

/// What the scripted gateway saw of one request.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) user: Option<String>,
    pub(crate) idempotency_key: Option<String>,
}

/// A gateway stand-in answering `POST /api/v1/payments` from a script of canned answers, and
/// recording the headers of every request.
#[derive(Clone)]
pub(crate) struct Scripted {
    answers: Arc<Mutex<VecDeque<(StatusCode, String)>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    pub(crate) base_url: String,
}

impl Scripted {
    pub(crate) async fn start(answers: Vec<(StatusCode, String)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let scripted = Self {
            answers: Arc::new(Mutex::new(answers.into())),
            seen: Arc::new(Mutex::new(Vec::new())),
            base_url,
        };
        let app = Router::new()
            .route("/api/v1/payments", post(answer))
            .with_state(scripted.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        scripted
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(State(scripted): State<Scripted>, headers: HeaderMap) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    scripted.seen.lock().unwrap().push(Seen {
        user: header("x-user-id"),
        idempotency_key: header("idempotency-key"),
    });
    let (status, body) = scripted
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((StatusCode::GONE, String::new()));
    (status, [("content-type", "application/json")], body).into_response()
}

/// The canonical pre-create 500 body.
pub(crate) fn pre_create_500() -> (StatusCode, String) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        serde_json::json!({"meta": {"result": "FAIL", "errorCode": "Internal Server Error",
            "message": pg_client::config::CANONICAL_PRE_CREATE_MESSAGE}})
        .to_string(),
    )
}

/// A 200 creating `key`.
pub(crate) fn created(key: &str) -> (StatusCode, String) {
    (
        StatusCode::OK,
        serde_json::json!({"meta": {"result": "SUCCESS"},
            "data": {"transactionKey": key, "status": "PENDING"}})
        .to_string(),
    )
}

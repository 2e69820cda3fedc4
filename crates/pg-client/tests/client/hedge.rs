//! Hedged status queries against a gateway stand-in whose first query hangs: the hedge
//! overtakes it and the hanging request is cancelled; a charge is never hedged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use pg_client::{PaymentGateway, TransactionKey};
use seawall::Clock;

use crate::helpers::{created, eventually, fast_config, request, user};

/// Counts what the stand-in saw: status queries, charges, and queries cancelled while they
/// were still waiting for their answer.
#[derive(Clone, Default)]
struct Counts {
    queries: Arc<AtomicUsize>,
    charges: Arc<AtomicUsize>,
    cancelled: Arc<AtomicUsize>,
}

/// Increments `cancelled` when the handler's future is dropped before it answers.
struct CancelProbe(Arc<AtomicUsize>);

impl Drop for CancelProbe {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The first status query never answers; every later one answers 404 (no such transaction)
/// at once. Every charge takes 300 ms.
async fn start() -> (String, Counts) {
    let counts = Counts::default();
    let app = Router::new()
        .route("/api/v1/payments/{key}", get(status))
        .route("/api/v1/payments", post(charge))
        .with_state(counts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base_url, counts)
}

async fn status(State(counts): State<Counts>) -> impl IntoResponse {
    if counts.queries.fetch_add(1, Ordering::SeqCst) == 0 {
        let _probe = CancelProbe(counts.cancelled.clone());
        std::future::pending::<()>().await;
    }
    (StatusCode::NOT_FOUND, "{}")
}

async fn charge(State(counts): State<Counts>) -> impl IntoResponse {
    counts.charges.fetch_add(1, Ordering::SeqCst);
    Clock::tokio().sleep(Duration::from_millis(300)).await;
    let (status, body) = created("20250101:TR:0000a1");
    (status, [("content-type", "application/json")], body)
}

#[tokio::test]
async fn a_slow_first_status_query_is_overtaken_by_a_hedge_and_cancelled() {
    let (base_url, counts) = start().await;
    let mut config = fast_config(&base_url, "hedged");
    config.query.hedge.max_hedged_attempts = 1;
    config.query.hedge.delay = Duration::from_millis(50);
    let client = crate::helpers::client(config);

    let detail = client
        .get_transaction(
            &user(),
            &TransactionKey::parse("20250101:TR:0000a1").unwrap(),
        )
        .await
        .unwrap();

    assert!(detail.is_none(), "the hedge's 404 is the answer");
    assert_eq!(counts.queries.load(Ordering::SeqCst), 2);
    let metrics = client.query_hedge().metrics();
    assert_eq!((metrics.hedges_started, metrics.hedges_won), (1, 1));
    assert_eq!(
        client.query_retry().metrics().successful_with_retry,
        0,
        "answered without a retry: by the hedge, not after the first attempt's read timeout"
    );
    assert!(
        eventually(|| counts.cancelled.load(Ordering::SeqCst) == 1).await,
        "the overtaken request was dropped, so the gateway saw its connection close"
    );
}

#[tokio::test]
async fn a_charge_is_never_hedged_even_with_query_hedging_on() {
    let (base_url, counts) = start().await;
    let mut config = fast_config(&base_url, "charge-unhedged");
    config.query.hedge = seawall::hedge::HedgeConfig::parallel(2);
    let client = crate::helpers::client(config.clone());

    let accepted = client
        .request_payment(&user(), &request("order-hedge"))
        .await
        .unwrap();

    assert!(accepted.transaction_key().is_some());
    assert_eq!(
        counts.charges.load(Ordering::SeqCst),
        1,
        "a slow charge is sent once"
    );
    assert_eq!(client.query_hedge().metrics().hedges_started, 0);

    config.charge.hedge.max_hedged_attempts = 1;
    let refused =
        pg_client::PgClient::new(config).expect_err("a configuration hedging charges is refused");
    assert!(
        refused
            .to_string()
            .contains("charge.hedge.max_hedged_attempts"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_hedged_query_is_observed_as_one_attempt_per_request_sent() {
    let (base_url, counts) = start().await;
    let mut config = fast_config(&base_url, "hedged-observed");
    config.query.hedge.max_hedged_attempts = 1;
    config.query.hedge.delay = Duration::from_millis(50);
    let recorder = Arc::new(crate::observer::Recorder::default());
    let client = pg_client::PgClient::builder(config)
        .attempt_observer(recorder.clone())
        .build()
        .unwrap();

    let detail = client
        .get_transaction(
            &user(),
            &TransactionKey::parse("20250101:TR:0000a1").unwrap(),
        )
        .await
        .unwrap();

    assert!(detail.is_none());
    assert_eq!(counts.queries.load(Ordering::SeqCst), 2);
    let seen = recorder.seen();
    let befores = seen
        .iter()
        .filter(|s| s.starts_with("before query"))
        .count();
    let afters: Vec<_> = seen.iter().filter(|s| s.starts_with("after")).collect();
    assert_eq!(befores, 2, "one per request sent: {seen:?}");
    assert_eq!(
        afters.len(),
        1,
        "the overtaken request never ends: {seen:?}"
    );
    assert!(afters[0].contains("Some(404) OK"), "{seen:?}");
}

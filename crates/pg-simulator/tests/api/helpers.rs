//! Shared test helpers: a typed client, a recording callback receiver and waiting helpers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use pg_simulator::{Simulator, SimulatorBuilder, SimulatorHandle};
use serde_json::{Value, json};
use tokio::sync::watch;

pub(crate) const CARD: &str = "1234-5678-9012-3456";
pub(crate) const USER: &str = "135135";
pub(crate) const GENEROUS: Duration = Duration::from_secs(5);

/// The test-side stopwatch (the crate's own time reads go through its clock module).
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// A builder for the fast preset with a fixed seed.
pub(crate) fn instant() -> SimulatorBuilder {
    Simulator::builder()
        .config(pg_simulator::SimConfig::instant())
        .seed(7)
}

/// A simulator under test plus an HTTP client.
pub(crate) struct TestPg {
    pub(crate) handle: SimulatorHandle,
    pub(crate) client: reqwest::Client,
}

/// A parsed HTTP answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn key(&self) -> String {
        self.json()["data"]["transactionKey"]
            .as_str()
            .expect("transactionKey")
            .to_owned()
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub(crate) async fn spawn(builder: SimulatorBuilder) -> TestPg {
    TestPg {
        handle: builder.spawn().await.expect("simulator starts"),
        client: client(),
    }
}

/// A valid canonical request body.
pub(crate) fn body(order_id: &str, card_no: &str, callback_url: &str) -> Value {
    json!({
        "orderId": order_id,
        "cardType": "SAMSUNG",
        "cardNo": card_no,
        "amount": 5000,
        "callbackUrl": callback_url,
    })
}

pub(crate) const CANON_CALLBACK: &str = "http://localhost:8080/api/v1/payments/callback";

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

impl TestPg {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    /// POST a raw body with optional user and extra headers.
    pub(crate) async fn post_raw(
        &self,
        user: Option<&str>,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, reqwest::Error> {
        let mut rb = self
            .client
            .post(self.url("/api/v1/payments"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(u) = user {
            rb = rb.header("X-USER-ID", u);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        Ok(answer(rb.send().await?).await)
    }

    pub(crate) async fn pay(&self, body: &Value, headers: &[(&str, &str)]) -> Answer {
        self.post_raw(Some(USER), body.to_string(), headers)
            .await
            .expect("POST answered")
    }

    /// A payment that must be accepted; returns its key.
    pub(crate) async fn pay_ok(&self, body: &Value, headers: &[(&str, &str)]) -> String {
        let a = self.pay(body, headers).await;
        assert_eq!(a.status, 200, "{:?}", String::from_utf8_lossy(&a.body));
        a.key()
    }

    pub(crate) async fn get(
        &self,
        path: &str,
        user: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut rb = self.client.get(self.url(path));
        if let Some(u) = user {
            rb = rb.header("X-USER-ID", u);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        answer(rb.send().await.expect("GET answered")).await
    }

    pub(crate) async fn detail(&self, key: &str, headers: &[(&str, &str)]) -> Answer {
        self.get(&format!("/api/v1/payments/{key}"), Some(USER), headers)
            .await
    }

    pub(crate) async fn by_order(&self, order: &str, headers: &[(&str, &str)]) -> Answer {
        self.get(
            &format!("/api/v1/payments?orderId={order}"),
            Some(USER),
            headers,
        )
        .await
    }

    pub(crate) async fn wait_terminal(&self, key: &str) -> pg_simulator::Transaction {
        self.handle
            .wait_for_terminal(key, GENEROUS)
            .await
            .unwrap_or_else(|| panic!("{key} did not complete"))
    }
}

/// The error envelope the canonical gateway sends.
pub(crate) fn fail_envelope(code: &str, message: &str) -> Value {
    json!({ "meta": { "result": "FAIL", "errorCode": code, "message": message } })
}

// ===== callback receiver =====

/// One callback as received.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) at: Instant,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("callback body is JSON")
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Statuses to answer, in order; 200 once exhausted. 0 means "never answer".
    script: Mutex<VecDeque<u16>>,
    changes: Option<watch::Sender<usize>>,
}

/// A loopback HTTP server that records every callback.
pub(crate) struct Receiver {
    state: Arc<ReceiverState>,
    changes: watch::Receiver<usize>,
    addr: std::net::SocketAddr,
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let next = state.script.lock().unwrap().pop_front().unwrap_or(200);
    let count = {
        let mut r = state.received.lock().unwrap();
        r.push(Received {
            headers,
            body,
            at: now(),
        });
        r.len()
    };
    if let Some(tx) = &state.changes {
        tx.send_replace(count);
    }
    if next == 0 {
        std::future::pending::<()>().await;
    }
    StatusCode::from_u16(next).unwrap()
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        Self::scripted(&[]).await
    }

    /// Answers the given statuses first (0 = hang), then 200.
    pub(crate) async fn scripted(statuses: &[u16]) -> Self {
        Self::listening("127.0.0.1", statuses).await
    }

    /// A receiver on another address (e.g. `127.0.0.2`, still loopback on Linux).
    pub(crate) async fn start_on(ip: &str) -> Self {
        Self::listening(ip, &[]).await
    }

    async fn listening(ip: &str, statuses: &[u16]) -> Self {
        let (tx, rx) = watch::channel(0);
        let state = Arc::new(ReceiverState {
            received: Mutex::default(),
            script: Mutex::new(statuses.iter().copied().collect()),
            changes: Some(tx),
        });
        let app = Router::new()
            .route("/callback", post(receive))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            state,
            changes: rx,
            addr,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/callback", self.addr)
    }

    /// `host:port` of the receiver.
    pub(crate) fn authority(&self) -> String {
        self.addr.to_string()
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` callbacks arrived; panics after a generous timeout.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        let mut rx = self.changes.clone();
        let reached = tokio::time::timeout(GENEROUS, rx.wait_for(|c| *c >= n)).await;
        assert!(
            reached.is_ok(),
            "expected {n} callbacks, got {}",
            self.received().len()
        );
        self.received()
    }
}

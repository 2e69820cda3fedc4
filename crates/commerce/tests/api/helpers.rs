//! `spawn_app()`: the service on port 0 with a fresh SQLite file in a temp dir, in front of an
//! in-process pg-simulator configured per test, and a typed `TestApp` to talk to it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use commerce::configuration::Settings;
use commerce::outbox::RecordingSubscriber;
use commerce::persistence;
use commerce::subscriptions::BillingClock;
use commerce::{AppHandle, Application};
use pg_simulator::{SimConfig, Simulator, SimulatorBuilder, SimulatorHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The secret the simulator signs callbacks with and the service verifies.
pub(crate) const CALLBACK_SECRET: &str = "test-callback-secret";
/// The admin bearer token.
pub(crate) const ADMIN_TOKEN: &str = "test-admin-token";
/// A card that is always approved.
pub(crate) const APPROVED_CARD: &str = "4000-0000-0000-0001";

/// Waits `ms` milliseconds (through seawall's clock: the workspace bans direct sleeps).
pub(crate) async fn pause(ms: u64) {
    seawall::Clock::default()
        .sleep(Duration::from_millis(ms))
        .await;
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `timeout`.
pub(crate) async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let clock = seawall::Clock::default();
    let deadline = clock.now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if clock.now() >= deadline {
            return None;
        }
        pause(20).await;
    }
}

/// A running service, its simulator and a client.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub(crate) address: String,
    /// The running application's handle.
    pub(crate) handle: AppHandle,
    /// The simulator.
    pub(crate) pg: SimulatorHandle,
    /// An HTTP client.
    pub(crate) client: reqwest::Client,
    /// Receives every outbox event.
    pub(crate) events: Arc<RecordingSubscriber>,
    /// The settings the app was built with (to restart it on the same database).
    pub(crate) settings: Settings,
    /// The clock subscriptions are billed by: manual, kept across restarts and shared with
    /// [`TestApp::another_instance`].
    pub(crate) billing_clock: BillingClock,
    server: Option<JoinHandle<Result<(), std::io::Error>>>,
    _dir: Arc<tempfile::TempDir>,
}

/// Test defaults: port 0, a fresh database, the recovery loop off (rounds run through the
/// admin endpoint), tiny thresholds, a signed-callback secret and an admin token.
pub(crate) fn test_settings(dir: &tempfile::TempDir) -> Settings {
    let mut settings = Settings::default();
    settings.application.port = 0;
    settings.database.url = format!("sqlite://{}", dir.path().join("commerce.db").display());
    settings.callback.secret = Some(CALLBACK_SECRET.to_owned());
    settings.admin.token = Some(ADMIN_TOKEN.to_owned());
    settings.recovery.enabled = false;
    settings.recovery.older_than_ms = 0;
    settings.recovery.not_found_grace_ms = 300;
    settings.recovery.deadline_ms = 60_000;
    settings.outbox.interval_ms = 50;
    settings.gateway.client.charge.read_timeout = Duration::from_millis(500);
    settings.gateway.client.charge.retry.backoff = fast_backoff();
    settings.gateway.client.query.read_timeout = Duration::from_millis(500);
    settings.gateway.client.query.retry.backoff = fast_backoff();
    // The tests pin the charge path's limits; `tuning.rs` turns the tuning on.
    settings.gateway.charge_tuning.enabled = false;
    // The tests watch the `pg-charge` breaker; `protection.rs` turns the card types' on.
    settings.gateway.charge_breakers_by_card_type = false;
    settings
}

/// The client's backoff shape (exponential, capped at 1 s, full jitter), from 10 ms.
fn fast_backoff() -> seawall::Backoff {
    seawall::Backoff::exponential(Duration::from_millis(10))
        .max(Duration::from_secs(1))
        .full_jitter()
}

/// The simulator every test starts from: instant, no random failure, approves everything,
/// idempotency and cancel on, signed callbacks, 100 ms processing so a 202 shows PENDING, and
/// the magic cards on (tests pick faults with them).
pub(crate) fn test_simulator() -> SimulatorBuilder {
    Simulator::builder()
        .config(SimConfig::instant())
        .seed(7)
        .magic_cards(true)
        .outcome_weights(100, 0, 0)
        .processing_delay(Duration::from_millis(100)..=Duration::from_millis(100))
        .idempotency(true)
        .cancel_endpoint(true)
        .callback_secret(CALLBACK_SECRET)
        .fault_params(|f| f.charge_but_timeout_delay = Duration::from_secs(2))
}

/// The default app.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|sim| sim, |_| {}).await
}

/// An app with a customised simulator and settings.
pub(crate) async fn spawn_app_with(
    simulator: impl FnOnce(SimulatorBuilder) -> SimulatorBuilder,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    commerce::telemetry::init_tracing(if std::env::var("TEST_LOG").is_ok() {
        "commerce=debug,seawall=info"
    } else {
        "off"
    });
    let pg = simulator(test_simulator())
        .spawn()
        .await
        .expect("the simulator starts");
    let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
    let mut settings = test_settings(&dir);
    if let Some(url) = fresh_postgres_database().await {
        settings.database.url = url;
        // On SQLite the instance id file sits next to the database; here, in the test's dir.
        settings.application.instance_id_file = Some(dir.path().join("commerce.instance-id"));
    }
    settings.gateway.base_url = Some(pg.base_url());
    configure(&mut settings);
    start(settings, pg, dir, BillingClock::manual(BILLING_EPOCH_MS)).await
}

/// Where the billing clock of a test app starts: 2026-01-01T00:00:00Z.
pub(crate) const BILLING_EPOCH_MS: i64 = 1_767_225_600_000;

/// With `COMMERCE_TEST_POSTGRES_URL` set (a server URL without a database, e.g.
/// `postgres://postgres@127.0.0.1:5432`), every test gets a fresh Postgres database instead of
/// an SQLite file: the whole suite runs against Postgres.
pub(crate) async fn fresh_postgres_database() -> Option<String> {
    use sqlx::{Connection, Executor};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let server = std::env::var("COMMERCE_TEST_POSTGRES_URL").ok()?;
    let server = server.trim_end_matches('/');
    sqlx::any::install_default_drivers();
    let name = format!(
        "commerce_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        commerce::persistence::now_ms()
    );
    let mut admin = sqlx::AnyConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("the Postgres server answers");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("a fresh database");
    Some(format!("{server}/{name}"))
}

async fn start(
    settings: Settings,
    pg: SimulatorHandle,
    dir: Arc<tempfile::TempDir>,
    billing_clock: BillingClock,
) -> TestApp {
    let events = Arc::new(RecordingSubscriber::new());
    let app = Application::builder(settings.clone())
        .subscriber(events.clone())
        .billing_clock(billing_clock.clone())
        .build()
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        handle,
        pg,
        client: reqwest::Client::new(),
        events,
        settings,
        billing_clock,
        server: Some(server),
        _dir: dir,
    }
}

/// An order body for one line.
#[allow(clippy::needless_pass_by_value)] // call sites build the payment inline
pub(crate) fn order_body(product_id: i64, quantity: i64, payment: Value) -> Value {
    json!({"items": [{"productId": product_id, "quantity": quantity}], "payment": payment})
}

/// A card payment.
pub(crate) fn card(card_no: &str) -> Value {
    json!({"method": "CARD", "cardType": "SAMSUNG", "cardNo": card_no})
}

/// A point payment.
pub(crate) fn points() -> Value {
    json!({"method": "POINT"})
}

impl TestApp {
    /// Stops the service gracefully and waits for it; keeps the simulator and the database.
    pub(crate) async fn stop(&mut self) {
        self.handle.shutdown();
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task ends")
                .expect("the server stops cleanly");
        }
    }

    /// Starts a new service on the same database and simulator (a restart).
    pub(crate) async fn restart(mut self) -> Self {
        self.stop().await;
        let mut settings = self.settings.clone();
        settings.application.port = 0;
        let clock = self.billing_clock.clone();
        start(settings, self.pg.clone(), self._dir.clone(), clock).await
    }

    /// A second instance on the same database, simulator and billing clock, with its own
    /// port and instance id.
    pub(crate) async fn another_instance(&self, instance_id: &str) -> Self {
        let mut settings = self.settings.clone();
        settings.application.port = 0;
        settings.application.instance_id = Some(instance_id.to_owned());
        let clock = self.billing_clock.clone();
        start(settings, self.pg.clone(), self._dir.clone(), clock).await
    }

    /// `POST /api/v1/orders`.
    pub(crate) async fn post_order(
        &self,
        user: i64,
        body: &Value,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/api/v1/orders", self.address))
            .header("X-USER-ID", user.to_string())
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("the request is sent")
    }

    /// Places an order and returns (status, body).
    pub(crate) async fn place(&self, user: i64, body: &Value) -> (StatusCode, Value) {
        let response = self.post_order(user, body, None).await;
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }

    /// `GET {path}` (no user header) and its JSON body.
    pub(crate) async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the request is sent")
            .json()
            .await
            .expect("a JSON body")
    }

    /// `GET /api/v1/orders/{id}` as `user`.
    pub(crate) async fn order(&self, user: i64, id: i64) -> Value {
        self.client
            .get(format!("{}/api/v1/orders/{id}", self.address))
            .header("X-USER-ID", user.to_string())
            .send()
            .await
            .expect("the request is sent")
            .json()
            .await
            .expect("a JSON body")
    }

    /// Waits until the order's status is `status`; panics after 5 s with the last view.
    pub(crate) async fn wait_for_order_status(&self, user: i64, id: i64, status: &str) -> Value {
        let found = eventually(Duration::from_secs(5), || async {
            let order = self.order(user, id).await;
            (order["status"] == status).then_some(order)
        })
        .await;
        match found {
            Some(order) => order,
            None => panic!(
                "order {id} never reached {status}: {}",
                self.order(user, id).await
            ),
        }
    }

    /// `GET /api/v1/products/{id}`'s stock.
    pub(crate) async fn stock(&self, product_id: i64) -> i64 {
        let product = self
            .get_json(&format!("/api/v1/products/{product_id}"))
            .await;
        product["stock"].as_i64().expect("a stock")
    }

    /// `POST /api/v1/admin/reconcile`: one recovery round now.
    pub(crate) async fn reconcile(&self) -> Value {
        let response = self
            .admin(
                self.client
                    .post(format!("{}/api/v1/admin/reconcile", self.address)),
            )
            .send()
            .await
            .expect("the request is sent");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("a JSON body")
    }

    /// Adds the admin token to a request.
    #[allow(clippy::unused_self)] // reads naturally at call sites: app.admin(request)
    pub(crate) fn admin(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.bearer_auth(ADMIN_TOKEN)
    }

    /// `POST /api/v1/payments/callback` with a raw body and an optional signature header.
    pub(crate) async fn post_callback(
        &self,
        body: &str,
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/api/v1/payments/callback", self.address))
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("X-PG-Signature", signature);
        }
        request.send().await.expect("the request is sent")
    }

    /// Signs a callback body with the test secret, now.
    #[allow(clippy::unused_self)]
    pub(crate) fn sign(&self, body: &str) -> String {
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        pg_simulator::signature::sign(&[CALLBACK_SECRET.to_owned()], now, body.as_bytes())
    }

    /// The transitions of a payment, as (from, to, source).
    pub(crate) async fn history(&self, payment_id: i64) -> Vec<(Option<String>, String, String)> {
        persistence::payment_history(
            &mut self.handle.state.db.reader().await.unwrap(),
            payment_id.into(),
        )
        .await
        .expect("history")
        .into_iter()
        .map(|h| (h.from_status, h.to_status, h.source))
        .collect()
    }

    /// Delivers due outbox events now.
    pub(crate) async fn relay_outbox(&self) {
        self.handle
            .state
            .outbox
            .relay_once()
            .await
            .expect("outbox pass");
    }
}

/// The first payment of an order view.
pub(crate) fn first_payment(order: &Value) -> &Value {
    &order["payments"][0]
}

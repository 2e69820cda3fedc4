//! The outbox's NATS JetStream sink against a real `nats-server`: every event published once
//! (consumer deduplicating by id), subjects per event type, a republish dropped by JetStream's
//! duplicate window.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use commerce::configuration::{Settings, SinkKind};
use commerce::outbox::Event;
use commerce::sink::{EventSink, NatsSink};
use commerce::startup::Application;
use futures_util::StreamExt;
use sqlx::Row;
use tokio::process::{Child, Command};

/// A `nats-server` with JetStream on a free port and its own store, killed on drop.
struct NatsServer {
    child: Child,
    url: String,
    _store: tempfile::TempDir,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts `nats-server`, or `None` (with a message) when it is not installed and
/// `SEAWALL_REQUIRE_NATS=1` is not set.
async fn start_nats() -> Option<NatsServer> {
    let installed = std::process::Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        assert!(
            std::env::var("SEAWALL_REQUIRE_NATS").as_deref() != Ok("1"),
            "SEAWALL_REQUIRE_NATS=1 but nats-server is not installed"
        );
        eprintln!("SKIPPED: nats-server is not installed (apt-get install nats-server)");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let store = tempfile::tempdir().expect("a store dir");
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("nats-server starts");
    let url = format!("nats://127.0.0.1:{port}");
    // Ready when it accepts a connection.
    for _ in 0..100 {
        if async_nats::connect(url.as_str()).await.is_ok() {
            return Some(NatsServer {
                child,
                url,
                _store: store,
            });
        }
        pause(100).await;
    }
    panic!("nats-server never accepted a connection on {url}");
}

/// Waits between polls of a real process (wall time, through seawall's clock).
async fn pause(ms: u64) {
    seawall::Clock::default()
        .sleep(Duration::from_millis(ms))
        .await;
}

fn settings(dir: &tempfile::TempDir, nats_url: &str) -> Settings {
    let mut settings = Settings::default();
    settings.application.port = 0;
    settings.database.url = format!("sqlite://{}", dir.path().join("commerce.db").display());
    settings.application.instance_id_file = Some(dir.path().join("commerce.instance-id"));
    settings.recovery.enabled = false;
    // Point orders never call the PG; nothing listens here.
    settings.gateway.base_url = Some("http://127.0.0.1:9".to_owned());
    settings.callback.secret = Some("system-tests-callback-secret-0123456789".to_owned());
    settings.outbox.interval_ms = 50;
    settings.outbox.sink = SinkKind::Nats;
    settings.outbox.nats.url = nats_url.to_owned();
    settings.outbox.nats.stream = "COMMERCE_EVENTS".to_owned();
    settings
}

/// Every outbox event (id, type), once the relay has published them all.
async fn published_events(db_url: &str) -> HashMap<i64, String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db_url).await.expect("the database");
    for _ in 0..200 {
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL AND dead = 0",
        )
        .fetch_one(&pool)
        .await
        .expect("the backlog");
        if left == 0 {
            let rows = sqlx::query("SELECT id, event_type FROM outbox_events")
                .fetch_all(&pool)
                .await
                .expect("the events");
            return rows
                .iter()
                .map(|r| (r.get("id"), r.get("event_type")))
                .collect();
        }
        pause(50).await;
    }
    panic!("the outbox never drained to NATS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_event_reaches_jetstream_once_on_its_type_subject() {
    // Arrange: a real nats-server and commerce publishing to it.
    let Some(nats) = start_nats().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("a dir");
    let settings = settings(&dir, &nats.url);
    let app = Application::builder(settings.clone())
        .build()
        .await
        .expect("commerce builds with the NATS sink");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let server = tokio::spawn(app.run_until_stopped());

    // Act: place point orders.
    let client = reqwest::Client::new();
    let mut accepted = 0;
    for user in 1..=3 {
        for n in 0..5 {
            let body = serde_json::json!({
                "items": [{"productId": 1 + n % 2, "quantity": 1}],
                "payment": {"method": "POINT"},
            });
            let response = client
                .post(format!("{address}/api/v1/orders"))
                .header("X-USER-ID", user.to_string())
                .header("Idempotency-Key", format!("nats-{user}-{n}"))
                .json(&body)
                .send()
                .await
                .expect("the order is sent");
            if response.status().is_success() {
                accepted += 1;
            }
        }
    }
    assert!(accepted > 0, "some orders were accepted");
    let expected = published_events(&settings.database.url).await;

    // Assert: the consumer sees every event, on its type's subject, none twice after dedup.
    let js = jetstream::new(
        async_nats::connect(nats.url.as_str())
            .await
            .expect("a client"),
    );
    let mut stream = js.get_stream("COMMERCE_EVENTS").await.expect("the stream");
    let consumer: jetstream::consumer::PullConsumer = stream
        .create_consumer(pull::Config::default())
        .await
        .expect("a consumer");
    let mut seen: HashMap<i64, String> = HashMap::new();
    let mut raw = 0;
    while seen.len() < expected.len() {
        let mut batch = consumer
            .fetch()
            .max_messages(1_000)
            .messages()
            .await
            .expect("a fetch");
        let mut got = 0;
        while let Some(message) = batch.next().await {
            let message = message.expect("a message");
            let body: serde_json::Value =
                serde_json::from_slice(&message.payload).expect("a JSON event");
            let id = body["id"].as_i64().expect("an id");
            let kind = body["type"].as_str().expect("a type").to_owned();
            assert_eq!(message.subject.as_str(), format!("commerce.events.{kind}"));
            let header = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_owned());
            assert_eq!(
                header,
                Some(id.to_string()),
                "the message id is the event id"
            );
            message.ack().await.expect("an ack");
            raw += 1;
            got += 1;
            seen.insert(id, kind);
        }
        assert!(
            got > 0,
            "the stream holds every event: {} of {}",
            seen.len(),
            expected.len()
        );
    }
    assert_eq!(seen, expected, "every event, with its type");
    assert_eq!(raw, expected.len(), "no event published twice");
    let kinds: HashSet<&str> = seen.values().map(String::as_str).collect();
    assert!(kinds.contains("OrderPaid"), "{kinds:?}");

    // Act: a republish of an event (as after a crash between publish and mark).
    let sink = NatsSink::connect(&settings.outbox.nats)
        .await
        .expect("a sink");
    let (id, kind) = expected.iter().next().expect("an event");
    let again = Event {
        id: *id,
        order_id: 0,
        event_type: kind.clone(),
        payload: serde_json::Value::Null,
    };
    sink.publish(&again)
        .await
        .expect("the republish is acknowledged");

    // Assert: JetStream dropped it as a duplicate.
    let messages = stream.info().await.expect("stream info").state.messages;
    assert_eq!(
        messages,
        expected.len() as u64,
        "the duplicate window dropped it"
    );

    handle.shutdown();
    server
        .await
        .expect("the server task")
        .expect("a clean stop");
}

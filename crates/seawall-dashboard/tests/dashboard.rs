//! The dashboard's routes in process (`tower::ServiceExt::oneshot`): the event stream, the
//! snapshot JSON, the pages, and the token on actions.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures_util::StreamExt;
use seawall::registry::Registries;
use seawall_dashboard::{Dashboard, bearer_token};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const TOKEN: &str = "test-token";

fn registries() -> Registries {
    let registries = Registries::new();
    let _ = registries.policy("pg");
    registries
}

fn app(registries: &Registries, actions: bool, shutdown: CancellationToken) -> Router {
    let mut builder = Dashboard::builder("/admin/dashboard")
        .registry("main", registries.clone())
        .tick(Duration::from_secs(3600))
        .shutdown(shutdown);
    if actions {
        builder = builder.authorizer(bearer_token(TOKEN));
    }
    Router::new().nest("/admin/dashboard", builder.build().router())
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String, Option<String>) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        String::from_utf8(body.to_vec()).unwrap(),
        content_type,
    )
}

async fn post(app: &Router, uri: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut request = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

/// Reads SSE frames until one whole event (`event:` + `data:`) has arrived.
struct Events {
    body: axum::body::BodyDataStream,
    buffer: String,
}

impl Events {
    async fn open(app: &Router, uri: &str) -> Self {
        let response = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        Self {
            body: response.into_body().into_data_stream(),
            buffer: String::new(),
        }
    }

    /// The next event's name and data, skipping keep-alive comments; `None` at the end.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if let Some(name) = name {
                    return Some((name, serde_json::from_str(&data).unwrap()));
                }
                continue;
            }
            let chunk = self.body.next().await?.unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_page_gets_a_full_snapshot_as_soon_as_it_connects() {
    let registries = registries();
    let app = app(&registries, false, CancellationToken::new());
    let mut events = Events::open(&app, "/admin/dashboard/registries/main/events").await;
    let (name, data) = events.next().await.unwrap();
    assert_eq!(name, "snapshot");
    assert_eq!(data["registry"], "main");
    assert_eq!(data["tiles"][0]["name"], "pg");
    assert_eq!(data["tiles"][0]["breaker"]["state"], "CLOSED");
    assert_eq!(data["tiles"][0]["bulkhead"]["maxConcurrentCalls"], 25);
}

#[tokio::test(start_paused = true)]
async fn a_state_change_is_pushed_at_once_not_at_the_next_tick() {
    let registries = registries();
    let app = app(&registries, false, CancellationToken::new());
    let mut events = Events::open(&app, "/admin/dashboard/registries/main/events").await;
    let _ = events.next().await.unwrap();
    let clock = seawall::Clock::default();
    let started = clock.now();
    registries
        .circuit_breakers()
        .find("pg")
        .unwrap()
        .transition_to_open()
        .unwrap();
    let (name, data) = events.next().await.unwrap();
    assert_eq!(name, "state");
    assert_eq!(data["name"], "pg");
    assert_eq!(data["from"], "CLOSED");
    assert_eq!(data["to"], "OPEN");
    assert_eq!(clock.now() - started, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_created_after_the_page_opened_is_watched_too() {
    let registries = registries();
    let app = app(&registries, false, CancellationToken::new());
    let mut events = Events::open(&app, "/admin/dashboard/registries/main/events").await;
    let _ = events.next().await.unwrap();
    let late = registries.circuit_breakers().get_or_create("late");
    let (name, data) = events.next().await.unwrap();
    assert_eq!(name, "snapshot", "a new instance brings a new snapshot");
    assert_eq!(data["tiles"][0]["name"], "late");
    late.transition_to_forced_open().unwrap();
    let (name, data) = events.next().await.unwrap();
    assert_eq!(name, "state");
    assert_eq!(data["to"], "FORCED_OPEN");
}

#[tokio::test(start_paused = true)]
async fn the_tick_brings_a_snapshot_with_calls_per_second() {
    let registries = registries();
    let dashboard = Dashboard::builder("")
        .registry("main", registries.clone())
        .tick(Duration::from_secs(2))
        .build();
    let app = dashboard.router();
    let mut events = Events::open(&app, "/registries/main/events").await;
    let (_, first) = events.next().await.unwrap();
    assert_eq!(first["tiles"][0]["breaker"]["callsPerSecond"], Value::Null);
    let breaker = registries.circuit_breakers().find("pg").unwrap();
    for _ in 0..10 {
        breaker.try_acquire().unwrap().success();
    }
    let (name, second) = events.next().await.unwrap();
    assert_eq!(name, "snapshot");
    assert_eq!(second["tiles"][0]["breaker"]["callsPerSecond"], 5.0);
    assert_eq!(second["tiles"][0]["breaker"]["rejectionsPerSecond"], 0.0);
}

#[tokio::test(start_paused = true)]
async fn the_streams_end_when_the_host_shuts_down() {
    let registries = registries();
    let shutdown = CancellationToken::new();
    let app = app(&registries, false, shutdown.clone());
    let mut events = Events::open(&app, "/admin/dashboard/registries/main/events").await;
    let _ = events.next().await.unwrap();
    shutdown.cancel();
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn the_snapshot_is_json_with_a_tile_per_instance_name() {
    let registries = registries();
    let _ = registries.adaptive_limiters().get_or_create("pg");
    let app = app(&registries, false, CancellationToken::new());
    let (status, body, content_type) = get(&app, "/admin/dashboard/registries/main/snapshot").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let json: Value = serde_json::from_str(&body).unwrap();
    let tile = &json["tiles"][0];
    assert_eq!(
        tile["kinds"],
        serde_json::json!([
            "circuitbreaker",
            "bulkhead",
            "adaptivelimiter",
            "retry",
            "timelimiter"
        ])
    );
    assert_eq!(tile["breaker"]["failureRateThreshold"], 50.0);
    assert_eq!(tile["bulkhead"]["inUse"], 0);
    assert!(tile["adaptive"]["limit"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn an_unknown_registry_is_a_json_404() {
    let app = app(&registries(), false, CancellationToken::new());
    for uri in [
        "/admin/dashboard/registries/nope",
        "/admin/dashboard/registries/nope/snapshot",
        "/admin/dashboard/registries/nope/events",
    ] {
        let (status, body, _) = get(&app, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(body.contains("REGISTRY_NOT_FOUND"), "{uri}");
    }
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let app = app(&registries(), false, CancellationToken::new());
    let (status, page, content_type) = get(&app, "/admin/dashboard/registries/main").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.unwrap().starts_with("text/html"));
    assert!(page.contains("src=\"/admin/dashboard/assets/dashboard.js\""));
    assert!(page.contains("data-actions=\"off\""));
    let (status, script, content_type) = get(&app, "/admin/dashboard/assets/dashboard.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.unwrap().starts_with("text/javascript"));
    assert!(script.contains("EventSource"));
    let (status, _, content_type) = get(&app, "/admin/dashboard/assets/dashboard.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.unwrap().starts_with("text/css"));
    let (status, index, _) = get(&app, "/admin/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert!(index.contains("href=\"/admin/dashboard/registries/main\""));
}

#[tokio::test]
async fn a_registry_name_with_markup_is_escaped_in_the_page() {
    let dashboard = Dashboard::builder("")
        .registry("<img src=x onerror=alert(1)>", registries())
        .build();
    let app = dashboard.router();
    let (_, index, _) = get(&app, "/").await;
    assert!(!index.contains("<img"));
    assert!(index.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let (status, page, _) = get(&app, "/registries/%3Cimg%20src=x%20onerror=alert(1)%3E").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<img"));
}

#[tokio::test]
async fn actions_are_refused_on_a_read_only_dashboard() {
    let registries = registries();
    let app = app(&registries, false, CancellationToken::new());
    let uri = "/admin/dashboard/registries/main/circuit-breakers/pg";
    let (status, body) = post(&app, uri, Some(TOKEN), r#"{"state":"FORCED_OPEN"}"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "READ_ONLY");
    let state = registries.circuit_breakers().find("pg").unwrap().state();
    assert_eq!(state.as_str(), "CLOSED");
}

#[tokio::test]
async fn actions_need_the_right_token() {
    let registries = registries();
    let app = app(&registries, true, CancellationToken::new());
    let uri = "/admin/dashboard/registries/main/circuit-breakers/pg";
    for token in [None, Some("wrong"), Some("")] {
        let (status, body) = post(&app, uri, token, r#"{"state":"FORCED_OPEN"}"#).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body["code"], "UNAUTHORIZED");
    }
    let state = registries.circuit_breakers().find("pg").unwrap().state();
    assert_eq!(state.as_str(), "CLOSED");
}

#[tokio::test]
async fn an_operator_with_the_token_forces_a_breaker_open_and_changes_a_threshold() {
    let registries = registries();
    let app = app(&registries, true, CancellationToken::new());
    let uri = "/admin/dashboard/registries/main/circuit-breakers/pg";
    let (status, tile) = post(
        &app,
        uri,
        Some(TOKEN),
        r#"{"state":"FORCED_OPEN","failureRateThreshold":30}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tile["breaker"]["state"], "FORCED_OPEN");
    assert_eq!(tile["breaker"]["failureRateThreshold"], 30.0);
    let breaker = registries.circuit_breakers().find("pg").unwrap();
    assert_eq!(breaker.config().failure_rate_threshold, 30.0);
}

#[tokio::test]
async fn an_invalid_action_changes_nothing_and_says_why() {
    let registries = registries();
    let app = app(&registries, true, CancellationToken::new());
    let uri = "/admin/dashboard/registries/main/circuit-breakers/pg";
    let (status, body) = post(&app, uri, Some(TOKEN), r#"{"failureRateThreshold":250}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("failure_rate_threshold")
    );
    let (status, body) = post(&app, uri, Some(TOKEN), r#"{"state":"AJAR"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "INVALID_ACTION");
    let (status, _) = post(&app, uri, Some(TOKEN), r#"{"colour":"red"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let missing = "/admin/dashboard/registries/main/circuit-breakers/nope";
    let (status, _) = post(&app, missing, Some(TOKEN), r#"{"state":"OPEN"}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        registries
            .circuit_breakers()
            .find("pg")
            .unwrap()
            .config()
            .failure_rate_threshold,
        50.0
    );
}

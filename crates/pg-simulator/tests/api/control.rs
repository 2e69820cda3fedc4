//! The handle's runtime controls and the HTTP control plane.

use std::time::Duration;

use pg_simulator::{Fault, FaultConfig, Latency, TransactionStatus};
use serde_json::{Value, json};

use crate::helpers::{
    CANON_CALLBACK, CARD, GENEROUS, Receiver, USER, body, client, instant, spawn,
};

#[tokio::test]
async fn going_down_refuses_connections_and_coming_back_keeps_the_ledger() {
    let pg = spawn(instant()).await;
    let key = pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    let port = pg.handle.addr().port();

    pg.handle.go_down().await;
    assert!(pg.handle.is_down().await);
    let fresh = client(); // no pooled connection to reuse
    let err = fresh
        .get(pg.url(&format!("/api/v1/payments/{key}")))
        .header("X-USER-ID", USER)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    // Pooled keep-alive connections were closed too.
    assert!(
        pg.client
            .get(pg.url("/api/v1/payments/x"))
            .send()
            .await
            .is_err()
    );

    pg.handle.come_back().await.unwrap();
    assert_eq!(pg.handle.addr().port(), port);
    assert_eq!(pg.detail(&key, &[]).await.status, 200);
    assert_eq!(pg.handle.faults_injected(Fault::Down), 1);
}

#[tokio::test]
async fn black_hole_mode_accepts_and_never_answers() {
    let pg = spawn(instant()).await;
    pg.handle.set_black_hole(true);
    let r = client()
        .get(pg.url("/api/v1/payments?orderId=000123"))
        .header("X-USER-ID", USER)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.unwrap_err().is_timeout());
    pg.handle.set_black_hole(false);
    assert_eq!(
        client()
            .get(pg.url("/api/v1/payments?orderId=000123"))
            .header("X-USER-ID", USER)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn faults_can_be_changed_at_run_time() {
    let pg = spawn(instant()).await;
    pg.handle
        .set_fault_rate(Fault::ErrorBeforeCreate, 1.0)
        .unwrap();
    assert_eq!(
        pg.pay(&body("000123", CARD, CANON_CALLBACK), &[])
            .await
            .status,
        500
    );
    pg.handle.set_faults(FaultConfig::default()).unwrap();
    pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    assert!(pg.handle.set_fault_rate(Fault::QueryError, 0.5).is_err());
    assert!(pg.handle.update_config(|c| c.server.port = 1).is_err());
    pg.handle
        .update_config(|c| c.request.latency = Latency::fixed(Duration::from_millis(1)))
        .unwrap();
}

#[tokio::test]
async fn stats_count_every_request_kind() {
    let pg = spawn(instant()).await;
    let key = pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    pg.detail(&key, &[]).await;
    pg.by_order("000123", &[]).await;
    let s = pg.handle.stats();
    assert_eq!(
        (s.payment_requests, s.detail_queries, s.order_queries),
        (1, 1, 1)
    );
    assert_eq!(s.requests(), 3);
    assert!(s.connections >= 1);
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let pg = spawn(instant()).await;
    let url = pg.url("/api/v1/payments?orderId=1");
    pg.handle.clone().shutdown().await;
    assert!(
        client()
            .get(url)
            .header("X-USER-ID", USER)
            .send()
            .await
            .unwrap_err()
            .is_connect()
    );
}

#[tokio::test]
async fn the_control_plane_is_off_unless_enabled() {
    let pg = spawn(instant()).await;
    assert!(pg.handle.control_url().is_none());
}

async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = c.request(method, url);
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_control_plane_drives_faults_transactions_callbacks_and_the_listener() {
    use reqwest::Method;
    // Arrange
    let receiver = Receiver::start().await;
    let pg = spawn(
        instant()
            .control_plane(true)
            .processing_latency(Latency::fixed(Duration::from_secs(60))),
    )
    .await;
    let ctl = pg.handle.control_url().unwrap();
    let c = client();

    let (status, v) = call(&c, Method::GET, format!("{ctl}/__sim/health"), None).await;
    assert_eq!((status, v), (200, json!({ "status": "UP" })));

    // Faults: merge one rate, see it applied, then replace the whole section.
    let (status, v) = call(
        &c,
        Method::POST,
        format!("{ctl}/__sim/faults/rates"),
        Some(json!({ "error-before-create": 1.0 })),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["rates"]["error-before-create"], 1.0);
    assert_eq!(
        pg.pay(&body("000123", CARD, &receiver.url()), &[])
            .await
            .status,
        500
    );
    let (status, _) = call(
        &c,
        Method::PUT,
        format!("{ctl}/__sim/faults"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &c,
        Method::POST,
        format!("{ctl}/__sim/faults/rates"),
        Some(json!({ "query-error": 0.5 })),
    )
    .await;
    assert_eq!(status, 400, "a query fault is not a payment rate");

    // Transactions: list (masked), complete, replay.
    let key = pg.pay_ok(&body("000123", CARD, &receiver.url()), &[]).await;
    let (_, v) = call(
        &c,
        Method::GET,
        format!("{ctl}/__sim/transactions?orderId=000123"),
        None,
    )
    .await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["transactions"][0]["cardNo"], "1234-56**-****-3456");
    let (status, v) = call(
        &c,
        Method::POST,
        format!("{ctl}/__sim/transactions/{key}/complete?status=LIMIT_EXCEEDED"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["status"], "FAILED");
    assert_eq!(
        pg.handle.transaction(&key).unwrap().status,
        TransactionStatus::Failed
    );
    receiver.wait_for(1).await;
    let (status, _) = call(
        &c,
        Method::POST,
        format!("{ctl}/__sim/transactions/{key}/complete"),
        None,
    )
    .await;
    assert_eq!(status, 409, "terminal states are final");
    let (status, v) = call(
        &c,
        Method::POST,
        format!("{ctl}/__sim/callbacks/{key}/replay"),
        None,
    )
    .await;
    assert_eq!((status, v), (200, json!({ "status": 200 })));
    receiver.wait_for(2).await;

    // Fault log, then clear it.
    let (_, v) = call(&c, Method::GET, format!("{ctl}/__sim/fault-log"), None).await;
    assert_eq!(v[0]["fault"], "error-before-create");
    assert_eq!(v[0]["trigger"], "rate");
    let (status, _) = call(&c, Method::DELETE, format!("{ctl}/__sim/fault-log"), None).await;
    assert_eq!(status, 204);
    assert!(pg.handle.fault_log().is_empty());

    // Down and up again, over the control plane (which stays reachable).
    call(&c, Method::POST, format!("{ctl}/__sim/down"), None).await;
    assert!(
        client()
            .get(pg.url("/api/v1/payments/x"))
            .send()
            .await
            .unwrap_err()
            .is_connect()
    );
    let (status, _) = call(&c, Method::POST, format!("{ctl}/__sim/up"), None).await;
    assert_eq!(status, 200);
    assert_eq!(pg.detail(&key, &[]).await.status, 200);

    // Black hole on and off.
    call(
        &c,
        Method::POST,
        format!("{ctl}/__sim/black-hole?on=true"),
        None,
    )
    .await;
    assert!(
        client()
            .get(pg.url("/api/v1/payments/x"))
            .timeout(Duration::from_millis(200))
            .send()
            .await
            .unwrap_err()
            .is_timeout()
    );
    call(
        &c,
        Method::POST,
        format!("{ctl}/__sim/black-hole?on=false"),
        None,
    )
    .await;

    let (_, v) = call(&c, Method::GET, format!("{ctl}/__sim/stats"), None).await;
    assert!(v["paymentRequests"].as_u64().unwrap() >= 2);
    let (_, v) = call(&c, Method::GET, format!("{ctl}/__sim/config"), None).await;
    assert_eq!(v["callback"]["url_prefix"], "http://localhost:8080");
    assert!(
        pg.handle
            .wait_until(GENEROUS, |h| h.stats().callbacks_delivered >= 2)
            .await
    );
}

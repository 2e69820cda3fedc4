//! Two PGs (A primary, B second): a charge fails over to B only when A provably created
//! nothing, and everything about a payment afterwards (recovery, callbacks) goes to the PG
//! that holds it. Each simulator's counters are the witnesses.

use std::time::Duration;

use commerce::configuration::PgRouteSettings;
use commerce::persistence;
use pg_simulator::{SimulatorBuilder, SimulatorHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    APPROVED_CARD, TestApp, card, first_payment, order_body, spawn_app_with, test_simulator,
};

/// B signs its callbacks with a secret of its own (A's would not verify them).
const B_CALLBACK_SECRET: &str = "the-second-pg-callback-secret-b";

/// A loopback URL nothing listens on (a connection there is refused).
async fn refusing_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The app with simulator B as a second PG (its callbacks after 500 ms, so a recovery
/// round run at once finds the payment still open); `a_url` replaces A's URL when set.
async fn spawn_with_b(a_url: Option<String>) -> (TestApp, SimulatorHandle) {
    spawn_with_b_and(a_url, |sim| sim).await
}

async fn spawn_with_b_and(
    a_url: Option<String>,
    a: impl FnOnce(SimulatorBuilder) -> SimulatorBuilder,
) -> (TestApp, SimulatorHandle) {
    spawn_with_b_settling_after(a_url, a, Duration::from_millis(500)).await
}

/// As [`spawn_with_b_and`], B settling its transactions after `b_delay`.
async fn spawn_with_b_settling_after(
    a_url: Option<String>,
    a: impl FnOnce(SimulatorBuilder) -> SimulatorBuilder,
    b_delay: Duration,
) -> (TestApp, SimulatorHandle) {
    let b = test_simulator()
        .callback_secret(B_CALLBACK_SECRET)
        .processing_delay(b_delay..=b_delay)
        .spawn()
        .await
        .unwrap();
    let b_url = b.base_url();
    let app = spawn_app_with(a, |s| {
        if let Some(url) = a_url {
            s.gateway.base_url = Some(url);
        }
        s.gateway.others = vec![PgRouteSettings {
            name: "B".to_owned(),
            base_url: Some(b_url),
            callback_secret: Some(B_CALLBACK_SECRET.to_owned()),
            priority: 1,
            ..PgRouteSettings::default()
        }];
    })
    .await;
    (app, b)
}

async fn payment_pg(app: &TestApp, order_id: i64) -> Option<String> {
    let order = app.order(1, order_id).await;
    let payment_id = first_payment(&order)["paymentId"].as_i64().unwrap();
    persistence::payment_pg(
        &mut app.handle.state.db.writer().await.unwrap(),
        payment_id.into(),
    )
    .await
    .unwrap()
}

async fn call_log(app: &TestApp, order_id: i64) -> Vec<Value> {
    let log: Value = app
        .admin(app.client.get(format!(
            "{}/api/v1/admin/orders/{order_id}/pg-calls",
            app.address
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    log["calls"].as_array().unwrap().clone()
}

#[tokio::test]
async fn when_a_refuses_connections_the_order_is_charged_through_b_and_settled_there() {
    let (app, b) = spawn_with_b(Some(refusing_url().await)).await;

    let (status, order) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;

    assert!(status.is_success(), "{status} {order}");
    let id = order["orderId"].as_i64().unwrap();
    assert_eq!(b.stats().payment_requests, 1);
    assert_eq!(payment_pg(&app, id).await.as_deref(), Some("B"));
    let charges: Vec<(String, String)> = call_log(&app, id)
        .await
        .iter()
        .filter(|c| c["path"] == "charge")
        .map(|c| {
            (
                c["pg"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // One row per HTTP attempt: A's retried refused connections, then B's acceptance.
    let (last, at_a) = charges.split_last().unwrap();
    assert_eq!(
        last,
        &("B".to_owned(), "ACCEPTED".to_owned()),
        "{charges:?}"
    );
    assert!(!at_a.is_empty(), "{charges:?}");
    assert!(
        at_a.iter()
            .all(|(pg, outcome)| pg == "A" && outcome == "NOT_REACHED"),
        "{charges:?}"
    );
    // Recovery asks B.
    let queries = b.stats().queries();
    let report = app.reconcile().await;
    assert_eq!(report["queryFailures"], 0, "{report}");
    assert!(b.stats().queries() > queries, "recovery queried B");
    // B's callback (to B's path, verified with B's secret) settles the order.
    app.wait_for_order_status(1, id, "PAID").await;
    assert!(b.stats().callbacks_delivered >= 1, "{:?}", b.stats());
    assert_eq!(app.pg.stats().requests(), 0);
    // The routing metrics name B and the failover from A.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let has = |name: &str, labels: &[&str]| {
        metrics
            .lines()
            .any(|line| line.starts_with(name) && labels.iter().all(|label| line.contains(label)))
    };
    assert!(has("commerce_pg_routed_total", &[r#"pg="B""#]), "{metrics}");
    assert!(
        has("commerce_pg_failovers_total", &[r#"from="A""#, r#"to="B""#]),
        "{metrics}"
    );
}

#[tokio::test]
async fn when_a_times_out_after_creating_the_transaction_there_is_no_failover_and_recovery_settles_it_at_a()
 {
    // A settles its transactions after 3 s: the first recovery round finds it PENDING.
    let (app, b) = spawn_with_b_and(None, |a| {
        a.processing_delay(Duration::from_secs(3)..=Duration::from_secs(3))
    })
    .await;

    // The simulator creates the transaction, then answers only after 2 s (the read timeout
    // is 500 ms): an uncertain outcome.
    let (status, order) = app
        .place(1, &order_body(1, 1, card("4000-0000-0000-0408")))
        .await;

    assert!(status.is_success(), "{status} {order}");
    let id = order["orderId"].as_i64().unwrap();
    let payment_id = first_payment(&app.order(1, id).await)["paymentId"]
        .as_i64()
        .unwrap();
    assert_eq!(first_payment(&app.order(1, id).await)["status"], "UNKNOWN");
    assert_eq!(
        b.stats().requests(),
        0,
        "no failover after an uncertain outcome"
    );
    assert_eq!(payment_pg(&app, id).await.as_deref(), Some("A"));
    // A recovery round (run through the admin API) finds the transaction at A, by the order:
    // its key was never learned.
    app.reconcile().await;
    let history = app.history(payment_id).await;
    assert!(
        history
            .iter()
            .any(|(from, to, source)| from.as_deref() == Some("UNKNOWN")
                && to == "PENDING"
                && source == "admin"),
        "{history:?}"
    );
    app.wait_for_order_status(1, id, "PAID").await;
    assert_eq!(app.pg.stats().payment_requests, 1);
    assert!(app.pg.stats().queries() >= 1);
    assert_eq!(b.stats().requests(), 0);
}

#[tokio::test]
async fn while_a_breaker_is_open_orders_go_straight_to_b_and_a_sees_no_traffic() {
    let (app, b) = spawn_with_b(None).await;
    let response = app
        .admin(app.client.put(format!(
            "{}/api/v1/admin/circuit-breakers/pg-charge",
            app.address
        )))
        .json(&json!({"state": "FORCED_OPEN"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for _ in 0..3 {
        let (status, order) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
        assert!(status.is_success(), "{status} {order}");
        let id = order["orderId"].as_i64().unwrap();
        assert_eq!(payment_pg(&app, id).await.as_deref(), Some("B"));
    }

    assert_eq!(app.pg.stats().requests(), 0, "A's witness: no traffic");
    assert_eq!(b.stats().payment_requests, 3);
}

#[tokio::test]
async fn a_callback_about_a_payment_held_by_b_is_refused_on_a_path_and_an_unknown_pg_path() {
    let (app, b) = spawn_with_b(Some(refusing_url().await)).await;
    let (status, order) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
    assert!(status.is_success(), "{status} {order}");
    let id = order["orderId"].as_i64().unwrap();
    let placed = app.order(1, id).await;
    let key = first_payment(&placed)["transactionKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"transactionKey": key, "orderId": placed["orderRef"],
                      "amount": placed["totalAmount"], "status": "SUCCESS"})
    .to_string();

    // Signed with A's secret, to A's path: the payment is B's, so A has no say.
    let response = app.post_callback(&body, Some(&app.sign(&body))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A PG nobody configured.
    let response = app
        .client
        .post(format!("{}/api/v1/payments/callback/Z", app.address))
        .header("Content-Type", "application/json")
        .header("X-PG-Signature", app.sign(&body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(b.stats().payment_requests, 1);
}

async fn force_breaker(app: &TestApp, name: &str, state: &str) {
    let response = app
        .admin(app.client.put(format!(
            "{}/api/v1/admin/circuit-breakers/{name}",
            app.address
        )))
        .json(&json!({"state": state}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{name} {state}");
}

#[tokio::test]
async fn recovery_holds_back_only_the_payments_whose_pg_refuses_queries() {
    // B settles after 30 s: the payment stays open through both rounds.
    let (app, b) =
        spawn_with_b_settling_after(Some(refusing_url().await), |a| a, Duration::from_secs(30))
            .await;
    let (status, order) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
    assert!(status.is_success(), "{status} {order}");
    let id = order["orderId"].as_i64().unwrap();
    assert_eq!(payment_pg(&app, id).await.as_deref(), Some("B"));

    // The primary's query breaker open: B's payment is still reconciled at B.
    force_breaker(&app, "pg-query", "FORCED_OPEN").await;
    let queries = b.stats().queries();
    let report = app.reconcile().await;
    assert_eq!(report["ran"], true, "{report}");
    assert_eq!(report["heldBack"], 0, "{report}");
    assert!(
        b.stats().queries() > queries,
        "recovery queried B: {report}"
    );

    // B's query breaker open (A's closed): B's payment waits, and B is not asked.
    force_breaker(&app, "pg-query", "CLOSED").await;
    force_breaker(&app, "pg-query-B", "FORCED_OPEN").await;
    let queries = b.stats().queries();
    let report = app.reconcile().await;
    assert_eq!(report["ran"], true, "{report}");
    assert_eq!(report["heldBack"], 1, "{report}");
    assert_eq!(b.stats().queries(), queries, "B was not asked: {report}");

    // Every PG refuses queries: the round is skipped.
    force_breaker(&app, "pg-query", "FORCED_OPEN").await;
    let report = app.reconcile().await;
    assert_eq!(report["ran"], false, "{report}");
}

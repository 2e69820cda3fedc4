//! The PG call log: one row per attempt on the PG, written before and after the call, read
//! per order through the admin API; a refused "before" write means no call.

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{Connection, Executor};

use crate::helpers::{APPROVED_CARD, TestApp, card, order_body, spawn_app};

async fn pg_calls(app: &TestApp, order_id: i64) -> Value {
    let response = app
        .admin(app.client.get(format!(
            "{}/api/v1/admin/orders/{order_id}/pg-calls",
            app.address
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_pg_call_of_an_order_is_logged_with_its_outcome_and_a_masked_card() {
    let app = spawn_app().await;
    let (status, order) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
    assert!(status.is_success(), "{status} {order}");
    let id = order["orderId"].as_i64().unwrap();
    app.reconcile().await;

    let log = pg_calls(&app, id).await;
    let calls = log["calls"].as_array().unwrap();
    assert!(calls.len() >= 2, "{log}");
    let charge = &calls[0];
    assert_eq!(charge["path"], "charge", "{log}");
    assert_eq!(charge["pg"], "A");
    assert_eq!(charge["outcome"], "ACCEPTED");
    assert!(charge["transactionKey"].is_string(), "{log}");
    assert!(charge["idempotencyKey"].is_string(), "{log}");
    assert!(charge["respondedAt"].as_i64() >= charge["requestedAt"].as_i64());
    assert!(
        calls[1..].iter().any(|c| c["path"] == "query"),
        "the recovery round's query is logged: {log}"
    );
    // One charge row per PG attempt: the simulator saw exactly as many.
    let charges = calls.iter().filter(|c| c["path"] == "charge").count();
    assert_eq!(charges as u64, app.pg.stats().payment_requests);
    let text = log.to_string();
    assert!(!text.contains("4000-0000-0000-0001") && !text.contains("4000000000000001"));
    assert!(
        charge["cardNoMasked"].as_str().unwrap().ends_with("0001"),
        "{log}"
    );
}

#[tokio::test]
async fn when_the_database_refuses_the_before_row_nothing_reaches_the_pg() {
    let app = spawn_app().await;
    let mut conn = sqlx::AnyConnection::connect(&app.settings.database.url)
        .await
        .unwrap();
    conn.execute("DROP TABLE pg_calls").await.unwrap();
    conn.close().await.unwrap();
    let stock = app.stock(1).await;

    let (status, body) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        app.pg.stats().payment_requests,
        0,
        "the simulator's witness"
    );
    assert_eq!(app.stock(1).await, stock, "the stock is released");
}

#[tokio::test]
async fn call_log_rows_are_pruned_after_their_retention_age_and_not_before() {
    const DAY_MS: i64 = 86_400_000;
    let app = spawn_app().await;
    let (status, order) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
    assert!(status.is_success(), "{status} {order}");
    let id = order["orderId"].as_i64().unwrap();
    // The callback's re-query is the last call for this order.
    app.wait_for_order_status(1, id, "PAID").await;
    let logged = pg_calls(&app, id).await["calls"].as_array().unwrap().len();
    assert!(logged >= 1);
    let retention = &app.handle.state.retention;
    let now = commerce::persistence::now_ms();

    // The default age is 90 days.
    let early = retention.run_once(now + 89 * DAY_MS).await.unwrap();
    let late = retention.run_once(now + 91 * DAY_MS).await.unwrap();

    assert_eq!(early.pg_calls, 0);
    assert_eq!(late.pg_calls, u64::try_from(logged).unwrap());
    assert!(
        pg_calls(&app, id).await["calls"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_retried_not_reached_charge_writes_one_row_per_attempt_with_its_status_code() {
    // Arrange: the PG answers every charge with its "nothing created" 500, so pg-client
    // retries the charge; each HTTP attempt is one row.
    let app = spawn_app().await;
    app.pg
        .set_fault_rate(pg_simulator::Fault::ErrorBeforeCreate, 1.0)
        .unwrap();

    let (status, body) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let attempts = app.pg.stats().payment_requests;
    assert!(attempts >= 2, "the charge was retried: {attempts}");
    let mut conn = sqlx::AnyConnection::connect(&app.settings.database.url)
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT pg, status_code, outcome, idempotency_key FROM pg_calls \
         WHERE path = 'charge' ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert_eq!(rows.len() as u64, attempts, "one row per HTTP attempt");
    let keys: Vec<String> = rows
        .iter()
        .map(|row| {
            use sqlx::Row;
            assert_eq!(row.get::<String, _>("pg"), "A");
            assert_eq!(row.get::<Option<i64>, _>("status_code"), Some(500));
            assert_eq!(row.get::<String, _>("outcome"), "NOT_REACHED");
            row.get::<String, _>("idempotency_key")
        })
        .collect();
    assert!(
        keys.windows(2).all(|pair| pair[0] == pair[1]),
        "every attempt carries the charge's key: {keys:?}"
    );
}

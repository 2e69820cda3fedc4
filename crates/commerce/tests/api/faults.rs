//! Game-day fault injection on the PG paths: off by default, on through configuration or the
//! admin API, and an injected charge error handled as a PG outage is.

use commerce::persistence;
use reqwest::StatusCode;
use seawall::fault::FaultConfig;
use serde_json::{Value, json};

use crate::helpers::{APPROVED_CARD, TestApp, card, order_body, spawn_app, spawn_app_with};

async fn faults(app: &TestApp) -> Value {
    app.admin(
        app.client
            .get(format!("{}/api/v1/admin/faults", app.address)),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

async fn put_fault(app: &TestApp, name: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .admin(
            app.client
                .put(format!("{}/api/v1/admin/faults/{name}", app.address))
                .json(body),
        )
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn by_default_nothing_is_injected_and_card_orders_reach_the_pg() {
    let app = spawn_app().await;
    let (status, body) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(app.pg.stats().payment_requests, 1);
    let listed = faults(&app).await;
    let charge = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "pg-charge")
        .unwrap();
    assert_eq!(charge["config"]["enabled"], false, "{listed}");
    assert_eq!(charge["injected"]["error"], 0);
}

#[tokio::test]
async fn with_charge_errors_injected_card_orders_fail_as_in_an_outage_with_no_order_lost_and_no_charge()
 {
    // Arrange: every charge fails on purpose.
    let app = spawn_app_with(
        |sim| sim,
        |s| s.gateway.fault.charge = FaultConfig::new().enabled(true).error(1.0),
    )
    .await;
    let stock = app.stock(1).await;

    // Act
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, body) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
        // Assert: refused as when the PG is down: 503, try again later.
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "PAYMENT_TEMPORARILY_UNAVAILABLE");
        ids.push(body.clone());
    }

    // Assert: every order is recorded as FAILED (none lost), the stock is back, and the PG
    // never saw a charge.
    let orders = persistence::all_orders(&mut app.handle.state.db.reader().await.unwrap())
        .await
        .unwrap();
    assert_eq!(orders.len(), 3, "{ids:?}");
    assert!(orders.iter().all(|o| o.status.as_str() == "FAILED"));
    assert_eq!(
        app.stock(1).await,
        stock,
        "every failed order gave its stock back"
    );
    assert_eq!(
        app.pg.stats().payment_requests,
        0,
        "no charge reached the PG"
    );
    let listed = faults(&app).await;
    assert_eq!(listed[0]["name"], "pg-charge", "{listed}");
    assert_eq!(listed[0]["injected"]["error"], 3, "{listed}");
}

#[tokio::test]
async fn the_admin_api_switches_injection_on_and_off_for_the_next_order() {
    let app = spawn_app().await;
    let (status, body) = put_fault(
        &app,
        "pg-charge",
        &json!({"enabled": true, "errorInjectionRate": 1.0}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["config"]["enabled"], true);
    let (status, _) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    let (status, _) = put_fault(&app, "pg-charge", &json!({"enabled": false})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(app.pg.stats().payment_requests, 1);

    let (status, body) = put_fault(&app, "pg-charge", &json!({"errorInjectionRate": 2})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("errorInjectionRate: must be in [0, 1]"),
        "{body}"
    );
    let (status, _) = put_fault(&app, "nope", &json!({"enabled": true})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

use std::time::Duration;

use pg_simulator::TransactionStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{APPROVED_CARD, card, first_payment, order_body, spawn_app};

/// Places a card order and waits for the PG to finish its transaction; returns
/// (order id, payment id, transaction key, the order view).
async fn settled_card_order(app: &crate::helpers::TestApp, card_no: &str) -> (i64, i64, String) {
    let (status, order) = app.place(1, &order_body(1, 1, card(card_no))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{order}");
    let id = order["orderId"].as_i64().unwrap();
    let payment = first_payment(&order);
    let key = payment["transactionKey"].as_str().unwrap().to_owned();
    app.pg
        .wait_for_terminal(&key, Duration::from_secs(5))
        .await
        .expect("the PG finishes the transaction");
    (id, payment["paymentId"].as_i64().unwrap(), key)
}

#[tokio::test]
async fn duplicate_callbacks_make_exactly_one_transition_and_one_event() {
    // Arrange: …-0012 sends two concurrent copies of the callback.
    let app = spawn_app().await;
    let (id, payment_id, key) = settled_card_order(&app, "4000-0000-0000-0012").await;
    app.wait_for_order_status(1, id, "PAID").await;

    // Act: and the PG sends it three more times.
    for _ in 0..3 {
        let report = app.pg.replay_callback(&key).await.unwrap();
        assert_eq!(report.status, Some(200), "{report:?}");
    }

    // Assert
    let history = app.history(payment_id).await;
    let successes = history.iter().filter(|(_, to, _)| to == "SUCCESS").count();
    assert_eq!(successes, 1, "{history:?}");
    app.relay_outbox().await;
    let paid_events = app
        .events
        .events()
        .iter()
        .filter(|e| e.event_type == "OrderPaid" && e.order_id == id)
        .count();
    assert_eq!(paid_events, 1);
}

#[tokio::test]
async fn a_conflicting_or_stale_callback_never_changes_a_final_payment() {
    let app = spawn_app().await;
    // …-0014: the real SUCCESS callback, then one saying FAILED.
    let (id, payment_id, _) = settled_card_order(&app, "4000-0000-0000-0014").await;
    // …-0015: the real callback, then a stale PENDING one.
    let (id2, payment_id2, _) = settled_card_order(&app, "4000-0000-0000-0015").await;
    app.wait_for_order_status(1, id, "PAID").await;
    app.wait_for_order_status(1, id2, "PAID").await;
    // Let the second callbacks arrive.
    let arrived = crate::helpers::eventually(Duration::from_secs(5), || async {
        (app.pg.stats().callbacks_attempted >= 4).then_some(())
    })
    .await;
    assert!(arrived.is_some(), "{:?}", app.pg.stats());
    for payment in [payment_id, payment_id2] {
        let history = app.history(payment).await;
        let last = history.last().unwrap();
        assert_eq!(last.1, "SUCCESS", "{history:?}");
        assert_eq!(history.iter().filter(|h| h.1 == "SUCCESS").count(), 1);
    }
    assert_eq!(app.order(1, id).await["status"], "PAID");
}

#[tokio::test]
async fn an_older_failed_transaction_reported_late_does_not_unpay_an_order() {
    // Arrange: a paid order.
    let app = spawn_app().await;
    let (id, payment_id, key) = settled_card_order(&app, APPROVED_CARD).await;
    app.wait_for_order_status(1, id, "PAID").await;
    assert_eq!(
        app.pg.transaction(&key).unwrap().status,
        TransactionStatus::Success
    );

    // Act: a correctly signed callback claiming FAILED for the same transaction.
    let body = json!({"transactionKey": key, "orderId": format!("ORD-{id:06}"), "cardType": "SAMSUNG",
                      "cardNo": APPROVED_CARD, "amount": 89_000, "status": "FAILED", "reason": "late"})
    .to_string();
    let response = app.post_callback(&body, Some(&app.sign(&body))).await;

    // Assert: accepted as a duplicate (the PG says SUCCESS), nothing changes.
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["result"], "DUPLICATE");
    assert_eq!(app.order(1, id).await["status"], "PAID");
    assert_eq!(app.history(payment_id).await.len(), 3);
}

#[tokio::test]
async fn forged_callbacks_are_rejected() {
    // Arrange
    let app = spawn_app().await;
    let (id, payment_id, key) = settled_card_order(&app, APPROVED_CARD).await;
    app.wait_for_order_status(1, id, "PAID").await;
    let order_ref = format!("ORD-{id:06}");
    let body = |key: &str, order_ref: &str, amount: i64| {
        json!({"transactionKey": key, "orderId": order_ref, "cardType": "SAMSUNG",
               "cardNo": APPROVED_CARD, "amount": amount, "status": "SUCCESS", "reason": "ok"})
        .to_string()
    };

    // Unsigned, and signed with another secret.
    let genuine = body(&key, &order_ref, 89_000);
    let unsigned = app.post_callback(&genuine, None).await;
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let forged_sig = pg_simulator::signature::sign(&["wrong".to_owned()], 1, genuine.as_bytes());
    let bad = app.post_callback(&genuine, Some(&forged_sig)).await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    // A genuine signature over another body.
    let tampered = body(&key, &order_ref, 1);
    let replayed_sig = app.sign(&genuine);
    let tampered_response = app.post_callback(&tampered, Some(&replayed_sig)).await;
    assert_eq!(tampered_response.status(), StatusCode::UNAUTHORIZED);

    // Signed, but the wrong amount.
    let wrong_amount = body(&key, &order_ref, 1);
    let response = app
        .post_callback(&wrong_amount, Some(&app.sign(&wrong_amount)))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "CALLBACK_MISMATCH");

    // Signed, an unknown key and an unknown order.
    let unknown = body("20991231:TR:abcdef", "ORD-999999", 89_000);
    let response = app.post_callback(&unknown, Some(&app.sign(&unknown))).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "UNKNOWN_TRANSACTION");

    // Signed, an unknown key claiming a real order: the PG does not know it → rejected.
    let invented = body("20991231:TR:abcdef", &order_ref, 89_000);
    let response = app
        .post_callback(&invented, Some(&app.sign(&invented)))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Nothing changed.
    assert_eq!(app.history(payment_id).await.len(), 3);
    assert_eq!(app.handle.state.db.all_payments().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_callback_is_verified_against_the_pg_not_trusted() {
    // Arrange: a stuck transaction (…-0004): PENDING at the PG.
    let app = spawn_app().await;
    let (status, order) = app
        .place(1, &order_body(1, 1, card("4000-0000-0000-0004")))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = order["orderId"].as_i64().unwrap();
    let key = first_payment(&order)["transactionKey"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act: a correctly signed callback claiming SUCCESS.
    let body = json!({"transactionKey": key, "orderId": format!("ORD-{id:06}"), "amount": 89_000,
                      "status": "SUCCESS"})
    .to_string();
    let response = app.post_callback(&body, Some(&app.sign(&body))).await;

    // Assert: the PG says PENDING, so the order stays pending.
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.order(1, id).await["status"], "PAYMENT_PENDING");
}

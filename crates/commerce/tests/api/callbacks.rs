use commerce::persistence;
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

/// A callback body as the PG sends it.
fn callback_body(key: &str, order_ref: &str, amount: i64) -> String {
    json!({"transactionKey": key, "orderId": order_ref, "cardType": "SAMSUNG",
           "cardNo": APPROVED_CARD, "amount": amount, "status": "SUCCESS", "reason": "ok"})
    .to_string()
}

/// The status and body of a response.
async fn answer(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Asserts every answer is the same client error, and returns it.
fn one_answer(answers: &[(&str, (StatusCode, String))]) -> (StatusCode, String) {
    let (_, first) = &answers[0];
    for (case, got) in answers {
        assert_eq!(got, first, "{case} is told apart from {}", answers[0].0);
    }
    assert!(first.0.is_client_error(), "{first:?}");
    first.clone()
}

#[tokio::test]
async fn forged_callbacks_are_rejected_with_one_answer_that_reveals_nothing() {
    // Arrange: two paid orders.
    let app = spawn_app().await;
    let (id, payment_id, key) = settled_card_order(&app, APPROVED_CARD).await;
    let (other_id, _, _) = settled_card_order(&app, APPROVED_CARD).await;
    app.wait_for_order_status(1, id, "PAID").await;
    let order_ref = format!("ORD-{id:06}");
    let other_ref = format!("ORD-{other_id:06}");
    let genuine = callback_body(&key, &order_ref, 89_000);
    let signed = |body: &str| (body.to_owned(), Some(app.sign(body)));

    // Act
    let cases = [
        ("unsigned", (genuine.clone(), None)),
        (
            "signed with another secret",
            (
                genuine.clone(),
                Some(pg_simulator::signature::sign(
                    &["wrong-secret-wrong-secret".to_owned()],
                    1,
                    genuine.as_bytes(),
                )),
            ),
        ),
        (
            "a genuine signature over another body",
            (callback_body(&key, &order_ref, 1), Some(app.sign(&genuine))),
        ),
        (
            "the wrong amount",
            signed(&callback_body(&key, &order_ref, 1)),
        ),
        (
            "an unknown key and order",
            signed(&callback_body("20991231:TR:abcdef", "ORD-999999", 89_000)),
        ),
        (
            "an invented key for a real order",
            signed(&callback_body("20991231:TR:abcdef", &order_ref, 89_000)),
        ),
        (
            "a real key with another order's id",
            signed(&callback_body(&key, &other_ref, 89_000)),
        ),
        ("a body that is not a callback", signed("{}")),
    ];
    let mut answers = Vec::new();
    for (case, (body, signature)) in cases {
        let response = app.post_callback(&body, signature.as_deref()).await;
        answers.push((case, answer(response).await));
    }

    // Assert: one answer for all, naming nothing; nothing changed.
    let (status, body) = one_answer(&answers);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["code"], "CALLBACK_REJECTED", "{status} {body}");
    assert_eq!(app.history(payment_id).await.len(), 3);
    assert_eq!(
        persistence::all_payments(&mut app.handle.state.db.reader().await.unwrap())
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn without_a_secret_forged_callbacks_cannot_enumerate_orders_or_learn_their_totals() {
    // Arrange: callbacks unsigned by choice (re-query only), two paid orders.
    let app = crate::helpers::spawn_app_with(
        |sim| sim,
        |s| {
            s.callback.secret = None;
            s.callback.allow_unsigned = true;
        },
    )
    .await;
    let (id, payment_id, key) = settled_card_order(&app, APPROVED_CARD).await;
    let (other_id, _, _) = settled_card_order(&app, APPROVED_CARD).await;
    app.wait_for_order_status(1, id, "PAID").await;
    let order_ref = format!("ORD-{id:06}");
    let other_ref = format!("ORD-{other_id:06}");
    let invented = "20991231:TR:abcdef";

    // Act: an attacker walks the sequential order refs with guessed amounts.
    let cases = [
        (
            "an unknown order",
            callback_body(invented, "ORD-999999", 89_000),
        ),
        (
            "a real order, a wrong amount",
            callback_body(invented, &order_ref, 1),
        ),
        (
            "a real order, its amount",
            callback_body(invented, &order_ref, 89_000),
        ),
        (
            "a real key, another order's id",
            callback_body(&key, &other_ref, 89_000),
        ),
        (
            "a real key, a wrong amount",
            callback_body(&key, &order_ref, 1),
        ),
    ];
    let mut answers = Vec::new();
    for (case, body) in &cases {
        answers.push((*case, answer(app.post_callback(body, None).await).await));
    }
    let fake_signature = app.post_callback(&cases[2].1, Some("t=1,v1=00")).await;
    answers.push(("a made-up signature", answer(fake_signature).await));

    // Assert
    one_answer(&answers);
    assert_eq!(app.history(payment_id).await.len(), 3);
    // The PG's own callback, unsigned here, is still applied after the re-query.
    let genuine = callback_body(&key, &order_ref, 89_000);
    let response = app.post_callback(&genuine, None).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_flood_of_forged_callbacks_is_rate_limited_before_it_costs_pg_queries() {
    // Arrange: unsigned callbacks (each forged one that names a real order and its amount
    // costs a PG query), at most 5 callbacks a minute; a point order to name.
    let app = crate::helpers::spawn_app_with(
        |sim| sim,
        |s| {
            s.callback.secret = None;
            s.callback.allow_unsigned = true;
            s.callback.rate_limit = 5;
            s.callback.rate_limit_period_ms = 60_000;
        },
    )
    .await;
    let (status, order) = app
        .place(1, &order_body(1, 1, crate::helpers::points()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let order_ref = order["orderRef"].as_str().unwrap().to_owned();
    let queries_before = app.pg.stats().queries();

    // Act
    let mut limited = Vec::new();
    for i in 0..30 {
        let body = callback_body(&format!("20991231:TR:{i:06x}"), &order_ref, 89_000);
        let response = app.post_callback(&body, None).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited.push(response);
        }
    }

    // Assert: 25 answered 429 with a JSON body and a Retry-After; at most 5 PG queries.
    assert_eq!(limited.len(), 25);
    let queries = app.pg.stats().queries() - queries_before;
    assert!(queries <= 5, "{queries} PG queries");
    let response = limited.pop().unwrap();
    let retry_after: u64 = response.headers()["Retry-After"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "RATE_LIMITED");
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

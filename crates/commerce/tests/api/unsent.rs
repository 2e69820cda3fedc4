//! A card payment the service accepted but never sent (its instance died between the commit
//! and the PG call) is sent by recovery with its original idempotency key, never failed as
//! "not found at the PG"; and a charge is sent by one path only.

use std::time::Duration;

use commerce::domain::{Money, OrderStatus, PaymentMethod, PaymentStatus, ProductId, UserId};
use commerce::persistence;
use commerce::persistence::{self as db, Claim, NewPayment, OrderItem, now_ms};
use pg_client::model::CardNumber;
use reqwest::StatusCode;

use crate::helpers::{APPROVED_CARD, TestApp, card, eventually, order_body, spawn_app_with};

/// What `place` commits before calling the PG, committed here with no PG call after it: the
/// state a crash right after the commit leaves. Returns the order id.
async fn commit_an_order_and_crash_before_the_charge(app: &TestApp) -> i64 {
    let user = UserId::new(1);
    let payments = &app.handle.state.payments;
    let now = now_ms();
    let price = 89_000;
    let mut tx = app.handle.state.db.begin().await.unwrap();
    assert!(db::take_stock(&mut tx, ProductId::new(1), 1).await.unwrap());
    let order_id = db::insert_order_row(
        &mut tx,
        user,
        OrderStatus::PaymentPending,
        PaymentMethod::Card,
        Money::new(price),
        now,
    )
    .await
    .unwrap();
    db::set_order_ref(&mut tx, order_id).await.unwrap();
    let order_ref = db::order_ref_of(order_id);
    let item = OrderItem {
        product_id: ProductId::new(1),
        quantity: 1,
        unit_price: price,
    };
    db::insert_order_items(&mut tx, order_id, &[item])
        .await
        .unwrap();
    let payment_id = db::insert_payment(
        &mut tx,
        &NewPayment {
            order_id,
            method: PaymentMethod::Card,
            status: PaymentStatus::Requested,
            amount: Money::new(price),
            card_type: Some("SAMSUNG"),
            card_no_masked: Some("4000-00**-****-0001"),
            idempotency_key: None,
            transaction_key: None,
        },
        now,
    )
    .await
    .unwrap();
    let key = format!("{order_ref}-P{payment_id}");
    db::set_payment_idempotency_key(&mut tx, payment_id, &key)
        .await
        .unwrap();
    let card_no = CardNumber::parse(APPROVED_CARD).unwrap();
    payments
        .keep_card_until_sent(&mut tx, payment_id, &key, &card_no, now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(payments.card_vault().is_some());
    assert!(
        persistence::unsent_card(&mut app.handle.state.db.writer().await.unwrap(), payment_id)
            .await
            .unwrap()
            .is_some(),
        "the card is kept until sent"
    );
    order_id.get()
}

#[tokio::test]
async fn an_order_committed_but_never_sent_is_sent_by_recovery_and_ends_paid_with_one_charge() {
    // Arrange: the "not found" grace (300 ms) is far shorter than the send grace (1 s).
    let app = spawn_app_with(|sim| sim, |s| s.recovery.send_grace_ms = 1_000).await;
    let order_id = commit_an_order_and_crash_before_the_charge(&app).await;

    // Act 1: a round within the send grace leaves it alone (its request might still send it),
    // even once the "not found" grace has passed.
    let early = eventually(Duration::from_secs(5), || async {
        let age = now_ms()
            - persistence::order_with_details(
                &mut app.handle.state.db.reader().await.unwrap(),
                order_id.into(),
            )
            .await
            .ok()??
            .0
            .created_at;
        (age > 400).then_some(())
    })
    .await;
    assert!(early.is_some());
    let report = app.reconcile().await;
    assert_eq!(
        report["changed"],
        0,
        "{report} {}",
        app.order(1, order_id).await
    );
    assert!(app.pg.ledger().is_empty());
    assert_eq!(app.order(1, order_id).await["status"], "PAYMENT_PENDING");

    // Act 2: once the send grace has passed, a round sends it.
    let sent = eventually(Duration::from_secs(5), || async {
        let report = app.reconcile().await;
        (report["changed"] == 1).then_some(report)
    })
    .await
    .expect("recovery sends the charge after the grace");

    // Assert: PAID through the PG's callback, exactly one charge, with the original key.
    assert_eq!(sent["examined"], 1, "{sent}");
    let paid = app.wait_for_order_status(1, order_id, "PAID").await;
    let ledger = app.pg.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    let payment = &paid["payments"][0];
    assert_eq!(payment["status"], "SUCCESS", "{paid}");
    // Later rounds send nothing more.
    app.reconcile().await;
    assert_eq!(app.pg.ledger().len(), 1);
    let history = app.history(payment["paymentId"].as_i64().unwrap()).await;
    // Sent by the round (run through the admin endpoint, so recorded as `admin`).
    assert_eq!(
        history[0],
        (
            Some("REQUESTED".to_owned()),
            "PENDING".to_owned(),
            "admin".to_owned()
        )
    );
}

#[tokio::test]
async fn a_charge_sent_by_its_request_is_never_sent_again_by_recovery() {
    // Arrange: a normal card order, sent by its request.
    let app = spawn_app_with(|sim| sim, |s| s.recovery.send_grace_ms = 0).await;
    let (status, order) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let order_id = order["orderId"].as_i64().unwrap();
    let payment_id = order["payments"][0]["paymentId"].as_i64().unwrap();
    let db = &app.handle.state.db;

    // Assert: the attempt was claimed and the sealed card is gone; a second claim is refused.
    assert_eq!(
        persistence::unsent_card(&mut db.writer().await.unwrap(), payment_id.into())
            .await
            .unwrap(),
        None
    );
    let mut reader = db.reader().await.unwrap();
    let payment = db::payment_by_id(&mut reader, payment_id.into())
        .await
        .unwrap()
        .unwrap();
    drop(reader);
    let key = payment
        .idempotency_key
        .expect("a card payment has a PG key");
    let mut tx = db.begin().await.unwrap();
    let claim = persistence::claim_charge_attempt(&mut tx, &key, now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(claim, Claim::AlreadyAttempted);
    app.reconcile().await;
    app.wait_for_order_status(1, order_id, "PAID").await;
    assert_eq!(app.pg.ledger().len(), 1);
}

#[tokio::test]
async fn a_charge_claimed_by_a_process_that_died_before_sending_is_sent_by_recovery() {
    // Arrange: the state a `kill -9` between the request's claim and its first HTTP attempt
    // leaves (found by the system test `tests/tests/three_instances.rs`): committed, claimed,
    // nothing in the PG call log, nothing at the PG.
    let app = spawn_app_with(|sim| sim, |s| s.recovery.send_grace_ms = 500).await;
    let order_id = commit_an_order_and_crash_before_the_charge(&app).await;
    let db = &app.handle.state.db;
    let (_, _, payments) =
        persistence::order_with_details(&mut db.reader().await.unwrap(), order_id.into())
            .await
            .unwrap()
            .unwrap();
    let key = payments[0].idempotency_key.clone().expect("a PG key");
    let mut tx = db.begin().await.unwrap();
    let claim = persistence::claim_charge_attempt(&mut tx, &key, now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(claim, Claim::Claimed);

    // Act: rounds until one changes it (after the send grace).
    let sent = eventually(Duration::from_secs(5), || async {
        let report = app.reconcile().await;
        (report["changed"] == 1).then_some(report)
    })
    .await
    .expect("recovery settles the payment");

    // Assert: sent with its original key and PAID with exactly one charge, not failed as
    // "not found at the PG"; the kept card is gone.
    let paid = app.wait_for_order_status(1, order_id, "PAID").await;
    let ledger = app.pg.ledger();
    assert_eq!(ledger.len(), 1, "{sent} {ledger:?}");
    assert_eq!(paid["payments"][0]["status"], "SUCCESS", "{paid}");
    assert_eq!(
        persistence::unsent_card(&mut db.writer().await.unwrap(), payments[0].id)
            .await
            .unwrap(),
        None
    );
    app.reconcile().await;
    assert_eq!(app.pg.ledger().len(), 1, "later rounds send nothing more");
}

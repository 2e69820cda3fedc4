use commerce::persistence;
use std::time::Duration;

use pg_simulator::Fault;
use reqwest::StatusCode;

use crate::helpers::{
    APPROVED_CARD, card, first_payment, order_body, pause, spawn_app, spawn_app_with,
};

#[tokio::test]
async fn a_dropped_callback_is_settled_by_the_recovery_job() {
    // Arrange: …-0010: the PG never calls back.
    let app = spawn_app().await;
    let (status, order) = app
        .place(1, &order_body(1, 1, card("4000-0000-0000-0010")))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = order["orderId"].as_i64().unwrap();
    let key = first_payment(&order)["transactionKey"]
        .as_str()
        .unwrap()
        .to_owned();
    app.pg
        .wait_for_terminal(&key, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(app.order(1, id).await["status"], "PAYMENT_PENDING");

    // Act
    let report = app.reconcile().await;

    // Assert
    assert_eq!(report["changed"], 1, "{report}");
    let paid = app.order(1, id).await;
    assert_eq!(paid["status"], "PAID");
    let payment_id = first_payment(&paid)["paymentId"].as_i64().unwrap();
    let last = app.history(payment_id).await.pop().unwrap();
    assert_eq!((last.1.as_str(), last.2.as_str()), ("SUCCESS", "admin"));
}

#[tokio::test]
async fn a_charge_that_times_out_is_reconciled_to_its_order_with_one_charge_at_the_pg() {
    // Arrange: the PG creates the transaction but holds its answer past our timeout, and
    // never calls back: only reconciliation by order id can find it.
    let app = spawn_app_with(|sim| sim.fault_rate(Fault::DropCallback, 1.0), |_| {}).await;
    let stock = app.stock(1).await;

    // Act
    let (status, order) = app
        .place(1, &order_body(1, 1, card("4000-0000-0000-0408")))
        .await;

    // Assert: uncertain → 202 UNKNOWN, stock kept
    assert_eq!(status, StatusCode::ACCEPTED, "{order}");
    let id = order["orderId"].as_i64().unwrap();
    assert_eq!(first_payment(&order)["status"], "UNKNOWN");
    assert!(first_payment(&order)["transactionKey"].is_null());
    assert_eq!(app.stock(1).await, stock - 1);
    let order_ref = format!("ORD-{id:06}");
    let tx = app.pg.ledger().for_order(&order_ref)[0]
        .transaction_key
        .clone();
    app.pg
        .wait_for_terminal(&tx, Duration::from_secs(5))
        .await
        .unwrap();

    app.reconcile().await;

    let paid = app.order(1, id).await;
    assert_eq!(paid["status"], "PAID", "{paid}");
    assert_eq!(first_payment(&paid)["transactionKey"], tx.as_str());
    assert_eq!(paid["payments"].as_array().unwrap().len(), 1);
    let ledger = app.pg.ledger();
    assert_eq!(ledger.count_for_order(&order_ref), 1, "never charged twice");
    assert_eq!(ledger.successes_for_order(&order_ref), 1);
    ledger.assert_no_double_charge();
    assert_eq!(app.stock(1).await, stock - 1);
}

#[tokio::test]
async fn a_payment_the_pg_never_saw_fails_after_the_grace_period_and_releases_stock() {
    // Arrange: a black hole: the call times out (uncertain) and the PG has no transaction.
    let app = spawn_app_with(|sim| sim, |s| s.recovery.not_found_grace_ms = 1_500).await;
    let stock = app.stock(1).await;
    app.pg.set_black_hole(true);
    let (status, order) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(first_payment(&order)["status"], "UNKNOWN");
    let id = order["orderId"].as_i64().unwrap();
    app.pg.set_black_hole(false);

    // Within the grace period "not found" proves nothing.
    let early = app.reconcile().await;
    assert_eq!(early["changed"], 0, "{early}");
    assert_eq!(app.order(1, id).await["status"], "PAYMENT_PENDING");

    // After it, it does.
    pause(1_100).await;
    app.reconcile().await;
    let failed = app.order(1, id).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(app.stock(1).await, stock);
}

#[tokio::test]
async fn a_transaction_stuck_at_the_pg_goes_to_review_after_the_deadline() {
    let app = spawn_app_with(|sim| sim, |s| s.recovery.deadline_ms = 400).await;
    let (_, order) = app
        .place(1, &order_body(1, 1, card("4000-0000-0000-0004")))
        .await;
    let id = order["orderId"].as_i64().unwrap();
    app.reconcile().await;
    assert_eq!(app.order(1, id).await["status"], "PAYMENT_PENDING");
    pause(450).await;
    app.reconcile().await;
    let review = app.order(1, id).await;
    assert_eq!(review["status"], "NEEDS_REVIEW", "{review}");
    assert_eq!(first_payment(&review)["status"], "NEEDS_REVIEW");
}

#[tokio::test]
async fn a_second_successful_charge_for_one_order_is_cancelled_at_the_pg() {
    // Arrange: a paid order, then the PG reports a second successful transaction for it (a
    // client that retried without idempotency would cause this).
    let app = spawn_app().await;
    let (_, order) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
    let id = order["orderId"].as_i64().unwrap();
    app.wait_for_order_status(1, id, "PAID").await;
    let order_ref = format!("ORD-{id:06}");
    let extra = app
        .client
        .post(format!("{}/api/v1/payments", app.pg.base_url()))
        .header("X-USER-ID", "1")
        .json(&serde_json::json!({"orderId": order_ref, "cardType": "SAMSUNG", "cardNo": APPROVED_CARD,
               "amount": 89_000, "callbackUrl": format!("{}/api/v1/payments/callback", app.address)}))
        .send()
        .await
        .unwrap();
    assert_eq!(extra.status(), StatusCode::OK);

    // Act: its callback arrives (and recovery would find it too).
    let settled = crate::helpers::eventually(Duration::from_secs(5), || async {
        let order = app.order(1, id).await;
        let payments = order["payments"].as_array().unwrap().clone();
        (payments.len() == 2 && payments[1]["status"] == "CANCELED").then_some(order)
    })
    .await;

    // Assert
    let order = settled.expect("the extra charge is recorded and cancelled");
    assert_eq!(order["status"], "PAID");
    let ledger = app.pg.ledger();
    assert_eq!(ledger.successes_for_order(&order_ref), 1);
    ledger.assert_no_double_charge();
    app.relay_outbox().await;
    assert!(
        app.events
            .events()
            .iter()
            .any(|e| e.event_type == "DoubleChargeDetected")
    );
}

#[tokio::test]
async fn an_order_accepted_before_a_restart_is_settled_after_it() {
    // Arrange: a slow PG (1 s processing) so the order is still pending when we stop.
    let app = spawn_app_with(
        |sim| sim.processing_delay(Duration::from_millis(800)..=Duration::from_millis(800)),
        |_| {},
    )
    .await;
    let (status, order) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = order["orderId"].as_i64().unwrap();
    let key = first_payment(&order)["transactionKey"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act: stop the service; the PG finishes and its callback finds nobody.
    let app = {
        let mut app = app;
        app.stop().await;
        app.pg
            .wait_for_terminal(&key, Duration::from_secs(5))
            .await
            .unwrap();
        app.restart().await
    };

    // Assert: the restarted service (new port, same database) settles it.
    assert_eq!(app.order(1, id).await["status"], "PAYMENT_PENDING");
    app.reconcile().await;
    assert_eq!(app.order(1, id).await["status"], "PAID");
}

#[tokio::test]
async fn the_recovery_job_runs_by_itself_on_its_interval() {
    let app = spawn_app_with(
        |sim| sim,
        |s| {
            s.recovery.enabled = true;
            s.recovery.interval_ms = 100;
        },
    )
    .await;
    let (_, order) = app
        .place(1, &order_body(1, 1, card("4000-0000-0000-0010")))
        .await;
    let id = order["orderId"].as_i64().unwrap();
    let paid = app.wait_for_order_status(1, id, "PAID").await;
    let payment_id = first_payment(&paid)["paymentId"].as_i64().unwrap();
    let last = app.history(payment_id).await.pop().unwrap();
    assert_eq!(last.2, "recovery");
}

#[tokio::test]
async fn only_one_instance_runs_a_recovery_round_at_a_time() {
    let app = spawn_app().await;
    let db = &app.handle.state.db;
    let now = commerce::persistence::now_ms();
    let lease = persistence::try_acquire_lease(
        &mut db.writer().await.unwrap(),
        "recovery",
        "other-instance",
        now,
        Duration::from_secs(60),
    )
    .await
    .unwrap()
    .expect("a free lease is taken");
    let report = app.reconcile().await;
    assert_eq!(report["ran"], false);
    assert!(report["skipped"].as_str().unwrap().contains("lease"));
    assert!(
        persistence::release_lease(&mut db.writer().await.unwrap(), &lease)
            .await
            .unwrap()
    );
    assert_eq!(app.reconcile().await["ran"], true);
}

#[tokio::test]
async fn a_graceful_shutdown_lets_an_in_flight_order_finish() {
    // Arrange: every charge takes 300 ms at the PG.
    let mut app = spawn_app_with(
        |sim| {
            sim.latency(pg_simulator::Latency::Fixed {
                value: Duration::from_millis(300),
            })
        },
        |_| {},
    )
    .await;
    let body = order_body(1, 1, card(APPROVED_CARD));
    let request = app.post_order(1, &body, None);
    let stop_soon = async {
        pause(100).await; // the order is in flight, waiting on the PG
        app.handle.shutdown();
    };

    // Act
    let (response, ()) = tokio::join!(request, stop_soon);

    // Assert: it was answered in full before the server stopped, and the server stops cleanly.
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let order: serde_json::Value = response.json().await.unwrap();
    assert_eq!(first_payment(&order)["status"], "PENDING");
    app.stop().await;
    assert_eq!(app.pg.ledger().len(), 1);
}

#[tokio::test]
async fn a_restarted_instance_reclaims_its_own_recovery_lease_at_once() {
    // Arrange: a payment whose callback never comes, and an instance that crashed in the
    // middle of a recovery round, leaving its lease held for a minute.
    let app = spawn_app().await;
    let (status, order) = app
        .place(1, &order_body(1, 1, card("4000-0000-0000-0010")))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = order["orderId"].as_i64().unwrap();
    let key = first_payment(&order)["transactionKey"]
        .as_str()
        .unwrap()
        .to_owned();
    app.pg
        .wait_for_terminal(&key, Duration::from_secs(5))
        .await
        .unwrap();
    let owner = app.handle.state.recovery.owner().to_owned();
    let held = persistence::try_acquire_lease(
        &mut app.handle.state.db.writer().await.unwrap(),
        "recovery",
        &owner,
        commerce::persistence::now_ms(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(held.is_some());

    // Act: the instance comes back (on another port, in another process run).
    let app = app.restart().await;
    let report = app.reconcile().await;

    // Assert: same instance, same lease: the round runs now, not a minute later.
    assert_eq!(report["ran"], true, "{report}");
    assert_eq!(app.handle.state.recovery.owner(), owner);
    assert_eq!(app.order(1, id).await["status"], "PAID");
}

#[tokio::test]
async fn the_recovery_lease_is_held_under_the_configured_instance_id() {
    let app = spawn_app_with(
        |sim| sim,
        |s| {
            s.application.instance_id = Some("orders-eu-1".to_owned());
        },
    )
    .await;
    assert_eq!(app.handle.state.recovery.owner(), "orders-eu-1");
    let db = &app.handle.state.db;
    let now = commerce::persistence::now_ms();
    // A round takes it under that name, and gives it back when it ends.
    assert_eq!(app.reconcile().await["ran"], true);
    let rounds = persistence::recovery_rounds(&mut db.reader().await.unwrap())
        .await
        .unwrap();
    assert_eq!(rounds.len(), 1);
    assert_eq!(rounds[0].instance_id, "orders-eu-1");
    assert_eq!(rounds[0].outcome.as_deref(), Some("done"));
    assert!(
        persistence::try_acquire_lease(
            &mut db.writer().await.unwrap(),
            "recovery",
            "orders-eu-2",
            now,
            Duration::from_secs(60)
        )
        .await
        .unwrap()
        .is_some()
    );
}

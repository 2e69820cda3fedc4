//! Opt-in extensions: idempotency keys, cancel, one transaction per order.

use std::time::Duration;

use pg_simulator::{Fault, Latency, Outcome, model::messages};
use serde_json::json;

use crate::helpers::{
    CANON_CALLBACK, CARD, GENEROUS, Receiver, body, fail_envelope, instant, spawn,
};

#[tokio::test]
async fn the_same_key_and_body_replays_the_original_answer_without_a_new_charge() {
    let pg = spawn(instant().idempotency(true)).await;
    let b = body("000123", CARD, CANON_CALLBACK);
    let first = pg.pay(&b, &[("Idempotency-Key", "k-1")]).await;
    let again = pg.pay(&b, &[("Idempotency-Key", "k-1")]).await;
    assert_eq!(first.status, 200);
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(pg.handle.ledger().count_for_order("000123"), 1);
    // Another user may use the same key independently.
    let other = pg
        .post_raw(
            Some("other-user"),
            b.to_string(),
            &[("Idempotency-Key", "k-1")],
        )
        .await
        .unwrap();
    assert_ne!(other.key(), first.key());
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let pg = spawn(instant().idempotency(true)).await;
    pg.pay_ok(
        &body("000123", CARD, CANON_CALLBACK),
        &[("Idempotency-Key", "k-1")],
    )
    .await;
    let mut changed = body("000123", CARD, CANON_CALLBACK);
    changed["amount"] = json!(6000);
    let a = pg.pay(&changed, &[("Idempotency-Key", "k-1")]).await;
    assert_eq!(a.status, 422);
    assert_eq!(
        a.json(),
        fail_envelope("IDEMPOTENCY_KEY_REUSED", messages::IDEMPOTENCY_KEY_REUSED)
    );
}

#[tokio::test]
async fn a_concurrent_duplicate_in_flight_is_409() {
    let pg = spawn(instant().idempotency(true)).await;
    let b = body("000123", CARD, CANON_CALLBACK);
    let first = {
        let b = b.clone();
        let client = pg.client.clone();
        let url = pg.url("/api/v1/payments");
        tokio::spawn(async move {
            client
                .post(url)
                .header("X-USER-ID", crate::helpers::USER)
                .header("Idempotency-Key", "k-1")
                .header("X-Sim-Fault", "slow=800")
                .body(b.to_string())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    // The slow fault is recorded after the key was taken, before the wait.
    assert!(
        pg.handle
            .wait_until(GENEROUS, |h| h.faults_injected(Fault::Slow) == 1)
            .await
    );
    let a = pg.pay(&b, &[("Idempotency-Key", "k-1")]).await;
    assert_eq!(a.status, 409);
    assert_eq!(a.json()["meta"]["errorCode"], "IDEMPOTENCY_KEY_IN_PROGRESS");
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(pg.handle.ledger().count_for_order("000123"), 1);
}

#[tokio::test]
async fn a_failure_before_create_does_not_burn_the_key() {
    let pg = spawn(instant().idempotency(true)).await;
    let b = body("000123", CARD, CANON_CALLBACK);
    let a = pg
        .pay(
            &b,
            &[
                ("Idempotency-Key", "k-1"),
                ("X-Sim-Fault", "error-before-create"),
            ],
        )
        .await;
    assert_eq!(a.status, 500);
    pg.pay_ok(&b, &[("Idempotency-Key", "k-1")]).await;
    assert_eq!(pg.handle.ledger().count_for_order("000123"), 1);
}

#[tokio::test]
async fn a_retry_after_error_after_create_recovers_the_transaction() {
    let pg = spawn(instant().idempotency(true)).await;
    let b = body("000123", CARD, CANON_CALLBACK);
    let a = pg
        .pay(
            &b,
            &[
                ("Idempotency-Key", "k-1"),
                ("X-Sim-Fault", "error-after-create"),
            ],
        )
        .await;
    assert_eq!(a.status, 500);
    let key = pg.pay_ok(&b, &[("Idempotency-Key", "k-1")]).await;
    let ledger = pg.handle.ledger();
    assert_eq!(ledger.count_for_order("000123"), 1);
    assert!(ledger.get(&key).is_some());
}

#[tokio::test]
async fn an_oversized_idempotency_key_is_rejected() {
    let pg = spawn(instant().idempotency(true)).await;
    let long = "k".repeat(301);
    let a = pg
        .pay(
            &body("000123", CARD, CANON_CALLBACK),
            &[("Idempotency-Key", long.as_str())],
        )
        .await;
    assert_eq!(
        a.json(),
        fail_envelope("Bad Request", messages::IDEMPOTENCY_KEY_INVALID)
    );
}

#[tokio::test]
async fn without_the_extension_the_key_is_ignored_like_the_canonical_gateway() {
    let pg = spawn(instant()).await;
    let b = body("000123", CARD, CANON_CALLBACK);
    pg.pay_ok(&b, &[("Idempotency-Key", "k-1")]).await;
    pg.pay_ok(&b, &[("Idempotency-Key", "k-1")]).await;
    assert_eq!(pg.handle.ledger().count_for_order("000123"), 2);
}

#[tokio::test]
async fn cancel_turns_success_into_canceled_once_and_is_idempotent() {
    let receiver = Receiver::start().await;
    let pg = spawn(instant().cancel_endpoint(true)).await;
    let key = pg
        .pay_ok(
            &body("000123", CARD, &receiver.url()),
            &[("X-Sim-Fault", "approve")],
        )
        .await;
    pg.wait_terminal(&key).await;
    receiver.wait_for(1).await;
    let cancel = || {
        pg.client
            .post(pg.url(&format!("/api/v1/payments/{key}/cancel")))
            .header("X-USER-ID", crate::helpers::USER)
            .send()
    };
    let first = cancel().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let first: serde_json::Value = serde_json::from_slice(&first.bytes().await.unwrap()).unwrap();
    assert_eq!(first["data"]["status"], "CANCELED");
    assert_eq!(first["data"]["reason"], messages::REASON_CANCELED);
    let second = cancel().await.unwrap();
    assert_eq!(second.status().as_u16(), 200);
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].json()["status"], "CANCELED");
    assert!(
        !pg.handle
            .wait_until(Duration::from_millis(300), |h| h
                .stats()
                .callbacks_attempted
                > 2)
            .await,
        "the second cancel must not notify again"
    );
}

#[tokio::test]
async fn cancel_of_a_non_successful_transaction_is_409_and_of_another_user_404() {
    let pg = spawn(
        instant()
            .cancel_endpoint(true)
            .processing_latency(Latency::fixed(Duration::from_secs(60))),
    )
    .await;
    let key = pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    let url = pg.url(&format!("/api/v1/payments/{key}/cancel"));
    let r = pg
        .client
        .post(&url)
        .header("X-USER-ID", crate::helpers::USER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    pg.handle.force_complete(&key, Outcome::Success).unwrap();
    let r = pg
        .client
        .post(&url)
        .header("X-USER-ID", "intruder")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn cancel_is_an_unknown_path_unless_enabled() {
    let pg = spawn(instant()).await;
    let key = pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    let r = pg
        .client
        .post(pg.url(&format!("/api/v1/payments/{key}/cancel")))
        .header("X-USER-ID", crate::helpers::USER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn one_tx_per_order_returns_the_existing_transaction() {
    let pg = spawn(instant().one_tx_per_order(true)).await;
    let b = body("000123", CARD, CANON_CALLBACK);
    let first = pg.pay_ok(&b, &[]).await;
    let second = pg.pay_ok(&b, &[]).await;
    assert_eq!(first, second);
    assert_eq!(pg.handle.ledger().count_for_order("000123"), 1);
}

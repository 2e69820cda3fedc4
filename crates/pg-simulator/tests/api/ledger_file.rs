//! The ledger file: a simulator restarted on it knows every transaction it made, finishes the
//! ones it had not processed, and answers their idempotency keys as before.

use std::time::Duration;

use pg_simulator::model::messages;
use pg_simulator::{Latency, Outcome, SimulatorBuilder, SpawnError, TransactionStatus};

use crate::helpers::{CANON_CALLBACK, CARD, GENEROUS, body, instant, spawn};

/// A gateway kept in `file`: idempotency and cancel on, processing 300 ms after creation.
fn on_file(file: &std::path::Path) -> SimulatorBuilder {
    instant()
        .idempotency(true)
        .cancel_endpoint(true)
        .processing_latency(Latency::fixed(Duration::from_millis(300)))
        .ledger_file(file)
}

#[tokio::test]
async fn a_simulator_restarted_on_its_ledger_file_knows_every_transaction_it_made() {
    // Arrange: a settled charge, a canceled one, one PENDING whose outcome is decided and due
    // in 3 s, one stuck, and one made under an Idempotency-Key. `stuck` keeps processing away
    // from the ones completed by hand.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pg-ledger.jsonl");
    let before =
        spawn(on_file(&file).processing_latency(Latency::fixed(Duration::from_secs(3)))).await;
    let stuck_fault = [("X-Sim-Fault", "stuck")];
    let settled = before
        .pay_ok(&body("order-settled", CARD, CANON_CALLBACK), &stuck_fault)
        .await;
    before
        .handle
        .force_complete(&settled, Outcome::Success)
        .unwrap();
    let canceled = before
        .pay_ok(&body("order-canceled", CARD, CANON_CALLBACK), &stuck_fault)
        .await;
    before
        .handle
        .force_complete(&canceled, Outcome::Success)
        .unwrap();
    let a = before
        .client
        .post(before.url(&format!("/api/v1/payments/{canceled}/cancel")))
        .header("X-USER-ID", crate::helpers::USER)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 200);
    let pending = before
        .pay_ok(
            &body("order-pending", CARD, CANON_CALLBACK),
            &[("X-Sim-Fault", "limit-exceeded")],
        )
        .await;
    let stuck = before
        .pay_ok(&body("order-stuck", CARD, CANON_CALLBACK), &stuck_fault)
        .await;
    let keyed_body = body("order-keyed", CARD, CANON_CALLBACK);
    let keyed = before
        .pay_ok(
            &keyed_body,
            &[("Idempotency-Key", "key-1"), ("X-Sim-Fault", "stuck")],
        )
        .await;
    let ledger_before = before.handle.ledger();
    assert_eq!(
        ledger_before.get(&pending).map(|t| t.status),
        Some(TransactionStatus::Pending),
        "the restart must find it unprocessed"
    );
    // Act: the process goes away (every change was written when it happened), another starts
    // on the same file.
    drop(before);
    let after = spawn(on_file(&file)).await;
    // Assert: the same transactions, in the same order, under the same keys.
    let ledger_after = after.handle.ledger();
    assert_eq!(
        ledger_after
            .transactions()
            .iter()
            .map(|t| (&t.transaction_key, &t.order_id, t.amount))
            .collect::<Vec<_>>(),
        ledger_before
            .transactions()
            .iter()
            .map(|t| (&t.transaction_key, &t.order_id, t.amount))
            .collect::<Vec<_>>()
    );
    let status = |key: &str| after.handle.transaction(key).unwrap().status;
    assert_eq!(status(&settled), TransactionStatus::Success);
    assert_eq!(status(&canceled), TransactionStatus::Canceled);
    // The PENDING one is processed to the outcome decided before the restart.
    let finished = after.wait_terminal(&pending).await;
    assert_eq!(
        (finished.status, finished.reason.as_deref()),
        (
            TransactionStatus::Failed,
            Some(messages::REASON_LIMIT_EXCEEDED)
        )
    );
    // Queries see them, with the full card number as before.
    let detail = after.detail(&settled, &[]).await;
    assert_eq!(detail.json()["data"]["cardNo"], CARD);
    let list = after.by_order("order-stuck", &[]).await;
    assert_eq!(
        list.json()["data"]["transactions"][0]["transactionKey"],
        stuck
    );
    // The key answers with the same transaction, and refuses another request.
    let again = after
        .pay(
            &keyed_body,
            &[("Idempotency-Key", "key-1"), ("X-Sim-Fault", "stuck")],
        )
        .await;
    assert_eq!(again.key(), keyed);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let other = after
        .pay(
            &body("order-other", CARD, CANON_CALLBACK),
            &[("Idempotency-Key", "key-1")],
        )
        .await;
    assert_eq!(other.status, 422);
    // New charges get new keys.
    let fresh = after
        .pay_ok(&body("order-fresh", CARD, CANON_CALLBACK), &[])
        .await;
    assert!(ledger_before.get(&fresh).is_none());
    assert_eq!(after.handle.stats().payments_created, 1);
    assert_eq!(status(&stuck), TransactionStatus::Pending);
}

#[tokio::test]
async fn an_unreadable_ledger_file_stops_the_start_naming_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pg-ledger.jsonl");
    std::fs::write(&file, "not json\n{}\n").unwrap();
    let err = on_file(&file).spawn().await.unwrap_err();
    assert!(
        matches!(&err, SpawnError::Ledger { path, reason }
            if path.ends_with("pg-ledger.jsonl") && reason.starts_with("line 1:")),
        "{err}"
    );
}

#[tokio::test]
async fn the_ledger_file_is_compacted_at_start_to_one_line_per_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pg-ledger.jsonl");
    let pg = spawn(on_file(&file).processing_latency(Latency::none())).await;
    let keys = [
        pg.pay_ok(&body("order-1", CARD, CANON_CALLBACK), &[]).await,
        pg.pay_ok(&body("order-2", CARD, CANON_CALLBACK), &[]).await,
    ];
    for key in &keys {
        pg.wait_terminal(key).await;
    }
    let lines = || std::fs::read_to_string(&file).unwrap().lines().count();
    assert_eq!(lines(), 4, "a line per creation and per completion");
    drop(pg);
    let again = spawn(on_file(&file)).await;
    assert_eq!(lines(), 2);
    assert!(
        again
            .handle
            .wait_until(GENEROUS, |h| h.ledger().len() == 2)
            .await
    );
}

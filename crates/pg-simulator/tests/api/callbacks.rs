//! Callback behaviour: signatures, retries, timeouts and the callback faults.

use std::time::Duration;

use hmac::{Hmac, Mac};
use pg_simulator::{CallbackRetry, Fault, Outcome, TransactionStatus, model::messages};
use sha2::Sha256;

use crate::helpers::{CARD, Receiver, body, instant, spawn};

/// Independent check of `t=<unix>,v1=<hex>,...`: returns the timestamp and the v1 values.
fn parse_signature(header: &str) -> (i64, Vec<String>) {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.split_once('=').expect("k=v");
        match k {
            "t" => t = Some(v.parse().unwrap()),
            "v1" => v1.push(v.to_owned()),
            other => panic!("unexpected part {other}"),
        }
    }
    (t.expect("t"), v1)
}

fn expected_v1(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[tokio::test]
async fn signed_callbacks_carry_one_v1_per_secret_over_the_raw_body() {
    // Arrange: two secrets, as during a rotation.
    let receiver = Receiver::start().await;
    let pg = spawn(
        instant()
            .callback_secret("whsec_old")
            .callback_secret("whsec_new"),
    )
    .await;
    // Act
    pg.pay_ok(&body("000123", CARD, &receiver.url()), &[]).await;
    let got = receiver.wait_for(1).await;
    // Assert
    let header = got[0].headers["x-pg-signature"].to_str().unwrap();
    let (t, v1) = parse_signature(header);
    assert!((unix_now() - t).abs() <= 5, "timestamp {t} is not now");
    assert_eq!(
        v1,
        vec![
            expected_v1("whsec_old", t, &got[0].body),
            expected_v1("whsec_new", t, &got[0].body)
        ]
    );
    assert_ne!(v1[0], expected_v1("whsec_other", t, &got[0].body));
}

#[tokio::test]
async fn signature_skew_moves_the_timestamp() {
    let receiver = Receiver::start().await;
    let pg = spawn(
        instant()
            .callback_secret("s")
            .fault_params(|f| f.signature_skew_secs = -900),
    )
    .await;
    pg.pay_ok(
        &body("000123", CARD, &receiver.url()),
        &[("X-Sim-Fault", "signature-skew")],
    )
    .await;
    let got = receiver.wait_for(1).await;
    let (t, v1) = parse_signature(got[0].headers["x-pg-signature"].to_str().unwrap());
    assert!((unix_now() - 900 - t).abs() <= 5);
    assert_eq!(
        v1[0],
        expected_v1("s", t, &got[0].body),
        "still correctly signed"
    );
}

#[tokio::test]
async fn fixed_retries_redeliver_until_a_2xx() {
    let receiver = Receiver::scripted(&[500, 503]).await;
    let pg = spawn(instant().callback_retry(CallbackRetry::Fixed {
        retries: 3,
        interval: Duration::from_millis(20),
    }))
    .await;
    pg.pay_ok(&body("000123", CARD, &receiver.url()), &[]).await;
    let got = receiver.wait_for(3).await;
    assert_eq!(got[0].body, got[2].body);
    assert!(
        pg.handle
            .wait_until(Duration::from_secs(2), |h| h.stats().callbacks_delivered
                == 1)
            .await
    );
    let stats = pg.handle.stats();
    assert_eq!((stats.callbacks_attempted, stats.callbacks_failed), (3, 2));
}

#[tokio::test]
async fn the_toss_like_schedule_waits_one_then_four_units() {
    let receiver = Receiver::scripted(&[500, 500]).await;
    let pg = spawn(instant().callback_retry(CallbackRetry::TossLike {
        unit: Duration::from_millis(40),
        retries: 7,
    }))
    .await;
    pg.pay_ok(&body("000123", CARD, &receiver.url()), &[]).await;
    let got = receiver.wait_for(3).await;
    assert!(got[1].at - got[0].at >= Duration::from_millis(40));
    assert!(got[2].at - got[1].at >= Duration::from_millis(160));
}

#[tokio::test]
async fn without_retries_a_failed_callback_is_lost() {
    let receiver = Receiver::scripted(&[500]).await;
    let pg = spawn(instant()).await;
    pg.pay_ok(&body("000123", CARD, &receiver.url()), &[]).await;
    receiver.wait_for(1).await;
    assert!(
        pg.handle
            .wait_until(Duration::from_secs(2), |h| h.stats().callbacks_failed == 1)
            .await
    );
    assert_eq!(pg.handle.stats().callbacks_attempted, 1);
}

#[tokio::test]
async fn a_configured_timeout_gives_up_on_a_hanging_receiver() {
    let receiver = Receiver::scripted(&[0]).await;
    let pg = spawn(instant().callback_timeout(Duration::from_millis(100))).await;
    pg.pay_ok(&body("000123", CARD, &receiver.url()), &[]).await;
    assert!(
        pg.handle
            .wait_until(Duration::from_secs(3), |h| h.stats().callbacks_failed == 1)
            .await
    );
}

#[tokio::test]
async fn a_dropped_callback_is_never_sent() {
    let receiver = Receiver::start().await;
    let pg = spawn(instant()).await;
    let key = pg
        .pay_ok(
            &body("000123", CARD, &receiver.url()),
            &[("X-Sim-Fault", "drop-callback")],
        )
        .await;
    pg.wait_terminal(&key).await;
    // The drop is decided in the same step that completes the transaction.
    assert_eq!(pg.handle.stats().callbacks_attempted, 0);
    assert_eq!(pg.handle.faults_injected(Fault::DropCallback), 1);
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn a_delayed_callback_arrives_after_the_delay() {
    let receiver = Receiver::start().await;
    let pg = spawn(instant()).await;
    let key = pg
        .pay_ok(
            &body("000123", CARD, &receiver.url()),
            &[("X-Sim-Fault", "delay-callback=300")],
        )
        .await;
    let tx = pg.wait_terminal(&key).await;
    receiver.wait_for(1).await;
    let arrived = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(arrived - u128::from(tx.updated_at_unix_ms) >= 300);
}

#[tokio::test]
async fn duplicated_callbacks_are_identical_copies() {
    let receiver = Receiver::start().await;
    let pg = spawn(instant()).await;
    pg.pay_ok(
        &body("000123", CARD, &receiver.url()),
        &[("X-Sim-Fault", "duplicate-callback=3")],
    )
    .await;
    let got = receiver.wait_for(3).await;
    assert!(got.iter().all(|r| r.body == got[0].body));
}

#[tokio::test]
async fn a_conflicting_callback_follows_the_real_one_and_the_ledger_keeps_the_truth() {
    let receiver = Receiver::start().await;
    let pg = spawn(instant()).await;
    let key = pg
        .pay_ok(
            &body("000123", CARD, &receiver.url()),
            &[("X-Sim-Fault", "conflicting-callback,approve")],
        )
        .await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].json()["status"], "SUCCESS");
    assert_eq!(got[1].json()["status"], "FAILED");
    assert_eq!(got[1].json()["reason"], messages::REASON_LIMIT_EXCEEDED);
    assert_eq!(
        pg.handle.transaction(&key).unwrap().status,
        TransactionStatus::Success
    );
}

#[tokio::test]
async fn a_stale_pending_callback_follows_the_real_one() {
    let receiver = Receiver::start().await;
    let pg = spawn(instant()).await;
    pg.pay_ok(
        &body("000123", CARD, &receiver.url()),
        &[("X-Sim-Fault", "pending-callback,invalid-card")],
    )
    .await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].json()["status"], "FAILED");
    assert_eq!(got[1].json()["status"], "PENDING");
    assert!(got[1].json().get("reason").is_none());
}

#[tokio::test]
async fn a_reordered_callback_of_an_older_transaction_arrives_after_a_newer_one() {
    let receiver = Receiver::start().await;
    let pg = spawn(instant().fault_params(|f| f.reorder_hold = Duration::from_secs(10))).await;
    let older = pg
        .pay_ok(
            &body("000123", CARD, &receiver.url()),
            &[("X-Sim-Fault", "reorder-callback,invalid-card")],
        )
        .await;
    pg.wait_terminal(&older).await;
    let newer = pg
        .pay_ok(
            &body("000123", CARD, &receiver.url()),
            &[("X-Sim-Fault", "approve")],
        )
        .await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].json()["transactionKey"], newer);
    assert_eq!(got[1].json()["transactionKey"], older);
    assert_eq!(got[1].json()["status"], "FAILED");
}

#[tokio::test]
async fn masking_hides_the_card_number_in_queries_and_callbacks() {
    let receiver = Receiver::start().await;
    let pg = spawn(instant().mask_pan_in_responses(true)).await;
    let key = pg.pay_ok(&body("000123", CARD, &receiver.url()), &[]).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["cardNo"], "1234-56**-****-3456");
    assert_eq!(
        pg.detail(&key, &[]).await.json()["data"]["cardNo"],
        "1234-56**-****-3456"
    );
}

#[tokio::test]
async fn force_complete_sends_the_callback_and_replay_sends_it_again() {
    let receiver = Receiver::start().await;
    let pg =
        spawn(instant().processing_latency(pg_simulator::Latency::fixed(Duration::from_secs(60))))
            .await;
    let key = pg.pay_ok(&body("000123", CARD, &receiver.url()), &[]).await;
    let tx = pg
        .handle
        .force_complete(&key, Outcome::InvalidCard)
        .unwrap();
    assert_eq!(tx.reason.as_deref(), Some(messages::REASON_INVALID_CARD));
    receiver.wait_for(1).await;
    let report = pg.handle.replay_callback(&key).await.unwrap();
    assert_eq!(report.status, Some(200));
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body);
    assert!(pg.handle.replay_callback("nope").await.is_err());
}

//! Every fault, deterministic: forced per request (header or magic card) and by probability 1
//! (and never at probability 0).

use std::time::Duration;

use pg_simulator::{
    CardType, Fault, FaultConfig, Latency, Outcome, ScriptedKeys, TransactionStatus, Trigger,
    model::messages,
};
use serde_json::json;

use crate::helpers::{
    CANON_CALLBACK, CARD, GENEROUS, Receiver, TestPg, USER, body, fail_envelope, instant, now,
    spawn,
};

const SHORT: Duration = Duration::from_millis(300);

fn small_params(f: &mut FaultConfig) {
    f.slow_latency = Latency::fixed(Duration::from_millis(50));
    f.charge_but_timeout_delay = Duration::from_millis(50);
    f.callback_delay = Duration::from_millis(50);
    f.reorder_hold = Duration::from_millis(50);
    f.query_lag = Duration::from_millis(50);
    f.stale_pending = Duration::from_millis(50);
}

/// POST with a short client timeout; `None` when the connection failed or timed out.
async fn try_pay(
    pg: &TestPg,
    b: &serde_json::Value,
    fault: &str,
) -> Option<crate::helpers::Answer> {
    let mut rb = pg
        .client
        .post(pg.url("/api/v1/payments"))
        .header("X-USER-ID", USER)
        .timeout(Duration::from_secs(2))
        .body(b.to_string());
    if !fault.is_empty() {
        rb = rb.header("X-Sim-Fault", fault);
    }
    let r = rb.send().await.ok()?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.ok()?;
    Some(crate::helpers::Answer {
        status,
        headers,
        body,
    })
}

fn logged(pg: &TestPg, fault: Fault, trigger: Trigger) -> bool {
    pg.handle
        .fault_log()
        .iter()
        .any(|r| r.fault == fault && r.trigger == trigger)
}

/// Faults that a payment request can carry, with what they need to become observable.
const PAYMENT_FAULTS: &[Fault] = &[
    Fault::Reset,
    Fault::BlackHole,
    Fault::Slow,
    Fault::Throttle,
    Fault::Unavailable,
    Fault::Html502,
    Fault::TruncatedJson,
    Fault::MissingData,
    Fault::UnknownStatus,
    Fault::ExtraFields,
    Fault::ErrorBeforeCreate,
    Fault::ErrorAfterCreate,
    Fault::ResetAfterCreate,
    Fault::ChargeButTimeout,
    Fault::Approve,
    Fault::LimitExceeded,
    Fault::InvalidCard,
    Fault::Stuck,
    Fault::DropCallback,
    Fault::DelayCallback,
    Fault::DuplicateCallback,
    Fault::ReorderCallback,
    Fault::ConflictingCallback,
    Fault::PendingCallback,
    Fault::SignatureSkew,
    Fault::QueryLag,
    Fault::StalePending,
];

#[tokio::test]
async fn every_payment_fault_fires_at_probability_one_and_never_at_zero() {
    for fault in PAYMENT_FAULTS.iter().copied() {
        // Arrange
        let receiver = Receiver::start().await;
        let pg = spawn(
            instant()
                .fault_params(small_params)
                .fault_rate(fault, 1.0)
                .callback_secret("k"),
        )
        .await;
        // Act
        let _ = try_pay(&pg, &body("000123", CARD, &receiver.url()), "").await;
        // Assert
        let fired = pg
            .handle
            .wait_until(GENEROUS, |_| logged(&pg, fault, Trigger::Rate))
            .await;
        assert!(fired, "{fault} at probability 1 was not injected");
        pg.handle.shutdown().await;

        let pg = spawn(instant().fault_params(small_params).fault_rate(fault, 0.0)).await;
        for _ in 0..5 {
            let _ = try_pay(&pg, &body("000123", CARD, &receiver.url()), "").await;
        }
        assert!(
            pg.handle.fault_log().is_empty(),
            "{fault} at probability 0 fired"
        );
    }
}

#[tokio::test]
async fn every_magic_card_forces_its_fault() {
    for fault in PAYMENT_FAULTS.iter().copied() {
        let Some(card) = fault.magic_card() else {
            continue;
        };
        let receiver = Receiver::start().await;
        let pg = spawn(instant().fault_params(small_params).magic_cards(true)).await;
        let _ = try_pay(&pg, &body("000123", &card, &receiver.url()), "").await;
        let fired = pg
            .handle
            .wait_until(GENEROUS, |_| logged(&pg, fault, Trigger::MagicCard))
            .await;
        assert!(fired, "magic card {card} did not force {fault}");
    }
}

#[tokio::test]
async fn magic_outcome_cards_decide_the_outcome() {
    let pg = spawn(instant().magic_cards(true)).await;
    for (card, status, reason) in [
        (
            "4000-0000-0000-0001",
            TransactionStatus::Success,
            messages::REASON_SUCCESS,
        ),
        (
            "4000-0000-0000-0002",
            TransactionStatus::Failed,
            messages::REASON_INVALID_CARD,
        ),
        (
            "4000-0000-0000-0003",
            TransactionStatus::Failed,
            messages::REASON_LIMIT_EXCEEDED,
        ),
    ] {
        let key = pg.pay_ok(&body("000123", card, CANON_CALLBACK), &[]).await;
        let tx = pg.wait_terminal(&key).await;
        assert_eq!(
            (tx.status, tx.reason.as_deref()),
            (status, Some(reason)),
            "{card}"
        );
    }
}

#[tokio::test]
async fn error_before_create_is_the_canonical_500_and_creates_nothing() {
    let pg = spawn(instant()).await;
    let a = pg
        .pay(
            &body("000123", CARD, CANON_CALLBACK),
            &[("X-Sim-Fault", "error-before-create")],
        )
        .await;
    assert_eq!(a.status, 500);
    assert_eq!(
        a.json(),
        fail_envelope("Internal Server Error", messages::UNSTABLE)
    );
    assert!(pg.handle.ledger().is_empty());
}

#[tokio::test]
async fn the_canonical_fail_rate_at_one_always_answers_500_before_create() {
    let pg = spawn(instant().request_fail_rate(1.0)).await;
    for _ in 0..3 {
        let a = pg.pay(&body("000123", CARD, CANON_CALLBACK), &[]).await;
        assert_eq!(
            a.json(),
            fail_envelope("Internal Server Error", messages::UNSTABLE)
        );
    }
    assert!(pg.handle.ledger().is_empty());
    assert_eq!(pg.handle.faults_injected(Fault::ErrorBeforeCreate), 3);
    assert!(logged(&pg, Fault::ErrorBeforeCreate, Trigger::FailRate));
    // `none` suppresses it for one request.
    pg.pay_ok(
        &body("000123", CARD, CANON_CALLBACK),
        &[("X-Sim-Fault", "none")],
    )
    .await;
}

#[tokio::test]
async fn error_after_create_answers_500_but_the_transaction_exists() {
    let pg = spawn(instant()).await;
    let a = pg
        .pay(
            &body("000123", CARD, CANON_CALLBACK),
            &[("X-Sim-Fault", "error-after-create")],
        )
        .await;
    assert_eq!(
        a.json(),
        fail_envelope("Internal Server Error", messages::INTERNAL_ERROR)
    );
    assert_eq!(pg.handle.ledger().count_for_order("000123"), 1);
}

#[tokio::test]
async fn charge_but_timeout_creates_the_transaction_then_outlives_the_client() {
    let pg = spawn(instant()).await;
    let result = pg
        .client
        .post(pg.url("/api/v1/payments"))
        .header("X-USER-ID", USER)
        .header("X-Sim-Fault", "charge-but-timeout=3000")
        .timeout(SHORT)
        .body(body("000123", CARD, CANON_CALLBACK).to_string())
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert_eq!(pg.handle.ledger().count_for_order("000123"), 1);
}

#[tokio::test]
async fn charge_but_timeout_answers_normally_after_the_hold() {
    let pg = spawn(instant()).await;
    let started = now();
    let key = pg
        .pay_ok(
            &body("000123", CARD, CANON_CALLBACK),
            &[("X-Sim-Fault", "charge-but-timeout=200")],
        )
        .await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(pg.handle.transaction(&key).is_some());
}

#[tokio::test]
async fn reset_closes_the_connection_without_an_answer_and_creates_nothing() {
    let pg = spawn(instant()).await;
    let err = try_pay(&pg, &body("000123", CARD, CANON_CALLBACK), "reset").await;
    assert!(err.is_none(), "reset must not answer");
    assert!(pg.handle.ledger().is_empty());
    assert!(logged(&pg, Fault::Reset, Trigger::Header));
}

#[tokio::test]
async fn reset_after_create_closes_the_connection_but_the_transaction_exists() {
    let pg = spawn(instant()).await;
    let r = pg
        .client
        .post(pg.url("/api/v1/payments"))
        .header("X-USER-ID", USER)
        .header("X-Sim-Fault", "reset-after-create")
        .timeout(Duration::from_secs(3))
        .body(body("000123", CARD, CANON_CALLBACK).to_string())
        .send()
        .await;
    let err = r.expect_err("no answer");
    assert!(!err.is_timeout(), "closed, not timed out: {err}");
    assert_eq!(pg.handle.ledger().count_for_order("000123"), 1);
}

#[tokio::test]
async fn black_hole_never_answers() {
    let pg = spawn(instant()).await;
    let r = pg
        .client
        .post(pg.url("/api/v1/payments"))
        .header("X-USER-ID", USER)
        .header("X-Sim-Fault", "black-hole")
        .timeout(SHORT)
        .body(body("000123", CARD, CANON_CALLBACK).to_string())
        .send()
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert!(pg.handle.ledger().is_empty());
}

#[tokio::test]
async fn slow_replaces_the_latency_for_one_request_or_a_fraction() {
    let pg = spawn(instant()).await;
    let started = now();
    pg.pay_ok(
        &body("000123", CARD, CANON_CALLBACK),
        &[("X-Sim-Fault", "slow=250")],
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(250));

    let pg = spawn(
        instant()
            .fault_rate(Fault::Slow, 1.0)
            .fault_params(|f| f.slow_latency = Latency::fixed(Duration::from_millis(200))),
    )
    .await;
    let started = now();
    pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn throttle_and_unavailable_carry_retry_after_and_create_nothing() {
    let pg = spawn(instant().fault_params(|f| f.retry_after = Duration::from_secs(2))).await;
    let a = pg
        .pay(
            &body("000123", CARD, CANON_CALLBACK),
            &[("X-Sim-Fault", "throttle")],
        )
        .await;
    assert_eq!(a.status, 429);
    assert_eq!(a.headers["retry-after"], "2");
    assert_eq!(
        a.json(),
        fail_envelope("Too Many Requests", messages::TOO_MANY_REQUESTS)
    );
    let a = pg
        .pay(
            &body("000123", CARD, CANON_CALLBACK),
            &[("X-Sim-Fault", "unavailable=7")],
        )
        .await;
    assert_eq!(a.status, 503);
    assert_eq!(a.headers["retry-after"], "7");
    assert_eq!(
        a.json(),
        fail_envelope("Service Unavailable", messages::UNAVAILABLE)
    );
    assert!(pg.handle.ledger().is_empty());
}

#[tokio::test]
async fn malformed_responses_are_served_as_asked() {
    let pg = spawn(instant()).await;
    let b = body("000123", CARD, CANON_CALLBACK);

    let a = pg.pay(&b, &[("X-Sim-Fault", "html-502")]).await;
    assert_eq!(a.status, 502);
    assert_eq!(a.headers["content-type"], "text/html");
    assert!(String::from_utf8_lossy(&a.body).contains("502 Bad Gateway"));
    assert!(
        pg.handle.ledger().is_empty(),
        "html-502 happens before create"
    );

    let a = pg.pay(&b, &[("X-Sim-Fault", "truncated-json")]).await;
    assert_eq!(a.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&a.body).is_err());

    let a = pg.pay(&b, &[("X-Sim-Fault", "missing-data")]).await;
    assert_eq!(a.json(), json!({ "meta": { "result": "SUCCESS" } }));

    let a = pg.pay(&b, &[("X-Sim-Fault", "unknown-status")]).await;
    assert_eq!(a.json()["data"]["status"], "AUTHORIZED");

    let a = pg.pay(&b, &[("X-Sim-Fault", "extra-fields")]).await;
    assert_eq!(a.json()["data"]["status"], "PENDING");
    assert!(a.json()["meta"]["traceId"].is_string());
    assert!(a.json()["data"]["approvedAt"].is_string());

    // The four 200 variants each created a transaction.
    assert_eq!(pg.handle.ledger().count_for_order("000123"), 4);
}

#[tokio::test]
async fn query_faults_apply_per_request() {
    let pg = spawn(instant()).await;
    let key = pg
        .pay_ok(
            &body("000123", CARD, CANON_CALLBACK),
            &[("X-Sim-Fault", "approve")],
        )
        .await;
    pg.wait_terminal(&key).await;

    let a = pg.detail(&key, &[("X-Sim-Fault", "query-error")]).await;
    assert_eq!(
        a.json(),
        fail_envelope("Internal Server Error", messages::INTERNAL_ERROR)
    );
    let a = pg.detail(&key, &[("X-Sim-Fault", "query-lag")]).await;
    assert_eq!(a.status, 404);
    let a = pg.by_order("000123", &[("X-Sim-Fault", "query-lag")]).await;
    assert_eq!(a.status, 404);
    let a = pg.detail(&key, &[("X-Sim-Fault", "stale-pending")]).await;
    assert_eq!(a.json()["data"]["status"], "PENDING");
    assert!(a.json()["data"].get("reason").is_none());
    let a = pg
        .by_order("000123", &[("X-Sim-Fault", "unknown-status")])
        .await;
    assert_eq!(a.json()["data"]["transactions"][0]["status"], "AUTHORIZED");
    let a = pg.detail(&key, &[("X-Sim-Fault", "throttle")]).await;
    assert_eq!(a.status, 429);
    let a = pg.detail(&key, &[]).await;
    assert_eq!(a.json()["data"]["status"], "SUCCESS");
}

#[tokio::test]
async fn query_fault_rates_at_one_fail_every_query() {
    let pg = spawn(instant().query_fault_rate(Fault::QueryError, 1.0)).await;
    let key = pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    assert_eq!(pg.detail(&key, &[]).await.status, 500);
    assert_eq!(pg.by_order("000123", &[]).await.status, 500);
    assert!(logged(&pg, Fault::QueryError, Trigger::Rate));
}

#[tokio::test]
async fn query_lag_hides_a_new_transaction_for_a_while() {
    let pg = spawn(instant()).await;
    let key = pg
        .pay_ok(
            &body("000123", CARD, CANON_CALLBACK),
            &[("X-Sim-Fault", "query-lag=400")],
        )
        .await;
    assert_eq!(pg.detail(&key, &[]).await.status, 404);
    assert_eq!(pg.by_order("000123", &[]).await.status, 404);
    let deadline = now() + GENEROUS;
    loop {
        if pg.detail(&key, &[]).await.status == 200 {
            break;
        }
        assert!(now() < deadline, "never became visible");
        tokio::task::yield_now().await;
    }
    assert_eq!(pg.by_order("000123", &[]).await.status, 200);
}

#[tokio::test]
async fn stale_pending_reports_pending_after_completion_for_a_while() {
    let pg = spawn(instant()).await;
    let key = pg
        .pay_ok(
            &body("000123", CARD, CANON_CALLBACK),
            &[("X-Sim-Fault", "stale-pending=60000,approve")],
        )
        .await;
    let tx = pg.wait_terminal(&key).await;
    assert_eq!(tx.status, TransactionStatus::Success);
    assert_eq!(
        pg.detail(&key, &[]).await.json()["data"]["status"],
        "PENDING"
    );
    assert_eq!(
        pg.by_order("000123", &[]).await.json()["data"]["transactions"][0]["status"],
        "PENDING"
    );
}

#[tokio::test]
async fn a_stuck_transaction_stays_pending_until_forced() {
    let receiver = Receiver::start().await;
    let pg = spawn(instant()).await;
    let stuck = pg
        .pay_ok(
            &body("000123", CARD, &receiver.url()),
            &[("X-Sim-Fault", "stuck")],
        )
        .await;
    let normal = pg.pay_ok(&body("000456", CARD, &receiver.url()), &[]).await;
    pg.wait_terminal(&normal).await;
    receiver.wait_for(1).await;
    assert_eq!(
        pg.handle.transaction(&stuck).unwrap().status,
        TransactionStatus::Pending
    );
    pg.handle.force_complete(&stuck, Outcome::Success).unwrap();
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].json()["transactionKey"], stuck);
}

#[tokio::test]
async fn a_small_concurrency_builds_a_backlog() {
    let pg = spawn(
        instant()
            .processing_concurrency(1)
            .processing_latency(Latency::fixed(Duration::from_millis(150))),
    )
    .await;
    let mut keys = Vec::new();
    for i in 0..3 {
        let b = body(&format!("order-{i}"), CARD, CANON_CALLBACK);
        keys.push(pg.pay_ok(&b, &[("X-Sim-Fault", "drop-callback")]).await);
    }
    let last = pg.wait_terminal(&keys[2]).await;
    let waited = last.updated_at_unix_ms - last.created_at_unix_ms;
    assert!(waited >= 400, "the third waited only {waited} ms");
}

#[tokio::test]
async fn a_card_type_outage_fails_only_that_card_type() {
    let pg = spawn(instant().card_outage(CardType::Samsung, 1.0)).await;
    let a = pg.pay(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    assert_eq!(
        a.json(),
        fail_envelope("Internal Server Error", messages::UNSTABLE)
    );
    let mut kb = body("000123", CARD, CANON_CALLBACK);
    kb["cardType"] = json!("KB");
    pg.pay_ok(&kb, &[]).await;
    assert_eq!(pg.handle.faults_injected(Fault::CardOutage), 1);
}

#[tokio::test]
async fn a_forced_key_collision_regenerates_and_never_overwrites() {
    // Through the header: the first candidate is the newest existing key.
    let pg = spawn(instant().processing_latency(Latency::fixed(Duration::from_secs(60)))).await;
    let first = pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    let second = pg
        .pay_ok(
            &body("000456", CARD, CANON_CALLBACK),
            &[("X-Sim-Fault", "key-collision")],
        )
        .await;
    assert_ne!(first, second);
    assert_eq!(pg.handle.transaction(&first).unwrap().order_id, "000123");
    assert_eq!(pg.handle.faults_injected(Fault::KeyCollision), 1);

    // Through an injected generator that repeats itself.
    let pg = spawn(instant().key_generator(ScriptedKeys::new([
        "20250816:TR:aaaaaa",
        "20250816:TR:aaaaaa",
        "20250816:TR:bbbbbb",
    ])))
    .await;
    let a = pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    let b = pg.pay_ok(&body("000456", CARD, CANON_CALLBACK), &[]).await;
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("20250816:TR:aaaaaa", "20250816:TR:bbbbbb")
    );
    assert_eq!(pg.handle.transaction(&a).unwrap().order_id, "000123");
    assert_eq!(pg.handle.ledger().len(), 2);
}

#[tokio::test]
async fn an_unknown_fault_name_is_a_400() {
    let pg = spawn(instant()).await;
    let a = pg
        .pay(
            &body("000123", CARD, CANON_CALLBACK),
            &[("X-Sim-Fault", "meteor")],
        )
        .await;
    assert_eq!(
        a.json(),
        fail_envelope("Bad Request", &messages::unknown_fault("meteor"))
    );
}

#[tokio::test]
async fn header_triggers_can_be_switched_off() {
    let pg = spawn(instant().header_triggers(false).magic_cards(false)).await;
    pg.pay_ok(
        &body("000123", "4000-0000-0000-0500", CANON_CALLBACK),
        &[("X-Sim-Fault", "error-before-create")],
    )
    .await;
    assert!(pg.handle.fault_log().is_empty());
}

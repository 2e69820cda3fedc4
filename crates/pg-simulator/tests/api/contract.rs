//! The canonical contract: endpoints, envelope, validation order and messages, scoping.

use std::time::Duration;

use pg_simulator::{Latency, Outcome, Simulator, TransactionStatus, model::messages};
use serde_json::json;

use crate::helpers::{
    CANON_CALLBACK, CARD, Receiver, USER, body, fail_envelope, instant, now, spawn,
};

fn is_canonical_key(key: &str) -> bool {
    let b = key.as_bytes();
    key.len() == 18
        && b[..8].iter().all(u8::is_ascii_digit)
        && &key[8..12] == ":TR:"
        && key[12..]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

#[tokio::test]
async fn an_accepted_payment_is_pending_under_a_canonical_key_with_no_reason() {
    // Arrange
    let pg = spawn(instant().processing_latency(Latency::fixed(Duration::from_secs(60)))).await;
    // Act
    let a = pg.pay(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    // Assert
    assert_eq!(a.status, 200);
    let key = a.key();
    assert!(is_canonical_key(&key), "{key}");
    let today = pg_simulator::local_date(
        u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
        540,
    );
    assert!(key.starts_with(&today), "{key} not dated {today} (KST)");
    assert_eq!(
        a.json(),
        json!({ "meta": { "result": "SUCCESS" }, "data": { "transactionKey": key, "status": "PENDING" } })
    );
    assert_eq!(a.headers["content-type"], "application/json");
    assert_eq!(pg.handle.stats().payments_created, 1);
}

#[tokio::test]
async fn missing_user_header_is_rejected_before_the_body_is_parsed() {
    let pg = spawn(instant()).await;
    let a = pg.post_raw(None, "this is not json", &[]).await.unwrap();
    assert_eq!(a.status, 400);
    assert_eq!(
        a.json(),
        fail_envelope("Bad Request", messages::USER_HEADER_REQUIRED)
    );
    for path in [
        "/api/v1/payments/20250816:TR:abcdef",
        "/api/v1/payments?orderId=000123",
    ] {
        let a = pg.get(path, None, &[]).await;
        assert_eq!(a.status, 400, "{path}");
        assert_eq!(
            a.json(),
            fail_envelope("Bad Request", messages::USER_HEADER_REQUIRED)
        );
    }
    assert!(pg.handle.ledger().is_empty());
}

#[tokio::test]
async fn every_validation_rule_answers_400_with_its_exact_message_and_creates_nothing() {
    // Long latency proves validation answers before it ("400 immediately").
    let pg = spawn(instant().latency(Latency::fixed(Duration::from_secs(3)))).await;
    let ok = body("000123", CARD, CANON_CALLBACK);
    let with = |field: &str, value: serde_json::Value| {
        let mut b = ok.clone();
        b[field] = value;
        b.to_string()
    };
    let without = |field: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(field);
        b.to_string()
    };
    let cases: Vec<(String, String)> = vec![
        (with("orderId", json!("12345")), messages::INVALID_ORDER_ID.into()),
        (with("orderId", json!("      ")), messages::INVALID_ORDER_ID.into()),
        (
            with("cardType", json!("VISA")),
            "필드 'cardType'의 값 'VISA'이(가) 예상 타입(CardTypeDto)과 일치하지 않습니다. 사용 가능한 값 : [SAMSUNG, KB, HYUNDAI]".into(),
        ),
        (
            with("cardType", json!("samsung")),
            messages::type_mismatch("cardType", "samsung", "CardTypeDto", Some("SAMSUNG, KB, HYUNDAI")),
        ),
        (with("cardNo", json!("1234567890123456")), messages::INVALID_CARD_NO.into()),
        (with("cardNo", json!("1234-5678-9012-345a")), messages::INVALID_CARD_NO.into()),
        (with("amount", json!(0)), messages::INVALID_AMOUNT.into()),
        (with("amount", json!(-5000)), messages::INVALID_AMOUNT.into()),
        (
            with("amount", json!("five")),
            "필드 'amount'의 값 'five'이(가) 예상 타입(long)과 일치하지 않습니다. ".into(),
        ),
        (
            with("callbackUrl", json!("http://example.com:8080/cb")),
            "콜백 URL 은 http://localhost:8080 로 시작해야 합니다.".into(),
        ),
        (without("orderId"), "필수 필드 'orderId'이(가) 누락되었습니다.".into()),
        (without("cardType"), messages::missing_field("cardType")),
        (without("cardNo"), messages::missing_field("cardNo")),
        (without("amount"), messages::missing_field("amount")),
        (without("callbackUrl"), messages::missing_field("callbackUrl")),
        (with("amount", json!(null)), messages::missing_field("amount")),
        ("{\"orderId\":".into(), messages::UNREADABLE_BODY.into()),
        (String::new(), messages::UNREADABLE_BODY.into()),
        // Rules run in order: every field is bad, the orderId message wins.
        (
            json!({"orderId":"1","cardType":"KB","cardNo":"x","amount":-1,"callbackUrl":"ftp://x"})
                .to_string(),
            messages::INVALID_ORDER_ID.into(),
        ),
    ];
    for (request, message) in cases {
        let started = now();
        let a = pg.post_raw(Some(USER), request.clone(), &[]).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "no latency before a 400: {request}"
        );
        assert_eq!(a.status, 400, "{request}");
        assert_eq!(
            a.json(),
            fail_envelope("Bad Request", &message),
            "{request}"
        );
    }
    assert!(pg.handle.ledger().is_empty());
    assert_eq!(pg.handle.stats().payments_created, 0);
}

#[tokio::test]
async fn numeric_string_amounts_and_unknown_fields_are_accepted() {
    let pg = spawn(instant()).await;
    let mut b = body("000123", CARD, CANON_CALLBACK);
    b["amount"] = json!("5000");
    b["idempotencyKey"] = json!("ignored-by-the-canonical-gateway");
    let key = pg.pay_ok(&b, &[]).await;
    assert_eq!(pg.handle.transaction(&key).unwrap().amount, 5000);
}

#[tokio::test]
async fn the_detail_echoes_the_full_card_and_omits_reason_while_pending() {
    let pg = spawn(instant().processing_latency(Latency::fixed(Duration::from_secs(60)))).await;
    let key = pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    let a = pg.detail(&key, &[]).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json(),
        json!({ "meta": { "result": "SUCCESS" }, "data": {
            "transactionKey": key, "orderId": "000123", "cardType": "SAMSUNG",
            "cardNo": CARD, "amount": 5000, "status": "PENDING" } })
    );
    pg.handle
        .force_complete(&key, Outcome::LimitExceeded)
        .unwrap();
    let a = pg.detail(&key, &[]).await;
    assert_eq!(a.json()["data"]["status"], "FAILED");
    assert_eq!(a.json()["data"]["reason"], messages::REASON_LIMIT_EXCEEDED);
}

#[tokio::test]
async fn reads_are_scoped_by_user() {
    let pg = spawn(instant()).await;
    let key = pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    let a = pg
        .get(
            &format!("/api/v1/payments/{key}"),
            Some("someone-else"),
            &[],
        )
        .await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.json(),
        fail_envelope(
            "Not Found",
            &format!("(transactionKey: {key}) 결제건이 존재하지 않습니다.")
        )
    );
    let a = pg
        .get("/api/v1/payments?orderId=000123", Some("someone-else"), &[])
        .await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn an_unknown_key_is_404_with_the_canonical_message() {
    let pg = spawn(instant()).await;
    let a = pg.detail("20250816:TR:000000", &[]).await;
    assert_eq!(
        a.json(),
        fail_envelope(
            "Not Found",
            "(transactionKey: 20250816:TR:000000) 결제건이 존재하지 않습니다."
        )
    );
}

#[tokio::test]
async fn an_order_without_transactions_is_404_not_an_empty_list() {
    let pg = spawn(instant()).await;
    let a = pg.by_order("999999", &[]).await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.json(),
        fail_envelope(
            "Not Found",
            "(orderId: 999999) 에 해당하는 결제건이 존재하지 않습니다."
        )
    );
}

#[tokio::test]
async fn the_order_list_is_the_short_form_newest_first() {
    let pg = spawn(instant().processing_latency(Latency::fixed(Duration::from_secs(60)))).await;
    let first = pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    let second = pg.pay_ok(&body("000123", CARD, CANON_CALLBACK), &[]).await;
    pg.handle.force_complete(&first, Outcome::Success).unwrap();
    let a = pg.by_order("000123", &[]).await;
    assert_eq!(
        a.json(),
        json!({ "meta": { "result": "SUCCESS" }, "data": { "orderId": "000123", "transactions": [
            { "transactionKey": second, "status": "PENDING" },
            { "transactionKey": first, "status": "SUCCESS", "reason": messages::REASON_SUCCESS },
        ] } })
    );
}

#[tokio::test]
async fn a_list_without_order_id_is_the_canonical_generic_500() {
    let pg = spawn(instant()).await;
    let a = pg.get("/api/v1/payments", Some(USER), &[]).await;
    assert_eq!(a.status, 500);
    assert_eq!(
        a.json(),
        fail_envelope("Internal Server Error", messages::INTERNAL_ERROR)
    );
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_the_generic_500() {
    let pg = spawn(instant()).await;
    let a = pg.get("/api/v2/nothing", Some(USER), &[]).await;
    assert_eq!(a.json(), fail_envelope("Not Found", messages::NOT_FOUND));
    let a = pg
        .client
        .delete(pg.url("/api/v1/payments"))
        .header("X-USER-ID", USER)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status().as_u16(), 500);
}

#[tokio::test]
async fn one_raw_unsigned_callback_reports_the_terminal_state() {
    let receiver = Receiver::start().await;
    let pg = spawn(instant()).await;
    let key = pg
        .pay_ok(
            &body("000123", CARD, &receiver.url()),
            &[("X-Sim-Fault", "approve")],
        )
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(
        got[0].json(),
        json!({ "transactionKey": key, "orderId": "000123", "cardType": "SAMSUNG",
                "cardNo": CARD, "amount": 5000, "status": "SUCCESS",
                "reason": messages::REASON_SUCCESS })
    );
    assert_eq!(got[0].headers["content-type"], "application/json");
    assert!(got[0].headers.get("x-pg-signature").is_none());
    // Exactly one: the callback counter settles at one attempt.
    assert!(
        pg.handle
            .wait_until(Duration::from_secs(1), |h| h.stats().callbacks_delivered
                == 1)
            .await
    );
    assert_eq!(pg.handle.stats().callbacks_attempted, 1);
}

#[tokio::test]
async fn terminal_states_are_final() {
    let pg = spawn(instant().processing_latency(Latency::fixed(Duration::from_millis(200)))).await;
    let key = pg
        .pay_ok(
            &body("000123", CARD, CANON_CALLBACK),
            &[("X-Sim-Fault", "approve")],
        )
        .await;
    pg.handle
        .force_complete(&key, Outcome::InvalidCard)
        .unwrap();
    assert!(pg.handle.force_complete(&key, Outcome::Success).is_err());
    // The scheduled processing (approve) finds it terminal and leaves it alone.
    let later = pg.detail(&key, &[]).await;
    assert_eq!(
        later.json()["data"]["reason"],
        messages::REASON_INVALID_CARD
    );
    let settled = pg
        .handle
        .wait_until(Duration::from_millis(600), |h| {
            h.transaction(&key).unwrap().status != TransactionStatus::Failed
        })
        .await;
    assert!(!settled, "a terminal state changed");
}

#[tokio::test]
async fn the_canonical_defaults_wait_100_to_500_ms_and_process_within_1_to_5_s() {
    // Arrange: canonical config; `none` only suppresses the random 40 % failure.
    let receiver = Receiver::start().await;
    let pg = spawn(Simulator::builder().seed(42).allow_any_loopback_callback()).await;
    // Act
    let started = now();
    let key = pg
        .pay_ok(
            &body("000123", CARD, &receiver.url()),
            &[("X-Sim-Fault", "none")],
        )
        .await;
    let latency = started.elapsed();
    let tx = pg
        .handle
        .wait_for_terminal(&key, Duration::from_secs(8))
        .await
        .expect("processed");
    // Assert
    assert!(latency >= Duration::from_millis(100), "{latency:?}");
    assert!(latency < Duration::from_millis(1_500), "{latency:?}");
    let processing = tx.updated_at_unix_ms - tx.created_at_unix_ms;
    assert!((1_000..=5_300).contains(&processing), "{processing} ms");
    assert_eq!(receiver.wait_for(1).await.len(), 1);
}

#[tokio::test]
async fn a_client_timeout_does_not_stop_the_creation() {
    // The canonical emergent "charged but timed out": the server keeps going.
    let pg = spawn(instant().latency(Latency::fixed(Duration::from_millis(300)))).await;
    let result = pg
        .client
        .post(pg.url("/api/v1/payments"))
        .header("X-USER-ID", USER)
        .timeout(Duration::from_millis(50))
        .body(body("000123", CARD, CANON_CALLBACK).to_string())
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert!(
        pg.handle
            .wait_until(Duration::from_secs(3), |h| h
                .ledger()
                .count_for_order("000123")
                == 1)
            .await
    );
}

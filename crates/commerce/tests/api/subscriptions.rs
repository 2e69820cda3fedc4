//! Subscriptions and dunning on a virtual billing clock: rounds are run by the test
//! (`subscriptions.enabled` off), the clock moved by days between them, and the simulator's
//! ledger is the witness of what was charged.

use std::collections::BTreeMap;
use std::time::Duration;

use commerce::configuration::Settings;
use commerce::persistence;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{APPROVED_CARD, BILLING_EPOCH_MS, TestApp, eventually, spawn_app_with};

const DAY: Duration = Duration::from_secs(86_400);
const DAY_MS: i64 = 86_400_000;
const LIMIT_EXCEEDED_CARD: &str = "4000-0000-0000-0003";

fn billing_by_hand(settings: &mut Settings) {
    settings.subscriptions.enabled = false;
    // A refused connection is a system failure at once (the schedule is the retry).
    settings.subscriptions.client.charge.retry.max_attempts = 1;
}

async fn app() -> TestApp {
    spawn_app_with(|sim| sim, billing_by_hand).await
}

async fn subscribe(app: &TestApp, user: i64, card_no: &str) -> Value {
    let response = app
        .client
        .post(format!("{}/api/v1/subscriptions", app.address))
        .header("X-USER-ID", user.to_string())
        .json(&json!({"planId": 1, "cardType": "SAMSUNG", "cardNo": card_no}))
        .send()
        .await
        .expect("the request is sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.expect("a JSON body")
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(
            method,
            format!("{}/api/v1/subscriptions{path}", app.address),
        )
        .header("X-USER-ID", "1");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the request is sent");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

async fn show(app: &TestApp, id: i64) -> Value {
    let (status, body) = call(app, reqwest::Method::GET, &format!("/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn id_of(view: &Value) -> i64 {
    view["subscriptionId"].as_i64().expect("an id")
}

/// Runs rounds until no attempt of `ids` is open (the PG processes a charge in 100 ms).
async fn settle(app: &TestApp, ids: &[i64]) {
    let settled = eventually(Duration::from_secs(10), || async {
        app.handle
            .state
            .subscriptions
            .billing()
            .round()
            .await
            .expect("a round");
        for id in ids {
            let view = show(app, *id).await;
            let open = view["attempts"]
                .as_array()
                .expect("attempts")
                .iter()
                .any(|a| a["status"] == "REQUESTED" || a["status"] == "PENDING");
            if open {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(settled.is_some(), "attempts still open");
}

async fn round(app: &TestApp) -> commerce::subscriptions::billing::RoundReport {
    app.handle
        .state
        .subscriptions
        .billing()
        .round()
        .await
        .expect("a round")
}

fn attempts(view: &Value) -> Vec<Value> {
    view["attempts"].as_array().expect("attempts").clone()
}

#[tokio::test]
async fn a_system_failure_on_day_0_is_retried_on_days_1_3_7_14_then_the_subscription_is_cancelled()
{
    let app = app().await;
    let id = id_of(&subscribe(&app, 1, APPROVED_CARD).await);
    settle(&app, &[id]).await;
    let view = show(&app, id).await;
    assert_eq!(
        (view["state"].as_str(), view["period"].as_i64()),
        (Some("ACTIVE"), Some(2))
    );
    let day0 = BILLING_EPOCH_MS + 30 * DAY_MS;
    assert_eq!(view["nextAttemptAt"], day0);

    app.pg.go_down().await;
    let mut day = 0;
    for (target, state) in [
        (0, "PAST_DUE"),
        (1, "PAST_DUE"),
        (3, "PAST_DUE"),
        (7, "PAST_DUE"),
        (14, "CANCELLED"),
    ] {
        // The day before a retry is due, a round bills nothing.
        if target > 0 {
            app.billing_clock
                .advance(DAY * u32::try_from(target - 1 - day).unwrap());
            if target - 1 > day {
                assert_eq!(
                    round(&app).await.claimed,
                    0,
                    "nothing due before day {target}"
                );
            }
            app.billing_clock.advance(DAY);
        } else {
            app.billing_clock.advance(DAY * 30);
        }
        day = target;
        let report = round(&app).await;
        assert_eq!(
            (report.claimed, report.system_failures),
            (1, 1),
            "day {target}"
        );
        assert_eq!(show(&app, id).await["state"], state, "after day {target}");
    }
    // Nothing more, ever.
    app.billing_clock.advance(DAY * 60);
    assert_eq!(round(&app).await.claimed, 0);

    let view = show(&app, id).await;
    let period_2: Vec<Value> = attempts(&view)
        .into_iter()
        .filter(|a| a["period"] == 2)
        .collect();
    let days: Vec<i64> = period_2
        .iter()
        .map(|a| (a["createdAt"].as_i64().unwrap() - day0) / DAY_MS)
        .collect();
    assert_eq!(days, [0, 1, 3, 7, 14], "one history row per attempt");
    for (n, attempt) in period_2.iter().enumerate() {
        assert_eq!(attempt["outcome"], "SYSTEM_FAILURE");
        assert_eq!(attempt["attempt"], n + 1);
        assert_eq!(
            attempt["idempotencyKey"],
            format!("SUB-{id:06}-P2-A{}", n + 1)
        );
        assert_eq!(attempt["cardNo"], "4000-00**-****-0001");
    }
    assert_announced_and_counted(&app, id).await;
}

/// The dunning test's outbox events and metrics.
async fn assert_announced_and_counted(app: &TestApp, id: i64) {
    let events = eventually(Duration::from_secs(5), || async {
        let kinds: Vec<String> = app
            .events
            .events()
            .into_iter()
            .filter(|e| e.order_id == id && e.event_type.starts_with("Subscription"))
            .map(|e| e.event_type)
            .collect();
        kinds
            .contains(&"SubscriptionCancelled".to_owned())
            .then_some(kinds)
    })
    .await
    .expect("the cancellation is announced");
    assert_eq!(
        events,
        [
            "SubscriptionRenewed",
            "SubscriptionPastDue",
            "SubscriptionCancelled"
        ]
    );
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "commerce_subscription_billing_attempts_total{result=\"SYSTEM_FAILURE\"}",
        "commerce_subscription_billing_attempts_total{result=\"SUCCESS\"}",
        "commerce_subscriptions{state=\"PAST_DUE\"}",
        "commerce_subscription_cancellations_total{reason=\"dunning_exhausted\"}",
    ] {
        assert!(metrics.contains(series), "{series} missing");
    }
}

#[tokio::test]
async fn a_business_decline_is_never_retried_until_the_card_is_updated() {
    let app = app().await;
    let id = id_of(&subscribe(&app, 1, APPROVED_CARD).await);
    settle(&app, &[id]).await;
    let (status, _) = call(
        &app,
        reqwest::Method::PUT,
        &format!("/{id}/card"),
        Some(json!({"cardType": "SAMSUNG", "cardNo": LIMIT_EXCEEDED_CARD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.billing_clock.advance(DAY * 30);
    settle(&app, &[id]).await;
    let view = show(&app, id).await;
    assert_eq!(view["state"], "PAST_DUE");
    assert_eq!(view["nextAttemptAt"], Value::Null);
    let last = attempts(&view).pop().unwrap();
    assert_eq!(last["outcome"], "BUSINESS_DECLINE");
    assert_eq!(last["cardNo"], "4000-00**-****-0003");

    for days in [1, 2, 4, 7, 30] {
        app.billing_clock.advance(DAY * days);
        assert_eq!(
            round(&app).await.claimed,
            0,
            "no retry after {days} more days"
        );
    }
    assert_eq!(attempts(&show(&app, id).await).len(), 2);
    assert_eq!(app.pg.ledger().count_for_order(&format!("SUB{id:06}P2")), 1);

    let (status, view) = call(
        &app,
        reqwest::Method::PUT,
        &format!("/{id}/card"),
        Some(json!({"cardType": "KB", "cardNo": APPROVED_CARD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    settle(&app, &[id]).await;
    let view = show(&app, id).await;
    assert_eq!(view["state"], "ACTIVE");
    let period_2: Vec<(String, i64)> = attempts(&view)
        .iter()
        .filter(|a| a["period"] == 2)
        .map(|a| {
            (
                a["outcome"].as_str().unwrap().to_owned(),
                a["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        period_2,
        [
            ("BUSINESS_DECLINE".to_owned(), 1),
            ("SUCCESS".to_owned(), 2)
        ]
    );
    // The period that came due meanwhile (day 60) was billed right after: the calendar holds.
    assert_eq!(view["period"], 4);
    assert_eq!(view["billingAt"], BILLING_EPOCH_MS + 90 * DAY_MS);
}

#[tokio::test]
async fn a_crash_during_a_billing_round_charges_no_period_twice() {
    // A restarted instance keeps its public URL, so a re-sent charge is the same request.
    let public = "http://127.0.0.1:9";
    let app = spawn_app_with(
        |sim| sim,
        |settings| {
            billing_by_hand(settings);
            settings.application.public_base_url = Some(public.to_owned());
        },
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(id_of(&subscribe(&app, 1, APPROVED_CARD).await));
    }
    settle(&app, &ids).await;
    app.billing_clock.advance(DAY * 30);
    // The round claims all three and records their attempts; the process sends the first
    // charge and dies before recording the answer, the others are never sent.
    let billing = app.handle.state.subscriptions.billing().clone();
    let mut claimed = Vec::new();
    for id in &ids {
        let due = show(&app, *id).await["nextAttemptAt"].as_i64().unwrap();
        claimed.push(billing.claim(*id, due).await.unwrap().expect("claimed"));
    }
    let sent = &claimed[0];
    let gateway = commerce::gateway::pg::PgGateway::new(
        pg_client::PgClient::builder(pg_client::PgClientConfig {
            base_url: app.pg.base_url(),
            ..pg_client::PgClientConfig::default()
        })
        .build()
        .unwrap(),
    );
    let charged = commerce::gateway::PaymentGateway::charge(
        &gateway,
        commerce::gateway::ChargeRequest {
            user_id: "1".to_owned(),
            order_ref: sent.order_ref.clone(),
            card_type: pg_client::model::CardType::Samsung,
            card_no: pg_client::model::CardNumber::parse(APPROVED_CARD).unwrap(),
            amount: commerce::domain::Money::new(sent.amount),
            callback_url: format!("{public}/api/v1/payments/callback"),
            idempotency_key: sent.idempotency_key.clone(),
        },
    )
    .await;
    assert!(charged.is_ok(), "{charged:?}");

    // Meanwhile the first subscriber changed card: a re-send would not match the first
    // request at the PG (another body under the same key), so only finding the transaction
    // the first send created keeps the period from being charged twice.
    let (status, _) = call(
        &app,
        reqwest::Method::PUT,
        &format!("/{}/card", ids[0]),
        Some(json!({"cardType": "KB", "cardNo": "5555-4444-3333-2222"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let app = app.restart().await;
    // Right after the restart the attempts are not re-sent (their claimer may still be
    // sending them); once `resend_after_ms` passed, the PG is asked for each period's
    // transactions: the first attempt's is found and attached, the two never sent are sent
    // with their keys.
    assert_eq!(round(&app).await.resent, 0);
    app.billing_clock.advance(Duration::from_secs(120));
    let report = round(&app).await;
    assert_eq!((report.resent, report.accepted), (2, 3), "{report:?}");
    settle(&app, &ids).await;
    let ledger = app.pg.ledger();
    for id in &ids {
        let view = show(&app, *id).await;
        assert_eq!(
            (view["state"].as_str(), view["period"].as_i64()),
            (Some("ACTIVE"), Some(3)),
            "{view}"
        );
        let order_ref = format!("SUB{id:06}P2");
        assert_eq!(
            ledger.count_for_order(&order_ref),
            1,
            "{order_ref} charged once"
        );
        assert_eq!(ledger.successes_for_order(&order_ref), 1);
    }
    assert!(ledger.double_charged_orders().is_empty());
}

#[tokio::test]
async fn two_instances_on_one_database_bill_each_period_exactly_once() {
    let a = app().await;
    let b = a.another_instance("commerce-b").await;
    let mut ids = Vec::new();
    for _ in 0..16 {
        ids.push(id_of(&subscribe(&a, 1, APPROVED_CARD).await));
    }
    settle(&a, &ids).await;
    for period in [2, 3] {
        a.billing_clock.advance(DAY * 30);
        let (ra, rb) = tokio::join!(round(&a), round(&b));
        assert_eq!(
            ra.claimed + rb.claimed,
            16,
            "every due subscription claimed once"
        );
        settle(&b, &[]).await;
        let settled = eventually(Duration::from_secs(10), || async {
            let (ra, rb) = tokio::join!(round(&a), round(&b));
            assert_eq!(ra.claimed + rb.claimed, 0);
            let ledger = a.pg.ledger();
            let successes: usize = ids
                .iter()
                .map(|id| ledger.successes_for_order(&format!("SUB{id:06}P{period}")))
                .sum();
            (successes == 16).then_some(())
        })
        .await;
        assert!(settled.is_some(), "period {period} paid for all");
    }
    let ledger = a.pg.ledger();
    let mut per_order: BTreeMap<String, usize> = BTreeMap::new();
    for tx in ledger.transactions() {
        *per_order.entry(tx.order_id.clone()).or_default() += 1;
    }
    assert_eq!(per_order.len(), 16 * 3);
    assert!(per_order.values().all(|n| *n == 1), "{per_order:?}");
}

#[tokio::test]
async fn the_subscription_endpoints_pause_resume_cancel_and_never_show_the_card() {
    let app = app().await;
    let created = subscribe(&app, 1, "1234-5678-9012-3456").await;
    let id = id_of(&created);
    assert_eq!(created["cardNo"], "1234-56**-****-3456");
    assert!(!created.to_string().contains("5678-9012"));
    let path = |action: &str| format!("/{id}/{action}");
    let (status, view) = call(&app, reqwest::Method::POST, &path("pause"), None).await;
    assert_eq!(
        (status, view["state"].as_str()),
        (StatusCode::OK, Some("PAUSED"))
    );
    let (status, err) = call(&app, reqwest::Method::POST, &path("pause"), None).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("INVALID_SUBSCRIPTION_STATE"))
    );
    let (status, view) = call(&app, reqwest::Method::POST, &path("resume"), None).await;
    assert_eq!(
        (status, view["state"].as_str()),
        (StatusCode::OK, Some("ACTIVE"))
    );
    let (status, view) = call(&app, reqwest::Method::POST, &path("cancel"), None).await;
    assert_eq!(
        (status, view["state"].as_str()),
        (StatusCode::OK, Some("CANCELLED"))
    );
    let (status, err) = call(
        &app,
        reqwest::Method::PUT,
        &path("card"),
        Some(json!({"cardType": "SAMSUNG", "cardNo": APPROVED_CARD})),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("INVALID_SUBSCRIPTION_STATE"))
    );
    // Another user's subscription is a 404; a bad card a 400; an unknown plan a 404.
    let response = app
        .client
        .get(format!("{}/api/v1/subscriptions/{id}", app.address))
        .header("X-USER-ID", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .client
        .post(format!("{}/api/v1/subscriptions", app.address))
        .header("X-USER-ID", "1")
        .json(&json!({"planId": 1, "cardType": "SAMSUNG", "cardNo": "1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_CARD");
    let response = app
        .client
        .post(format!("{}/api/v1/subscriptions", app.address))
        .header("X-USER-ID", "1")
        .json(&json!({"planId": 99, "cardType": "SAMSUNG", "cardNo": APPROVED_CARD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // The stored card is sealed, never the number.
    let sealed = persistence::subscriptions::subscription_by_id(
        &mut app.handle.state.db.writer().await.unwrap(),
        id,
    )
    .await
    .unwrap()
    .unwrap()
    .card_sealed;
    assert!(!sealed.contains("1234-5678"));
}

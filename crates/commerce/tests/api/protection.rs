//! The charge path's protection with the service's defaults: an adaptive limit that keeps a
//! hanging PG from taking a burst of orders, even on a freshly started service whose tuning
//! starts at its ceilings.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{APPROVED_CARD, card, order_body, spawn_app_with};

const ORDERS: usize = 100;

#[tokio::test]
async fn a_hanging_pg_takes_at_most_16_of_100_simultaneous_card_orders_on_a_fresh_service() {
    // Arrange: the service's defaults for the charge path (tuning on, cold start at 6 s and
    // 192 permits; the adaptive limit); the PG takes every charge and answers after 30 s.
    let defaults = commerce::Settings::default().gateway;
    let app = spawn_app_with(
        |sim| {
            sim.latency(pg_simulator::Latency::Fixed {
                value: Duration::from_secs(30),
            })
        },
        |s| {
            s.gateway.charge_tuning = defaults.charge_tuning.clone();
            s.gateway.client.charge = defaults.client.charge.clone();
        },
    )
    .await;

    // Act: 100 card orders at once.
    let mut placing = tokio::task::JoinSet::new();
    for i in 0..ORDERS {
        let request = app
            .client
            .post(format!("{}/api/v1/orders", app.address))
            .header("X-USER-ID", (1 + i % 2).to_string())
            .json(&order_body(1 + (i % 5) as i64, 1, card(APPROVED_CARD)));
        placing.spawn(async move { request.send().await.expect("the request is sent").status() });
    }
    let statuses = placing.join_all().await;

    // Assert: the orders that went into the PG came back uncertain (202, payment UNKNOWN);
    // the others were refused before sending (503).
    let received = app.pg.stats().payment_requests;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    let uncertain = ORDERS - refused;
    eprintln!(
        "hang burst: {uncertain} of {ORDERS} orders uncertain, {refused} refused (503), \
         {received} charges received by the PG"
    );
    assert!(
        received <= 16,
        "{received} charges went into the hanging PG"
    );
    assert!(uncertain <= 16, "{uncertain} uncertain: {statuses:?}");
    assert_eq!(received, uncertain as u64);
}

/// Sends `count` card orders at once; their statuses.
async fn burst(app: &crate::helpers::TestApp, count: usize) -> Vec<StatusCode> {
    let mut placing = tokio::task::JoinSet::new();
    for i in 0..count {
        let request = app
            .client
            .post(format!("{}/api/v1/orders", app.address))
            .header("X-USER-ID", (1 + i % 2).to_string())
            .json(&order_body(1 + (i % 5) as i64, 1, card(APPROVED_CARD)));
        placing.spawn(async move { request.send().await.expect("the request is sent").status() });
    }
    placing.join_all().await
}

#[tokio::test]
async fn after_bursts_on_a_healthy_pg_a_hang_takes_what_the_limit_learned() {
    // Arrange: the service's charge-path defaults; a PG answering in 200 ms, warmed by three
    // bursts of 50 orders at once, so the adaptive limit has grown with the demand.
    let defaults = commerce::Settings::default().gateway;
    let app = spawn_app_with(
        |sim| {
            sim.latency(pg_simulator::Latency::Fixed {
                value: Duration::from_millis(200),
            })
        },
        |s| {
            s.gateway.charge_tuning = defaults.charge_tuning.clone();
            s.gateway.client.charge = defaults.client.charge.clone();
        },
    )
    .await;
    for _ in 0..3 {
        burst(&app, 50).await;
    }
    let before = app.pg.stats().payment_requests;

    // Act: the PG hangs (answers after 30 s); 100 card orders at once.
    app.pg
        .update_config(|c| {
            c.request.latency = pg_simulator::Latency::Fixed {
                value: Duration::from_secs(30),
            }
        })
        .unwrap();
    let statuses = burst(&app, ORDERS).await;

    // Assert: the limit learned from the bursts is what a hang lets in; never more than the
    // bulkhead (64 once the tuning has seen a fast PG), and the rest refused.
    let received = app.pg.stats().payment_requests - before;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    eprintln!(
        "warm hang burst: {received} of {ORDERS} charges went into the hanging PG, \
         {refused} refused (503)"
    );
    assert!(
        received <= 64,
        "{received} went in: more than the tuned bulkhead"
    );
    assert_eq!(received as usize + refused, ORDERS, "{statuses:?}");
}

fn card_of(card_type: &str) -> serde_json::Value {
    serde_json::json!({"method": "CARD", "cardType": card_type, "cardNo": APPROVED_CARD})
}

#[tokio::test]
async fn when_one_card_types_pg_path_fails_its_breaker_opens_and_the_other_card_types_keep_selling()
{
    // Arrange: every SAMSUNG charge fails before anything is created; breakers by card type
    // (the default), each opening after 5 failures of 5 and staying open for a minute.
    let app = spawn_app_with(
        |sim| sim.card_outage(pg_simulator::CardType::Samsung, 1.0),
        |s| {
            s.gateway.charge_breakers_by_card_type = true;
            let breaker = &mut s.gateway.client.charge.circuit_breaker;
            breaker.sliding_window = seawall::circuit_breaker::SlidingWindow::count(10);
            breaker.minimum_number_of_calls = 5;
            breaker.open_wait = seawall::circuit_breaker::OpenWait::Fixed(Duration::from_secs(60));
        },
    )
    .await;

    // Act: SAMSUNG orders until its breaker has seen enough, then the three card types.
    for _ in 0..5 {
        let (status, body) = app.place(1, &order_body(1, 1, card_of("SAMSUNG"))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    let sent_before = app.pg.stats().payment_requests;
    let (samsung, _) = app.place(1, &order_body(1, 1, card_of("SAMSUNG"))).await;
    let sent_after = app.pg.stats().payment_requests;
    let mut others = Vec::new();
    for card_type in ["KB", "HYUNDAI", "KB", "HYUNDAI"] {
        let (status, body) = app.place(2, &order_body(2, 1, card_of(card_type))).await;
        others.push((card_type, status, body["status"].clone()));
    }

    // Assert: SAMSUNG's breaker is open (refused without sending), the others still sell.
    assert_eq!(samsung, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(sent_after, sent_before, "an open breaker sends nothing");
    assert!(
        others
            .iter()
            .all(|(_, status, _)| *status == StatusCode::ACCEPTED),
        "{others:?}"
    );
    let breakers: serde_json::Value = app
        .admin(
            app.client
                .get(format!("{}/api/v1/admin/circuit-breakers", app.address)),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let state = |name: &str| {
        breakers
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .map(|b| b["state"].clone())
    };
    assert_eq!(state("pg-charge[SAMSUNG]"), Some("OPEN".into()));
    assert_eq!(state("pg-charge[KB]"), Some("CLOSED".into()));
}

#[tokio::test]
async fn the_tuners_slow_call_threshold_reaches_every_card_types_breaker() {
    // Arrange: tuning on (evaluated every 5 accepted charges), breakers by card type, a PG
    // whose charges take 700 ms.
    let app = spawn_app_with(
        |sim| {
            sim.latency(pg_simulator::Latency::Fixed {
                value: Duration::from_millis(700),
            })
        },
        |s| {
            s.gateway.charge_breakers_by_card_type = true;
            let tuning = &mut s.gateway.charge_tuning;
            tuning.enabled = true;
            tuning.min_samples = 5;
            tuning.every = 5;
            tuning.read_timeout_ceiling_ms = 2_000;
        },
    )
    .await;

    // Act: ten orders, two card types.
    for i in 0..10 {
        let card_type = if i % 2 == 0 { "KB" } else { "HYUNDAI" };
        let (status, body) = app.place(1, &order_body(1, 1, card_of(card_type))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }

    // Assert: `pg-charge` was tuned to 1.3 × ~700 ms, and both card types' breakers run with
    // the same threshold.
    let tuned = app
        .handle
        .state
        .registries
        .circuit_breakers()
        .current_config(commerce::gateway::pg::CHARGE_BREAKER)
        .unwrap()
        .slow_call_duration_threshold;
    assert!(
        tuned.is_some_and(|t| t >= Duration::from_millis(900)),
        "{tuned:?}"
    );
    let card_types = app.handle.state.payments.gateway().extra_breakers();
    let names: Vec<_> = card_types.iter().map(|b| b.name().to_owned()).collect();
    assert_eq!(
        names,
        ["pg-charge[HYUNDAI]", "pg-charge[KB]", "pg-charge[SAMSUNG]"]
    );
    for breaker in &card_types {
        assert_eq!(
            breaker.config().slow_call_duration_threshold,
            tuned,
            "{}",
            breaker.name()
        );
    }
}

#[tokio::test]
async fn forcing_pg_charge_open_stops_every_card_type() {
    let app = spawn_app_with(|sim| sim, |s| s.gateway.charge_breakers_by_card_type = true).await;
    let response = app
        .admin(app.client.put(format!(
            "{}/api/v1/admin/circuit-breakers/pg-charge",
            app.address
        )))
        .json(&serde_json::json!({"state": "FORCED_OPEN"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for card_type in ["SAMSUNG", "KB", "HYUNDAI"] {
        let (status, body) = app.place(1, &order_body(1, 1, card_of(card_type))).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{card_type}: {body}"
        );
    }
    assert_eq!(app.pg.stats().payment_requests, 0);
}

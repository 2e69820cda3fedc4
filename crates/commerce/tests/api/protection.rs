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
    eprintln!("breakers: {breakers}");
    assert_eq!(state("pg-charge[SAMSUNG]"), Some("OPEN".into()));
    assert_eq!(state("pg-charge[KB]"), Some("CLOSED".into()));
}

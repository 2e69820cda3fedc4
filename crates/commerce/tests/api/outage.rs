use commerce::persistence;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use seawall::circuit_breaker::{OpenWait, SlidingWindow};
use serde_json::Value;

use crate::helpers::{APPROVED_CARD, card, order_body, spawn_app_with};

#[tokio::test]
async fn when_the_pg_is_down_the_breaker_opens_orders_fail_fast_with_503_and_reads_are_unaffected()
{
    // Arrange: a breaker that opens after 5 calls and stays open for a minute.
    let app = spawn_app_with(
        |sim| sim,
        |s| {
            let breaker = &mut s.gateway.client.charge.circuit_breaker;
            breaker.sliding_window = SlidingWindow::count(10);
            breaker.minimum_number_of_calls = 5;
            breaker.open_wait = OpenWait::Fixed(Duration::from_secs(60));
        },
    )
    .await;
    let stock = app.stock(1).await;
    app.pg.go_down().await;

    // Act
    let mut latencies = Vec::new();
    for _ in 0..12 {
        #[allow(clippy::disallowed_methods)] // wall-clock latency of a real request
        let started = Instant::now();
        let (status, body) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
        latencies.push(started.elapsed());
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "PAYMENT_TEMPORARILY_UNAVAILABLE");
    }
    #[allow(clippy::disallowed_methods)]
    let read_started = Instant::now();
    let products = app
        .client
        .get(format!("{}/api/v1/products", app.address))
        .send()
        .await
        .unwrap();
    let read_latency = read_started.elapsed();

    // Assert: the breaker is open, later orders never reached the network, stock is back.
    let breakers: Value = app
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
    let charge = breakers
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "pg-charge")
        .unwrap();
    assert_eq!(charge["state"], "OPEN", "{breakers}");
    assert!(
        charge["metrics"]["notPermittedCalls"].as_u64().unwrap() >= 5,
        "{charge}"
    );
    let slowest_late = latencies[6..].iter().max().unwrap();
    assert!(*slowest_late < Duration::from_millis(250), "{latencies:?}");
    assert_eq!(
        app.stock(1).await,
        stock,
        "every failed order gave its stock back"
    );
    assert_eq!(products.status(), StatusCode::OK);
    assert!(
        read_latency < Duration::from_millis(250),
        "{read_latency:?}"
    );
    let orders = persistence::all_orders(&mut app.handle.state.db.reader().await.unwrap())
        .await
        .unwrap();
    assert!(orders.iter().all(|o| o.status.as_str() == "FAILED"));
    assert_eq!(
        app.pg.stats().payment_requests,
        0,
        "nothing ever reached the dead PG"
    );
}

#[tokio::test]
async fn a_slow_pg_trips_the_breaker_on_slow_calls_and_payments_stay_recoverable() {
    // Arrange: every charge takes 300 ms; slow above 100 ms; open after 4 slow calls.
    let app = spawn_app_with(
        |sim| {
            sim.latency(pg_simulator::Latency::Fixed {
                value: Duration::from_millis(300),
            })
        },
        |s| {
            // Fixed limits (the test settings' default): with the charge tuning on, a PG
            // slow but working is followed instead (`tuning.rs`).
            s.gateway.charge_tuning.enabled = false;
            let breaker = &mut s.gateway.client.charge.circuit_breaker;
            breaker.sliding_window = SlidingWindow::count(4);
            breaker.minimum_number_of_calls = 4;
            breaker.slow_call_duration_threshold = Some(Duration::from_millis(100));
            breaker.slow_call_rate_threshold = 50.0;
            breaker.open_wait = OpenWait::Fixed(Duration::from_secs(60));
        },
    )
    .await;

    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await.0);
    }

    assert_eq!(&statuses[..4], [StatusCode::ACCEPTED; 4]);
    assert_eq!(&statuses[4..], [StatusCode::SERVICE_UNAVAILABLE; 2]);
    assert_eq!(app.pg.stats().payment_requests, 4);
}

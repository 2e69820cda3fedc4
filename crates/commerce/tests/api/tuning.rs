//! The charge path follows a PG that is slow but working (read timeout, bulkhead and
//! slow-call threshold at 1.3 × the P95 of accepted charges, up to a ceiling), and still
//! cuts off a PG that hangs.

use std::time::{Duration, Instant};

use commerce::Settings;
use commerce::gateway::pg::CHARGE_BREAKER;
use reqwest::StatusCode;
use seawall::circuit_breaker::{OpenWait, SlidingWindow, State};

use crate::helpers::{APPROVED_CARD, TestApp, card, order_body, spawn_app_with};

/// Tuning on, evaluated every 5 accepted charges, ceiling 2 s; the test read timeout (500 ms)
/// is the floor.
fn tuned(s: &mut Settings) {
    let tuning = &mut s.gateway.charge_tuning;
    tuning.enabled = true;
    tuning.min_samples = 5;
    tuning.every = 5;
    tuning.read_timeout_ceiling_ms = 2_000;
}

fn charge_state(app: &TestApp) -> State {
    app.handle
        .state
        .registries
        .circuit_breakers()
        .find(CHARGE_BREAKER)
        .unwrap()
        .state()
}

async fn place_together(app: &TestApp, orders: usize) -> Vec<StatusCode> {
    let mut placing = tokio::task::JoinSet::new();
    for i in 0..orders {
        let request = app
            .client
            .post(format!("{}/api/v1/orders", app.address))
            .header("X-USER-ID", (1 + i % 2).to_string())
            .json(&order_body(1, 1, card(APPROVED_CARD)));
        placing.spawn(async move { request.send().await.expect("the request is sent").status() });
    }
    placing.join_all().await
}

#[tokio::test]
async fn a_slow_but_working_pg_is_followed_and_orders_keep_succeeding() {
    // Arrange: every charge takes 700 ms, past the 500 ms read timeout and far past a slow
    // threshold of 300 ms that would open this breaker after 5 calls.
    let app = spawn_app_with(
        |sim| {
            sim.latency(pg_simulator::Latency::Fixed {
                value: Duration::from_millis(700),
            })
        },
        |s| {
            tuned(s);
            let breaker = &mut s.gateway.client.charge.circuit_breaker;
            breaker.sliding_window = SlidingWindow::count(10);
            breaker.minimum_number_of_calls = 5;
            breaker.slow_call_duration_threshold = Some(Duration::from_millis(300));
            breaker.slow_call_rate_threshold = 50.0;
            breaker.open_wait = OpenWait::Fixed(Duration::from_secs(60));
        },
    )
    .await;

    // Act: two waves of orders.
    let first = place_together(&app, 10).await;
    let second = place_together(&app, 10).await;

    // Assert: every charge accepted, the breaker closed, the limits at 1.3 × 700 ms or more.
    assert_eq!(first, [StatusCode::ACCEPTED; 10]);
    assert_eq!(second, [StatusCode::ACCEPTED; 10]);
    assert_eq!(charge_state(&app), State::Closed);
    assert_eq!(app.pg.stats().payment_requests, 20);
    let threshold = app
        .handle
        .state
        .registries
        .circuit_breakers()
        .current_config(CHARGE_BREAKER)
        .unwrap()
        .slow_call_duration_threshold
        .unwrap();
    assert!(
        threshold >= Duration::from_millis(900) && threshold <= Duration::from_secs(2),
        "{threshold:?}"
    );
}

#[tokio::test]
async fn after_a_fast_start_a_hanging_pg_is_cut_off_at_the_configured_timeout() {
    // Arrange: a fast PG, then it hangs; the breaker opens on 4 failures out of 4.
    let app = spawn_app_with(
        |sim| sim,
        |s| {
            tuned(s);
            let breaker = &mut s.gateway.client.charge.circuit_breaker;
            breaker.sliding_window = SlidingWindow::count(4);
            breaker.minimum_number_of_calls = 4;
            breaker.open_wait = OpenWait::Fixed(Duration::from_secs(60));
        },
    )
    .await;
    for _ in 0..5 {
        let (status, body) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    app.pg.set_black_hole(true);

    // Act
    let mut hung = Vec::new();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        #[allow(clippy::disallowed_methods)] // wall-clock latency of a real request
        let started = Instant::now();
        let (status, _) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
        statuses.push(status);
        if status != StatusCode::SERVICE_UNAVAILABLE {
            hung.push(started.elapsed());
        }
    }

    // Assert: the timeouts came at the configured 500 ms, not the 2 s ceiling, and the
    // breaker opened on them.
    assert_eq!(hung.len(), 4, "{statuses:?}");
    assert!(
        hung.iter().all(|took| *took < Duration::from_millis(1_200)),
        "{hung:?}"
    );
    assert_eq!(&statuses[4..], [StatusCode::SERVICE_UNAVAILABLE; 2]);
    assert_eq!(charge_state(&app), State::Open);
}

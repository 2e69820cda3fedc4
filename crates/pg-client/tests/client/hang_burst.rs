//! The hang burst: the gateway takes every charge and never answers (until long after the
//! read timeout), and 100 charges arrive at once. Each one that goes in comes back uncertain;
//! the adaptive limit on the charge path keeps that number small.

use std::time::Duration;

use pg_client::{CallPath, ChargeOutcome, PaymentGateway, PgClient, PgClientConfig};
use seawall::adaptive::{AdaptiveLimiterConfig, LimitAlgorithm};

use crate::helpers::{fast_config, magic_card, request_with_card, sim, spawn, user};

const ORDERS: usize = 100;

/// What came back from the burst: (uncertain, rejected without sending, charges the gateway
/// received).
async fn burst(configure: impl FnOnce(&mut PgClientConfig)) -> (usize, usize, u64) {
    // Magic card 408: the charge is created, and its answer held for 30 s.
    let pg = spawn(sim().fault_params(|faults| {
        faults.charge_but_timeout_delay = Duration::from_secs(30);
    }))
    .await;
    let mut config = fast_config(&pg.base_url(), "hang");
    config.charge.read_timeout = Duration::from_millis(500);
    // The commerce service's charge bulkhead.
    config.charge.bulkhead.max_concurrent_calls = 64;
    configure(&mut config);
    let client = PgClient::new(config).unwrap();
    let card = magic_card(408);
    let calls = (0..ORDERS).map(|n| {
        let client = client.clone();
        let request = request_with_card(&format!("order-hang-{n}"), &card);
        tokio::spawn(async move { client.request_payment(&user(), &request).await })
    });
    let (mut uncertain, mut rejected) = (0, 0);
    for call in calls.collect::<Vec<_>>() {
        match call.await.unwrap() {
            Ok(ChargeOutcome::Uncertain(_)) => uncertain += 1,
            Err(error) if error.is_rejected() => rejected += 1,
            other => panic!("neither uncertain nor rejected: {other:?}"),
        }
    }
    assert_eq!(uncertain + rejected, ORDERS);
    (uncertain, rejected, pg.stats().payment_requests)
}

#[tokio::test]
async fn without_an_adaptive_limit_the_whole_bulkhead_goes_into_a_hanging_gateway() {
    let (uncertain, rejected, received) = burst(|_| {}).await;
    eprintln!("bulkhead 64 only: {uncertain} uncertain, {rejected} rejected, {received} received");
    assert_eq!(uncertain, 64);
    assert_eq!(received, 64);
}

#[tokio::test]
async fn with_an_adaptive_limit_at_most_16_of_100_orders_go_into_a_hanging_gateway() {
    let (uncertain, rejected, received) = burst(|config| {
        let mut limit = AdaptiveLimiterConfig::new(LimitAlgorithm::Aimd);
        limit.initial_limit = 16;
        limit.max_limit = 64;
        config.charge.adaptive_limiter = Some(limit);
    })
    .await;
    eprintln!(
        "adaptive (AIMD from 16): {uncertain} uncertain, {rejected} rejected, {received} received"
    );
    assert!(uncertain <= 16, "{uncertain} uncertain");
    assert_eq!(received, uncertain as u64);
}

#[tokio::test]
async fn the_timeouts_of_a_hanging_gateway_lower_the_charge_limit() {
    let pg = spawn(sim().fault_params(|faults| {
        faults.charge_but_timeout_delay = Duration::from_secs(30);
    }))
    .await;
    let mut config = fast_config(&pg.base_url(), "hang-limit");
    config.charge.read_timeout = Duration::from_millis(200);
    let mut limit = AdaptiveLimiterConfig::new(LimitAlgorithm::Aimd);
    limit.initial_limit = 16;
    config.charge.adaptive_limiter = Some(limit);
    let client = PgClient::new(config).unwrap();
    let limiter = client.adaptive_limiter(CallPath::Charge).clone();
    assert_eq!(limiter.limit(), 16);
    for n in 0..4 {
        let request = request_with_card(&format!("order-limit-{n}"), &magic_card(408));
        let outcome = client.request_payment(&user(), &request).await.unwrap();
        assert!(matches!(outcome, ChargeOutcome::Uncertain(_)));
    }
    // 16 × 0.9⁴ = 10.5.
    assert_eq!(limiter.limit(), 10);
    assert_eq!(
        client.adaptive_limiter(CallPath::Query).limit(),
        seawall::Bulkhead::MAX_CONCURRENT_CALLS,
        "a path without an adaptive limit is not limited by one"
    );
}

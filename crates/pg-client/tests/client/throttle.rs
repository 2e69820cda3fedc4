//! Throttling: a `Retry-After` is honoured on the client's clock — a manual one here, stepped
//! by hand while the HTTP exchanges run on real sockets.

use std::time::Duration;

use pg_client::{CallPath, ChargeOutcome, PaymentGateway, PgClient, TransactionKey};
use pg_simulator::Fault;
use seawall::Clock;
use seawall::clock::ManualClock;

use crate::helpers::{eventually, fast_config, in_background, request, sim, spawn, user};

#[tokio::test]
async fn a_429_with_retry_after_is_honoured_no_sooner_and_no_later() {
    // Arrange: every charge is throttled with `Retry-After: 2` until the test lifts it.
    let pg = spawn(sim().fault_params(|f| f.retry_after = Duration::from_secs(2))).await;
    pg.set_fault_rate(Fault::Throttle, 1.0).unwrap();
    let manual = ManualClock::new();
    let client = PgClient::builder(fast_config(&pg.base_url(), "throttle"))
        .clock(Clock::from(manual.clone()))
        .build()
        .unwrap();
    let charge = in_background({
        let client = client.clone();
        async move {
            client
                .request_payment(&user(), &request("order-throttled"))
                .await
        }
    });

    // Act + Assert: the retry waits for the hint, not for the 1 ms backoff.
    assert!(
        eventually(|| manual.sleepers() == 1).await,
        "the retry waits"
    );
    assert_eq!(pg.stats().payment_requests, 1);
    manual.advance(Duration::from_millis(1999));
    assert_eq!(manual.sleepers(), 1, "still waiting just before the hint");
    tokio::task::yield_now().await;
    assert_eq!(
        pg.stats().payment_requests,
        1,
        "no second request before the hint"
    );

    pg.set_fault_rate(Fault::Throttle, 0.0).unwrap();
    manual.advance(Duration::from_millis(1));
    let outcome = charge.await.unwrap().unwrap();

    assert!(matches!(outcome, ChargeOutcome::Accepted(_)), "{outcome:?}");
    assert_eq!(
        pg.stats().payment_requests,
        2,
        "exactly one request after the hint"
    );
    assert_eq!(pg.ledger().count_for_order("order-throttled"), 1);
    // Throttling is a breaker failure.
    assert_eq!(
        client
            .circuit_breaker(CallPath::Charge)
            .metrics()
            .failed_calls,
        1
    );
}

#[tokio::test]
async fn a_503_with_retry_after_on_a_query_is_retried_after_the_hint() {
    let pg = spawn(sim()).await;
    let setup = crate::helpers::client(fast_config(&pg.base_url(), "unavailable-setup"));
    let accepted = setup
        .request_payment(&user(), &request("order-503"))
        .await
        .unwrap();
    let key: TransactionKey = accepted.transaction_key().unwrap().clone();
    pg.update_config(|c| {
        c.faults.query_rates.insert(Fault::Unavailable, 1.0);
    })
    .unwrap();
    let manual = ManualClock::new();
    let client = PgClient::builder(fast_config(&pg.base_url(), "unavailable"))
        .clock(Clock::from(manual.clone()))
        .build()
        .unwrap();
    let lookup = in_background({
        let (client, key) = (client.clone(), key.clone());
        async move { client.get_transaction(&user(), &key).await }
    });

    assert!(
        eventually(|| manual.sleepers() == 1).await,
        "the retry waits"
    );
    assert_eq!(pg.stats().detail_queries, 1);
    pg.update_config(|c| {
        c.faults.query_rates.clear();
    })
    .unwrap();
    manual.advance(Duration::from_secs(1));
    let detail = lookup
        .await
        .unwrap()
        .unwrap()
        .expect("the transaction exists");

    assert_eq!(detail.transaction_key, key);
    assert_eq!(pg.stats().detail_queries, 2);
}

#[tokio::test]
async fn a_hint_longer_than_the_cap_is_returned_to_the_caller_instead_of_awaited() {
    let pg = spawn(sim().fault_params(|f| f.retry_after = Duration::from_secs(60))).await;
    pg.set_fault_rate(Fault::Throttle, 1.0).unwrap();
    let client = crate::helpers::client(fast_config(&pg.base_url(), "long-hint"));

    let error = client
        .request_payment(&user(), &request("order-long-hint"))
        .await
        .unwrap_err();

    assert!(
        error.is_throttled() && error.is_definitely_not_created(),
        "{error:?}"
    );
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(error.status(), Some(429));
    assert_eq!(pg.stats().payment_requests, 1);
}

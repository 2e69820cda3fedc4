//! The two breakers: business errors never move them; an outage opens the charge breaker,
//! which then keeps charges off the network, while queries go on through their own.

use pg_client::{CallPath, PaymentGateway, TransactionKey};
use seawall::circuit_breaker::State;

use crate::helpers::{fast_config, request, sim, spawn, user};

#[tokio::test]
async fn business_errors_never_move_the_charge_breaker() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "business"));

    for i in 0..25 {
        // Order ids shorter than 6 characters are refused with 400.
        let error = client
            .request_payment(&user(), &request(&format!("o{i}")))
            .await
            .unwrap_err();
        assert!(error.is_business(), "{error:?}");
    }

    let breaker = client.circuit_breaker(CallPath::Charge);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().buffered_calls, 0);
    assert_eq!(pg.stats().payment_requests, 25);
}

#[tokio::test]
async fn with_the_pg_down_the_breaker_opens_and_later_charges_never_reach_the_network() {
    // Arrange: a transaction exists (made by another client, so the one under test holds
    // no pooled connection the outage could cut mid-request), then the gateway goes down.
    let pg = spawn(sim()).await;
    let setup = crate::helpers::client(fast_config(&pg.base_url(), "outage-setup"));
    let accepted = setup
        .request_payment(&user(), &request("order-before"))
        .await
        .unwrap();
    let key: TransactionKey = accepted.transaction_key().unwrap().clone();
    let client = crate::helpers::client(fast_config(&pg.base_url(), "outage"));
    pg.go_down().await;

    // Act: charge until the breaker refuses (each charge makes up to 3 attempts; 10 failed
    // attempts out of the window of 10 open it).
    let mut charges = 0;
    while client.circuit_breaker(CallPath::Charge).state() != State::Open {
        charges += 1;
        assert!(charges <= 10, "the breaker never opened");
        let error = client
            .request_payment(&user(), &request(&format!("order-down-{charges}")))
            .await
            .unwrap_err();
        assert!(error.is_not_reached() || error.is_rejected(), "{error:?}");
    }

    // The gateway comes back, but the open breaker keeps charges off the network.
    pg.come_back().await.unwrap();
    let before = pg.stats();
    let error = client
        .request_payment(&user(), &request("order-while-open"))
        .await
        .unwrap_err();
    assert!(error.is_rejected() && error.is_circuit_open(), "{error:?}");
    assert!(error.retry_after().is_some());
    assert_eq!(pg.stats().payment_requests, before.payment_requests);
    assert_eq!(pg.stats().connections, before.connections);

    // Assert: the query path has its own breaker and keeps working.
    let found = client
        .find_by_order(&user(), &"order-before".parse_order())
        .await
        .unwrap();
    assert_eq!(found.transactions.len(), 1);
    let detail = client
        .get_transaction(&user(), &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.transaction_key, key);
    assert_eq!(
        client.circuit_breaker(CallPath::Query).state(),
        State::Closed
    );
    assert_eq!(pg.stats().payment_requests, before.payment_requests);
}

#[tokio::test]
async fn the_breakers_are_exposed_for_an_admin_api_and_act_on_the_client() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "admin"));

    let breakers = client.circuit_breakers();
    let names: Vec<_> = breakers
        .iter()
        .map(|b| (b.path, b.breaker.name().to_owned()))
        .collect();
    assert_eq!(
        names,
        [
            (CallPath::Charge, "admin-charge".to_owned()),
            (CallPath::Query, "admin-query".to_owned())
        ]
    );
    breakers[1].breaker.transition_to_forced_open().unwrap();

    let error = client
        .find_by_order(&user(), &"order-admin".parse_order())
        .await
        .unwrap_err();

    assert!(error.is_rejected());
    assert_eq!(pg.stats().order_queries, 0);
    assert!(
        client
            .request_payment(&user(), &request("order-admin"))
            .await
            .is_ok()
    );
}

/// `"…".parse_order()` for brevity.
trait ParseOrder {
    fn parse_order(&self) -> pg_client::OrderId;
}

impl ParseOrder for str {
    fn parse_order(&self) -> pg_client::OrderId {
        pg_client::OrderId::parse(self).unwrap()
    }
}

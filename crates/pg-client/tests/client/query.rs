//! The query path: lookups, the user partition, retries with backoff, and cancel.

use std::time::Duration;

use pg_client::{Money, OrderId, PaymentGateway, TransactionKey, TransactionStatus, UserId};
use pg_simulator::Fault;

use crate::helpers::{MASKED, fast_config, request, sim, spawn, user};

#[tokio::test]
async fn get_transaction_returns_the_detail_with_the_card_masked_on_ingest() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "detail"));
    let accepted = client
        .request_payment(&user(), &request("order-detail"))
        .await
        .unwrap();
    let key = accepted.transaction_key().unwrap().clone();
    pg.wait_for_terminal(key.as_str(), Duration::from_secs(5))
        .await
        .expect("processing ends");

    let detail = client
        .get_transaction(&user(), &key)
        .await
        .unwrap()
        .unwrap();

    assert_eq!(detail.transaction_key, key);
    assert_eq!(detail.order_id.as_str(), "order-detail");
    assert_eq!(detail.card_number.as_str(), MASKED);
    assert_eq!(detail.amount, Money::krw(5000).unwrap());
    assert!(detail.status.is_terminal());
    assert!(detail.reason.is_some());
}

#[tokio::test]
async fn unknown_transactions_and_orders_are_none_and_empty_not_errors() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "unknown"));

    let missing = client
        .get_transaction(
            &user(),
            &TransactionKey::parse("20250101:TR:000000").unwrap(),
        )
        .await
        .unwrap();
    let empty = client
        .find_by_order(&user(), &OrderId::parse("order-none").unwrap())
        .await
        .unwrap();

    assert!(missing.is_none());
    assert!(empty.transactions.is_empty());
    assert_eq!(pg.stats().queries(), 2, "a 404 is an answer, not retried");
}

#[tokio::test]
async fn another_user_partition_sees_nothing() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "partition"));
    let accepted = client
        .request_payment(&user(), &request("order-partition"))
        .await
        .unwrap();
    let key = accepted.transaction_key().unwrap().clone();
    let stranger = UserId::parse("someone-else").unwrap();

    assert!(
        client
            .get_transaction(&stranger, &key)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        client
            .get_transaction(&user(), &key)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_failing_query_is_retried_with_backoff_then_reported_with_its_attempts() {
    let pg = spawn(sim()).await;
    pg.update_config(|c| {
        c.faults.query_rates.insert(Fault::QueryError, 1.0);
    })
    .unwrap();
    let client = crate::helpers::client(fast_config(&pg.base_url(), "query-error"));

    let error = client
        .find_by_order(&user(), &OrderId::parse("order-query-error").unwrap())
        .await
        .unwrap_err();

    assert!(error.is_uncertain(), "{error:?}");
    assert_eq!(error.attempts(), Some(3));
    assert_eq!(pg.stats().order_queries, 3);
}

#[tokio::test]
async fn an_unknown_status_in_a_listing_is_kept_as_data() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "listing-unknown"));
    client
        .request_payment(&user(), &request("order-listing"))
        .await
        .unwrap();
    pg.update_config(|c| {
        c.faults.query_rates.insert(Fault::UnknownStatus, 1.0);
    })
    .unwrap();

    let found = client
        .find_by_order(&user(), &OrderId::parse("order-listing").unwrap())
        .await
        .unwrap();

    assert_eq!(
        found.transactions[0].status,
        TransactionStatus::Unknown("AUTHORIZED".to_owned())
    );
}

#[tokio::test]
async fn cancel_refunds_a_success_when_supported_and_is_refused_before_sending_otherwise() {
    let pg = spawn(sim().cancel_endpoint(true)).await;
    let mut config = fast_config(&pg.base_url(), "cancel");
    config.cancel_supported = true;
    let client = crate::helpers::client(config);
    let accepted = client
        .request_payment(
            &user(),
            &crate::helpers::request_with_card("order-cancel", &crate::helpers::magic_card(1)),
        )
        .await
        .unwrap();
    let key = accepted.transaction_key().unwrap().clone();
    pg.wait_for_terminal(key.as_str(), Duration::from_secs(5))
        .await
        .expect("processing ends");

    let canceled = client.cancel(&user(), &key).await.unwrap();
    assert_eq!(canceled.status, TransactionStatus::Canceled);
    assert!(client.supports_cancel());

    let without = crate::helpers::client(fast_config(&pg.base_url(), "no-cancel"));
    let error = without.cancel(&user(), &key).await.unwrap_err();
    assert!(error.is_business());
    assert_eq!(pg.stats().cancel_requests, 1);
}

//! The charge path: what is retried, what is uncertain, and that the ledger never holds more
//! than one transaction because of the client.

use std::time::Duration;

use pg_client::{ChargeOutcome, Money, PaymentGateway, PgClient, TransactionStatus};
use pg_simulator::Fault;
use seawall::Clock;
use seawall::clock::ManualClock;

use crate::helpers::{
    CARD, Scripted, created, eventually, fast_config, in_background, magic_card, pre_create_500,
    request, request_with_card, sim, spawn, user,
};

#[tokio::test]
async fn a_charge_is_accepted_with_a_pending_transaction() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "accepted"));

    let outcome = client
        .request_payment(&user(), &request("order-accepted"))
        .await
        .unwrap();

    let ChargeOutcome::Accepted(accepted) = outcome else {
        panic!("expected Accepted, got {outcome:?}");
    };
    assert_eq!(accepted.status, TransactionStatus::Pending);
    assert!(!accepted.replayed);
    let tx = pg.transaction(accepted.transaction_key.as_str()).unwrap();
    assert_eq!((tx.order_id.as_str(), tx.amount), ("order-accepted", 5000));
    assert_eq!(tx.card_no.expose(), CARD, "the gateway got the full number");
}

#[tokio::test]
async fn a_pre_create_500_is_retried_and_the_ledger_holds_exactly_one_transaction() {
    // Arrange: every request fails before creating anything, until the test switches it off
    // while the client waits for its backoff on a manual clock.
    let pg = spawn(sim()).await;
    pg.set_fault_rate(Fault::ErrorBeforeCreate, 1.0).unwrap();
    let manual = ManualClock::new();
    let mut config = fast_config(&pg.base_url(), "pre-create");
    config.charge.retry.backoff =
        seawall::Backoff::exponential(Duration::from_millis(100)).max(Duration::from_millis(500));
    let client = PgClient::builder(config)
        .clock(Clock::from(manual.clone()))
        .build()
        .unwrap();

    // Act
    let charge = in_background({
        let client = client.clone();
        async move {
            client
                .request_payment(&user(), &request("order-pre-500"))
                .await
        }
    });
    assert!(
        eventually(|| manual.sleepers() == 1).await,
        "the retry waits"
    );
    assert_eq!(pg.stats().payment_requests, 1);
    assert_eq!(pg.ledger().count_for_order("order-pre-500"), 0);
    pg.set_fault_rate(Fault::ErrorBeforeCreate, 0.0).unwrap();
    manual.advance(Duration::from_millis(100));
    let outcome = charge.await.unwrap().unwrap();

    // Assert
    assert!(matches!(outcome, ChargeOutcome::Accepted(_)), "{outcome:?}");
    assert_eq!(pg.stats().payment_requests, 2);
    assert_eq!(pg.ledger().count_for_order("order-pre-500"), 1);
    assert_eq!(client.charge_retry().metrics().successful_with_retry, 1);
}

#[tokio::test]
async fn every_attempt_of_a_charge_carries_the_same_idempotency_key_and_user() {
    let gateway = Scripted::start(vec![pre_create_500(), pre_create_500(), created("k-1")]).await;
    let client = crate::helpers::client(fast_config(&gateway.base_url, "same-key"));
    let request = request("order-same-key");

    let outcome = client.request_payment(&user(), &request).await.unwrap();

    assert_eq!(outcome.transaction_key().unwrap().as_str(), "k-1");
    let seen = gateway.seen();
    assert_eq!(seen.len(), 3);
    for attempt in seen {
        assert_eq!(
            attempt.idempotency_key.as_deref(),
            Some(request.idempotency_key.as_str())
        );
        assert_eq!(attempt.user.as_deref(), Some("135135"));
    }
}

#[tokio::test]
async fn a_repeated_charge_with_the_same_key_is_replayed_not_charged_twice() {
    let pg = spawn(sim().idempotency(true)).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "replay"));
    let request = request("order-replay");

    let first = client.request_payment(&user(), &request).await.unwrap();
    let second = client.request_payment(&user(), &request).await.unwrap();

    assert_eq!(first.transaction_key(), second.transaction_key());
    assert!(second.accepted().unwrap().replayed);
    assert_eq!(pg.ledger().count_for_order("order-replay"), 1);
}

#[tokio::test]
async fn charge_but_timeout_is_uncertain_and_find_by_order_then_finds_the_transaction() {
    let pg = spawn(sim()).await;
    let mut config = fast_config(&pg.base_url(), "charge-timeout");
    config.charge.read_timeout = Duration::from_millis(300);
    let client = crate::helpers::client(config);
    let request = request_with_card("order-timeout", &magic_card(408));

    let outcome = client.request_payment(&user(), &request).await.unwrap();

    let ChargeOutcome::Uncertain(uncertain) = outcome else {
        panic!("expected Uncertain, got {outcome:?}");
    };
    assert!(uncertain.error.is_uncertain() && uncertain.error.is_timeout());
    assert_eq!(uncertain.order_id.as_str(), "order-timeout");
    assert_eq!(
        pg.stats().payment_requests,
        1,
        "an uncertain charge is never retried"
    );

    let found = client
        .find_by_order(&user(), &uncertain.order_id)
        .await
        .unwrap();
    assert_eq!(found.transactions.len(), 1);
    let created = &pg.ledger().for_order("order-timeout")[0]
        .transaction_key
        .clone();
    assert_eq!(found.transactions[0].transaction_key.as_str(), created);
}

#[tokio::test]
async fn failures_after_create_are_uncertain_and_never_retried() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "post-create"));
    // error-after-create (500 with the generic message), reset-after-create, truncated JSON,
    // missing data, and an unknown status: each created a transaction.
    for (i, code) in [501_u16, 506, 520, 521, 522].into_iter().enumerate() {
        let order = format!("order-post-{i}");
        let before = pg.stats().payment_requests;

        let outcome = client
            .request_payment(&user(), &request_with_card(&order, &magic_card(code)))
            .await
            .unwrap();

        let ChargeOutcome::Uncertain(uncertain) = outcome else {
            panic!("{code}: expected Uncertain, got {outcome:?}");
        };
        assert!(uncertain.error.is_uncertain(), "{code}");
        assert_eq!(
            pg.stats().payment_requests,
            before + 1,
            "{code}: not retried"
        );
        assert_eq!(pg.ledger().count_for_order(&order), 1, "{code}");
        if code == 522 {
            let key = uncertain
                .transaction_key
                .expect("the unknown status named its key");
            assert_eq!(
                pg.ledger().for_order(&order)[0].transaction_key,
                key.as_str()
            );
        }
    }
}

#[tokio::test]
async fn a_reset_or_html_502_before_create_is_still_uncertain_because_the_client_cannot_tell() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "cannot-tell"));
    for (i, code) in [505_u16, 502].into_iter().enumerate() {
        let order = format!("order-cannot-tell-{i}");

        let outcome = client
            .request_payment(&user(), &request_with_card(&order, &magic_card(code)))
            .await
            .unwrap();

        assert!(outcome.is_uncertain(), "{code}: {outcome:?}");
        assert_eq!(
            pg.ledger().count_for_order(&order),
            0,
            "{code}: nothing was created"
        );
    }
    assert_eq!(pg.stats().payment_requests, 2, "neither was retried");
}

#[tokio::test]
async fn extra_fields_do_not_disturb_an_accepted_charge() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "extra-fields"));

    let outcome = client
        .request_payment(&user(), &request_with_card("order-extra", &magic_card(523)))
        .await
        .unwrap();

    assert!(matches!(outcome, ChargeOutcome::Accepted(_)), "{outcome:?}");
}

#[tokio::test]
async fn validation_errors_are_business_and_never_retried() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "validation"));

    let error = client
        .request_payment(&user(), &request("short"))
        .await
        .unwrap_err();

    assert!(error.is_business(), "{error:?}");
    assert_eq!(error.status(), Some(400));
    assert!(error.gateway_message().is_some());
    assert_eq!(pg.stats().payment_requests, 1);
}

#[tokio::test]
async fn a_charge_in_another_currency_is_refused_before_sending() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "currency"));
    let mut request = request("order-usd");
    request.amount = Money::new(500, pg_client::Currency::USD).unwrap();

    let error = client.request_payment(&user(), &request).await.unwrap_err();

    assert!(error.is_business());
    assert_eq!(pg.stats().payment_requests, 0);
}

#[tokio::test]
async fn with_the_pg_down_a_charge_is_not_reached_after_every_attempt() {
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "down"));
    pg.go_down().await;

    let error = client
        .request_payment(&user(), &request("order-down"))
        .await
        .unwrap_err();

    assert!(
        error.is_not_reached() && error.is_definitely_not_created(),
        "{error:?}"
    );
    assert_eq!(error.attempts(), Some(3));
    assert_eq!(pg.stats().payment_requests, 0);
}

#[tokio::test]
async fn a_black_hole_times_out_as_uncertain() {
    let pg = spawn(sim()).await;
    let mut config = fast_config(&pg.base_url(), "black-hole");
    config.charge.read_timeout = Duration::from_millis(200);
    let client = crate::helpers::client(config);

    let outcome = client
        .request_payment(&user(), &request_with_card("order-hole", &magic_card(504)))
        .await
        .unwrap();

    let ChargeOutcome::Uncertain(uncertain) = outcome else {
        panic!("expected Uncertain, got {outcome:?}");
    };
    assert!(uncertain.error.is_timeout());
    assert_eq!(pg.stats().payment_requests, 1);
}

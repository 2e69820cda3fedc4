//! Breakers keyed by card type: one issuer's outage opens only its own breaker, and charges
//! with the other card types go on. The simulator fails every `SAMSUNG` charge (F19, a card
//! outage: 500 before anything is created).

use pg_client::{CallPath, CardType, ChargeOutcome, PaymentGateway, PgClient};
use seawall::circuit_breaker::State;
use seawall::keyed::KeyedConfig;

use crate::helpers::{fast_config, request, sim, spawn, user};

const ROUNDS: usize = 10;
const CARD_TYPES: [CardType; 3] = [CardType::Samsung, CardType::Kb, CardType::Hyundai];

/// Charges `ROUNDS` orders of each card type, interleaved; returns the accepted ones by type.
async fn charge_rounds(client: &PgClient, prefix: &str) -> [usize; 3] {
    let mut accepted = [0; 3];
    for round in 0..ROUNDS {
        for (index, card_type) in CARD_TYPES.iter().enumerate() {
            let mut order = request(&format!("{prefix}-{round}-{}", card_type.as_str()));
            order.card_type = card_type.clone();
            match client.request_payment(&user(), &order).await {
                Ok(ChargeOutcome::Accepted(_)) => accepted[index] += 1,
                Ok(ChargeOutcome::Uncertain(uncertain)) => {
                    panic!("a card outage creates nothing: {uncertain:?}")
                }
                // Not reached (the outage), or rejected by an open breaker.
                Err(error) => assert!(
                    error.is_not_reached() || error.is_rejected(),
                    "{card_type}: {error:?}"
                ),
            }
        }
    }
    accepted
}

#[tokio::test]
async fn with_one_card_type_failing_orders_with_the_other_card_types_keep_succeeding() {
    let pg = spawn(sim()).await;
    pg.set_card_outage(pg_simulator::CardType::Samsung, 1.0)
        .unwrap();
    let client = PgClient::builder(fast_config(&pg.base_url(), "by-card"))
        .charge_breakers_by_card_type(KeyedConfig::with_max_keys(16))
        .build()
        .unwrap();

    let accepted = charge_rounds(&client, "order-keyed").await;
    println!("keyed breakers: accepted SAMSUNG/KB/HYUNDAI = {accepted:?} of {ROUNDS} each");

    assert_eq!(accepted, [0, ROUNDS, ROUNDS], "SAMSUNG, KB, HYUNDAI");
    let breakers = client.card_type_breakers().unwrap();
    assert_eq!(breakers.get(&CardType::Samsung).state(), State::Open);
    assert_eq!(
        breakers.get(&CardType::Samsung).name(),
        "by-card-charge[SAMSUNG]"
    );
    assert_eq!(breakers.get(&CardType::Kb).state(), State::Closed);
    assert_eq!(breakers.get(&CardType::Hyundai).state(), State::Closed);
    assert_eq!(
        client.circuit_breaker(CallPath::Charge).state(),
        State::Closed,
        "the path's own breaker saw no charge"
    );
    // The open breaker kept most SAMSUNG charges off the network: 3 attempts a charge until
    // its window of 10 filled, then none.
    let samsung_attempts = pg
        .fault_log()
        .iter()
        .filter(|record| record.fault == pg_simulator::Fault::CardOutage)
        .count();
    println!("SAMSUNG attempts that reached the PG: {samsung_attempts}");
    assert!(
        samsung_attempts <= 12,
        "{samsung_attempts} SAMSUNG attempts reached the PG"
    );
}

#[tokio::test]
async fn with_one_shared_breaker_one_card_types_outage_cuts_off_every_card_type() {
    // The control: the same traffic through the path's single breaker.
    let pg = spawn(sim()).await;
    pg.set_card_outage(pg_simulator::CardType::Samsung, 1.0)
        .unwrap();
    let client = crate::helpers::client(fast_config(&pg.base_url(), "shared"));

    let accepted = charge_rounds(&client, "order-shared").await;
    println!("one shared breaker: accepted SAMSUNG/KB/HYUNDAI = {accepted:?} of {ROUNDS} each");

    assert_eq!(
        client.circuit_breaker(CallPath::Charge).state(),
        State::Open
    );
    assert!(
        accepted[1] < ROUNDS && accepted[2] < ROUNDS,
        "KB and HYUNDAI were cut off too: {accepted:?}"
    );
}

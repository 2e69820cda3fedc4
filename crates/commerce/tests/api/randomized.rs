//! A seeded run of a few hundred orders against a PG with mixed faults; at the end every
//! order is final (or explicitly under review), nobody is charged twice, stock is conserved.

use commerce::persistence;
use std::collections::HashMap;
use std::time::Duration;

use pg_simulator::{Fault, Latency, TransactionStatus};
use serde_json::Value;

use crate::helpers::{card, order_body, pause, points, spawn_app_with};

/// A tiny deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ORDERS: usize = 240;
const CONCURRENCY: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_random_run_with_mixed_faults_ends_final_with_no_double_charge_and_stock_conserved()
 {
    // Arrange: canonical outcomes, 20 % failures before create, and a mix of faults.
    let app = spawn_app_with(
        |sim| {
            sim.seed(2024)
                .outcome_weights(70, 20, 10)
                .request_fail_rate(0.2)
                .latency(Latency::uniform(Duration::ZERO..=Duration::from_millis(20)))
                .processing_delay(Duration::ZERO..=Duration::from_millis(50))
                .fault_rate(Fault::DropCallback, 0.15)
                .fault_rate(Fault::ChargeButTimeout, 0.05)
                .fault_rate(Fault::ErrorAfterCreate, 0.05)
                .fault_rate(Fault::ResetAfterCreate, 0.03)
                .fault_rate(Fault::DuplicateCallback, 0.10)
                .fault_rate(Fault::ConflictingCallback, 0.05)
                .fault_rate(Fault::PendingCallback, 0.05)
                .fault_rate(Fault::Stuck, 0.02)
                .fault_params(|f| f.charge_but_timeout_delay = Duration::from_millis(800))
        },
        |s| {
            s.gateway.client.charge.read_timeout = Duration::from_millis(300);
            s.recovery.not_found_grace_ms = 300;
            s.recovery.deadline_ms = 1_500;
        },
    )
    .await;
    let db = app.handle.state.db.clone();
    let initial: HashMap<i64, i64> = persistence::products(&mut db.reader().await.unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.id.get(), p.stock))
        .collect();

    // Act: ORDERS orders, CONCURRENCY at a time, seeded choices.
    let mut rng = Rng(7);
    let plans: Vec<(i64, Value)> = (0..ORDERS)
        .map(|_| {
            let user = 1 + i64::try_from(rng.below(2)).unwrap();
            let product = 1 + i64::try_from(rng.below(5)).unwrap();
            let quantity = 1 + i64::try_from(rng.below(3)).unwrap();
            let payment = if rng.below(5) == 0 {
                points()
            } else {
                card("1234-5678-9012-3456")
            };
            (user, order_body(product, quantity, payment))
        })
        .collect();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for chunk in plans.chunks(CONCURRENCY) {
        let mut tasks = Vec::new();
        for (user, body) in chunk {
            let (user, body) = (*user, body.clone());
            let client = app.client.clone();
            let url = format!("{}/api/v1/orders", app.address);
            tasks.push(tokio::spawn(async move {
                client
                    .post(url)
                    .header("X-USER-ID", user.to_string())
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
        }
        for task in tasks {
            *statuses.entry(task.await.unwrap().as_u16()).or_default() += 1;
        }
    }
    assert!(
        statuses.keys().all(|s| [201, 202, 409, 503].contains(s)),
        "{statuses:?}"
    );

    // Let the PG finish what it will finish (stuck transactions never do), then reconcile
    // until nothing is open (bounded by the deadline plus margin).
    app.pg
        .wait_until(Duration::from_secs(10), |pg| {
            pg.ledger()
                .transactions()
                .iter()
                .all(|t| t.status.is_terminal() || t.faults.contains(&Fault::Stuck))
        })
        .await;
    let mut rounds = 0;
    loop {
        app.reconcile().await;
        rounds += 1;
        let open = persistence::all_payments(&mut db.reader().await.unwrap())
            .await
            .unwrap()
            .iter()
            .filter(|p| p.status.is_open())
            .count();
        if open == 0 || rounds > 40 {
            break;
        }
        pause(100).await;
    }

    // Assert 1: every order is final or explicitly under review.
    let orders = persistence::all_orders(&mut db.reader().await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        orders.len(),
        statuses
            .iter()
            .filter(|(s, _)| [201, 202, 503].contains(*s))
            .map(|(_, n)| n)
            .sum::<usize>()
    );
    let mut by_status: HashMap<&str, usize> = HashMap::new();
    for order in &orders {
        *by_status.entry(order.status.as_str()).or_default() += 1;
    }
    assert!(
        orders
            .iter()
            .all(|o| matches!(o.status.as_str(), "PAID" | "FAILED" | "NEEDS_REVIEW")),
        "{by_status:?} after {rounds} rounds"
    );

    // Assert 2: nobody is charged twice (extra charges were cancelled), and the PG agrees
    // with every final order.
    let ledger = app.pg.ledger();
    ledger.assert_no_double_charge();
    for order in orders.iter().filter(|o| o.method == "CARD") {
        let successes = ledger.successes_for_order(&order.order_ref);
        match order.status.as_str() {
            "PAID" => assert_eq!(successes, 1, "{order:?}"),
            "FAILED" => assert_eq!(successes, 0, "{order:?}"),
            _ => {}
        }
    }
    assert!(ledger.transactions().iter().all(|t| {
        t.status != TransactionStatus::Success
            || orders
                .iter()
                .any(|o| o.order_ref == t.order_id && o.status.as_str() != "FAILED")
    }));

    // Assert 3: stock is conserved: initial = on the shelf + held by unreleased orders.
    for (product, before) in initial {
        let now = persistence::product(&mut db.reader().await.unwrap(), product.into())
            .await
            .unwrap()
            .unwrap()
            .stock;
        let held = persistence::units_held(&mut db.reader().await.unwrap(), product.into())
            .await
            .unwrap();
        assert_eq!(before, now + held, "product {product}");
    }
    eprintln!(
        "random run: HTTP {statuses:?}, orders {by_status:?}, {rounds} recovery rounds, {} PG transactions",
        ledger.len()
    );
}

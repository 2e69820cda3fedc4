//! Several relays over one Postgres outbox (the claim of `persistence/outbox.rs`). On SQLite
//! the single writer serialises relays and no claim is taken, so these tests say so and pass.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use commerce::outbox::{Event, OutboxRelay, Subscriber};
use commerce::persistence;
use commerce::persistence::{Db, Engine, insert_outbox, now_ms};

use crate::helpers::{TestApp, spawn_app_with};

/// Every delivery, from whichever relay, in the order they happened.
#[derive(Debug, Default)]
struct SharedLog {
    deliveries: Mutex<Vec<(&'static str, Event)>>,
}

#[derive(Debug)]
struct Tagged {
    relay: &'static str,
    log: Arc<SharedLog>,
}

impl Subscriber for Tagged {
    fn handle(&self, event: &Event) -> Result<(), String> {
        self.log
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.relay, event.clone()));
        Ok(())
    }
}

/// A migrated Postgres database whose app has stopped (so only the test's relays deliver),
/// or `None` on SQLite.
async fn postgres_app() -> Option<(TestApp, Db)> {
    let mut app = spawn_app_with(|sim| sim, |_| {}).await;
    if app.handle.state.db.engine() == Engine::Sqlite {
        eprintln!("SQLite: one writer, no outbox claims; run test-postgres.sh for this test");
        return None;
    }
    app.stop().await;
    let db = Db::connect(&app.settings.database.options()).await.unwrap();
    Some((app, db))
}

async fn insert_events(db: &Db, orders: i64, per_order: i64) -> Vec<i64> {
    let mut tx = db.begin().await.unwrap();
    let mut ids = Vec::new();
    for n in 0..per_order {
        for order in 0..orders {
            let payload = serde_json::json!({ "orderId": order, "n": n });
            ids.push(
                insert_outbox(&mut tx, order, "OrderPaid", &payload, now_ms())
                    .await
                    .unwrap(),
            );
        }
    }
    tx.commit().await.unwrap();
    ids
}

fn relay(app: &TestApp, db: &Db, name: &'static str, log: &Arc<SharedLog>) -> OutboxRelay {
    let mut settings = app.settings.outbox.clone();
    settings.batch_size = 50;
    let subscriber: Arc<dyn Subscriber> = Arc::new(Tagged {
        relay: name,
        log: log.clone(),
    });
    OutboxRelay::new(db.clone(), vec![subscriber], settings).claiming_as(name)
}

async fn drain(relay: OutboxRelay, db: Db) {
    for _ in 0..10_000 {
        relay.relay_once().await.unwrap();
        if persistence::outbox_backlog(&mut db.reader().await.unwrap())
            .await
            .unwrap()
            .0
            == 0
        {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the backlog never drained");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_relays_over_one_database_deliver_every_event_exactly_once_in_order_per_order() {
    // Arrange: 3,000 events over 40 orders, interleaved; two relays of different instances.
    let Some((app, db)) = postgres_app().await else {
        return;
    };
    let ids = insert_events(&db, 40, 75).await;
    let log = Arc::new(SharedLog::default());
    let (a, b) = (
        relay(&app, &db, "instance-a", &log),
        relay(&app, &db, "instance-b", &log),
    );

    // Act: both drain at once.
    let (ra, rb) = tokio::join!(
        tokio::spawn(drain(a, db.clone())),
        tokio::spawn(drain(b, db.clone()))
    );
    ra.unwrap();
    rb.unwrap();

    // Assert: every event once, both relays did work, each order's events in id order.
    let deliveries = log.deliveries.lock().unwrap().clone();
    let delivered: Vec<i64> = deliveries.iter().map(|(_, e)| e.id).collect();
    let distinct: HashSet<i64> = delivered.iter().copied().collect();
    assert_eq!(delivered.len(), ids.len(), "no event delivered twice");
    assert_eq!(distinct, ids.iter().copied().collect::<HashSet<_>>());
    for name in ["instance-a", "instance-b"] {
        assert!(
            deliveries.iter().any(|(relay, _)| *relay == name),
            "{name} shared the work"
        );
    }
    let mut last: HashMap<i64, i64> = HashMap::new();
    for (_, event) in &deliveries {
        let before = last.insert(event.order_id, event.id).unwrap_or(0);
        assert!(
            before < event.id,
            "order {} went out of order",
            event.order_id
        );
    }
}

#[tokio::test]
async fn a_live_claim_keeps_other_relays_off_and_an_expired_one_is_taken_over() {
    // Arrange: 20 events of 4 orders; a live instance claims a batch and holds it.
    let Some((app, db)) = postgres_app().await else {
        return;
    };
    let ids = insert_events(&db, 4, 5).await;
    let now = now_ms();
    let held = persistence::claim_outbox_batch(
        &mut db.writer().await.unwrap(),
        "instance-live",
        3,
        now,
        now + 60_000,
    )
    .await
    .unwrap();
    assert_eq!(held.len(), 3);
    let log = Arc::new(SharedLog::default());
    let other = relay(&app, &db, "instance-other", &log);

    // Act: another relay passes while the claim lives.
    other.relay_once().await.unwrap();

    // Assert: only the order nobody holds went out (its events, in order).
    let held_orders: HashSet<i64> = held.iter().map(|row| row.aggregate_id).collect();
    let first: Vec<Event> = log
        .deliveries
        .lock()
        .unwrap()
        .iter()
        .map(|(_, e)| e.clone())
        .collect();
    assert_eq!(first.len(), 5, "{first:?}");
    assert!(first.iter().all(|e| !held_orders.contains(&e.order_id)));

    // Act: the holder dies and its claim lapses (here: released, then the whole rest claimed
    // by a dead instance whose claim has already expired, as after `outbox.claim_ttl_ms`).
    let expired = persistence::claim_outbox_batch(
        &mut db.writer().await.unwrap(),
        "instance-dead",
        20,
        now_ms(),
        now_ms() - 1,
    )
    .await
    .unwrap();
    assert_eq!(expired.len(), 0, "a live claim is not taken over early");
    let ids_held: Vec<i64> = held.iter().map(|row| row.id).collect();
    persistence::release_outbox_claims(&mut db.writer().await.unwrap(), "instance-live", &ids_held)
        .await
        .unwrap();
    let taken = persistence::claim_outbox_batch(
        &mut db.writer().await.unwrap(),
        "instance-dead",
        20,
        now_ms(),
        now_ms() - 1,
    )
    .await
    .unwrap();
    assert_eq!(taken.len(), 15, "the rest is claimed, already expired");
    drain(other, db.clone()).await;

    // Assert: the other relay took the expired claims over; every event delivered once.
    let delivered: Vec<i64> = log
        .deliveries
        .lock()
        .unwrap()
        .iter()
        .map(|(_, e)| e.id)
        .collect();
    assert_eq!(delivered.len(), ids.len());
    assert_eq!(
        delivered.iter().copied().collect::<HashSet<_>>(),
        ids.into_iter().collect::<HashSet<_>>()
    );
}

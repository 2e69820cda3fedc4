//! Measures the outbox relay's drain rate on SQLite: inserts N events (default 100,000) into a
//! fresh database, then relays them in passes of `--batch` (default 1,000) to the alert log
//! and reports events per second.
//!
//! ```sh
//! cargo run --release -p commerce --example outbox_drain -- 100000 1000
//! ```

use std::sync::Arc;
use std::time::Duration;

use commerce::configuration::OutboxSettings;
use commerce::outbox::{AlertLog, OutboxRelay, Subscriber};
use commerce::persistence;
use commerce::persistence::{self as db, Db, DbOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let events: i64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let batch: i64 = args.next().map_or(Ok(1_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let database = Db::connect(&DbOptions {
        url: format!("sqlite://{}", dir.path().join("drain.db").display()),
        write_connections: 4,
        read_connections: 4,
        acquire_timeout: Duration::from_secs(10),
        lock_timeout: Duration::from_secs(10),
    })
    .await?;

    let clock = seawall::Clock::default();
    let started = clock.now();
    let payload = serde_json::json!({"orderId": 1, "status": "PAID", "totalAmount": 89_000});
    let mut inserted = 0;
    while inserted < events {
        let mut tx = database.begin().await?;
        for _ in 0..1_000.min(events - inserted) {
            db::insert_outbox(&mut tx, inserted, "OrderPaid", &payload, db::now_ms()).await?;
            inserted += 1;
        }
        tx.commit().await?;
    }
    println!("inserted {events} events in {:.2?}", clock.now() - started);

    let settings = OutboxSettings {
        batch_size: batch,
        ..OutboxSettings::default()
    };
    let subscribers: Vec<Arc<dyn Subscriber>> = vec![Arc::new(AlertLog::default())];
    let relay = OutboxRelay::new(database.clone(), subscribers, settings);
    let started = clock.now();
    let mut published = 0;
    loop {
        let report = relay.relay_once().await?;
        if report.published == 0 {
            break;
        }
        published += report.published;
    }
    let elapsed = clock.now() - started;
    let (left, _) = persistence::outbox_backlog(&mut *database.reader().await?).await?;
    println!(
        "drained {published} events in {elapsed:.2?} (batch {batch}): {:.0} events/s; {left} left",
        published as f64 / elapsed.as_secs_f64()
    );
    database.close().await;
    Ok(())
}

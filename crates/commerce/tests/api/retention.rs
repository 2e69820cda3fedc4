use std::time::Duration;

use commerce::persistence;
use commerce::persistence::{Db, now_ms};
use reqwest::StatusCode;

use crate::helpers::{eventually, order_body, points, spawn_app, spawn_app_with};

const DAY_MS: i64 = 86_400_000;

/// Idempotency keys and published outbox events held now.
async fn retained(db: &Db) -> (i64, i64) {
    let mut conn = db.reader().await.unwrap();
    let keys = persistence::idempotency_key_count(&mut conn).await.unwrap();
    let events = persistence::published_event_count(&mut conn).await.unwrap();
    (keys, events)
}

#[tokio::test]
async fn old_idempotency_keys_and_published_events_are_pruned_and_nothing_else() {
    // Arrange: an order whose events were delivered, and one whose event cannot be delivered.
    let app = spawn_app().await;
    let placed = app
        .post_order(1, &order_body(1, 1, points()), Some("week-old"))
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    app.relay_outbox().await;
    app.events.fail_next(1_000);
    let placed = app
        .post_order(1, &order_body(2, 1, points()), Some("also-old"))
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    app.relay_outbox().await;
    let db = &app.handle.state.db;
    let (keys, published) = retained(db).await;
    assert_eq!(keys, 2);
    assert!(published > 0);
    let (undelivered, _) = persistence::outbox_backlog(&mut db.reader().await.unwrap())
        .await
        .unwrap();
    assert!(undelivered > 0);
    let retention = &app.handle.state.retention;

    // Act: a prune an hour later keeps everything; eight days later (default age: 7 days)
    // the keys and the delivered events are gone.
    let early = retention.run_once(now_ms() + DAY_MS / 24).await.unwrap();
    let late = retention.run_once(now_ms() + 8 * DAY_MS).await.unwrap();

    // Assert
    assert_eq!(early, commerce::retention::RetentionReport::default());
    assert_eq!(late.idempotency_keys, 2);
    assert_eq!(late.published_events, u64::try_from(published).unwrap());
    assert_eq!(retained(db).await, (0, 0));
    assert_eq!(
        persistence::outbox_backlog(&mut db.reader().await.unwrap())
            .await
            .unwrap()
            .0,
        undelivered
    );
    // A forgotten key names no order any more: another body with it is a new order.
    let reused = app
        .post_order(1, &order_body(3, 1, points()), Some("week-old"))
        .await;
    assert_eq!(reused.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_retention_job_prunes_by_itself_on_its_interval() {
    let app = spawn_app_with(
        |sim| sim,
        |s| {
            s.retention.interval_ms = 50;
            s.retention.idempotency_keys_ms = 1;
            s.retention.published_events_ms = 1;
        },
    )
    .await;
    let placed = app
        .post_order(1, &order_body(1, 1, points()), Some("short-lived"))
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let db = &app.handle.state.db;
    let pruned = eventually(Duration::from_secs(5), || async {
        (retained(db).await == (0, 0)).then_some(())
    })
    .await;
    assert!(pruned.is_some(), "{:?}", retained(db).await);
}

#[tokio::test]
async fn a_default_app_keeps_a_fresh_idempotency_key() {
    let app = spawn_app().await;
    app.post_order(1, &order_body(1, 1, points()), Some("fresh"))
        .await;
    let report = app.handle.state.retention.run_once(now_ms()).await.unwrap();
    assert_eq!(report.idempotency_keys, 0);
    let reused = app
        .post_order(1, &order_body(2, 1, points()), Some("fresh"))
        .await;
    assert_eq!(reused.status(), StatusCode::CONFLICT);
}

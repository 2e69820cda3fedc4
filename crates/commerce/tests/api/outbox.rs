use crate::helpers::{APPROVED_CARD, card, order_body, points, spawn_app};
use commerce::persistence;

#[tokio::test]
async fn outbox_events_are_delivered_in_order_at_least_once_and_retried_after_a_failure() {
    // Arrange: the subscriber fails its first two deliveries.
    let app = spawn_app().await;
    app.events.fail_next(2);

    // Act
    let (_, first) = app.place(1, &order_body(1, 1, points())).await;
    let (_, second) = app.place(1, &order_body(2, 1, card(APPROVED_CARD))).await;
    let id2 = second["orderId"].as_i64().unwrap();
    app.wait_for_order_status(1, id2, "PAID").await;
    let delivered = crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
        let events = app.events.events();
        events
            .iter()
            .any(|e| e.event_type == "OrderPaid" && e.order_id == id2)
            .then_some(events)
    })
    .await
    .expect("every event is delivered");

    // Assert: ids strictly increasing (id order, no duplicates), both orders announced.
    let ids: Vec<i64> = delivered.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(
        app.events.deliveries() > delivered.len() as u64,
        "the failed deliveries were retried"
    );
    let first_id = first["orderId"].as_i64().unwrap();
    assert_eq!(delivered[0].event_type, "OrderPaid");
    assert_eq!(delivered[0].order_id, first_id);
    let kinds: Vec<&str> = delivered
        .iter()
        .filter(|e| e.order_id == id2)
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"OrderPlaced"));
    assert!(kinds.contains(&"PaymentStatusChanged"));
    assert_eq!(kinds.last(), Some(&"OrderPaid"), "{kinds:?}");
}

#[tokio::test]
async fn a_pass_delivers_a_whole_batch_in_id_order_and_marks_it_published() {
    // Arrange: 1,200 events committed at once, and the next delivery fails.
    let app = spawn_app().await;
    let db = &app.handle.state.db;
    let mut tx = db.begin().await.unwrap();
    for order in 0..1_200 {
        commerce::persistence::insert_outbox(
            &mut tx,
            order,
            "OrderPaid",
            &serde_json::json!({ "orderId": order }),
            commerce::persistence::now_ms(),
        )
        .await
        .unwrap();
    }
    app.events.fail_next(1);
    tx.commit().await.unwrap();

    // Act: passes until the backlog is gone (the running relay takes part too).
    let drained = crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
        app.handle.state.outbox.relay_once().await.unwrap();
        let (left, _) = persistence::outbox_backlog(&mut db.reader().await.unwrap())
            .await
            .unwrap();
        (left == 0).then_some(())
    })
    .await;

    // Assert: everything delivered once to the deduping subscriber, in id order, after the
    // one retry; nothing left unpublished.
    assert!(drained.is_some(), "the backlog drains");
    let ids: Vec<i64> = app.events.events().iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 1_200);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(
        app.events.deliveries() > 1_200,
        "the failed delivery was retried"
    );
}

use commerce::domain::UserId;
use commerce::persistence;
use pg_simulator::Fault;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{APPROVED_CARD, card, first_payment, order_body, points, spawn_app};

#[tokio::test]
async fn a_point_order_is_paid_at_once_and_deducts_stock_and_points() {
    // Arrange
    let app = spawn_app().await;
    let stock = app.stock(1).await;
    let points_before = persistence::user_points(
        &mut app.handle.state.db.reader().await.unwrap(),
        UserId::new(1),
    )
    .await
    .unwrap()
    .unwrap();

    // Act
    let (status, order) = app.place(1, &order_body(1, 2, points())).await;

    // Assert
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "PAID");
    assert_eq!(order["totalAmount"], 2 * 89_000);
    assert_eq!(first_payment(&order)["status"], "SUCCESS");
    assert_eq!(app.stock(1).await, stock - 2);
    let points_after = persistence::user_points(
        &mut app.handle.state.db.reader().await.unwrap(),
        UserId::new(1),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(points_after, points_before - 2 * 89_000);
    assert_eq!(
        app.pg.stats().payment_requests,
        0,
        "a point order never calls the PG"
    );
}

#[tokio::test]
async fn a_point_order_without_enough_points_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let stock = app.stock(3).await;
    // User 3 has 5,000 points; a monitor costs 329,000.
    let (status, body) = app.place(3, &order_body(3, 1, points())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "INSUFFICIENT_POINTS");
    assert_eq!(app.stock(3).await, stock, "the stock taken is rolled back");
}

#[tokio::test]
async fn a_card_order_is_accepted_then_settled_by_the_callback() {
    // Arrange
    let app = spawn_app().await;
    let stock = app.stock(2).await;

    // Act
    let (status, order) = app.place(1, &order_body(2, 1, card(APPROVED_CARD))).await;

    // Assert: accepted, pending, stock reserved, card masked
    assert_eq!(status, StatusCode::ACCEPTED, "{order}");
    assert_eq!(order["status"], "PAYMENT_PENDING");
    let payment = first_payment(&order);
    assert_eq!(payment["status"], "PENDING");
    assert_eq!(payment["cardNo"], "4000-00**-****-0001");
    assert!(payment["transactionKey"].is_string());
    assert_eq!(app.stock(2).await, stock - 1);

    // The callback settles it.
    let id = order["orderId"].as_i64().unwrap();
    let paid = app.wait_for_order_status(1, id, "PAID").await;
    assert_eq!(first_payment(&paid)["status"], "SUCCESS");
    let history = app
        .history(first_payment(&paid)["paymentId"].as_i64().unwrap())
        .await;
    let sources: Vec<(&str, &str)> = history
        .iter()
        .map(|(_, to, s)| (to.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        sources,
        [
            ("REQUESTED", "request"),
            ("PENDING", "request"),
            ("SUCCESS", "callback")
        ]
    );
    assert_eq!(
        app.stock(2).await,
        stock - 1,
        "a paid order keeps its stock"
    );
}

#[tokio::test]
async fn a_declined_card_fails_the_order_and_releases_the_stock() {
    let app = spawn_app().await;
    let stock = app.stock(2).await;
    // …-0002: always "invalid card".
    let (status, order) = app
        .place(1, &order_body(2, 3, card("4000-0000-0000-0002")))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = order["orderId"].as_i64().unwrap();
    let failed = app.wait_for_order_status(1, id, "FAILED").await;
    assert_eq!(first_payment(&failed)["status"], "FAILED");
    assert_eq!(app.stock(2).await, stock);
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_order() {
    let app = spawn_app().await;
    let body = order_body(1, 1, card(APPROVED_CARD));

    let first = app.post_order(1, &body, Some("order-abc-1")).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    let second = app.post_order(1, &body, Some("order-abc-1")).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.headers()["Idempotent-Replayed"], "true");
    let second: Value = second.json().await.unwrap();

    assert_eq!(first["orderId"], second["orderId"]);
    assert_eq!(
        app.pg.stats().payment_requests,
        1,
        "one charge request only"
    );
    assert_eq!(
        persistence::all_orders(&mut app.handle.state.db.reader().await.unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn concurrent_requests_with_one_idempotency_key_make_one_order() {
    let app = spawn_app().await;
    let body = order_body(1, 1, card(APPROVED_CARD));
    let (a, b, c, d, e) = tokio::join!(
        app.post_order(1, &body, Some("same-key")),
        app.post_order(1, &body, Some("same-key")),
        app.post_order(1, &body, Some("same-key")),
        app.post_order(1, &body, Some("same-key")),
        app.post_order(1, &body, Some("same-key")),
    );
    let mut ids = Vec::new();
    for response in [a, b, c, d, e] {
        assert!(response.status().is_success(), "{}", response.status());
        let body: Value = response.json().await.unwrap();
        ids.push(body["orderId"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(app.pg.stats().payment_requests, 1);
}

#[tokio::test]
async fn reusing_an_idempotency_key_for_another_order_is_a_conflict() {
    let app = spawn_app().await;
    let first = app
        .post_order(1, &order_body(1, 1, points()), Some("k-1"))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = app
        .post_order(1, &order_body(2, 1, points()), Some("k-1"))
        .await;
    assert_eq!(second.status(), StatusCode::CONFLICT);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["code"], "IDEMPOTENCY_KEY_REUSED");
}

#[tokio::test]
async fn bad_input_gets_a_4xx_json_error_with_a_stable_code() {
    let app = spawn_app().await;
    let cases: Vec<(Option<&str>, Value, StatusCode, &str)> = vec![
        (
            None,
            order_body(1, 1, points()),
            StatusCode::BAD_REQUEST,
            "MISSING_USER_ID",
        ),
        (
            Some("abc"),
            order_body(1, 1, points()),
            StatusCode::BAD_REQUEST,
            "INVALID_USER_ID",
        ),
        (
            Some("1"),
            json!({"items": []}),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            Some("1"),
            order_body(1, 0, points()),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            Some("1"),
            order_body(1, -3, points()),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            Some("1"),
            json!({"items": [], "payment": {"method": "POINT"}}),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            Some("1"),
            order_body(1, 1, json!({"method": "BITCOIN"})),
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
        ),
        (
            Some("1"),
            order_body(1, 1, card("1234567890123456")),
            StatusCode::BAD_REQUEST,
            "INVALID_CARD",
        ),
        (
            Some("1"),
            order_body(
                1,
                1,
                json!({"method": "CARD", "cardType": "VISA", "cardNo": "1234-5678-9012-3456"}),
            ),
            StatusCode::BAD_REQUEST,
            "INVALID_CARD",
        ),
        (
            Some("1"),
            order_body(999, 1, points()),
            StatusCode::NOT_FOUND,
            "PRODUCT_NOT_FOUND",
        ),
        (
            Some("42"),
            order_body(1, 1, points()),
            StatusCode::NOT_FOUND,
            "USER_NOT_FOUND",
        ),
        (
            Some("1"),
            order_body(3, 1000, card("1234-5678-9012-3456")),
            StatusCode::CONFLICT,
            "OUT_OF_STOCK",
        ),
    ];
    for (user, body, expected, code) in cases {
        let mut request = app
            .client
            .post(format!("{}/api/v1/orders", app.address))
            .json(&body);
        if let Some(user) = user {
            request = request.header("X-USER-ID", user);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "{body}");
        let text = response.text().await.unwrap();
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["code"], code, "{body} → {text}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(
            !text.contains("1234567890123456") && !text.contains("5678-9012"),
            "{text}"
        );
    }
    // Not JSON at all.
    let response = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .header("X-USER-ID", "1")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "INVALID_REQUEST");
    // Reading another user's order looks like a missing one; a bad id is a 400.
    let (_, order) = app.place(1, &order_body(1, 1, points())).await;
    let id = order["orderId"].as_i64().unwrap();
    assert_eq!(app.order(2, id).await["code"], "ORDER_NOT_FOUND");
    let response = app
        .client
        .get(format!("{}/api/v1/orders/abc", app.address))
        .header("X-USER-ID", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        app.pg.stats().payment_requests,
        0,
        "bad input never reaches the PG"
    );
}

#[tokio::test]
async fn products_can_be_listed_and_read_one_by_one() {
    let app = spawn_app().await;
    let list = app.get_json("/api/v1/products").await;
    assert_eq!(list.as_array().unwrap().len(), 5);
    assert_eq!(list[0]["price"], 89_000);
    let missing = app
        .client
        .get(format!("{}/api/v1/products/99", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["code"], "PRODUCT_NOT_FOUND");
}

#[tokio::test]
async fn a_card_order_refused_with_503_can_be_retried_with_the_same_idempotency_key() {
    // Arrange: the PG answers every charge with a 500 before creating anything.
    let app = spawn_app().await;
    let stock = app.stock(1).await;
    let body = order_body(1, 1, card(APPROVED_CARD));
    app.pg
        .set_fault_rate(Fault::ErrorBeforeCreate, 1.0)
        .unwrap();
    let refused = app.post_order(1, &body, Some("buy-once")).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("Retry-After"));
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["code"], "PAYMENT_TEMPORARILY_UNAVAILABLE");
    let advice = error["message"].as_str().unwrap();
    assert!(
        advice.contains("same Idempotency-Key") && advice.contains("Retry-After"),
        "{advice}"
    );

    // Act: the PG recovers and the client does what it was told, three times at once.
    app.pg
        .set_fault_rate(Fault::ErrorBeforeCreate, 0.0)
        .unwrap();
    let (a, b, c) = tokio::join!(
        app.post_order(1, &body, Some("buy-once")),
        app.post_order(1, &body, Some("buy-once")),
        app.post_order(1, &body, Some("buy-once")),
    );

    // Assert: one new order, placed and paid; the failure is never replayed.
    let mut placed = Vec::new();
    for response in [a, b, c] {
        let status = response.status();
        let replayed = response.headers().contains_key("Idempotent-Replayed");
        let order: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{status} {order}");
        assert_ne!(order["status"], "FAILED", "{order}");
        placed.push((status, replayed, order["orderId"].as_i64().unwrap()));
    }
    let new_order = placed[0].2;
    assert!(
        placed.iter().all(|(_, _, id)| *id == new_order),
        "{placed:?}"
    );
    assert_eq!(
        placed
            .iter()
            .filter(|(status, replayed, _)| *status == StatusCode::ACCEPTED && !replayed)
            .count(),
        1,
        "{placed:?}"
    );
    app.wait_for_order_status(1, new_order, "PAID").await;
    let again = app.post_order(1, &body, Some("buy-once")).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["orderId"], new_order);
    assert_eq!(app.stock(1).await, stock - 1);
    assert_eq!(app.pg.stats().payments_created, 1);
}

#[tokio::test]
async fn reusing_an_idempotency_key_with_another_card_that_masks_alike_is_a_conflict() {
    // Arrange: an order paid with one card; a second card with the same BIN and last four
    // digits (both show as 4000-00**-****-0001).
    let app = spawn_app().await;
    let first = app
        .post_order(
            1,
            &order_body(1, 1, card("4000-0012-3456-0001")),
            Some("k-card"),
        )
        .await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);

    // Act
    let other_card = app
        .post_order(
            1,
            &order_body(1, 1, card("4000-0098-7654-0001")),
            Some("k-card"),
        )
        .await;
    let same_card = app
        .post_order(
            1,
            &order_body(1, 1, card("4000-0012-3456-0001")),
            Some("k-card"),
        )
        .await;

    // Assert: the other card is another request; the same one is replayed.
    assert_eq!(other_card.status(), StatusCode::CONFLICT);
    let error: Value = other_card.json().await.unwrap();
    assert_eq!(error["code"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(same_card.status(), StatusCode::OK);
    assert_eq!(app.pg.stats().payment_requests, 1);
    // The full numbers are in no file of the database (SQLite runs).
    if let Some(path) = app.settings.database.url.strip_prefix("sqlite://") {
        for file in [path.to_owned(), format!("{path}-wal")] {
            let bytes = std::fs::read(&file).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            for middle in ["0012-3456", "00123456", "0098-7654", "00987654"] {
                assert!(!text.contains(middle), "{middle} in {file}");
            }
        }
    }
}

#[tokio::test]
async fn an_idempotency_key_still_replays_after_a_restart() {
    // The fingerprint's key is kept with the data, so a restarted service recognises the
    // request it answered before.
    let app = spawn_app().await;
    let body = order_body(1, 1, card("4000-0012-3456-0001"));
    let first = app.post_order(1, &body, Some("before-restart")).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();

    let app = app.restart().await;
    let again = app.post_order(1, &body, Some("before-restart")).await;

    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["orderId"], first["orderId"]);
}

#[tokio::test]
async fn an_unknown_user_is_refused_first_whatever_else_is_wrong_with_the_order() {
    // The write path asks who the user is only when something is refused: the answer must
    // still name the user first, as when it asked up front.
    let app = spawn_app().await;
    let stock = app.stock(1).await;
    let cases = [
        order_body(999, 1, points()),
        order_body(1, 1000, points()),
        order_body(999, 1, card(APPROVED_CARD)),
        order_body(1, 1000, card(APPROVED_CARD)),
        json!({"items": [{"productId": 1, "quantity": 1}, {"productId": 999, "quantity": 1}],
               "payment": points()}),
    ];
    for body in cases {
        let (status, answer) = app.place(42, &body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body} → {answer}");
        assert_eq!(answer["code"], "USER_NOT_FOUND", "{body}");
    }
    assert_eq!(app.stock(1).await, stock, "nothing taken is kept");
}

#[tokio::test]
async fn a_point_order_of_several_lines_records_each_line_at_its_price_in_one_write() {
    let app = spawn_app().await;
    let (one, two) = (app.stock(1).await, app.stock(2).await);
    let body = json!({"items": [{"productId": 1, "quantity": 2}, {"productId": 2, "quantity": 1}],
                      "payment": points()});

    let (status, order) = app.place(1, &body).await;

    assert_eq!(status, StatusCode::CREATED, "{order}");
    let items = order["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["productId"], 1);
    assert_eq!(items[0]["quantity"], 2);
    assert_eq!(items[0]["unitPrice"], 89_000);
    assert_eq!(items[1]["productId"], 2);
    let second_price = items[1]["unitPrice"].as_i64().unwrap();
    assert_eq!(order["totalAmount"], 2 * 89_000 + second_price);
    assert_eq!(
        order["orderRef"],
        format!("ORD-{:06}", order["orderId"].as_i64().unwrap())
    );
    assert_eq!((app.stock(1).await, app.stock(2).await), (one - 2, two - 1));
    assert_eq!(first_payment(&order)["status"], "SUCCESS");
}

#[tokio::test]
async fn a_line_out_of_stock_rolls_back_the_lines_before_it() {
    let app = spawn_app().await;
    let (one, three) = (app.stock(1).await, app.stock(3).await);
    let body = json!({"items": [{"productId": 1, "quantity": 1}, {"productId": 3, "quantity": 1000}],
                      "payment": points()});

    let (status, answer) = app.place(1, &body).await;

    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "OUT_OF_STOCK");
    assert_eq!((app.stock(1).await, app.stock(3).await), (one, three));
}

//! The API's answers to careless and hostile requests: always JSON with a stable code, never
//! an echo of the input, and the right status.

use commerce::persistence;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{APPROVED_CARD, TestApp, card, order_body, points, spawn_app, spawn_app_with};

/// Sends a raw order body as user 1 and returns (status, body text).
async fn post_raw_order(app: &TestApp, body: String) -> (StatusCode, String) {
    let response = app
        .client
        .post(format!("{}/api/v1/orders", app.address))
        .header("X-USER-ID", "1")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The `code` and `message` of a JSON error body.
fn code_and_message(body: &str) -> (String, String) {
    let error: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    (
        error["code"].as_str().unwrap_or_default().to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn an_oversized_body_gets_a_json_413_on_every_route() {
    let app = spawn_app().await;
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(10 * 1024 * 1024));
    for path in ["/api/v1/orders", "/api/v1/payments/callback"] {
        let response = app
            .client
            .post(format!("{}{path}", app.address))
            .header("X-USER-ID", "1")
            .header("Content-Type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let (code, _) = code_and_message(&response.text().await.unwrap());
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(code, "PAYLOAD_TOO_LARGE", "{path}");
    }
}

#[tokio::test]
async fn a_wrong_method_gets_a_json_405_that_says_which_methods_are_allowed() {
    let app = spawn_app().await;
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/payments/callback"),
        (reqwest::Method::DELETE, "/api/v1/orders"),
        (reqwest::Method::PUT, "/api/v1/products"),
    ] {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(response.headers().contains_key("Allow"), "{method} {path}");
        let (code, message) = code_and_message(&response.text().await.unwrap());
        assert_eq!(code, "METHOD_NOT_ALLOWED", "{method} {path}");
        assert!(!message.is_empty());
    }
}

#[tokio::test]
async fn parser_errors_name_the_field_and_the_problem_without_echoing_input_or_masking_positions() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"items": [{"productId": 1, "quantity": "abc-4111111111111111"}],
                   "payment": {"method": "POINT"}}),
            "items[0].quantity",
            "expected i64",
            "4111111111111111",
        ),
        (
            json!({"items": [{"productId": 1, "quantity": 1}], "payment": {"method": "BITCOIN"}}),
            "payment.method",
            "expected `POINT` or `CARD`",
            "BITCOIN",
        ),
        (
            json!({"items": [{"productId": 1, "quantity": 1}],
                   "payment": {"method": "CARD", "cardType": "SAMSUNG", "cardNo": 4_111_111_111_111_111_u64}}),
            "payment.cardNo",
            "expected a string",
            "4111111111111111",
        ),
        (
            json!({"items": [{"productId": 1, "quantity": 1}], "payment": {"method": "POINT"},
                   "<script>alert(1)</script>": true}),
            "unknown field",
            "expected `items` or `payment`",
            "script",
        ),
        (
            json!({"items": [{"productId": 1, "quantity": 1, "discount": 99}],
                   "payment": {"method": "POINT"}}),
            "items[0]",
            "unknown field",
            "discount",
        ),
    ];
    for (body, place, problem, secret) in cases {
        let (status, text) = post_raw_order(&app, body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (code, message) = code_and_message(&text);
        assert_eq!(code, "INVALID_REQUEST", "{message}");
        assert!(message.contains(place), "{place:?} not in {message:?}");
        assert!(message.contains(problem), "{problem:?} not in {message:?}");
        assert!(!text.contains(secret), "{secret:?} echoed: {text}");
        assert!(!message.contains('*'), "masked: {message}");
        assert!(message.contains("at line 1 column "), "{message}");
    }
    // Syntax errors say where, with the real numbers.
    let (status, text) = post_raw_order(&app, "{\"items\": [}".to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, message) = code_and_message(&text);
    assert_eq!(
        message,
        "the body is not valid JSON: expected value at line 1 column 12"
    );
}

#[tokio::test]
async fn a_cvv_anywhere_in_an_order_is_refused_with_a_message_saying_never_to_send_one() {
    let app = spawn_app().await;
    let bodies = [
        json!({"items": [{"productId": 1, "quantity": 1}],
               "payment": {"method": "CARD", "cardType": "SAMSUNG", "cardNo": APPROVED_CARD, "cvv": "987"}}),
        json!({"items": [{"productId": 1, "quantity": 1}],
               "payment": {"method": "POINT", "cvc": "987"}}),
        json!({"items": [{"productId": 1, "quantity": 1}],
               "payment": {"method": "CARD", "cardType": "SAMSUNG", "cardNo": APPROVED_CARD, "securityCode": 987}}),
        json!({"items": [{"productId": 1, "quantity": 1}], "payment": {"method": "POINT"},
               "card_cvv2": "987"}),
    ];
    for body in bodies {
        let (status, text) = post_raw_order(&app, body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {text}");
        let (_, message) = code_and_message(&text);
        assert!(message.contains("never send a CVV"), "{message}");
        assert!(!text.contains("987"), "{text}");
    }
    // Other unknown fields inside `payment` are refused too.
    let (status, _) = post_raw_order(
        &app,
        json!({"items": [{"productId": 1, "quantity": 1}],
               "payment": {"method": "POINT", "coupon": "FREE"}})
        .to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        persistence::all_orders(&mut app.handle.state.db.reader().await.unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.pg.stats().payment_requests, 0);
}

#[tokio::test]
async fn x_user_id_is_a_plain_decimal_number() {
    let app = spawn_app().await;
    for user in [
        "+1",
        "1.0",
        "1e0",
        "0x1",
        "01",
        "1 1",
        "-1",
        "0",
        "9223372036854775808",
    ] {
        let response = app
            .client
            .post(format!("{}/api/v1/orders", app.address))
            .header("X-USER-ID", user)
            .json(&order_body(1, 1, points()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{user:?}");
        let (code, _) = code_and_message(&response.text().await.unwrap());
        assert_eq!(code, "INVALID_USER_ID", "{user:?}");
    }
    assert!(
        persistence::all_orders(&mut app.handle.state.db.reader().await.unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn admin_durations_beyond_365_days_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let url = format!("{}/api/v1/admin/circuit-breakers/pg-charge", app.address);
    let live = app
        .handle
        .state
        .registries
        .circuit_breakers()
        .find("pg-charge")
        .unwrap();
    let before = live.config();
    for (field, value) in [
        ("waitDurationInOpenStateMs", json!(u64::MAX)),
        ("waitDurationInOpenStateMs", json!(31_536_000_001_u64)),
        ("slowCallDurationThresholdMs", json!(u64::MAX)),
    ] {
        let response = app
            .admin(app.client.put(&url))
            .json(&json!({ field: value }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}"
        );
        let (code, message) = code_and_message(&response.text().await.unwrap());
        assert_eq!(code, "INVALID_CONFIG");
        assert!(message.starts_with(field), "{message}");
    }
    assert_eq!(live.config(), before);
}

#[tokio::test]
async fn resolving_with_a_status_that_is_not_a_resolution_gets_its_own_code() {
    let app = spawn_app().await;
    let (_, order) = app.place(1, &order_body(1, 1, card(APPROVED_CARD))).await;
    let payment_id = order["payments"][0]["paymentId"].as_i64().unwrap();
    for status in ["PENDING", "BOGUS"] {
        let response = app
            .admin(app.client.post(format!(
                "{}/api/v1/admin/payments/{payment_id}/resolve",
                app.address
            )))
            .json(&json!({"status": status, "reason": "operator typo"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{status}"
        );
        let (code, message) = code_and_message(&response.text().await.unwrap());
        assert_eq!(code, "INVALID_RESOLUTION", "{status}");
        assert!(message.contains("SUCCESS, FAILED or CANCELED"), "{message}");
        assert!(!message.contains("BOGUS"), "{message}");
    }
}

#[tokio::test]
async fn a_locked_database_gets_a_503_with_retry_after_not_a_500() {
    use sqlx::{Connection, Executor};
    // Arrange: writes wait at most 200 ms for a lock; another process holds the write lock.
    let app = spawn_app_with(|sim| sim, |s| s.database.lock_timeout_ms = 200).await;
    sqlx::any::install_default_drivers();
    let url = app.settings.database.url.clone();
    let mut other = sqlx::AnyConnection::connect(&url).await.unwrap();
    if url.starts_with("sqlite:") {
        other.execute("BEGIN EXCLUSIVE").await.unwrap();
    } else {
        other.execute("BEGIN").await.unwrap();
        other
            .execute("LOCK TABLE products IN EXCLUSIVE MODE")
            .await
            .unwrap();
    }

    // Act
    let (status, body) = app.place(1, &order_body(1, 1, points())).await;
    let response = app.post_order(1, &order_body(1, 1, points()), None).await;
    let retry_after = response.headers().get("Retry-After").cloned();

    // Assert: a 503 the client can act on; once the lock is gone, the order goes through.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "TEMPORARILY_UNAVAILABLE", "{body}");
    assert!(retry_after.is_some());
    other.execute("ROLLBACK").await.unwrap();
    drop(other);
    crate::helpers::pause(10).await;
    let (status, body) = app.place(1, &order_body(1, 1, points())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn admin_endpoints_need_the_token() {
    let app = spawn_app().await;
    for request in [
        app.client
            .get(format!("{}/api/v1/admin/circuit-breakers", app.address)),
        app.client
            .post(format!("{}/api/v1/admin/reconcile", app.address)),
        app.client
            .get(format!("{}/api/v1/admin/circuit-breakers", app.address))
            .bearer_auth("wrong-token"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "UNAUTHORIZED");
    }
}

#[tokio::test]
async fn circuit_breakers_are_listed_with_state_config_and_metrics() {
    let app = spawn_app().await;
    let breakers: Value = app
        .admin(
            app.client
                .get(format!("{}/api/v1/admin/circuit-breakers", app.address)),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = breakers
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    // The one-time path's breakers, then the subscriptions' batch path.
    assert_eq!(
        names,
        [
            "pg-charge",
            "pg-query",
            "pg-subscription",
            "pg-subscription-query"
        ]
    );
    assert_eq!(breakers[0]["state"], "CLOSED");
    assert_eq!(breakers[0]["config"]["slowCallDurationThresholdMs"], 1000);
    assert_eq!(breakers[0]["metrics"]["bufferedCalls"], 0);
}

#[tokio::test]
async fn a_breaker_can_be_reconfigured_live_and_bad_values_name_the_field() {
    let app = spawn_app().await;
    let url = format!("{}/api/v1/admin/circuit-breakers/pg-charge", app.address);

    let response = app
        .admin(app.client.put(&url))
        .json(&json!({"slowCallDurationThresholdMs": 800, "failureRateThreshold": 60.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["config"]["slowCallDurationThresholdMs"], 800);
    assert_eq!(body["config"]["failureRateThreshold"], 60.0);
    let live = app
        .handle
        .state
        .registries
        .circuit_breakers()
        .find("pg-charge")
        .unwrap();
    assert_eq!(
        live.config().slow_call_duration_threshold,
        Some(std::time::Duration::from_millis(800))
    );

    for (bad, field) in [
        (
            json!({"failureRateThreshold": 150.0}),
            "failureRateThreshold",
        ),
        (
            json!({"slowCallDurationThresholdMs": 0}),
            "slowCallDurationThresholdMs",
        ),
        (json!({"slidingWindowSize": 0}), "slidingWindowSize"),
        (json!({"state": "SIDEWAYS"}), "state"),
    ] {
        let response = app
            .admin(app.client.put(&url))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "INVALID_CONFIG");
        assert!(
            error["message"].as_str().unwrap().starts_with(field),
            "{error}"
        );
    }
    let unknown_field = app
        .admin(app.client.put(&url))
        .json(&json!({"colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), StatusCode::BAD_REQUEST);
    let missing = app
        .admin(app.client.put(format!(
            "{}/api/v1/admin/circuit-breakers/nope",
            app.address
        )))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // Unchanged by the rejected requests.
    assert_eq!(live.config().failure_rate_threshold, 60.0);
}

#[tokio::test]
async fn forcing_the_breaker_open_makes_card_orders_answer_503() {
    let app = spawn_app().await;
    let response = app
        .admin(app.client.put(format!(
            "{}/api/v1/admin/circuit-breakers/pg-charge",
            app.address
        )))
        .json(&json!({"state": "FORCED_OPEN"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = app
        .place(
            1,
            &crate::helpers::order_body(1, 1, crate::helpers::card(crate::helpers::APPROVED_CARD)),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(app.pg.stats().payment_requests, 0);
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let app = spawn_app().await;
    let health = app.get_json("/health").await;
    assert_eq!(health["status"], "UP");
    assert_eq!(health["circuitBreakers"]["pg-charge"], "CLOSED");
    app.place(
        1,
        &crate::helpers::order_body(1, 1, crate::helpers::points()),
    )
    .await;
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("seawall_circuitbreaker_state"),
        "{metrics}"
    );
    assert!(
        metrics.contains("commerce_orders_placed_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_operator_resolves_a_payment_under_review() {
    let app = spawn_app_with_deadline().await;
    let (_, order) = app
        .place(
            1,
            &crate::helpers::order_body(1, 1, crate::helpers::card("4000-0000-0000-0004")),
        )
        .await;
    let id = order["orderId"].as_i64().unwrap();
    crate::helpers::pause(250).await;
    app.reconcile().await;
    let review = app.order(1, id).await;
    assert_eq!(review["status"], "NEEDS_REVIEW");
    let payment_id = crate::helpers::first_payment(&review)["paymentId"]
        .as_i64()
        .unwrap();
    let response = app
        .admin(app.client.post(format!(
            "{}/api/v1/admin/payments/{payment_id}/resolve",
            app.address
        )))
        .json(&json!({"status": "FAILED", "reason": "confirmed with the PG by phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.order(1, id).await["status"], "FAILED");
    let last = app.history(payment_id).await.pop().unwrap();
    assert_eq!((last.1.as_str(), last.2.as_str()), ("FAILED", "admin"));
}

async fn spawn_app_with_deadline() -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(
        |sim| sim,
        |s| {
            s.recovery.not_found_grace_ms = 100;
            s.recovery.deadline_ms = 200;
        },
    )
    .await
}

#[tokio::test]
async fn an_application_with_an_empty_or_short_admin_token_refuses_to_start() {
    // The attack: with `token = ""`, a request without an Authorization header matched the
    // empty token, and `resolve` marked a card order PAID while the PG said PENDING.
    for token in ["", "short-token"] {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = crate::helpers::test_settings(&dir);
        settings.gateway.base_url = Some("http://127.0.0.1:9".to_owned());
        settings.admin.token = Some(token.to_owned());
        let built = commerce::Application::build(settings).await;
        let error = built.err().map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(|e| e.contains("admin.token")),
            "token {token:?}: {error:?}"
        );
    }
}

//! The API's answers to careless and hostile requests: always JSON with a stable code, never
//! an echo of the input, and the right status.

use reqwest::StatusCode;

use crate::helpers::{order_body, points, spawn_app_with};

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

//! Service-wide state kept in the database: secrets every instance shares.

use sqlx::{AnyConnection, Row};

/// The secret `name`: `candidate`, stored, if no instance stored one before (an instance
/// that loses the race reads the winner's).
///
/// # Errors
///
/// A database error.
pub async fn service_secret(
    conn: &mut AnyConnection,
    name: &str,
    candidate: &str,
    now: i64,
) -> Result<String, sqlx::Error> {
    sqlx::query(
        "INSERT INTO service_secrets (name, value, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .bind(candidate)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT value FROM service_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?
        .try_get("value")
}

//! Service-wide state kept in the database: secrets every instance shares.

use sqlx::Row;

use super::Db;

impl Db {
    /// The secret `name`: `candidate`, stored, if no instance stored one before (an instance
    /// that loses the race reads the winner's).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn service_secret(
        &self,
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
        .execute(&self.write)
        .await?;
        sqlx::query("SELECT value FROM service_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.write)
            .await?
            .try_get("value")
    }
}

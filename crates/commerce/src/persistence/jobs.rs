//! The background jobs' statements: the recovery job's pages, the outbox, and the retention
//! job's deletions (the recovery lease and round records are in `leases.rs`).

use sqlx::{AnyConnection, Row};

use super::rows::{PAYMENT_COLUMNS, parse_payment};
use super::{Db, OutboxRow, PaymentRow};

/// Ids marked per statement: far under both engines' limits on bound parameters.
const MARK_CHUNK: usize = 500;

impl Db {
    /// Open payments (REQUESTED / PENDING / UNKNOWN) last changed before `cutoff`, oldest
    /// first, after `after_id`.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn open_payments_page(
        &self,
        cutoff: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<PaymentRow>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments \
             WHERE status IN ('REQUESTED', 'PENDING', 'UNKNOWN') AND method = 'CARD' \
               AND updated_at <= $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(cutoff)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.write)
        .await?
        .iter()
        .map(parse_payment)
        .collect()
    }

    /// SUCCESS payments that are not the one that paid their order: charges to reverse.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn extra_successful_payments(
        &self,
        limit: i64,
    ) -> Result<Vec<(PaymentRow, i64)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT p.id, p.order_id, p.method, p.status, p.amount, p.card_type, p.card_no_masked, \
                    p.idempotency_key, p.transaction_key, p.reason, p.created_at, p.updated_at, \
                    o.user_id AS user_id \
             FROM payments p JOIN orders o ON o.id = p.order_id \
             WHERE p.status = 'SUCCESS' AND o.paid_payment_id IS NOT NULL \
               AND o.paid_payment_id <> p.id ORDER BY p.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        rows.iter()
            .map(|r| Ok((parse_payment(r)?, r.try_get("user_id")?)))
            .collect()
    }

    /// Records that recovery looked at a payment (no status change).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn touch_payment_checked(&self, id: i64, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE payments SET last_checked_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The oldest undelivered (and not dead) events, in id order.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn pending_outbox_events(&self, limit: i64) -> Result<Vec<OutboxRow>, sqlx::Error> {
        sqlx::query(
            "SELECT id, aggregate_id, event_type, payload, attempts, next_attempt_at FROM outbox_events \
             WHERE published_at IS NULL AND dead = 0 ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.write)
        .await?
        .iter()
        .map(|r| {
            Ok(OutboxRow {
                id: r.try_get("id")?,
                aggregate_id: r.try_get("aggregate_id")?,
                event_type: r.try_get("event_type")?,
                payload: r.try_get("payload")?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
            })
        })
        .collect()
    }

    /// Marks delivered events published in one statement per 500 ids (not one
    /// per event: the relay's cost was one write per event); returns how many were marked now.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn mark_outbox_published_batch(
        &self,
        ids: &[i64],
        now: i64,
    ) -> Result<u64, sqlx::Error> {
        let mut marked = 0;
        for chunk in ids.chunks(MARK_CHUNK) {
            let placeholders = (2..chunk.len() + 2)
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE outbox_events SET published_at = $1 \
                 WHERE published_at IS NULL AND id IN ({placeholders})"
            );
            let mut query = sqlx::query(&sql).bind(now);
            for id in chunk {
                query = query.bind(*id);
            }
            marked += query.execute(&self.write).await?.rows_affected();
        }
        Ok(marked)
    }

    /// Records a failed delivery: the next try is at `next_attempt_at`, or never when `dead`.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn mark_outbox_failed(
        &self,
        id: i64,
        next_attempt_at: i64,
        dead: bool,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE outbox_events SET attempts = attempts + 1, next_attempt_at = $1, dead = $2, \
             last_error = $3 WHERE id = $4",
        )
        .bind(next_attempt_at)
        .bind(i64::from(dead))
        .bind(error)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Undelivered events (delivery lag) and the oldest one's creation time.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn outbox_backlog(&self) -> Result<(i64, Option<i64>), sqlx::Error> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox_events \
             WHERE published_at IS NULL AND dead = 0",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((row.try_get("n")?, row.try_get("oldest")?))
    }
}

/// Appends an event to the outbox (same transaction as the change it announces).
///
/// # Errors
///
/// A database error.
pub async fn insert_outbox(
    conn: &mut AnyConnection,
    aggregate_id: i64,
    event_type: &str,
    payload: &serde_json::Value,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO outbox_events (aggregate_id, event_type, payload, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(aggregate_id)
    .bind(event_type)
    .bind(payload.to_string())
    .bind(now)
    .fetch_one(conn)
    .await
}

// The retention job's statements.
impl Db {
    /// Deletes up to `limit` idempotency keys made before `cutoff`; returns how many.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn prune_idempotency_keys(
        &self,
        cutoff: i64,
        limit: i64,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM idempotency_keys WHERE (user_id, key) IN \
               (SELECT user_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
        )
        .bind(cutoff)
        .bind(limit)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes up to `limit` outbox events published before `cutoff` (never an undelivered or
    /// dead one); returns how many.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn prune_published_events(
        &self,
        cutoff: i64,
        limit: i64,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM outbox_events WHERE id IN \
               (SELECT id FROM outbox_events WHERE published_at IS NOT NULL \
                  AND published_at < $1 ORDER BY id LIMIT $2)",
        )
        .bind(cutoff)
        .bind(limit)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    /// Idempotency keys and published outbox events held now (tests, the retention report).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn retained_rows(&self) -> Result<(i64, i64), sqlx::Error> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM idempotency_keys) AS keys, \
                    (SELECT COUNT(*) FROM outbox_events WHERE published_at IS NOT NULL) AS events",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((row.try_get("keys")?, row.try_get("events")?))
    }
}

//! The background jobs' statements: the recovery job's pages and the retention job's
//! deletions (the recovery lease and round records are in `leases.rs`, the outbox's in
//! `outbox.rs`).

use sqlx::{AnyConnection, Row};

use super::PaymentRow;
use super::rows::{PAYMENT_COLUMNS, parse_payment};
use crate::domain::{PaymentId, UserId};

/// Open payments (REQUESTED / PENDING / UNKNOWN) last changed before `cutoff`, oldest
/// first, after `after_id`.
///
/// # Errors
///
/// A database error.
pub async fn open_payments_page(
    conn: &mut AnyConnection,
    cutoff: i64,
    after_id: PaymentId,
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
    .fetch_all(&mut *conn)
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
    conn: &mut AnyConnection,
    limit: i64,
) -> Result<Vec<(PaymentRow, UserId)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.order_id, p.method, p.status, p.amount, p.card_type, p.card_no_masked, \
                p.idempotency_key, p.transaction_key, p.reason, p.created_at, p.updated_at, \
                o.user_id AS user_id \
         FROM payments p JOIN orders o ON o.id = p.order_id \
         WHERE p.status = 'SUCCESS' AND o.paid_payment_id IS NOT NULL \
           AND o.paid_payment_id <> p.id ORDER BY p.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
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
pub async fn touch_payment_checked(
    conn: &mut AnyConnection,
    id: PaymentId,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET last_checked_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// The retention job's statements.
/// Deletes up to `limit` idempotency keys made before `cutoff`; returns how many.
///
/// # Errors
///
/// A database error.
pub async fn prune_idempotency_keys(
    conn: &mut AnyConnection,
    cutoff: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE (user_id, key) IN \
           (SELECT user_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
    )
    .bind(cutoff)
    .bind(limit)
    .execute(&mut *conn)
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
    conn: &mut AnyConnection,
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
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Idempotency keys and published outbox events held now (tests, the retention report).
///
/// # Errors
///
/// A database error.
pub async fn retained_rows(conn: &mut AnyConnection) -> Result<(i64, i64), sqlx::Error> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM idempotency_keys) AS keys, \
                (SELECT COUNT(*) FROM outbox_events WHERE published_at IS NOT NULL) AS events",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.try_get("keys")?, row.try_get("events")?))
}

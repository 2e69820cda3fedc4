//! Payment attempts and their history, and the recovery job's pages over them.

use sqlx::{AnyConnection, Row};

use super::rows::{PAYMENT_COLUMNS, parse_payment};
use super::{HistoryRow, NewPayment, PaymentRow};
use crate::domain::{OrderId, PaymentId, PaymentStatus, UserId};

/// A payment's transitions, oldest first.
///
/// # Errors
///
/// A database error.
pub async fn payment_history(
    conn: &mut AnyConnection,
    payment_id: PaymentId,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query(
        "SELECT from_status, to_status, source, detail, created_at FROM payment_history \
         WHERE payment_id = $1 ORDER BY id",
    )
    .bind(payment_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(HistoryRow {
            from_status: r.try_get("from_status")?,
            to_status: r.try_get("to_status")?,
            source: r.try_get("source")?,
            detail: r.try_get("detail")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .collect()
}

/// Every payment (tests and the demo).
///
/// # Errors
///
/// A database error.
pub async fn all_payments(conn: &mut AnyConnection) -> Result<Vec<PaymentRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments ORDER BY id"
    ))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(parse_payment)
    .collect()
}

/// Open card payments (REQUESTED / PENDING / UNKNOWN): how many, and the oldest one's
/// creation time — the "oldest pending age" alert of the runbook.
///
/// # Errors
///
/// A database error.
pub async fn open_payments_summary(
    conn: &mut AnyConnection,
) -> Result<(i64, Option<i64>), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM payments \
         WHERE status IN ('REQUESTED', 'PENDING', 'UNKNOWN')",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.try_get("n")?, row.try_get("oldest")?))
}

/// Inserts a payment; returns its id.
///
/// # Errors
///
/// A database error.
pub async fn insert_payment(
    conn: &mut AnyConnection,
    payment: &NewPayment<'_>,
    now: i64,
) -> Result<PaymentId, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO payments (order_id, method, status, amount, card_type, card_no_masked, \
           idempotency_key, transaction_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
    )
    .bind(payment.order_id)
    .bind(payment.method.as_str())
    .bind(payment.status.as_str())
    .bind(payment.amount.minor_units())
    .bind(payment.card_type)
    .bind(payment.card_no_masked)
    .bind(payment.idempotency_key)
    .bind(payment.transaction_key)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Sets the idempotency key of a payment (derived from its id).
///
/// # Errors
///
/// A database error.
pub async fn set_payment_idempotency_key(
    conn: &mut AnyConnection,
    payment_id: PaymentId,
    key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET idempotency_key = $1 WHERE id = $2")
        .bind(key)
        .bind(payment_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a transition.
///
/// # Errors
///
/// A database error.
pub async fn insert_history(
    conn: &mut AnyConnection,
    payment_id: PaymentId,
    from: Option<PaymentStatus>,
    to: PaymentStatus,
    source: &str,
    detail: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payment_history (payment_id, from_status, to_status, source, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(payment_id)
    .bind(from.map(PaymentStatus::as_str))
    .bind(to.as_str())
    .bind(source)
    .bind(detail)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// One payment.
///
/// # Errors
///
/// A database error.
pub async fn payment_by_id(
    conn: &mut AnyConnection,
    id: PaymentId,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(parse_payment)
    .transpose()
}

/// The payment holding a PG transaction key.
///
/// # Errors
///
/// A database error.
pub async fn payment_by_transaction_key(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE transaction_key = $1"
    ))
    .bind(key)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(parse_payment)
    .transpose()
}

/// Every payment of an order, oldest first.
///
/// # Errors
///
/// A database error.
pub async fn payments_for_order(
    conn: &mut AnyConnection,
    order_id: OrderId,
) -> Result<Vec<PaymentRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1 ORDER BY id"
    ))
    .bind(order_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(parse_payment)
    .collect()
}

/// Moves a payment from `from` to `to` if it is still in `from`. Sets the transaction key
/// and reason when given; a payment leaving REQUESTED loses the sealed card kept for a
/// resend (see [`claim_charge_attempt`](super::claim_charge_attempt)). Returns whether it moved.
///
/// # Errors
///
/// A database error (e.g. a transaction key already held by another payment).
pub async fn transition_payment(
    conn: &mut AnyConnection,
    id: PaymentId,
    from: PaymentStatus,
    to: PaymentStatus,
    transaction_key: Option<&str>,
    reason: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE payments SET status = $1, transaction_key = COALESCE($2, transaction_key), \
           reason = COALESCE($3, reason), updated_at = $4 \
         WHERE id = $5 AND status = $6",
    )
    .bind(to.as_str())
    .bind(transaction_key)
    .bind(reason)
    .bind(now)
    .bind(id)
    .bind(from.as_str())
    .execute(&mut *conn)
    .await?;
    let moved = done.rows_affected() == 1;
    if moved && from == PaymentStatus::Requested {
        // Sent or settled: the card kept for a resend is no longer needed.
        sqlx::query("DELETE FROM payment_cards WHERE payment_id = $1")
            .bind(id)
            .execute(conn)
            .await?;
    }
    Ok(moved)
}

/// Attaches a transaction key to a payment that has none, without changing its status.
///
/// # Errors
///
/// A database error.
pub async fn attach_transaction_key(
    conn: &mut AnyConnection,
    id: PaymentId,
    key: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE payments SET transaction_key = $1, updated_at = $2 WHERE id = $3 AND transaction_key IS NULL",
    )
    .bind(key)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// The recovery job's pages.

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

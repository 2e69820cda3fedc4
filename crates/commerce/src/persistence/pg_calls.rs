//! The PG call log's statements (`pg_calls`) and the PG a payment is held at (`payments.pg`).
//!
//! Every statement here runs on its own, on the write pool, never inside a payment
//! transaction: a call-log row survives the rollback of the transaction around it, and the
//! "before" row is committed before the PG is called.

use crate::domain::{OrderId, PaymentId};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// The "before" half of a call-log row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPgCall<'a> {
    /// The PG's name.
    pub pg: &'a str,
    /// `charge`, `query` or `cancel`.
    pub path: &'a str,
    /// The order reference the PG sees, when the call names it.
    pub order_ref: Option<&'a str>,
    /// The `Idempotency-Key` sent (charges).
    pub idempotency_key: Option<&'a str>,
    /// The card number, masked (first 6 and last 4 digits at most).
    pub card_no_masked: Option<&'a str>,
    /// The PG's transaction key, when the call names one (queries and cancels).
    pub transaction_key: Option<&'a str>,
    /// When the call was sent (ms).
    pub requested_at: i64,
}

/// The "after" half of a call-log row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgCallResult<'a> {
    /// When the answer (or the failure) came (ms).
    pub responded_at: i64,
    /// The HTTP status, when the port knows it.
    pub status_code: Option<i64>,
    /// The outcome class (`ACCEPTED`, `NOT_REACHED`, `UNCERTAIN`, `REJECTED`, `OK`,
    /// `NOT_FOUND`, `FAILED`).
    pub outcome: &'a str,
    /// The PG's transaction key learned from the answer.
    pub transaction_key: Option<&'a str>,
    /// The PG's reason, or the failure.
    pub reason: Option<&'a str>,
}

/// One row of the PG call log, as the admin API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PgCallRow {
    /// Id.
    pub id: i64,
    /// The PG's name.
    pub pg: String,
    /// `charge`, `query` or `cancel`.
    pub path: String,
    /// The order reference, when the call named it.
    pub order_ref: Option<String>,
    /// The idempotency key (charges).
    pub idempotency_key: Option<String>,
    /// The masked card number (charges).
    pub card_no_masked: Option<String>,
    /// When it was sent (ms).
    pub requested_at: i64,
    /// When it ended (ms); `None` while in flight, or if the process died during the call.
    pub responded_at: Option<i64>,
    /// The HTTP status, when known.
    pub status_code: Option<i64>,
    /// The outcome class; `None` while in flight.
    pub outcome: Option<String>,
    /// The PG's transaction key.
    pub transaction_key: Option<String>,
    /// The PG's reason, or the failure.
    pub reason: Option<String>,
}

/// Writes the "before" row of a PG call and returns its id.
///
/// # Errors
///
/// A database error: the caller must not call the PG.
pub async fn insert_pg_call(
    conn: &mut AnyConnection,
    call: &NewPgCall<'_>,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO pg_calls (pg, path, order_ref, idempotency_key, card_no_masked, \
                               transaction_key, requested_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(call.pg)
    .bind(call.path)
    .bind(call.order_ref)
    .bind(call.idempotency_key)
    .bind(call.card_no_masked)
    .bind(call.transaction_key)
    .bind(call.requested_at)
    .fetch_one(&mut *conn)
    .await?;
    row.try_get("id")
}

/// Completes a call-log row with what the call ended with (a key already known stays).
///
/// # Errors
///
/// A database error.
pub async fn complete_pg_call(
    conn: &mut AnyConnection,
    id: i64,
    result: &PgCallResult<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE pg_calls SET responded_at = $1, status_code = $2, outcome = $3, \
                transaction_key = COALESCE($4, transaction_key), reason = $5 \
         WHERE id = $6",
    )
    .bind(result.responded_at)
    .bind(result.status_code)
    .bind(result.outcome)
    .bind(result.transaction_key)
    .bind(result.reason)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every PG call about an order (by its reference, or by a transaction key one of its
/// payments holds), oldest first.
///
/// # Errors
///
/// A database error.
pub async fn pg_calls_for_order(
    conn: &mut AnyConnection,
    order_id: OrderId,
) -> Result<Vec<PgCallRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.id, c.pg, c.path, c.order_ref, c.idempotency_key, c.card_no_masked, \
                c.requested_at, c.responded_at, c.status_code, c.outcome, \
                c.transaction_key, c.reason \
         FROM pg_calls c \
         WHERE c.order_ref = (SELECT order_ref FROM orders WHERE id = $1) \
            OR c.transaction_key IN \
               (SELECT transaction_key FROM payments \
                 WHERE order_id = $1 AND transaction_key IS NOT NULL) \
         ORDER BY c.id",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PgCallRow {
                id: r.try_get("id")?,
                pg: r.try_get("pg")?,
                path: r.try_get("path")?,
                order_ref: r.try_get("order_ref")?,
                idempotency_key: r.try_get("idempotency_key")?,
                card_no_masked: r.try_get("card_no_masked")?,
                requested_at: r.try_get("requested_at")?,
                responded_at: r.try_get("responded_at")?,
                status_code: r.try_get("status_code")?,
                outcome: r.try_get("outcome")?,
                transaction_key: r.try_get("transaction_key")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect()
}

/// Deletes up to `limit` call-log rows sent before `cutoff`; returns how many.
///
/// # Errors
///
/// A database error.
pub async fn prune_pg_calls(
    conn: &mut AnyConnection,
    cutoff: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM pg_calls WHERE id IN \
           (SELECT id FROM pg_calls WHERE requested_at < $1 ORDER BY id LIMIT $2)",
    )
    .bind(cutoff)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Records that payment `id` is being charged at `pg` (written before each PG is tried,
/// so recovery asks the PG that may hold the transaction even after a crash).
///
/// # Errors
///
/// A database error.
pub async fn set_payment_pg(
    conn: &mut AnyConnection,
    id: PaymentId,
    pg: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET pg = $1 WHERE id = $2")
        .bind(pg)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The PG payment `id` was charged at; `None` for the primary PG (or no such payment).
///
/// # Errors
///
/// A database error.
pub async fn payment_pg(
    conn: &mut AnyConnection,
    id: PaymentId,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT pg FROM payments WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => row.try_get("pg"),
        None => Ok(None),
    }
}

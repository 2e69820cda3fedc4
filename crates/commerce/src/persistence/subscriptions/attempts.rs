//! A subscription's billing attempts (`subscription_attempts`): recorded, accepted, settled,
//! and the billing round's reads over them.

use sqlx::AnyConnection;

use super::rows::{ATTEMPT_COLUMNS, AttemptRow, parse_attempt};

/// A subscription's billing attempts, oldest first.
///
/// # Errors
///
/// A database error.
pub async fn subscription_attempts(
    conn: &mut AnyConnection,
    subscription_id: i64,
) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM subscription_attempts WHERE subscription_id = $1 \
         ORDER BY id"
    ))
    .bind(subscription_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(parse_attempt)
    .collect()
}

/// Attempts not settled yet (`REQUESTED` or `PENDING`) last changed at or before
/// `before`, with an id above `after_id`, oldest first, at most `limit`.
///
/// # Errors
///
/// A database error.
pub async fn open_attempts(
    conn: &mut AnyConnection,
    before: i64,
    after_id: i64,
    limit: i64,
) -> Result<Vec<AttemptRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM subscription_attempts \
         WHERE status IN ('REQUESTED', 'PENDING') AND updated_at <= $1 AND id > $2 \
         ORDER BY id LIMIT $3"
    ))
    .bind(before)
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(parse_attempt)
    .collect()
}

/// The PG transaction keys already recorded on a period's attempts.
///
/// # Errors
///
/// A database error.
pub async fn period_transaction_keys(
    conn: &mut AnyConnection,
    subscription_id: i64,
    period: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT transaction_key FROM subscription_attempts WHERE subscription_id = $1 \
         AND period = $2 AND transaction_key IS NOT NULL",
    )
    .bind(subscription_id)
    .bind(period)
    .fetch_all(&mut *conn)
    .await
}

/// Records an attempt (status `REQUESTED`) and marks it in flight on its subscription;
/// returns its id.
///
/// # Errors
///
/// A database error (a second attempt with the same (subscription, period, attempt) is a
/// unique violation).
pub async fn insert_attempt(
    conn: &mut AnyConnection,
    attempt: &AttemptRow,
) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO subscription_attempts (subscription_id, period, attempt, idempotency_key, \
         order_ref, amount, card_no_masked, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'REQUESTED', $8, $8) RETURNING id",
    )
    .bind(attempt.subscription_id)
    .bind(attempt.period)
    .bind(attempt.attempt)
    .bind(&attempt.idempotency_key)
    .bind(&attempt.order_ref)
    .bind(attempt.amount)
    .bind(&attempt.card_no)
    .bind(attempt.created_at)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("UPDATE subscriptions SET in_flight_attempt_id = $1 WHERE id = $2")
        .bind(id)
        .bind(attempt.subscription_id)
        .execute(conn)
        .await?;
    Ok(id)
}

/// The PG accepted an attempt: `PENDING` with its transaction key (only from `REQUESTED`).
///
/// # Errors
///
/// A database error.
pub async fn attempt_accepted(
    conn: &mut AnyConnection,
    id: i64,
    transaction_key: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE subscription_attempts SET status = 'PENDING', transaction_key = $1, \
         updated_at = $2 WHERE id = $3 AND status = 'REQUESTED'",
    )
    .bind(transaction_key)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Settles an open attempt (`SUCCESS` or `FAILED` with its outcome); false when it was
/// settled already.
///
/// # Errors
///
/// A database error.
pub async fn settle_attempt(
    conn: &mut AnyConnection,
    id: i64,
    status: &str,
    outcome: &str,
    transaction_key: Option<&str>,
    reason: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE subscription_attempts SET status = $1, outcome = $2, \
         transaction_key = COALESCE($3, transaction_key), reason = $4, updated_at = $5 \
         WHERE id = $6 AND status IN ('REQUESTED', 'PENDING')",
    )
    .bind(status)
    .bind(outcome)
    .bind(transaction_key)
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Notes when an open attempt was last looked at (so a round re-sends or re-queries it only
/// after the configured wait).
///
/// # Errors
///
/// A database error.
pub async fn touch_attempt(
    conn: &mut AnyConnection,
    id: i64,
    reason: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE subscription_attempts SET reason = $1, updated_at = $2 \
         WHERE id = $3 AND status IN ('REQUESTED', 'PENDING')",
    )
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

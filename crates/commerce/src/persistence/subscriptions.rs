//! Plans, subscriptions and their billing attempts (see `crate::subscriptions`).
//!
//! The billing claim is one conditional `UPDATE … WHERE id = $1 AND next_attempt_at = $2 AND
//! state IN ('ACTIVE', 'PAST_DUE') AND in_flight_attempt_id IS NULL`: of several instances
//! that saw the same due subscription, exactly one changes the row and bills it; the others
//! change nothing and move on. It works alike on SQLite and Postgres (on Postgres the losing
//! `UPDATE` waits for the winner's commit, then re-checks its `WHERE` and matches nothing).

mod attempts;
mod rows;

use sqlx::{AnyConnection, Row};

pub use self::attempts::*;
pub use self::rows::{AttemptRow, NewSubscription, PlanRow, SubscriptionRow};
use self::rows::{SUBSCRIPTION_COLUMNS, parse_subscription};
use crate::domain::UserId;
use crate::subscriptions::dunning::Schedule;

/// A plan.
///
/// # Errors
///
/// A database error.
pub async fn plan(conn: &mut AnyConnection, id: i64) -> Result<Option<PlanRow>, sqlx::Error> {
    sqlx::query("SELECT id, name, price, period_days FROM plans WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| {
            Ok(PlanRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                price: r.try_get("price")?,
                period_days: r.try_get("period_days")?,
            })
        })
        .transpose()
}

/// Whether a user exists.
///
/// # Errors
///
/// A database error.
pub async fn user_exists(conn: &mut AnyConnection, id: UserId) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT id FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// Up to `limit` subscriptions due at `now` after `(after_at, after_id)`, in due order
/// (a page of the billing round): `(id, next_attempt_at)`.
///
/// # Errors
///
/// A database error.
pub async fn due_subscriptions(
    conn: &mut AnyConnection,
    now: i64,
    after: (i64, i64),
    limit: i64,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query(
        "SELECT id, next_attempt_at FROM subscriptions \
         WHERE next_attempt_at <= $1 AND state IN ('ACTIVE', 'PAST_DUE') \
         AND in_flight_attempt_id IS NULL \
         AND (next_attempt_at > $2 OR (next_attempt_at = $2 AND id > $3)) \
         ORDER BY next_attempt_at, id LIMIT $4",
    )
    .bind(now)
    .bind(after.0)
    .bind(after.1)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("id")?, r.try_get("next_attempt_at")?)))
    .collect()
}

/// How many subscriptions are in each state.
///
/// # Errors
///
/// A database error.
pub async fn subscription_states(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query("SELECT state, COUNT(*) AS n FROM subscriptions GROUP BY state")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
        .collect()
}

/// One subscription.
///
/// # Errors
///
/// A database error.
pub async fn subscription_by_id(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<SubscriptionRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions s JOIN plans p ON p.id = s.plan_id \
         WHERE s.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(parse_subscription)
    .transpose()
}

/// Takes the subscription's row lock (Postgres; SQLite's write lock is already held) so
/// changes to one subscription are applied one after the other; false when it does not exist.
///
/// # Errors
///
/// A database error.
pub async fn lock_subscription(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE subscriptions SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts a subscription; returns its id.
///
/// # Errors
///
/// A database error.
pub async fn insert_subscription(
    conn: &mut AnyConnection,
    new: &NewSubscription<'_>,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let s = &new.schedule;
    sqlx::query_scalar(
        "INSERT INTO subscriptions (user_id, plan_id, state, card_type, card_no_masked, \
         card_sealed, period, billing_at, next_attempt_at, failures, first_failure_at, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING id",
    )
    .bind(new.user_id)
    .bind(new.plan_id)
    .bind(s.state.as_str())
    .bind(new.card_type)
    .bind(new.card_no_masked)
    .bind(new.card_sealed)
    .bind(s.period)
    .bind(s.billing_at)
    .bind(s.next_attempt_at)
    .bind(s.failures)
    .bind(s.first_failure_at)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Writes a subscription's schedule. Settling an attempt (`settling`: its id), only while that
/// attempt is still the one in flight, and clears it; false when it is not (settled by
/// another writer). Otherwise (a pause, resume, cancel or card update, under
/// [`lock_subscription`]) unconditionally, keeping any attempt in flight.
///
/// # Errors
///
/// A database error.
pub async fn write_schedule(
    conn: &mut AnyConnection,
    id: i64,
    settling: Option<i64>,
    schedule: &Schedule,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let set = "UPDATE subscriptions SET state = $1, period = $2, billing_at = $3, \
         next_attempt_at = $4, failures = $5, first_failure_at = $6, updated_at = $7";
    let sql = match settling {
        Some(_) => format!(
            "{set}, in_flight_attempt_id = NULL WHERE id = $8 AND in_flight_attempt_id = $9"
        ),
        None => format!("{set} WHERE id = $8 AND $9 = 0"),
    };
    let done = sqlx::query(&sql)
        .bind(schedule.state.as_str())
        .bind(schedule.period)
        .bind(schedule.billing_at)
        .bind(schedule.next_attempt_at)
        .bind(schedule.failures)
        .bind(schedule.first_failure_at)
        .bind(now)
        .bind(id)
        .bind(settling.unwrap_or(0))
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the card of a subscription.
///
/// # Errors
///
/// A database error.
pub async fn set_card(
    conn: &mut AnyConnection,
    id: i64,
    card_type: &str,
    masked: &str,
    sealed: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE subscriptions SET card_type = $1, card_no_masked = $2, card_sealed = $3, \
         updated_at = $4 WHERE id = $5",
    )
    .bind(card_type)
    .bind(masked)
    .bind(sealed)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The claim: takes the subscription due at `due_at` for billing (only one caller wins);
/// false when another instance (or a pause, cancel, or earlier round) got there first.
///
/// # Errors
///
/// A database error.
pub async fn claim_subscription(
    conn: &mut AnyConnection,
    id: i64,
    due_at: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE subscriptions SET next_attempt_at = NULL, in_flight_attempt_id = 0, \
         updated_at = $1 WHERE id = $2 AND next_attempt_at = $3 \
         AND state IN ('ACTIVE', 'PAST_DUE') AND in_flight_attempt_id IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(due_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

//! Plans, subscriptions and their billing attempts (see `crate::subscriptions`).
//!
//! The billing claim is one conditional `UPDATE … WHERE id = $1 AND next_attempt_at = $2 AND
//! state IN ('ACTIVE', 'PAST_DUE') AND in_flight_attempt_id IS NULL`: of several instances
//! that saw the same due subscription, exactly one changes the row and bills it; the others
//! change nothing and move on. It works alike on SQLite and Postgres (on Postgres the losing
//! `UPDATE` waits for the winner's commit, then re-checks its `WHERE` and matches nothing).

use crate::domain::UserId;
use crate::subscriptions::dunning::{Schedule, State};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// A plan.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanRow {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Price per period, minor units.
    pub price: i64,
    /// Period length in days.
    pub period_days: i64,
}

/// A subscription as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRow {
    /// Id.
    pub id: i64,
    /// The subscriber.
    pub user_id: UserId,
    /// The plan.
    pub plan_id: i64,
    /// The plan's price (joined).
    pub price: i64,
    /// Card issuer.
    pub card_type: String,
    /// The card, masked.
    pub card_no_masked: String,
    /// The card, sealed with the service's key.
    pub card_sealed: String,
    /// The billing schedule.
    pub schedule: Schedule,
    /// The attempt being charged now, if any.
    pub in_flight_attempt_id: Option<i64>,
    /// Created (ms).
    pub created_at: i64,
}

/// One billing attempt.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRow {
    /// Id.
    pub id: i64,
    /// Its subscription.
    pub subscription_id: i64,
    /// The period it bills.
    pub period: i64,
    /// Its number within the period (1 = the first).
    pub attempt: i64,
    /// Sent as `Idempotency-Key`: (subscription, period, attempt).
    pub idempotency_key: String,
    /// The order id the PG sees (one per subscription and period).
    pub order_ref: String,
    /// Minor units.
    pub amount: i64,
    /// The card, masked.
    pub card_no: String,
    /// `REQUESTED`, `PENDING`, `SUCCESS` or `FAILED`.
    pub status: String,
    /// `SUCCESS`, `SYSTEM_FAILURE` or `BUSINESS_DECLINE` once settled.
    pub outcome: Option<String>,
    /// The PG's transaction.
    pub transaction_key: Option<String>,
    /// Why it failed.
    pub reason: Option<String>,
    /// Created (ms, the billing clock).
    pub created_at: i64,
    /// Last change (ms, the billing clock).
    pub updated_at: i64,
}

/// A subscription to insert.
#[derive(Clone, Debug)]
pub struct NewSubscription<'a> {
    /// The subscriber.
    pub user_id: UserId,
    /// The plan.
    pub plan_id: i64,
    /// Card issuer.
    pub card_type: &'a str,
    /// The card, masked.
    pub card_no_masked: &'a str,
    /// The card, sealed.
    pub card_sealed: &'a str,
    /// The first schedule (period 1, due now).
    pub schedule: Schedule,
}

const SUBSCRIPTION_COLUMNS: &str = "s.id, s.user_id, s.plan_id, p.price, p.period_days, s.state, \
     s.card_type, s.card_no_masked, s.card_sealed, s.period, s.billing_at, s.next_attempt_at, \
     s.failures, s.first_failure_at, s.in_flight_attempt_id, s.created_at";

const ATTEMPT_COLUMNS: &str = "id, subscription_id, period, attempt, idempotency_key, order_ref, \
     amount, card_no_masked, status, outcome, transaction_key, reason, created_at, updated_at";

const DAY_MS: i64 = crate::subscriptions::dunning::DAY_MS;

fn parse_subscription(r: &AnyRow) -> Result<SubscriptionRow, sqlx::Error> {
    let state: String = r.try_get("state")?;
    let period_days: i64 = r.try_get("period_days")?;
    Ok(SubscriptionRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        plan_id: r.try_get("plan_id")?,
        price: r.try_get("price")?,
        card_type: r.try_get("card_type")?,
        card_no_masked: r.try_get("card_no_masked")?,
        card_sealed: r.try_get("card_sealed")?,
        schedule: Schedule {
            state: State::parse(&state).ok_or_else(|| sqlx::Error::ColumnDecode {
                index: "state".into(),
                source: format!("unknown subscription state {state}").into(),
            })?,
            period: r.try_get("period")?,
            billing_at: r.try_get("billing_at")?,
            next_attempt_at: r.try_get("next_attempt_at")?,
            failures: r.try_get("failures")?,
            first_failure_at: r.try_get("first_failure_at")?,
            period_ms: period_days.saturating_mul(DAY_MS),
        },
        in_flight_attempt_id: r.try_get("in_flight_attempt_id")?,
        created_at: r.try_get("created_at")?,
    })
}

fn parse_attempt(r: &AnyRow) -> Result<AttemptRow, sqlx::Error> {
    Ok(AttemptRow {
        id: r.try_get("id")?,
        subscription_id: r.try_get("subscription_id")?,
        period: r.try_get("period")?,
        attempt: r.try_get("attempt")?,
        idempotency_key: r.try_get("idempotency_key")?,
        order_ref: r.try_get("order_ref")?,
        amount: r.try_get("amount")?,
        card_no: r.try_get("card_no_masked")?,
        status: r.try_get("status")?,
        outcome: r.try_get("outcome")?,
        transaction_key: r.try_get("transaction_key")?,
        reason: r.try_get("reason")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

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

//! The rows of plans, subscriptions and billing attempts, and how they are decoded.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::UserId;
use crate::subscriptions::dunning::{Schedule, State};

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

pub(super) const SUBSCRIPTION_COLUMNS: &str = "s.id, s.user_id, s.plan_id, p.price, p.period_days, s.state, \
     s.card_type, s.card_no_masked, s.card_sealed, s.period, s.billing_at, s.next_attempt_at, \
     s.failures, s.first_failure_at, s.in_flight_attempt_id, s.created_at";

pub(super) const ATTEMPT_COLUMNS: &str = "id, subscription_id, period, attempt, idempotency_key, order_ref, \
     amount, card_no_masked, status, outcome, transaction_key, reason, created_at, updated_at";

const DAY_MS: i64 = crate::subscriptions::dunning::DAY_MS;

pub(super) fn parse_subscription(r: &AnyRow) -> Result<SubscriptionRow, sqlx::Error> {
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

pub(super) fn parse_attempt(r: &AnyRow) -> Result<AttemptRow, sqlx::Error> {
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

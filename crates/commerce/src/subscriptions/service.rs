//! The subscription API's logic: create, read, pause, resume, cancel, update the card.

use serde::{Deserialize, Serialize};

use super::SEALED_CARD_CONTEXT;
use super::billing::BillingJob;
use super::dunning::{self, Schedule, State};
use crate::domain::UserId;
use crate::error::ApiError;
use crate::error::anyhow_like::Internal;
use crate::persistence;
use crate::persistence::Db;
use crate::persistence::subscriptions::{self as db, AttemptRow, NewSubscription, SubscriptionRow};
use pg_client::model::{CardNumber, CardType};

/// `POST /api/v1/subscriptions`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSubscriptionRequest {
    /// The plan.
    pub plan_id: i64,
    /// Card issuer (`SAMSUNG`, `KB`, `HYUNDAI`).
    pub card_type: String,
    /// `dddd-dddd-dddd-dddd`.
    pub card_no: String,
}

impl std::fmt::Debug for NewSubscriptionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSubscriptionRequest")
            .field("plan_id", &self.plan_id)
            .field("card_type", &self.card_type)
            .finish_non_exhaustive()
    }
}

/// A subscription as the API shows it (the card masked), with every billing attempt.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    /// Id.
    pub subscription_id: i64,
    /// The subscriber.
    pub user_id: UserId,
    /// The plan.
    pub plan_id: i64,
    /// `ACTIVE`, `PAST_DUE`, `PAUSED` or `CANCELLED`.
    pub state: String,
    /// Card issuer.
    pub card_type: String,
    /// The card, masked.
    pub card_no: String,
    /// The period being billed.
    pub period: i64,
    /// That period's billing date (ms).
    pub billing_at: i64,
    /// When the next attempt is due (ms), if one is scheduled.
    pub next_attempt_at: Option<i64>,
    /// Failed attempts in this period.
    pub failures: i64,
    /// The period's first failure (ms).
    pub first_failure_at: Option<i64>,
    /// Every billing attempt, oldest first.
    pub attempts: Vec<AttemptRow>,
}

fn view(sub: SubscriptionRow, attempts: Vec<AttemptRow>) -> SubscriptionView {
    SubscriptionView {
        subscription_id: sub.id,
        user_id: sub.user_id,
        plan_id: sub.plan_id,
        state: sub.schedule.state.as_str().to_owned(),
        card_type: sub.card_type,
        card_no: sub.card_no_masked,
        period: sub.schedule.period,
        billing_at: sub.schedule.billing_at,
        next_attempt_at: sub.schedule.next_attempt_at,
        failures: sub.schedule.failures,
        first_failure_at: sub.schedule.first_failure_at,
        attempts,
    }
}

/// The same card rules as a one-time order's (`orders::validate`).
fn card(card_type: &str, card_no: &str) -> Result<(CardType, CardNumber), ApiError> {
    let invalid = |e: crate::orders::PlaceError| match e {
        crate::orders::PlaceError::Invalid { message, .. } => {
            ApiError::bad_request("INVALID_CARD", message)
        }
        other => ApiError::bad_request("INVALID_CARD", other.to_string()),
    };
    let card_type = crate::orders::validate::card_type_of(card_type).map_err(invalid)?;
    let card_no = crate::orders::validate::card_number_of(card_no).map_err(invalid)?;
    Ok((card_type, card_no))
}

fn internal(context: &'static str) -> impl FnOnce(crate::vault::VaultError) -> ApiError {
    move |e| ApiError::Internal(Internal::new(context, e))
}

fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "SUBSCRIPTION_NOT_FOUND",
        message: "no such subscription".to_owned(),
    }
}

/// Subscriptions for the API. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SubscriptionService {
    db: Db,
    billing: BillingJob,
}

impl SubscriptionService {
    /// The service over its billing job.
    pub fn new(db: Db, billing: BillingJob) -> Self {
        Self { db, billing }
    }

    /// The billing job (the scheduled rounds, and tests).
    pub fn billing(&self) -> &BillingJob {
        &self.billing
    }

    /// Creates a subscription due now and charges its first period at once, through the same
    /// claim and charge as every later period.
    ///
    /// # Errors
    ///
    /// `400 INVALID_CARD`, `404 PLAN_NOT_FOUND` / `USER_NOT_FOUND`, or a database error.
    pub async fn create(
        &self,
        user_id: UserId,
        request: &NewSubscriptionRequest,
    ) -> Result<SubscriptionView, ApiError> {
        let (card_type, card_no) = card(&request.card_type, &request.card_no)?;
        let plan = persistence::subscriptions::plan(&mut *self.db.reader().await?, request.plan_id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                code: "PLAN_NOT_FOUND",
                message: "no such plan".to_owned(),
            })?;
        if !persistence::subscriptions::user_exists(&mut *self.db.reader().await?, user_id).await? {
            return Err(ApiError::NotFound {
                code: "USER_NOT_FOUND",
                message: "no such user".to_owned(),
            });
        }
        let sealed = self
            .billing
            .vault()
            .seal(&card_no, SEALED_CARD_CONTEXT)
            .map_err(internal("sealing the card"))?;
        let now = self.billing.clock().now_ms();
        let schedule = Schedule {
            state: State::Active,
            period: 1,
            billing_at: now,
            next_attempt_at: Some(now),
            failures: 0,
            first_failure_at: None,
            period_ms: plan.period_days.saturating_mul(dunning::DAY_MS),
        };
        let mut tx = self.db.begin().await?;
        let id = db::insert_subscription(
            &mut tx,
            &NewSubscription {
                user_id,
                plan_id: plan.id,
                card_type: card_type.as_str(),
                card_no_masked: card_no.masked().as_str(),
                card_sealed: &sealed,
                schedule,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        metrics::counter!("commerce_subscriptions_created_total").increment(1);
        // Another instance's round may claim it first; then that one charges it.
        if let Some(attempt) = self.billing.claim(id, now).await? {
            self.billing.charge(&attempt).await?;
        }
        self.get(user_id, id).await
    }

    /// One of the user's subscriptions (another user's is a 404).
    ///
    /// # Errors
    ///
    /// `404 SUBSCRIPTION_NOT_FOUND`, or a database error.
    pub async fn get(&self, user_id: UserId, id: i64) -> Result<SubscriptionView, ApiError> {
        let sub = persistence::subscriptions::subscription_by_id(&mut *self.db.writer().await?, id)
            .await?
            .filter(|s| s.user_id == user_id)
            .ok_or_else(not_found)?;
        let attempts =
            persistence::subscriptions::subscription_attempts(&mut *self.db.writer().await?, id)
                .await?;
        Ok(view(sub, attempts))
    }

    /// Applies a change of schedule under the subscription's lock.
    async fn change(
        &self,
        user_id: UserId,
        id: i64,
        what: &'static str,
        change: impl FnOnce(Schedule, i64) -> Option<Schedule>,
    ) -> Result<SubscriptionView, ApiError> {
        let now = self.billing.clock().now_ms();
        let mut tx = self.db.begin().await?;
        db::lock_subscription(&mut tx, id).await?;
        let sub = db::subscription_by_id(&mut tx, id)
            .await?
            .filter(|s| s.user_id == user_id)
            .ok_or_else(not_found)?;
        let next = change(sub.schedule, now).ok_or_else(|| ApiError::Conflict {
            code: "INVALID_SUBSCRIPTION_STATE",
            message: format!(
                "a {} subscription cannot be {what}",
                sub.schedule.state.as_str().to_ascii_lowercase()
            ),
        })?;
        db::write_schedule(&mut tx, id, None, &next, now).await?;
        tx.commit().await?;
        self.get(user_id, id).await
    }

    /// Pauses an active or past-due subscription.
    ///
    /// # Errors
    ///
    /// `404`, `409 INVALID_SUBSCRIPTION_STATE`, or a database error.
    pub async fn pause(&self, user_id: UserId, id: i64) -> Result<SubscriptionView, ApiError> {
        self.change(user_id, id, "paused", |s, _| dunning::pause(s))
            .await
    }

    /// Resumes a paused subscription.
    ///
    /// # Errors
    ///
    /// `404`, `409 INVALID_SUBSCRIPTION_STATE`, or a database error.
    pub async fn resume(&self, user_id: UserId, id: i64) -> Result<SubscriptionView, ApiError> {
        self.change(user_id, id, "resumed", dunning::resume).await
    }

    /// Cancels a subscription.
    ///
    /// # Errors
    ///
    /// `404`, `409 INVALID_SUBSCRIPTION_STATE`, or a database error.
    pub async fn cancel(&self, user_id: UserId, id: i64) -> Result<SubscriptionView, ApiError> {
        self.change(user_id, id, "cancelled", |s, _| dunning::cancel(s))
            .await
    }

    /// Replaces the card; a past-due subscription is retried at the next round.
    ///
    /// # Errors
    ///
    /// `400 INVALID_CARD`, `404`, `409 INVALID_SUBSCRIPTION_STATE` (cancelled), or a database
    /// error.
    pub async fn update_card(
        &self,
        user_id: UserId,
        id: i64,
        card_type: &str,
        card_no: &str,
    ) -> Result<SubscriptionView, ApiError> {
        let (card_type, card_no) = card(card_type, card_no)?;
        let sealed = self
            .billing
            .vault()
            .seal(&card_no, SEALED_CARD_CONTEXT)
            .map_err(internal("sealing the card"))?;
        let now = self.billing.clock().now_ms();
        let mut tx = self.db.begin().await?;
        db::lock_subscription(&mut tx, id).await?;
        let sub = db::subscription_by_id(&mut tx, id)
            .await?
            .filter(|s| s.user_id == user_id)
            .ok_or_else(not_found)?;
        if sub.schedule.state == State::Cancelled {
            return Err(ApiError::Conflict {
                code: "INVALID_SUBSCRIPTION_STATE",
                message: "a cancelled subscription's card cannot be changed".to_owned(),
            });
        }
        db::set_card(
            &mut tx,
            id,
            card_type.as_str(),
            card_no.masked().as_str(),
            &sealed,
            now,
        )
        .await?;
        // An attempt in flight settles first; the retry is scheduled only when none is.
        if sub.in_flight_attempt_id.is_none() {
            let next = dunning::card_updated(sub.schedule, now);
            db::write_schedule(&mut tx, id, None, &next, now).await?;
        }
        tx.commit().await?;
        self.get(user_id, id).await
    }
}

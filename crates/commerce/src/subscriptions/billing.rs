//! The billing job: every `subscriptions.interval_ms`, one round.
//!
//! A round first looks again at attempts left unsettled for `resend_after_ms`: one still
//! `REQUESTED` (no answer recorded: the process died during the call, or the outcome was
//! uncertain) is sent again **with the same idempotency key**, so the PG answers with the
//! transaction it may already hold instead of charging again; one `PENDING` is settled from
//! the PG's status query. Then it walks the due subscriptions in pages, claims each (a
//! conditional `UPDATE` only one instance wins), records the attempt `REQUESTED` with its key
//! `SUB-{subscription}-P{period}-A{attempt}` in the claim's transaction, and charges it
//! through the batch-path client, at most the bulkhead's size at a time.
//!
//! An attempt's outcome goes through [`dunning::decide`] in one transaction that settles
//! the attempt, writes the subscription's new schedule and the outbox events.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::dunning::{self, Event, Outcome, State};
use super::{BillingClock, SubscriptionSettings};
use crate::domain::{Money, PgStatus};
use crate::gateway::{ChargeError, ChargeRequest, PaymentGateway};
use crate::persistence;
use crate::persistence::subscriptions as db;
use crate::persistence::subscriptions::{AttemptRow, SubscriptionRow};
use crate::persistence::{Db, insert_outbox, now_ms};
use crate::vault::CardVault;
use pg_client::model::CardType;

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoundReport {
    /// Subscriptions this instance claimed and charged.
    pub claimed: u64,
    /// Attempts sent again with their key (unsettled past `resend_after_ms`).
    pub resent: u64,
    /// Attempts the PG accepted (their result comes from a later query).
    pub accepted: u64,
    /// Periods paid.
    pub succeeded: u64,
    /// System failures (dunning retries follow).
    pub system_failures: u64,
    /// Business declines (no retry until the card is updated).
    pub declined: u64,
}

impl RoundReport {
    fn add(&mut self, other: Self) {
        self.claimed += other.claimed;
        self.resent += other.resent;
        self.accepted += other.accepted;
        self.succeeded += other.succeeded;
        self.system_failures += other.system_failures;
        self.declined += other.declined;
    }
}

/// The billing job; also charges a new subscription's first period. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BillingJob {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    gateway: Arc<dyn PaymentGateway>,
    vault: CardVault,
    clock: BillingClock,
    settings: SubscriptionSettings,
    callback_url: String,
}

impl BillingJob {
    /// A job charging through `gateway` (the batch-path client).
    pub fn new(
        db: Db,
        gateway: Arc<dyn PaymentGateway>,
        vault: CardVault,
        clock: BillingClock,
        settings: SubscriptionSettings,
        callback_url: String,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                gateway,
                vault,
                clock,
                settings,
                callback_url,
            }),
        }
    }

    /// The clock the job bills by.
    pub fn clock(&self) -> &BillingClock {
        &self.inner.clock
    }

    /// The card vault.
    pub(crate) fn vault(&self) -> &CardVault {
        &self.inner.vault
    }

    /// Runs a round every `interval_ms` until `shutdown`; a failed round is logged and the
    /// next one runs as planned.
    pub async fn run(self, shutdown: CancellationToken) {
        let every = std::time::Duration::from_millis(self.inner.settings.interval_ms);
        let clock = seawall::Clock::default();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = clock.sleep(every) => {}
            }
            if let Err(error) = self.round().await {
                tracing::error!(%error, "billing round failed");
            }
        }
    }

    /// One round: unsettled attempts first, then every due subscription, page by page.
    ///
    /// # Errors
    ///
    /// A database error (what was done before it stays done).
    pub async fn round(&self) -> Result<RoundReport, sqlx::Error> {
        let mut report = self.settle_open().await?;
        let page = self.inner.settings.page_size;
        let mut cursor = (i64::MIN, 0);
        loop {
            let now = self.inner.clock.now_ms();
            let due = persistence::subscriptions::due_subscriptions(
                &mut *self.inner.db.writer().await?,
                now,
                cursor,
                page,
            )
            .await?;
            let Some(last) = due.last() else { break };
            cursor = (last.1, last.0);
            let mut claimed = Vec::new();
            for (id, due_at) in due {
                if let Some(attempt) = self.claim(id, due_at).await? {
                    claimed.push(attempt);
                }
            }
            report.claimed += claimed.len() as u64;
            report.add(self.charge_all(claimed).await?);
        }
        self.publish_gauges().await?;
        Ok(report)
    }

    /// Charges attempts, at most the batch bulkhead's size at a time (more would be refused
    /// by it, and a refusal is a system failure of the attempt).
    async fn charge_all(&self, attempts: Vec<AttemptRow>) -> Result<RoundReport, sqlx::Error> {
        let limit = self
            .inner
            .settings
            .client
            .charge
            .bulkhead
            .max_concurrent_calls
            .max(1);
        let mut report = RoundReport::default();
        let mut running = JoinSet::new();
        for attempt in attempts {
            while running.len() >= limit {
                if let Some(done) = running.join_next().await {
                    report.add(joined(done)?);
                }
            }
            let job = self.clone();
            running.spawn(async move { job.charge(&attempt).await });
        }
        while let Some(done) = running.join_next().await {
            report.add(joined(done)?);
        }
        Ok(report)
    }

    /// Claims a subscription due at `due_at` and records its attempt; `None` when another
    /// instance (or a pause, cancel or earlier round) got it first.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn claim(&self, id: i64, due_at: i64) -> Result<Option<AttemptRow>, sqlx::Error> {
        let now = self.inner.clock.now_ms();
        let mut tx = self.inner.db.begin().await?;
        if !db::claim_subscription(&mut tx, id, due_at, now).await? {
            return Ok(None);
        }
        let Some(sub) = db::subscription_by_id(&mut tx, id).await? else {
            return Ok(None);
        };
        let s = sub.schedule;
        let number = s.failures + 1;
        let mut attempt = AttemptRow {
            id: 0,
            subscription_id: id,
            period: s.period,
            attempt: number,
            idempotency_key: format!("SUB-{id:06}-P{}-A{number}", s.period),
            order_ref: format!("SUB{id:06}P{}", s.period),
            amount: sub.price,
            card_no: sub.card_no_masked.clone(),
            status: "REQUESTED".to_owned(),
            outcome: None,
            transaction_key: None,
            reason: None,
            created_at: now,
            updated_at: now,
        };
        attempt.id = db::insert_attempt(&mut tx, &attempt).await?;
        tx.commit().await?;
        Ok(Some(attempt))
    }

    /// Charges one attempt with its key and records what the PG said.
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn charge(&self, attempt: &AttemptRow) -> Result<RoundReport, sqlx::Error> {
        let mut report = RoundReport::default();
        let Some(sub) = persistence::subscriptions::subscription_by_id(
            &mut *self.inner.db.writer().await?,
            attempt.subscription_id,
        )
        .await?
        else {
            return Ok(report);
        };
        let request = match self.request(&sub, attempt) {
            Ok(request) => request,
            Err(reason) => {
                self.settle(attempt, Outcome::BusinessDecline, None, Some(reason))
                    .await?;
                report.declined += 1;
                return Ok(report);
            }
        };
        let now = self.inner.clock.now_ms();
        match self.inner.gateway.charge(request).await {
            Ok(key) => {
                let mut conn = self.inner.db.begin().await?;
                db::attempt_accepted(&mut conn, attempt.id, &key, now).await?;
                conn.commit().await?;
                report.accepted += 1;
            }
            Err(ChargeError::NotReached(reason)) => {
                self.settle(attempt, Outcome::SystemFailure, None, Some(reason))
                    .await?;
                report.system_failures += 1;
            }
            Err(ChargeError::Rejected(reason)) => {
                self.settle(attempt, Outcome::BusinessDecline, None, Some(reason))
                    .await?;
                report.declined += 1;
            }
            Err(ChargeError::Uncertain(reason)) => {
                // The PG may hold a transaction: never a new key; the next look re-sends
                // this one.
                let mut conn = self.inner.db.begin().await?;
                db::touch_attempt(&mut conn, attempt.id, &format!("uncertain: {reason}"), now)
                    .await?;
                conn.commit().await?;
            }
        }
        Ok(report)
    }

    fn request(
        &self,
        sub: &SubscriptionRow,
        attempt: &AttemptRow,
    ) -> Result<ChargeRequest, String> {
        let card_no = self
            .inner
            .vault
            .open(&sub.card_sealed, super::SEALED_CARD_CONTEXT)
            .map_err(|e| format!("{e}; update the card"))?;
        let card_type = CardType::from_wire(&sub.card_type);
        Ok(ChargeRequest {
            user_id: sub.user_id.to_string(),
            order_ref: attempt.order_ref.clone(),
            card_type,
            card_no,
            amount: Money::new(attempt.amount),
            callback_url: self.inner.callback_url.clone(),
            idempotency_key: attempt.idempotency_key.clone(),
        })
    }

    /// Unsettled attempts: looked up at the PG (`PENDING`), or re-sent with their key when
    /// still `REQUESTED` `resend_after_ms` after they were last touched.
    async fn settle_open(&self) -> Result<RoundReport, sqlx::Error> {
        let mut report = RoundReport::default();
        let resend_after = i64::try_from(self.inner.settings.resend_after_ms).unwrap_or(i64::MAX);
        let now = self.inner.clock.now_ms();
        let resend_before = now.saturating_sub(resend_after);
        let mut after = 0;
        loop {
            let open = persistence::subscriptions::open_attempts(
                &mut *self.inner.db.writer().await?,
                now,
                after,
                self.inner.settings.page_size,
            )
            .await?;
            let Some(last) = open.last() else { break };
            after = last.id;
            let mut resend = Vec::new();
            for attempt in open {
                match attempt.transaction_key.clone() {
                    Some(key) => report.add(self.look_up(&attempt, &key).await?),
                    // Maybe still being sent by its claimer: only once it is old.
                    None if attempt.updated_at <= resend_before => resend.push(attempt),
                    None => {}
                }
            }
            let mut unsent = Vec::new();
            for attempt in resend {
                match self.find_sent(&attempt).await? {
                    Found::Sent(accepted) => report.add(accepted),
                    Found::Nothing => unsent.push(attempt),
                    Found::Unknown => {}
                }
            }
            report.resent += unsent.len() as u64;
            report.add(self.charge_all(unsent).await?);
        }
        Ok(report)
    }

    /// Before an attempt is sent again, asks the PG for the period's transactions: one that
    /// no attempt has recorded is this attempt's (sent before a crash, or answered
    /// uncertainly) and is attached to it instead of sending again. So even a re-send that
    /// the PG would not match to the first (another card after an update) charges nothing
    /// twice.
    async fn find_sent(&self, attempt: &AttemptRow) -> Result<Found, sqlx::Error> {
        let Some(sub) = persistence::subscriptions::subscription_by_id(
            &mut *self.inner.db.writer().await?,
            attempt.subscription_id,
        )
        .await?
        else {
            return Ok(Found::Unknown);
        };
        let keys = match self
            .inner
            .gateway
            .transactions_for_order(&sub.user_id.to_string(), &attempt.order_ref)
            .await
        {
            Ok(keys) => keys,
            Err(error) => {
                // Not knowing, send nothing: the next round asks again.
                self.touch(attempt, &error.to_string()).await?;
                return Ok(Found::Unknown);
            }
        };
        let known = persistence::subscriptions::period_transaction_keys(
            &mut *self.inner.db.writer().await?,
            attempt.subscription_id,
            attempt.period,
        )
        .await?;
        let Some(key) = keys.into_iter().find(|k| !known.contains(k)) else {
            return Ok(Found::Nothing);
        };
        let mut conn = self.inner.db.begin().await?;
        db::attempt_accepted(&mut conn, attempt.id, &key, self.inner.clock.now_ms()).await?;
        conn.commit().await?;
        tracing::info!(
            attempt_id = attempt.id,
            transaction_key = key,
            "an attempt sent before was found at the PG; not sent again"
        );
        Ok(Found::Sent(RoundReport {
            accepted: 1,
            ..RoundReport::default()
        }))
    }

    /// Settles a `PENDING` attempt from the PG's status of its transaction.
    async fn look_up(&self, attempt: &AttemptRow, key: &str) -> Result<RoundReport, sqlx::Error> {
        let mut report = RoundReport::default();
        let Some(sub) = persistence::subscriptions::subscription_by_id(
            &mut *self.inner.db.writer().await?,
            attempt.subscription_id,
        )
        .await?
        else {
            return Ok(report);
        };
        let found = self
            .inner
            .gateway
            .transaction(&sub.user_id.to_string(), key)
            .await;
        let (outcome, reason) = match found {
            Ok(Some(tx)) => match tx.status {
                PgStatus::Success => (Outcome::Success, None),
                PgStatus::Failed => (Outcome::BusinessDecline, tx.reason),
                PgStatus::Canceled => (
                    Outcome::BusinessDecline,
                    Some("the charge was canceled at the PG".to_owned()),
                ),
                PgStatus::Pending => return self.touch(attempt, "PG says PENDING").await,
            },
            Ok(None) => return self.touch(attempt, "not found at the PG yet").await,
            Err(error) => return self.touch(attempt, &error.to_string()).await,
        };
        self.settle(attempt, outcome, Some(key), reason).await?;
        match outcome {
            Outcome::Success => report.succeeded += 1,
            Outcome::SystemFailure => report.system_failures += 1,
            Outcome::BusinessDecline => report.declined += 1,
        }
        Ok(report)
    }

    async fn touch(&self, attempt: &AttemptRow, why: &str) -> Result<RoundReport, sqlx::Error> {
        let mut conn = self.inner.db.begin().await?;
        db::touch_attempt(&mut conn, attempt.id, why, self.inner.clock.now_ms()).await?;
        conn.commit().await?;
        Ok(RoundReport::default())
    }

    /// Settles an attempt and moves its subscription on the dunning schedule, in one
    /// transaction with the outbox events; nothing when the attempt was settled already.
    async fn settle(
        &self,
        attempt: &AttemptRow,
        outcome: Outcome,
        key: Option<&str>,
        reason: Option<String>,
    ) -> Result<(), sqlx::Error> {
        let now = self.inner.clock.now_ms();
        let mut tx = self.inner.db.begin().await?;
        db::lock_subscription(&mut tx, attempt.subscription_id).await?;
        let status = if outcome == Outcome::Success {
            "SUCCESS"
        } else {
            "FAILED"
        };
        let settled = db::settle_attempt(
            &mut tx,
            attempt.id,
            status,
            outcome.as_str(),
            key,
            reason.as_deref(),
            now,
        )
        .await?;
        let Some(sub) = db::subscription_by_id(&mut tx, attempt.subscription_id).await? else {
            return Ok(());
        };
        if !settled {
            return Ok(());
        }
        let (next, events) = dunning::decide(sub.schedule, outcome, now);
        if !db::write_schedule(&mut tx, sub.id, Some(attempt.id), &next, now).await? {
            tracing::warn!(
                subscription_id = sub.id,
                attempt_id = attempt.id,
                "the settled attempt was not the one in flight; schedule left as it was"
            );
        }
        for event in &events {
            // The relay compares with wall time: outbox rows take it, not the billing clock.
            insert_outbox(
                &mut tx,
                sub.id,
                event.as_str(),
                &json!({"subscriptionId": sub.id, "period": attempt.period,
                        "attempt": attempt.attempt, "state": next.state.as_str(),
                        "nextAttemptAt": next.next_attempt_at}),
                now_ms(),
            )
            .await?;
        }
        tx.commit().await?;
        metrics::counter!("commerce_subscription_billing_attempts_total",
            "result" => outcome.as_str())
        .increment(1);
        if events.contains(&Event::Recovered) {
            metrics::counter!("commerce_subscription_dunning_recoveries_total").increment(1);
        }
        if events.contains(&Event::CancelledForNonPayment) {
            metrics::counter!("commerce_subscription_cancellations_total",
                "reason" => "dunning_exhausted")
            .increment(1);
        }
        tracing::info!(
            subscription_id = sub.id,
            period = attempt.period,
            attempt = attempt.attempt,
            outcome = outcome.as_str(),
            state = next.state.as_str(),
            "subscription billing attempt settled"
        );
        Ok(())
    }

    /// Subscriptions by state as gauges (`commerce_subscriptions{state}`), past due among them.
    async fn publish_gauges(&self) -> Result<(), sqlx::Error> {
        let states =
            persistence::subscriptions::subscription_states(&mut *self.inner.db.writer().await?)
                .await?;
        for state in [
            State::Active,
            State::PastDue,
            State::Paused,
            State::Cancelled,
        ] {
            let n = states
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            #[allow(clippy::cast_precision_loss)] // counts far below 2^52
            metrics::gauge!("commerce_subscriptions", "state" => state.as_str()).set(n as f64);
        }
        Ok(())
    }
}

/// What the PG holds for an attempt about to be sent again.
enum Found {
    /// A transaction no attempt recorded: attached to this one.
    Sent(RoundReport),
    /// None: send it (with its key).
    Nothing,
    /// The PG could not be asked: wait for the next round.
    Unknown,
}

fn joined(
    done: Result<Result<RoundReport, sqlx::Error>, tokio::task::JoinError>,
) -> Result<RoundReport, sqlx::Error> {
    match done {
        Ok(result) => result,
        Err(error) => {
            tracing::error!(%error, "a billing charge task failed");
            Ok(RoundReport::default())
        }
    }
}

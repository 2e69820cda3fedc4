//! The recovery (reconciliation) job: settles payments whose callback never came.
//!
//! Every round: take this instance's round lock (the periodic round and `POST
//! /admin/reconcile` never overlap: the second is refused with [`RoundError::AlreadyRunning`]),
//! then the `recovery` lease (one runner across instances; not re-entrant; its generation is
//! the round's fencing token), record the round's start, skip the round if the PG's query
//! breaker is open, then walk open payments (REQUESTED / PENDING / UNKNOWN)
//! unchanged for `older_than`, **oldest first** in pages by id. For each: query the PG by
//! transaction key, or by order id when the key was never learned; feed what it says to
//! [`PaymentService::apply`]. "Not found" counts only once the payment is older than the
//! grace period (→ FAILED, stock released); still unresolved past the deadline →
//! NEEDS_REVIEW. A failed query changes nothing. Finally, extra successful charges whose
//! cancel failed earlier are cancelled again.
//!
//! **Fencing.** Before each payment, once a third of the lease's time has passed since it was
//! last renewed, the round renews it under its generation; when that fails (the lease ran out
//! and another instance took it) the round stops at once, writing nothing more, and does not
//! release the lease it no longer holds. The round's end is recorded before the lease is
//! released, so the `recovery_rounds` records of all instances never overlap.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::configuration::RecoverySettings;
use crate::domain::{Money, Observation, PaymentId, PaymentStatus, Source};
use crate::gateway::{ChargeError, ChargeRequest, PaymentGateway};
use crate::payments::{PaymentService, Target};
use crate::persistence;
use crate::persistence::{self as db, Lease, PaymentRow};
use pg_client::model::CardType;

/// The name of the recovery job's lease row.
pub const LEASE_NAME: &str = "recovery";

/// Why a round could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// A round of this instance is running now (the periodic one, or an admin one).
    #[error("a recovery round is already running in this instance")]
    AlreadyRunning,
    /// A database error; the round stopped where it was (everything applied so far stays).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryReport {
    /// Whether the round ran (false: another runner holds the lease, or queries are blocked).
    pub ran: bool,
    /// Why it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'static str>,
    /// Payments examined.
    pub examined: u64,
    /// Payments whose status changed.
    pub changed: u64,
    /// Queries that failed (state kept).
    pub query_failures: u64,
    /// Payments left for a later round because their PG's query breaker was open.
    pub held_back: u64,
    /// Extra charges cancelled.
    pub extra_charges_reversed: u64,
    /// The round lost its lease (it ran out and another instance took it) and stopped.
    pub lease_lost: bool,
}

/// The recovery job. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RecoveryJob {
    payments: PaymentService,
    settings: RecoverySettings,
    owner: Arc<str>,
    rounds: Arc<AtomicU64>,
    /// Held for the whole of a round: one round at a time in this process.
    running: Arc<tokio::sync::Mutex<()>>,
    /// Where the PG reports charges recovery sends (unset: recovery sends none).
    callback_url: Option<Arc<str>>,
}

/// What recovery does with an open payment (see [`next_step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// Never sent, past the grace: send it now, with its original idempotency key.
    Send,
    /// Never sent, still within the grace: its request may be about to send it; wait.
    Wait,
    /// Ask the PG what became of it.
    Query,
}

/// The step for an open payment: pure. A REQUESTED payment whose card is kept (so its
/// charge was never attempted) is never queried, so it is never "not found at the PG": it is
/// sent once `age_ms` reaches `send_grace_ms`. Anything else is queried.
pub fn next_step(
    status: PaymentStatus,
    unsent_card_kept: bool,
    age_ms: i64,
    send_grace_ms: u64,
) -> NextStep {
    match (status, unsent_card_kept) {
        (PaymentStatus::Requested, true) if age_ms >= ms(send_grace_ms) => NextStep::Send,
        (PaymentStatus::Requested, true) => NextStep::Wait,
        _ => NextStep::Query,
    }
}

/// The lease a round holds, and when it was last renewed.
struct Fence {
    lease: Lease,
    record: i64,
    renewed_at: i64,
    ttl: Duration,
}

/// Whether a lease of `ttl_ms` renewed at `renewed_at` should be renewed at `now` (a third of
/// its time has passed): pure, so the cadence is tested exactly.
pub fn renewal_due(renewed_at: i64, now: i64, ttl_ms: u64) -> bool {
    now.saturating_sub(renewed_at) >= ms(ttl_ms / 3)
}

impl RecoveryJob {
    /// A job; `owner` names this instance in the lease.
    pub fn new(
        payments: PaymentService,
        settings: RecoverySettings,
        owner: impl Into<Arc<str>>,
    ) -> Self {
        Self {
            payments,
            settings,
            owner: owner.into(),
            rounds: Arc::new(AtomicU64::new(0)),
            running: Arc::new(tokio::sync::Mutex::new(())),
            callback_url: None,
        }
    }

    /// Lets recovery send charges that were accepted but never sent, reporting to
    /// `callback_url`.
    #[must_use]
    pub fn sending_to(mut self, callback_url: impl Into<Arc<str>>) -> Self {
        self.callback_url = Some(callback_url.into());
        self
    }

    /// The name this instance holds the lease under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Rounds completed so far.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Runs rounds every `interval` until `shutdown` fires (a round in progress finishes).
    pub async fn run(self, shutdown: CancellationToken) {
        let clock = seawall::Clock::default();
        let interval = Duration::from_millis(self.settings.interval_ms);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = clock.sleep(interval) => {}
            }
            match self.run_once(Source::Recovery).await {
                Ok(report) if report.changed > 0 => tracing::info!(?report, "recovery round"),
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "recovery round failed"),
            }
        }
        tracing::info!("recovery job stopped");
    }

    /// Runs one round now, reporting `source` in the history (recovery, or admin).
    ///
    /// # Errors
    ///
    /// [`RoundError::AlreadyRunning`] while another round of this instance runs; a database
    /// error (the round stops where it was; everything applied so far stays).
    #[tracing::instrument(name = "recovery.round", skip(self))]
    pub async fn run_once(&self, source: Source) -> Result<RecoveryReport, RoundError> {
        let Ok(_running) = self.running.try_lock() else {
            return Err(RoundError::AlreadyRunning);
        };
        let database = self.payments.db();
        let now = db::now_ms();
        let ttl = Duration::from_millis(self.settings.lease_ttl_ms);
        let Some(lease) = persistence::try_acquire_lease(
            &mut *database.writer().await?,
            LEASE_NAME,
            &self.owner,
            now,
            ttl,
        )
        .await?
        else {
            return Ok(RecoveryReport {
                skipped: Some("another instance holds the recovery lease"),
                ..RecoveryReport::default()
            });
        };
        // The start is stamped after the lease was taken, not with the time read before
        // asking for it: the asking can wait (a connection, a row lock, the scheduler) past
        // the previous holder's recorded end, and a start stamped earlier than that end
        // would make the records overlap although the rounds did not (seen by the system
        // test `tests/tests/three_instances.rs`, 41 ms apart under load).
        // Bound first: a `match` would hold the connection through its arms.
        let started = persistence::record_round_start(
            &mut *database.writer().await?,
            &lease,
            source.as_str(),
            db::now_ms(),
        )
        .await;
        let record = match started {
            Ok(record) => record,
            Err(error) => {
                let _ = persistence::release_lease(&mut *database.writer().await?, &lease).await;
                return Err(error.into());
            }
        };
        tracing::debug!(generation = lease.generation, "recovery lease taken");
        let mut fence = Fence {
            lease,
            record,
            renewed_at: now,
            ttl,
        };
        let result = self.round(source, &mut fence).await;
        let outcome = match &result {
            Ok(report) if report.lease_lost => "lease lost",
            Ok(_) => "done",
            Err(_) => "failed",
        };
        // The end is recorded before the lease goes, so records never overlap.
        let ended = persistence::record_round_end(
            &mut *database.writer().await?,
            record,
            db::now_ms(),
            outcome,
        )
        .await;
        if outcome != "lease lost" {
            persistence::release_lease(&mut *database.writer().await?, &fence.lease).await?;
        }
        ended?;
        self.rounds.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("commerce_recovery_rounds_total").increment(1);
        Ok(result?)
    }

    /// Whether the round still holds its lease, renewing it when due; false: stop writing.
    async fn still_held(&self, fence: &mut Fence) -> Result<bool, sqlx::Error> {
        let now = db::now_ms();
        if !renewal_due(fence.renewed_at, now, self.settings.lease_ttl_ms) {
            return Ok(true);
        }
        let held = persistence::renew_lease(
            &mut *self.payments.db().writer().await?,
            &mut fence.lease,
            Some(fence.record),
            now,
            fence.ttl,
        )
        .await?;
        if held {
            fence.renewed_at = now;
        } else {
            tracing::warn!(
                generation = fence.lease.generation,
                "the recovery lease was lost: the round stops"
            );
        }
        Ok(held)
    }

    async fn round(
        &self,
        source: Source,
        fence: &mut Fence,
    ) -> Result<RecoveryReport, sqlx::Error> {
        let mut report = RecoveryReport {
            ran: true,
            ..RecoveryReport::default()
        };
        // Per PG: a payment whose PG refuses queries waits (see `settle`); the round is
        // skipped only when every PG does.
        if !self
            .payments
            .router()
            .routes()
            .iter()
            .any(|route| route.gateway.queries_permitted())
        {
            report.ran = false;
            report.skipped = Some("the query breaker of every PG is open");
            return Ok(report);
        }
        let database = self.payments.db();
        let now = db::now_ms();
        let cutoff = now - ms(self.settings.older_than_ms);
        let mut after = PaymentId::new(0);
        loop {
            let page = persistence::open_payments_page(
                &mut *database.writer().await?,
                cutoff,
                after,
                self.settings.page_size,
            )
            .await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for payment in page {
                if !self.still_held(fence).await? {
                    report.lease_lost = true;
                    report.skipped = Some("the recovery lease was lost during the round");
                    return Ok(report);
                }
                report.examined += 1;
                match self.settle(&payment, source, now).await? {
                    Settled::Changed => report.changed += 1,
                    Settled::Unchanged => {}
                    Settled::QueryFailed => report.query_failures += 1,
                    Settled::HeldBack => {
                        // Not checked: its PG refuses queries; the next round asks again.
                        report.held_back += 1;
                        continue;
                    }
                }
                persistence::touch_payment_checked(&mut *database.writer().await?, payment.id, now)
                    .await?;
            }
        }
        if !self.still_held(fence).await? {
            report.lease_lost = true;
            report.skipped = Some("the recovery lease was lost during the round");
            return Ok(report);
        }
        // Bound first: a `for` would hold the connection while the PG is called.
        let extra = persistence::extra_successful_payments(
            &mut *database.writer().await?,
            self.settings.page_size,
        )
        .await?;
        for (payment, user_id) in extra {
            if let Some(key) = &payment.transaction_key {
                self.payments
                    .reverse_extra_charge(payment.id, user_id, key)
                    .await;
                report.extra_charges_reversed += 1;
            }
        }
        Ok(report)
    }

    /// Settles one open payment, in steps: the order and its PG; a charge never sent is
    /// sent ([`Self::send_if_never_sent`]); otherwise the PG is asked what became of it
    /// ([`Self::observe`]), what it said is applied ([`Self::apply_observations`]), and a
    /// payment still unresolved past the deadline goes to review
    /// ([`Self::escalate_past_deadline`]).
    async fn settle(
        &self,
        payment: &PaymentRow,
        source: Source,
        now: i64,
    ) -> Result<Settled, sqlx::Error> {
        let database = self.payments.db();
        let Some((order, _, _)) =
            persistence::order_with_details(&mut *database.reader().await?, payment.order_id)
                .await?
        else {
            return Ok(Settled::Unchanged);
        };
        // The PG the payment was sent to (recorded before the charge).
        let Some(gateway) = self.payments.gateway_of(payment.id).await? else {
            return Ok(Settled::QueryFailed);
        };
        // That PG's query breaker is open: this payment waits, the others go on.
        if !gateway.queries_permitted() {
            return Ok(Settled::HeldBack);
        }
        let age = now - payment.created_at;
        if let Some(settled) = self
            .send_if_never_sent(payment, &order, age, source)
            .await?
        {
            return Ok(settled);
        }
        let Some(observations) = self.observe(gateway.as_ref(), payment, &order, age).await else {
            return Ok(Settled::QueryFailed);
        };
        let mut changed = self
            .apply_observations(payment, observations, source)
            .await?;
        if !changed && age >= ms(self.settings.deadline_ms) {
            changed = self.escalate_past_deadline(payment, source).await?;
        }
        Ok(if changed {
            Settled::Changed
        } else {
            Settled::Unchanged
        })
    }

    /// What the PG says about a payment sent before: its transaction when the payment knows
    /// it, else every transaction of its order that matches the order (a charge whose answer
    /// was lost), and "not found" once past the grace. `None`: a query failed (logged; the
    /// payment keeps its state for a later round).
    async fn observe(
        &self,
        gateway: &dyn PaymentGateway,
        payment: &PaymentRow,
        order: &db::OrderRow,
        age: i64,
    ) -> Option<Vec<Observation>> {
        let user = order.user_id.to_string();
        let not_found_yet = age < ms(self.settings.not_found_grace_ms);
        let failed = |error: &dyn std::fmt::Display| {
            tracing::warn!(payment_id = payment.id.get(), %error, "recovery query failed");
        };
        let mut observations = Vec::new();
        if let Some(key) = &payment.transaction_key {
            match gateway.transaction(&user, key).await {
                Ok(Some(tx)) => observations.push(Observation::Pg {
                    transaction_key: tx.transaction_key,
                    status: tx.status,
                    reason: tx.reason,
                }),
                Ok(None) if not_found_yet => {}
                Ok(None) => observations.push(Observation::NotFoundAtPg),
                Err(error) => {
                    failed(&error);
                    return None;
                }
            }
            return Some(observations);
        }
        let keys = match gateway
            .transactions_for_order(&user, &order.order_ref)
            .await
        {
            Ok(keys) => keys,
            Err(error) => {
                failed(&error);
                return None;
            }
        };
        if keys.is_empty() && !not_found_yet {
            observations.push(Observation::NotFoundAtPg);
        }
        for key in keys {
            match gateway.transaction(&user, &key).await {
                Ok(Some(tx))
                    if tx.order_ref == order.order_ref
                        && tx.amount.minor_units() == order.total_amount =>
                {
                    observations.push(Observation::Pg {
                        transaction_key: tx.transaction_key,
                        status: tx.status,
                        reason: tx.reason,
                    });
                }
                Ok(Some(_)) => {
                    tracing::error!(order_id = order.id.get(), transaction_key = %key, "PG transaction does not match its order");
                }
                Ok(None) => {}
                Err(error) => {
                    failed(&error);
                    return None;
                }
            }
        }
        Some(observations)
    }

    /// Applies what the PG said; returns whether the payment (or its order) changed.
    async fn apply_observations(
        &self,
        payment: &PaymentRow,
        observations: Vec<Observation>,
        source: Source,
    ) -> Result<bool, sqlx::Error> {
        let mut changed = false;
        for observation in observations {
            // A transaction of the order other than this payment's: target the order.
            let target = match (&observation, payment.transaction_key.as_deref()) {
                (Observation::Pg { .. }, None) => Target::Order(payment.order_id),
                _ => Target::Payment(payment.id),
            };
            let applied = self.payments.apply(target, observation, source).await?;
            changed |= applied.changed;
        }
        Ok(changed)
    }

    /// A payment still unresolved past the deadline goes to review, with an alert; returns
    /// whether it changed.
    async fn escalate_past_deadline(
        &self,
        payment: &PaymentRow,
        source: Source,
    ) -> Result<bool, sqlx::Error> {
        let applied = self
            .payments
            .apply(
                Target::Payment(payment.id),
                Observation::DeadlinePassed,
                source,
            )
            .await?;
        if applied.to == Some(PaymentStatus::NeedsReview) && applied.changed {
            tracing::error!(
                payment_id = payment.id.get(),
                order_id = payment.order_id.get(),
                "ALERT payment unresolved past the deadline"
            );
            metrics::counter!("commerce_alerts_total", "kind" => "PaymentPastDeadline")
                .increment(1);
        }
        Ok(applied.changed)
    }
}

impl RecoveryJob {
    /// For a payment never sent: waits out the grace (`Unchanged`), or sends it. `None`: the
    /// payment was sent before, so the PG is to be queried.
    async fn send_if_never_sent(
        &self,
        payment: &PaymentRow,
        order: &db::OrderRow,
        age: i64,
        source: Source,
    ) -> Result<Option<Settled>, sqlx::Error> {
        let unsent = match (&self.callback_url, payment.status) {
            (Some(_), PaymentStatus::Requested) => {
                persistence::unsent_card(&mut *self.payments.db().writer().await?, payment.id)
                    .await?
            }
            _ => None,
        };
        let step = next_step(
            payment.status,
            unsent.is_some(),
            age,
            self.settings.send_grace_ms,
        );
        match (step, unsent) {
            (NextStep::Wait, _) => Ok(Some(Settled::Unchanged)),
            (NextStep::Send, Some(sealed)) => {
                Ok(Some(self.send(payment, order, &sealed, source).await?))
            }
            _ => Ok(None),
        }
    }

    /// Sends a charge that was accepted but never sent, with its original idempotency key,
    /// through the same protected gateway as a request (which claims the attempt first).
    async fn send(
        &self,
        payment: &PaymentRow,
        order: &db::OrderRow,
        sealed: &str,
        source: Source,
    ) -> Result<Settled, sqlx::Error> {
        let (Some(callback_url), Some(vault), Some(key)) = (
            &self.callback_url,
            self.payments.card_vault(),
            payment.idempotency_key.as_deref(),
        ) else {
            return Ok(Settled::Unchanged);
        };
        let card_type = payment.card_type.as_deref().map(CardType::from_wire);
        let (Ok(card_no), Some(card_type)) = (vault.open(sealed, key), card_type) else {
            tracing::error!(
                payment_id = payment.id.get(),
                "the kept card cannot be sent"
            );
            return Ok(Settled::Unchanged);
        };
        let request = ChargeRequest {
            user_id: order.user_id.to_string(),
            order_ref: order.order_ref.clone(),
            card_type,
            card_no,
            amount: Money::new(payment.amount),
            callback_url: callback_url.to_string(),
            idempotency_key: key.to_owned(),
        };
        tracing::warn!(
            payment_id = payment.id.get(),
            order_id = order.id.get(),
            "sending a charge that was accepted but never sent"
        );
        let observation = match self.payments.charge(payment.id, request).await {
            Ok(transaction_key) => Observation::Accepted { transaction_key },
            Err(ChargeError::NotReached(reason)) => Observation::NotReached { reason },
            Err(ChargeError::Uncertain(reason)) => Observation::Uncertain { reason },
            Err(ChargeError::Rejected(reason)) => Observation::Rejected { reason },
        };
        let applied = self
            .payments
            .apply(Target::Payment(payment.id), observation, source)
            .await?;
        metrics::counter!("commerce_recovery_charges_sent_total").increment(1);
        Ok(if applied.changed {
            Settled::Changed
        } else {
            Settled::Unchanged
        })
    }
}

enum Settled {
    Changed,
    Unchanged,
    QueryFailed,
    /// Its PG refuses queries now (query breaker open): left for a later round.
    HeldBack,
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_payment_never_sent_is_sent_after_the_grace_and_never_queried() {
        use PaymentStatus as S;
        assert_eq!(next_step(S::Requested, true, 9_999, 10_000), NextStep::Wait);
        assert_eq!(
            next_step(S::Requested, true, 10_000, 10_000),
            NextStep::Send
        );
        // Attempted (no card kept), or past REQUESTED: the PG is asked.
        assert_eq!(
            next_step(S::Requested, false, 60_000, 10_000),
            NextStep::Query
        );
        for status in [S::Pending, S::Unknown] {
            assert_eq!(next_step(status, true, 60_000, 10_000), NextStep::Query);
        }
    }

    #[test]
    fn the_lease_is_renewed_once_a_third_of_its_time_has_passed() {
        assert!(!renewal_due(1_000, 1_000, 60_000));
        assert!(!renewal_due(1_000, 20_999, 60_000));
        assert!(renewal_due(1_000, 21_000, 60_000));
        // A clock that went back never renews early.
        assert!(!renewal_due(1_000, 500, 60_000));
        // A tiny lease is renewed before every payment.
        assert!(renewal_due(1_000, 1_000, 2));
    }
}

//! The payment state machine: one [`PaymentService::apply`] for every source of truth.
//!
//! The order request, the callback handler, the recovery job and the admin API each turn what
//! they learned into an [`Observation`] and hand it to `apply`, which in one write
//! transaction: finds the payment (attaching a PG transaction to its order when the key was
//! never seen: the charge-but-timeout case), decides the transition with the pure
//! [`decide`], applies it as a conditional update, records the history row and the outbox
//! events, and re-derives the order's status (releasing its stock when it fails). Terminal
//! states never regress; a conflicting late result becomes NEEDS_REVIEW plus an alert event.
//! A second successful charge for a paid order is reversed at the PG after the commit.

use std::sync::Arc;

use serde_json::json;

use crate::domain::{
    Money, Observation, OrderId, OrderStatus, PaymentId, PaymentMethod, PaymentStatus, PgStatus,
    Source, UserId,
};
use crate::gateway::routing::{self, Next, PgRouter};
use crate::gateway::{ChargeError, ChargeRequest, PaymentGateway};
use crate::persistence;
use crate::persistence::{self as db, Claim, Db, NewPayment, PaymentRow};

/// The reason stored on a payment failed because its charge provably never reached the PG
/// (the 503 case): an idempotency key whose order failed only this way may be used again.
pub const NOT_REACHED_REASON: &str = "payment gateway unavailable";

/// Which payment an observation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A known payment row.
    Payment(PaymentId),
    /// Some transaction of this order (a PG observation whose key may be new to us).
    Order(OrderId),
}

/// What [`decide`] concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The new status, or `None` for "nothing to change".
    pub to: Option<PaymentStatus>,
    /// The observation contradicts a terminal state: raise an alert.
    pub conflict: bool,
}

impl Step {
    const NOTHING: Self = Self {
        to: None,
        conflict: false,
    };

    const fn to(status: PaymentStatus) -> Self {
        Self {
            to: Some(status),
            conflict: false,
        }
    }

    const fn conflict(status: PaymentStatus) -> Self {
        Self {
            to: Some(status),
            conflict: true,
        }
    }
}

/// The transition table. Pure: the current status and an observation in, a step out.
pub fn decide(current: PaymentStatus, observation: &Observation) -> Step {
    use PaymentStatus as S;
    match (current, observation) {
        (S::Requested | S::Unknown, Observation::Accepted { .. }) => Step::to(S::Pending),
        (S::Requested, Observation::NotReached { .. } | Observation::Rejected { .. }) => {
            Step::to(S::Failed)
        }
        (S::Requested, Observation::Uncertain { .. }) => Step::to(S::Unknown),
        (current, Observation::Pg { status, .. }) => decide_pg(current, *status),
        (S::Requested | S::Unknown, Observation::NotFoundAtPg) => Step::to(S::Failed),
        // We held a key the PG no longer knows: something is wrong on one side.
        (S::Pending, Observation::NotFoundAtPg) => Step::conflict(S::NeedsReview),
        (S::Requested | S::Unknown | S::Pending, Observation::DeadlinePassed) => {
            Step::to(S::NeedsReview)
        }
        (
            S::Requested | S::Unknown | S::Pending | S::NeedsReview,
            Observation::Manual { status, .. },
        ) if matches!(status, S::Success | S::Failed | S::Canceled) => Step::to(*status),
        _ => Step::NOTHING,
    }
}

fn decide_pg(current: PaymentStatus, pg: PgStatus) -> Step {
    use PaymentStatus as S;
    match (current, pg) {
        (S::Requested | S::Unknown, PgStatus::Pending) => Step::to(S::Pending),
        (S::Requested | S::Unknown | S::Pending, PgStatus::Success) => Step::to(S::Success),
        (S::Requested | S::Unknown | S::Pending, PgStatus::Failed) => Step::to(S::Failed),
        (S::Requested | S::Unknown | S::Pending | S::Success, PgStatus::Canceled) => {
            Step::to(S::Canceled)
        }
        // A late contradiction of a terminal state: never a silent flip.
        (S::Failed, PgStatus::Success | PgStatus::Canceled) | (S::Success, PgStatus::Failed) => {
            Step::conflict(S::NeedsReview)
        }
        // Duplicates, stale PENDING after a verdict, anything already under review.
        _ => Step::NOTHING,
    }
}

/// The order status implied by its payments, or `None` to keep the current one. PAID and
/// FAILED never change again; NEEDS_REVIEW moves only to PAID or FAILED.
pub fn derive_order_status(
    current: OrderStatus,
    payments: &[PaymentStatus],
) -> Option<OrderStatus> {
    use PaymentStatus as S;
    let implied = if payments.contains(&S::Success) {
        OrderStatus::Paid
    } else if payments.iter().any(|s| s.is_open()) {
        OrderStatus::PaymentPending
    } else if payments.contains(&S::NeedsReview) {
        OrderStatus::NeedsReview
    } else {
        OrderStatus::Failed
    };
    let allowed = match current {
        OrderStatus::PaymentPending => implied != OrderStatus::PaymentPending,
        OrderStatus::NeedsReview => matches!(implied, OrderStatus::Paid | OrderStatus::Failed),
        OrderStatus::Paid | OrderStatus::Failed => false,
    };
    allowed.then_some(implied)
}

/// The result of [`PaymentService::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The payment concerned (0 when none matched).
    pub payment_id: PaymentId,
    /// Its status before.
    pub from: Option<PaymentStatus>,
    /// Its status after.
    pub to: Option<PaymentStatus>,
    /// Whether anything changed (false for a duplicate).
    pub changed: bool,
    /// The order's status after.
    pub order_status: Option<OrderStatus>,
}

/// A successful charge to reverse at the PG after the transaction commits.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ExtraCharge {
    payment_id: PaymentId,
    user_id: UserId,
    transaction_key: String,
}

/// Applies observations and reverses extra charges. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PaymentService {
    db: Db,
    router: PgRouter,
    vault: Option<crate::vault::CardVault>,
}

impl PaymentService {
    /// A service over a database and one gateway (the primary PG, named `A`).
    pub fn new(db: Db, gateway: Arc<dyn PaymentGateway>) -> Self {
        Self::with_router(db, PgRouter::single(crate::startup::PRIMARY_PG, gateway))
    }

    /// Keeps each card payment's card sealed in this vault until its charge is first
    /// attempted, so recovery can send a charge its instance never sent.
    #[must_use]
    pub fn with_card_vault(mut self, vault: crate::vault::CardVault) -> Self {
        self.vault = Some(vault);
        self
    }

    /// The card vault, when cards are kept until sent.
    pub fn card_vault(&self) -> Option<&crate::vault::CardVault> {
        self.vault.as_ref()
    }

    /// Keeps `card` sealed for payment `payment_id` (PG key `payment_key`) in the placing
    /// transaction `tx`, when a vault is configured; a card that cannot be sealed is not kept
    /// (recovery then queries the PG as before).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn keep_card_until_sent(
        &self,
        tx: &mut db::Tx,
        payment_id: PaymentId,
        payment_key: &str,
        card: &pg_client::model::CardNumber,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let Some(vault) = &self.vault else {
            return Ok(());
        };
        match vault.seal(card, payment_key) {
            Ok(sealed) => db::keep_sealed_card(tx, payment_id, &sealed, now).await,
            Err(error) => {
                tracing::warn!(payment_id = payment_id.get(), %error, "card not kept for recovery");
                Ok(())
            }
        }
    }

    /// A service over a database and several PGs.
    pub fn with_router(db: Db, router: PgRouter) -> Self {
        Self {
            db,
            router,
            vault: None,
        }
    }

    /// The primary PG's gateway.
    pub fn gateway(&self) -> &Arc<dyn PaymentGateway> {
        &self.router.primary().gateway
    }

    /// The PGs.
    pub fn router(&self) -> &PgRouter {
        &self.router
    }

    /// The gateway of the PG payment `payment_id` was sent to; `None` when that PG is no
    /// longer configured (the caller must then change nothing).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn gateway_of(
        &self,
        payment_id: PaymentId,
    ) -> Result<Option<&Arc<dyn PaymentGateway>>, sqlx::Error> {
        let pg = persistence::payment_pg(&mut *self.db.writer().await?, payment_id).await?;
        let route = self.router.route(pg.as_deref());
        if route.is_none() {
            tracing::error!(
                payment_id = payment_id.get(),
                pg,
                "the payment's PG is not configured"
            );
        }
        Ok(route.map(|r| &r.gateway))
    }

    /// Charges payment `payment_id` at the first PG that takes it, in priority order, moving
    /// on only when a PG provably created nothing ([`routing::after`]). Before each PG is
    /// tried, the payment records it (`payments.pg`), so recovery asks the right PG even
    /// after a crash; if that write fails, no PG is called.
    ///
    /// # Errors
    ///
    /// The last PG's failure (or the one that stopped the walk).
    pub async fn charge(
        &self,
        payment_id: PaymentId,
        request: ChargeRequest,
    ) -> Result<String, ChargeError> {
        // A charge is sent only by whoever claims its first attempt (the request, or recovery
        // for a charge its instance committed but never sent), whichever PG it then goes to.
        match claim_first_attempt(&self.db, &request.idempotency_key).await {
            Ok(Claim::Claimed | Claim::Untracked) => {}
            Ok(Claim::AlreadyAttempted) => {
                return Err(ChargeError::Uncertain(
                    "this charge was already sent; its outcome comes from the PG".to_owned(),
                ));
            }
            Err(error) => {
                return Err(ChargeError::NotReached(format!(
                    "could not record the charge attempt: {error}"
                )));
            }
        }
        let mut last = Err(ChargeError::NotReached(
            "no payment gateway configured".into(),
        ));
        let mut previous: Option<&str> = None;
        for route in self.router.routes() {
            let recorded = async {
                let mut conn = self.db.writer().await?;
                persistence::set_payment_pg(&mut conn, payment_id, &route.name).await
            };
            if let Err(error) = recorded.await {
                tracing::error!(payment_id = payment_id.get(), %error, "could not record the PG; not charging");
                return Err(ChargeError::NotReached(format!(
                    "the payment's PG could not be recorded: {error}"
                )));
            }
            if let Some(from) = previous {
                metrics::counter!("commerce_pg_failovers_total",
                    "from" => from.to_owned(), "to" => route.name.to_string())
                .increment(1);
                tracing::warn!(payment_id = payment_id.get(), from, to = %route.name, "charge fails over");
            }
            let mut attempt = request.clone();
            if !self.router.is_primary(&route.name) {
                attempt.callback_url = format!("{}/{}", request.callback_url, route.name);
            }
            let result = route.gateway.charge(attempt).await;
            if routing::after(&result) == Next::Stop {
                metrics::counter!("commerce_pg_routed_total", "pg" => route.name.to_string())
                    .increment(1);
                return result;
            }
            previous = Some(&route.name);
            last = result;
        }
        last
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Applies one observation (see the module docs). Idempotent: applying the same
    /// observation twice changes nothing the second time.
    ///
    /// # Errors
    ///
    /// A database error; nothing was changed.
    #[tracing::instrument(name = "payment.apply", skip_all, fields(?target, source = source.as_str()))]
    pub async fn apply(
        &self,
        target: Target,
        observation: Observation,
        source: Source,
    ) -> Result<Applied, sqlx::Error> {
        let (applied, extra) = self
            .apply_in_transaction(target, &observation, source)
            .await?;
        if let Some(extra) = extra {
            self.reverse_extra_charge(extra.payment_id, extra.user_id, &extra.transaction_key)
                .await;
        }
        Ok(applied)
    }

    /// Cancels an extra successful charge at the PG and records it as CANCELED. A failure is
    /// logged and left to the recovery job, which retries it.
    pub async fn reverse_extra_charge(
        &self,
        payment_id: PaymentId,
        user_id: UserId,
        transaction_key: &str,
    ) {
        let gateway = match self.gateway_of(payment_id).await {
            Ok(Some(gateway)) => gateway,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(payment_id = payment_id.get(), %error, "could not read the payment's PG; recovery will retry");
                return;
            }
        };
        match gateway.cancel(&user_id.to_string(), transaction_key).await {
            Ok(()) => {
                let observation = Observation::Pg {
                    transaction_key: transaction_key.to_owned(),
                    status: PgStatus::Canceled,
                    reason: Some("extra charge canceled".to_owned()),
                };
                if let Err(error) = self
                    .apply_in_transaction(
                        Target::Payment(payment_id),
                        &observation,
                        Source::Recovery,
                    )
                    .await
                {
                    tracing::error!(payment_id = payment_id.get(), %error, "could not record a canceled extra charge");
                }
            }
            Err(error) => {
                tracing::error!(payment_id = payment_id.get(), transaction_key, %error, "could not cancel an extra charge; recovery will retry");
            }
        }
    }

    async fn apply_in_transaction(
        &self,
        target: Target,
        observation: &Observation,
        source: Source,
    ) -> Result<(Applied, Option<ExtraCharge>), sqlx::Error> {
        let now = db::now_ms();
        let mut tx = self.db.begin().await?;
        // Serialise observations about one order (Postgres row lock; SQLite's write lock is
        // already held), then read everything fresh.
        let order_id = match target {
            Target::Order(id) => Some(id),
            Target::Payment(id) => db::payment_by_id(&mut tx, id).await?.map(|p| p.order_id),
        };
        if let Some(order_id) = order_id {
            db::lock_order(&mut tx, order_id).await?;
        }
        let Some(payment) = resolve_payment(&mut tx, target, observation, source, now).await?
        else {
            return Ok((
                Applied {
                    payment_id: PaymentId::new(0),
                    from: None,
                    to: None,
                    changed: false,
                    order_status: None,
                },
                None,
            ));
        };
        let step = decide(payment.status, observation);
        let (key, reason, detail) = describe(observation);
        let mut changed = false;
        let mut to = payment.status;
        if let Some(next) = step.to {
            changed = db::transition_payment(
                &mut tx,
                payment.id,
                payment.status,
                next,
                key,
                reason.as_deref(),
                now,
            )
            .await?;
            if changed {
                to = next;
                db::insert_history(
                    &mut tx,
                    payment.id,
                    Some(payment.status),
                    next,
                    source.as_str(),
                    Some(&detail),
                    now,
                )
                .await?;
                db::insert_outbox(
                    &mut tx,
                    payment.order_id.get(),
                    "PaymentStatusChanged",
                    &json!({"paymentId": payment.id, "orderId": payment.order_id,
                            "from": payment.status.as_str(), "to": next.as_str(),
                            "source": source.as_str(), "transactionKey": key.or(payment.transaction_key.as_deref())}),
                    now,
                )
                .await?;
                metrics::counter!("commerce_payment_transitions_total",
                    "to" => next.as_str(), "source" => source.as_str())
                .increment(1);
                tracing::info!(
                    payment_id = payment.id.get(),
                    order_id = payment.order_id.get(),
                    transaction_key = key.or(payment.transaction_key.as_deref()),
                    from = payment.status.as_str(),
                    to = next.as_str(),
                    "payment transition"
                );
                if step.conflict {
                    alert(
                        &mut tx,
                        payment.order_id,
                        "PaymentConflictDetected",
                        json!({"paymentId": payment.id, "orderId": payment.order_id,
                               "was": payment.status.as_str(), "observed": detail}),
                        now,
                    )
                    .await?;
                }
            }
        } else if let (Some(key), None) = (key, payment.transaction_key.as_deref()) {
            // Same status, but now we know the PG's key for it.
            db::attach_transaction_key(&mut tx, payment.id, key, now).await?;
        }
        let (order_status, extra) = settle_order(&mut tx, payment.order_id, changed, now).await?;
        tx.commit().await?;
        Ok((
            Applied {
                payment_id: payment.id,
                from: Some(payment.status),
                to: Some(to),
                changed,
                order_status,
            },
            extra,
        ))
    }
}

/// The key, reason and history detail an observation carries.
fn describe(observation: &Observation) -> (Option<&str>, Option<String>, String) {
    match observation {
        Observation::Accepted { transaction_key } => {
            (Some(transaction_key), None, "accepted by the PG".to_owned())
        }
        Observation::NotReached { reason } => (
            None,
            Some(NOT_REACHED_REASON.to_owned()),
            format!("not reached: {reason}"),
        ),
        Observation::Uncertain { reason } => (None, None, format!("uncertain: {reason}")),
        Observation::Rejected { reason } => {
            (None, Some(reason.clone()), format!("rejected: {reason}"))
        }
        Observation::Pg {
            transaction_key,
            status,
            reason,
        } => (
            Some(transaction_key),
            reason.clone(),
            format!("PG says {status:?} for {transaction_key}"),
        ),
        Observation::NotFoundAtPg => (
            None,
            Some("no transaction at the PG".to_owned()),
            "not found at the PG after the grace period".to_owned(),
        ),
        Observation::DeadlinePassed => (
            None,
            Some("unresolved past the recovery deadline".to_owned()),
            "recovery deadline passed".to_owned(),
        ),
        Observation::Manual { status, reason } => (
            None,
            Some(reason.clone()),
            format!("set to {status} by an operator: {reason}"),
        ),
    }
}

async fn alert(
    tx: &mut db::Tx,
    order_id: OrderId,
    kind: &'static str,
    payload: serde_json::Value,
    now: i64,
) -> Result<(), sqlx::Error> {
    metrics::counter!("commerce_alerts_total", "kind" => kind).increment(1);
    tracing::error!(order_id = order_id.get(), alert = kind, "ALERT {kind}");
    db::insert_outbox(tx, order_id.get(), kind, &payload, now).await?;
    Ok(())
}

/// Finds the payment an observation is about. For a PG transaction not seen before, attaches
/// it to the order's payment that has no key yet, or records it as a new payment row (a
/// second transaction for the order).
async fn resolve_payment(
    tx: &mut db::Tx,
    target: Target,
    observation: &Observation,
    source: Source,
    now: i64,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    let key = match observation {
        Observation::Pg {
            transaction_key, ..
        }
        | Observation::Accepted { transaction_key } => Some(transaction_key.as_str()),
        _ => None,
    };
    let order_id = match target {
        Target::Payment(id) => {
            let Some(payment) = db::payment_by_id(tx, id).await? else {
                return Ok(None);
            };
            match (key, payment.transaction_key.as_deref()) {
                (Some(k), Some(own)) if k != own => payment.order_id,
                _ => return Ok(Some(payment)),
            }
        }
        Target::Order(order_id) => order_id,
    };
    let Some(key) = key else {
        return Ok(None);
    };
    if let Some(payment) = db::payment_by_transaction_key(tx, key).await? {
        return Ok((payment.order_id == order_id).then_some(payment));
    }
    let payments = db::payments_for_order(tx, order_id).await?;
    // The attempt whose answer we never got: attach the key to it.
    if let Some(payment) = payments
        .iter()
        .find(|p| p.method == "CARD" && p.transaction_key.is_none() && p.status.is_open())
        .or_else(|| {
            payments
                .iter()
                .find(|p| p.method == "CARD" && p.transaction_key.is_none())
        })
    {
        return Ok(Some(payment.clone()));
    }
    // Another transaction for this order: record it as its own payment row.
    let Some(first) = payments.first() else {
        return Ok(None);
    };
    let id = db::insert_payment(
        tx,
        &NewPayment {
            order_id,
            method: PaymentMethod::Card,
            status: PaymentStatus::Requested,
            amount: Money::new(first.amount),
            card_type: first.card_type.as_deref(),
            card_no_masked: first.card_no_masked.as_deref(),
            idempotency_key: None,
            transaction_key: Some(key),
        },
        now,
    )
    .await?;
    db::insert_history(
        tx,
        id,
        None,
        PaymentStatus::Requested,
        source.as_str(),
        Some(&format!("transaction {key} discovered at the PG")),
        now,
    )
    .await?;
    db::payment_by_id(tx, id).await
}

/// Re-derives an order's status from its payments and applies it; releases stock on failure
/// and reports an extra successful charge to reverse.
async fn settle_order(
    tx: &mut db::Tx,
    order_id: OrderId,
    payment_changed: bool,
    now: i64,
) -> Result<(Option<OrderStatus>, Option<ExtraCharge>), sqlx::Error> {
    let Some(order) = db::order_by_id(tx, order_id).await? else {
        return Ok((None, None));
    };
    let payments = db::payments_for_order(tx, order_id).await?;
    let statuses: Vec<PaymentStatus> = payments.iter().map(|p| p.status).collect();
    let mut status = order.status;
    let mut paid_by = order.paid_payment_id;
    if let Some(next) = derive_order_status(order.status, &statuses) {
        let winner = payments
            .iter()
            .find(|p| p.status == PaymentStatus::Success)
            .map(|p| p.id);
        let paying = (next == OrderStatus::Paid).then_some(winner).flatten();
        if db::transition_order(tx, order_id, order.status, next, paying, now).await? {
            status = next;
            paid_by = paid_by.or(paying);
            metrics::counter!("commerce_orders_total", "status" => next.as_str()).increment(1);
            let event = match next {
                OrderStatus::Paid => "OrderPaid",
                OrderStatus::Failed => "OrderFailed",
                OrderStatus::NeedsReview => "OrderNeedsReview",
                OrderStatus::PaymentPending => "OrderPending",
            };
            db::insert_outbox(
                tx,
                order_id.get(),
                event,
                &json!({"orderId": order_id, "orderRef": order.order_ref, "status": next.as_str()}),
                now,
            )
            .await?;
            if next == OrderStatus::Failed {
                db::release_stock(tx, order_id, now).await?;
            }
        }
    }
    // A second SUCCESS for a paid order is a double charge: reverse it.
    let extra = if status == OrderStatus::Paid {
        payments
            .iter()
            .find(|p| p.status == PaymentStatus::Success && Some(p.id) != paid_by)
            .and_then(|p| {
                p.transaction_key.as_ref().map(|key| ExtraCharge {
                    payment_id: p.id,
                    user_id: order.user_id,
                    transaction_key: key.clone(),
                })
            })
    } else {
        None
    };
    if let Some(extra) = extra.as_ref().filter(|_| payment_changed) {
        alert(
            tx,
            order_id,
            "DoubleChargeDetected",
            json!({"orderId": order_id, "paymentId": extra.payment_id,
                   "transactionKey": extra.transaction_key}),
            now,
        )
        .await?;
    }
    Ok((Some(status), extra))
}

/// Claims a charge's first attempt ([`db::claim_charge_attempt`]) in its own write
/// transaction, committed before the PG is called.
async fn claim_first_attempt(database: &Db, key: &str) -> Result<Claim, sqlx::Error> {
    let mut tx = database.begin().await?;
    let claim = db::claim_charge_attempt(&mut tx, key, db::now_ms()).await?;
    tx.commit().await?;
    Ok(claim)
}

#[cfg(test)]
mod tests;

//! The outermost gateway layer: a charge is sent only by the caller that claimed its first
//! attempt (`payments.attempted_at`), so the request and the recovery job never both send it.
//!
//! The claim is recorded before the PG is called: a payment REQUESTED with no attempt was
//! provably never sent (its instance died between the commit and the call), which is what
//! lets recovery send it, with its original idempotency key, instead of concluding "not
//! found at the PG".

use std::sync::Arc;

use super::{BoxFuture, ChargeError, ChargeRequest, PaymentGateway, PgTransaction, QueryError};
use crate::persistence::{Claim, Db, now_ms};

/// Claims each charge's first attempt before sending it.
#[derive(Debug)]
pub struct AttemptClaimingGateway {
    inner: Arc<dyn PaymentGateway>,
    db: Db,
}

impl AttemptClaimingGateway {
    /// Wraps `inner`; attempts are claimed in `db`.
    pub fn wrap(inner: Arc<dyn PaymentGateway>, db: Db) -> Self {
        Self { inner, db }
    }
}

impl PaymentGateway for AttemptClaimingGateway {
    fn charge(&self, request: ChargeRequest) -> BoxFuture<'_, Result<String, ChargeError>> {
        Box::pin(async move {
            match self
                .db
                .claim_charge_attempt(&request.idempotency_key, now_ms())
                .await
            {
                Ok(Claim::Claimed | Claim::Untracked) => self.inner.charge(request).await,
                // Sent already: its outcome is the PG's to tell (callback, recovery).
                Ok(Claim::AlreadyAttempted) => Err(ChargeError::Uncertain(
                    "this charge was already sent; its outcome comes from the PG".to_owned(),
                )),
                // Nothing was sent: safe to fail the payment.
                Err(error) => Err(ChargeError::NotReached(format!(
                    "could not record the charge attempt: {error}"
                ))),
            }
        })
    }

    fn transaction<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PgTransaction>, QueryError>> {
        self.inner.transaction(user_id, transaction_key)
    }

    fn transactions_for_order<'a>(
        &'a self,
        user_id: &'a str,
        order_ref: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, QueryError>> {
        self.inner.transactions_for_order(user_id, order_ref)
    }

    fn cancel<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<(), QueryError>> {
        self.inner.cancel(user_id, transaction_key)
    }

    fn queries_permitted(&self) -> bool {
        self.inner.queries_permitted()
    }

    fn extra_breakers(&self) -> Vec<seawall::CircuitBreaker> {
        self.inner.extra_breakers()
    }
}

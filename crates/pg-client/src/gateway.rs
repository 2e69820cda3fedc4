//! The gateway as a trait object: what the service holds (`Arc<dyn PaymentGateway>`), so a
//! real PG's client or a test double fits where [`PgClient`](crate::PgClient) does.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use seawall::CircuitBreaker;

use crate::error::{CallPath, PgError};
use crate::model::{
    OrderId, OrderTransactions, PaymentRequest, TransactionDetail, TransactionKey,
    TransactionStatus, UserId,
};
use crate::policy::SystemFailures;

/// A boxed, `Send` future: what the trait's methods return, so the trait stays
/// dyn-compatible.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The gateway accepted the charge: it holds a transaction for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The gateway's id of the transaction.
    pub transaction_key: TransactionKey,
    /// Its status (PENDING for the asynchronous canonical gateway; a synchronous gateway may
    /// answer SUCCESS or FAILED at once).
    pub status: TransactionStatus,
    /// The gateway's reason, if any.
    pub reason: Option<String>,
    /// The gateway replayed the answer of an earlier attempt with the same idempotency key
    /// (`Idempotent-Replayed: true`): no new transaction was created.
    pub replayed: bool,
}

/// The charge may or may not have been created: the answer was lost, late, cut or unreadable.
/// **Not a failure.** Keep the payment pending and reconcile by `order_id` (and
/// `transaction_key`, when the gateway named one); never charge again before that.
#[derive(Debug)]
pub struct Uncertain {
    /// The order to reconcile.
    pub order_id: OrderId,
    /// The transaction, when the gateway named one (e.g. an answer with an unknown status).
    pub transaction_key: Option<TransactionKey>,
    /// What went wrong (always [`PgError::is_uncertain`]).
    pub error: PgError,
}

/// What a charge ended in, when it did not fail outright.
///
/// A charge's `Err(PgError)` always means *nothing was created* (not reached after every
/// allowed attempt, throttled, rejected by the client's protection, or refused as a business
/// error): the payment can be failed safely. An uncertain end is not an error but this
/// outcome's [`Uncertain`] variant, so it cannot be mistaken for one.
#[derive(Debug)]
pub enum ChargeOutcome {
    /// The gateway holds a transaction for the charge.
    Accepted(Accepted),
    /// The gateway may hold one: reconcile.
    Uncertain(Uncertain),
}

impl ChargeOutcome {
    /// The transaction's key, if known.
    pub fn transaction_key(&self) -> Option<&TransactionKey> {
        match self {
            Self::Accepted(accepted) => Some(&accepted.transaction_key),
            Self::Uncertain(uncertain) => uncertain.transaction_key.as_ref(),
        }
    }

    /// Whether the outcome is uncertain.
    pub fn is_uncertain(&self) -> bool {
        matches!(self, Self::Uncertain(_))
    }

    /// The accepted charge, if it was.
    pub fn accepted(&self) -> Option<&Accepted> {
        match self {
            Self::Accepted(accepted) => Some(accepted),
            Self::Uncertain(_) => None,
        }
    }
}

/// One path's circuit breaker, for an admin API to show (name, state, metrics) and change
/// (`transition_to_*`, `reconfigure`). Clones share the breaker's state.
#[derive(Clone, Debug)]
pub struct PathBreaker {
    /// The path it protects.
    pub path: CallPath,
    /// The breaker.
    pub breaker: CircuitBreaker<SystemFailures>,
}

/// A card payment gateway: charge, look up, cancel.
///
/// Every call names the `X-USER-ID` partition ([`UserId`]) it acts in: the gateway scopes every
/// transaction by it, and a lookup in another partition finds nothing.
///
/// Implemented by [`PgClient`](crate::PgClient); implement it for another gateway or for a test
/// double (build its errors with [`PgError::synthetic`]).
pub trait PaymentGateway: Send + Sync + fmt::Debug {
    /// Asks the gateway to charge a card, sending `request.idempotency_key` with every attempt.
    ///
    /// # Errors
    ///
    /// Only when nothing was created (see [`ChargeOutcome`]); an uncertain end is
    /// `Ok(ChargeOutcome::Uncertain(..))`.
    fn request_payment<'a>(
        &'a self,
        user: &'a UserId,
        request: &'a PaymentRequest,
    ) -> BoxFuture<'a, Result<ChargeOutcome, PgError>>;

    /// One transaction, or `None` when the gateway does not know it (in this partition).
    ///
    /// # Errors
    ///
    /// The query failed (after the query path's retries), or was rejected.
    fn get_transaction<'a>(
        &'a self,
        user: &'a UserId,
        transaction_key: &'a TransactionKey,
    ) -> BoxFuture<'a, Result<Option<TransactionDetail>, PgError>>;

    /// Every transaction of an order, newest first; empty when there is none (yet: see
    /// [`OrderTransactions`]).
    ///
    /// # Errors
    ///
    /// The query failed (after the query path's retries), or was rejected.
    fn find_by_order<'a>(
        &'a self,
        user: &'a UserId,
        order_id: &'a OrderId,
    ) -> BoxFuture<'a, Result<OrderTransactions, PgError>>;

    /// Whether [`cancel`](Self::cancel) is available.
    fn supports_cancel(&self) -> bool {
        false
    }

    /// Cancels a successful transaction (to refund a double charge or a late success).
    ///
    /// # Errors
    ///
    /// A business error when cancel is not supported, the transaction is unknown or not
    /// cancelable; an uncertain one when the answer was lost (cancel again: it is idempotent
    /// at the gateway, or look the transaction up).
    fn cancel<'a>(
        &'a self,
        user: &'a UserId,
        transaction_key: &'a TransactionKey,
    ) -> BoxFuture<'a, Result<TransactionDetail, PgError>> {
        let _ = (user, transaction_key);
        Box::pin(async {
            Err(PgError::synthetic(
                crate::FailureClass::Business,
                "this gateway has no cancel operation",
            ))
        })
    }

    /// The circuit breakers of the gateway's paths (none by default).
    fn circuit_breakers(&self) -> Vec<PathBreaker> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_trait_is_dyn_compatible() {
        fn _obj_safe(_: &dyn PaymentGateway) {}
        fn _shared(_: std::sync::Arc<dyn PaymentGateway>) {}
    }
}

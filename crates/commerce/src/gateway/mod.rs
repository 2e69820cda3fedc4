//! The service's port to the payment gateway (PG), and its adapters.
//!
//! The service talks to the PG only through [`PaymentGateway`], held as
//! `Arc<dyn PaymentGateway>` in the application state.
//!
//! - [`pg::PgGateway`]: the adapter, the workspace's `pg-client`. The charge path has
//!   timeouts, a bulkhead, a circuit breaker (`pg-charge`) that ignores business errors, and a
//!   retry that only retries failures that provably created nothing, always with the same
//!   `Idempotency-Key`; it never retries after an uncertain outcome. The query path has its own
//!   breaker (`pg-query`), so reconciliation keeps working while charges are throttled.
//!   The charge path's read timeout, bulkhead and slow-call threshold follow the latency of
//!   accepted charges ([`tuning`]), so a PG that is slow but working is not cut off.
//!
//! The demo's unprotected adapter (no timeouts, no breaker, blind retries) lives in the
//! `commerce-demo` crate, outside the library: it plugs in through
//! [`ApplicationBuilder::gateway`](crate::startup::ApplicationBuilder::gateway).
//!
//! Any adapter is wrapped in [`fault::FaultyGateway`] for a game day (the service always does,
//! switched off unless `[gateway.fault.*]` says otherwise).
//!
//! The port speaks the service's types (plain strings for keys, [`Money`], [`PgStatus`]);
//! each adapter translates.

pub mod call_log;
pub mod fault;
pub mod pg;
pub mod routing;
pub mod tuning;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use pg_client::model::{CardNumber, CardType};

use crate::domain::{Money, PgStatus};

/// A boxed, sendable future (the port's methods are called through `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One charge to request.
#[derive(Clone, Debug)]
pub struct ChargeRequest {
    /// The PG's `X-USER-ID` (the ordering user).
    pub user_id: String,
    /// The order id the PG sees (≥ 6 characters).
    pub order_ref: String,
    /// Card issuer.
    pub card_type: CardType,
    /// The card number (masked in `Debug`).
    pub card_no: CardNumber,
    /// Amount in minor units.
    pub amount: Money,
    /// Where the PG posts the result.
    pub callback_url: String,
    /// Sent as `Idempotency-Key` on every attempt of this charge.
    pub idempotency_key: String,
}

/// Why a charge did not come back accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    /// Provably nothing was created at the PG (refused, breaker open, throttled, 500 before
    /// create on every attempt): safe to fail the payment and release the stock.
    #[error("payment gateway not reached: {0}")]
    NotReached(String),
    /// The PG may have acted (timeout after sending, reset, malformed answer): the payment
    /// must be reconciled, never failed blindly.
    #[error("payment gateway outcome unknown: {0}")]
    Uncertain(String),
    /// The PG refused the request as invalid (4xx): nothing was created; do not retry.
    #[error("payment rejected by the gateway: {0}")]
    Rejected(String),
}

/// Why a query (or a cancel) failed. The state of the payment must not change because of it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("payment gateway query failed: {0}")]
pub struct QueryError(pub String);

/// The PG's authoritative view of one transaction (from `GET /api/v1/payments/{key}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgTransaction {
    /// The transaction key.
    pub transaction_key: String,
    /// The order id it belongs to.
    pub order_ref: String,
    /// The amount charged.
    pub amount: Money,
    /// Its state.
    pub status: PgStatus,
    /// Its reason, when terminal.
    pub reason: Option<String>,
}

/// The payment gateway, as the service needs it.
pub trait PaymentGateway: Send + Sync + fmt::Debug {
    /// Requests a charge; returns the PG's transaction key when accepted (PENDING).
    fn charge(&self, request: ChargeRequest) -> BoxFuture<'_, Result<String, ChargeError>>;

    /// The PG's state of one transaction; `None` when the PG does not know it (for this user).
    fn transaction<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<Option<PgTransaction>, QueryError>>;

    /// The keys of every transaction of an order (empty when the PG knows none).
    fn transactions_for_order<'a>(
        &'a self,
        user_id: &'a str,
        order_ref: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, QueryError>>;

    /// Reverses a successful charge.
    fn cancel<'a>(
        &'a self,
        user_id: &'a str,
        transaction_key: &'a str,
    ) -> BoxFuture<'a, Result<(), QueryError>>;

    /// Whether queries may be sent now (false while the query breaker is open): the recovery
    /// job leaves this PG's payments for a later round rather than fail their queries.
    fn queries_permitted(&self) -> bool;

    /// Circuit breakers the gateway keeps outside the service's registry (the charge
    /// breakers by card type), for the admin listing. None by default.
    fn extra_breakers(&self) -> Vec<seawall::CircuitBreaker> {
        Vec::new()
    }
}

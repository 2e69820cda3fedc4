//! Placing orders: validation, the idempotency key, the POINT and CARD flows.
//!
//! A CARD order is written (stock reserved, order PAYMENT_PENDING, payment REQUESTED) and
//! committed **before** the PG is called, so a crash loses nothing: the recovery job finds
//! the REQUESTED payment. The PG call holds no database connection. Its outcome goes through
//! [`PaymentService::apply`] like every other observation.

mod error;
mod reserve;
pub(crate) mod validate;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

pub use self::error::PlaceError;
use self::reserve::{Ask, Reservation, reserve};
use self::validate::{Payment, fingerprint, validate};
use crate::domain::{
    Observation, OrderId, PaymentId, PaymentMethod, PaymentStatus, ProductId, Source, UserId,
};
use crate::gateway::{ChargeError, ChargeRequest};
use crate::payments::{PaymentService, Target};

/// Most lines in one order.
pub const MAX_ITEMS: usize = 50;
/// Most units of one product in one order.
pub const MAX_QUANTITY: i64 = 1_000;
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 100;

/// `POST /api/v1/orders` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// What to buy.
    pub items: Vec<ItemRequest>,
    /// How to pay.
    pub payment: PaymentRequest,
}

/// One line of an order request.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemRequest {
    /// Product id.
    pub product_id: ProductId,
    /// Units.
    pub quantity: i64,
}

/// The payment part of an order request: `{"method": "POINT"}` or
/// `{"method": "CARD", "cardType": "SAMSUNG", "cardNo": "1234-5678-9012-3456"}`. A flat
/// struct rather than a tagged enum, so an unknown field (a `cvv`) is refused for every
/// method.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentRequest {
    /// `POINT` or `CARD`.
    pub method: PaymentMethod,
    /// `SAMSUNG`, `KB` or `HYUNDAI` (CARD only).
    #[serde(default)]
    pub card_type: Option<String>,
    /// `dddd-dddd-dddd-dddd` (CARD only).
    #[serde(default)]
    pub card_no: Option<String>,
}

impl std::fmt::Debug for PaymentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentRequest")
            .field("method", &self.method)
            .field("card_type", &self.card_type)
            .field(
                "card_no",
                &self.card_no.as_deref().map(pg_client::model::mask_pan),
            )
            .finish()
    }
}

/// What placing an order produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    /// A new order, with the status of its payment after the request's own PG call.
    New {
        /// The order.
        order_id: OrderId,
        /// The payment's status.
        payment: PaymentStatus,
    },
    /// The idempotency key named an existing order.
    Replayed {
        /// The order.
        order_id: OrderId,
    },
}

/// Places orders. Cheap to clone.
#[derive(Clone)]
pub struct OrderService {
    payments: PaymentService,
    callback_url: String,
    fingerprint_key: Arc<[u8]>,
}

impl std::fmt::Debug for OrderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderService")
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

impl OrderService {
    /// A service whose card payments report to `callback_url`, and whose idempotency
    /// fingerprints are keyed with `fingerprint_key`.
    pub fn new(payments: PaymentService, callback_url: String, fingerprint_key: &[u8]) -> Self {
        Self {
            payments,
            callback_url,
            fingerprint_key: Arc::from(fingerprint_key),
        }
    }

    /// Places an order for `user_id`: validate, reserve (one write transaction,
    /// committed before the PG is called), charge (CARD orders), respond.
    ///
    /// # Errors
    ///
    /// Invalid input, unknown user or product, out of stock / not enough points / key reused
    /// with another request, card rejected by the PG, PG unavailable (nothing charged, stock
    /// released), database trouble: see [`PlaceError`].
    #[tracing::instrument(
        name = "order.place",
        skip_all,
        fields(user_id, order_id, transaction_key)
    )]
    pub async fn place(
        &self,
        user_id: UserId,
        idempotency_key: Option<&str>,
        request: OrderRequest,
    ) -> Result<Placed, PlaceError> {
        let payment = validate(&request, idempotency_key)?;
        let request_hash = fingerprint(&self.fingerprint_key, &request, &payment);
        let ask = Ask {
            user_id,
            key: idempotency_key,
            request_hash: &request_hash,
            request: &request,
            payment: &payment,
        };
        let reserved = match reserve(&self.payments, &ask).await? {
            Reservation::Replayed(order_id) => return Ok(Placed::Replayed { order_id }),
            Reservation::Reserved(reserved) => reserved,
        };
        let method = match payment {
            Payment::Point => PaymentMethod::Point,
            Payment::Card(..) => PaymentMethod::Card,
        };
        metrics::counter!("commerce_orders_placed_total", "method" => method.as_str()).increment(1);
        let Payment::Card(card_type, card_no) = payment else {
            tracing::info!(order_id = reserved.order_id.get(), "point order paid");
            return Ok(Placed::New {
                order_id: reserved.order_id,
                payment: PaymentStatus::Success,
            });
        };
        let (order_id, payment_id) = (reserved.order_id, reserved.payment_id);
        let charge = ChargeRequest {
            user_id: user_id.to_string(),
            order_ref: reserved.order_ref,
            card_type,
            card_no,
            amount: reserved.total,
            callback_url: self.callback_url.clone(),
            idempotency_key: reserved.pg_key,
        };
        let (status, rejected) = self.charge(payment_id, charge).await?;
        tracing::info!(
            order_id = order_id.get(),
            payment_id = payment_id.get(),
            status = status.as_str(),
            "card order placed"
        );
        respond(order_id, status, rejected)
    }

    /// Calls the PG and records what it said; returns the payment's status after that and
    /// whether the PG rejected the request. The call and its recording run in their own task:
    /// a client that hangs up does not cancel a charge halfway, and graceful shutdown waits
    /// for it.
    async fn charge(
        &self,
        payment_id: PaymentId,
        charge: ChargeRequest,
    ) -> Result<(PaymentStatus, bool), PlaceError> {
        let payments = self.payments.clone();
        let (applied, rejected) = tokio::spawn(
            async move {
                let observation = match payments.charge(payment_id, charge).await {
                    Ok(transaction_key) => {
                        tracing::Span::current()
                            .record("transaction_key", transaction_key.as_str());
                        Observation::Accepted { transaction_key }
                    }
                    Err(ChargeError::NotReached(reason)) => Observation::NotReached { reason },
                    Err(ChargeError::Uncertain(reason)) => Observation::Uncertain { reason },
                    Err(ChargeError::Rejected(reason)) => Observation::Rejected { reason },
                };
                let rejected = matches!(observation, Observation::Rejected { .. });
                let applied = payments
                    .apply(Target::Payment(payment_id), observation, Source::Request)
                    .await;
                (applied, rejected)
            }
            .instrument(tracing::Span::current()),
        )
        .await
        .map_err(PlaceError::ChargeTask)?;
        let applied = applied?;
        Ok((applied.to.unwrap_or(PaymentStatus::Requested), rejected))
    }
}

/// The answer for a card order whose payment is now `status`.
fn respond(order_id: OrderId, status: PaymentStatus, rejected: bool) -> Result<Placed, PlaceError> {
    match status {
        PaymentStatus::Failed if rejected => Err(PlaceError::PaymentRejected),
        PaymentStatus::Failed => Err(PlaceError::PaymentUnavailable),
        status => Ok(Placed::New {
            order_id,
            payment: status,
        }),
    }
}

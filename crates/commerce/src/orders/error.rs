//! Why an order could not be placed, in the domain's words. `routes/orders.rs` maps each case
//! to an HTTP answer with a stable code.

use crate::domain::ProductId;

/// Why [`OrderService::place`](super::OrderService::place) placed no order (or placed one
/// whose payment failed).
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// The request is malformed: `code` is the stable code (`INVALID_REQUEST`,
    /// `INVALID_CARD`, `INVALID_IDEMPOTENCY_KEY`), `message` says what was wrong without
    /// repeating the input.
    #[error("{code}: {message}")]
    Invalid {
        /// Stable code.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The idempotency key was used earlier for a different request.
    #[error("this Idempotency-Key was used for a different order")]
    KeyReused,
    /// A concurrent request holding the same key has not committed yet.
    #[error("a request with this Idempotency-Key is in progress")]
    KeyInProgress,
    /// No such user.
    #[error("no such user")]
    UserNotFound,
    /// A line names a product that does not exist.
    #[error("product {0} does not exist")]
    ProductNotFound(ProductId),
    /// A line asks for more units than are in stock.
    #[error("product {product_id} has fewer than {quantity} units in stock")]
    OutOfStock {
        /// The product.
        product_id: ProductId,
        /// The units asked for.
        quantity: i64,
    },
    /// A POINT order costs more than the user's points.
    #[error("not enough points for this order")]
    InsufficientPoints,
    /// The PG declined the card payment as invalid (nothing was charged).
    #[error("the card payment was rejected")]
    PaymentRejected,
    /// The charge provably did not reach the PG: nothing was charged, the stock is released,
    /// and the same request (with the same key) may be sent again.
    #[error("card payments are temporarily unavailable")]
    PaymentUnavailable,
    /// The database failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The task that called the PG ended abnormally.
    #[error("charge task failed")]
    ChargeTask(#[source] tokio::task::JoinError),
}

impl PlaceError {
    /// An invalid request with its stable code.
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }
}

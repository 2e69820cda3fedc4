//! # pg-client
//!
//! A typed client for the card payment gateway (PG), built on [`seawall`], that says exactly
//! what is known after every call — and so never turns "the request timed out" into "the
//! payment failed" while the gateway charged the card.
//!
//! Every failure is one of five [`FailureClass`]es:
//!
//! | class | meaning | charge path | query path | breaker |
//! |---|---|---|---|---|
//! | *not reached* | the gateway provably did nothing | retried | retried | failure |
//! | *uncertain* | it may have acted | **never retried**: `ChargeOutcome::Uncertain` | retried | failure |
//! | *business* | the request itself was refused | not retried | not retried | ignored |
//! | *throttled* | asked to slow down (429, 503 + `Retry-After`) | retried after the hint | retried after the hint | failure |
//! | *rejected* | this client's breaker or bulkhead refused | not retried | not retried | — |
//!
//! A charge therefore ends in one of three ways: [`ChargeOutcome::Accepted`] (the gateway holds
//! a transaction), [`ChargeOutcome::Uncertain`] (it may: reconcile by order id, never charge
//! again first), or `Err(PgError)` (nothing was created: safe to fail the payment).
//!
//! ## Quick start
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use pg_client::{PaymentGateway, PgClient, PgClientConfig, TransactionKey, UserId};
//!
//! let gateway: Arc<dyn PaymentGateway> =
//!     Arc::new(PgClient::new(PgClientConfig::with_base_url("http://localhost:8082"))?);
//! let user = UserId::parse("135135")?;
//! let key = TransactionKey::parse("20250816:TR:9577c5")?;
//! if let Some(tx) = gateway.get_transaction(&user, &key).await? {
//!     println!("{} is {} ({})", tx.transaction_key, tx.status, tx.card_number); // masked
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## What is where
//!
//! - [`PaymentGateway`]: the dyn-compatible trait the service holds; [`PgClient`] implements it
//!   over HTTP.
//! - [`model`]: [`Money`] in integer minor units, [`CardNumber`] (masked everywhere but the
//!   request body), identifiers, statuses with room for unknown values.
//! - [`PgClientConfig`]: the two paths' timeouts, retries, breakers and bulkheads (serde).
//! - [`callback`]: signature verification and parsing of the gateway's result callback.
//! - [`telemetry`]: the metric names.
//!
//! ## Cargo features
//!
//! | feature | adds |
//! |---|---|
//! | `rustls` | `https://` gateways, through rustls with the webpki roots |
//!
//! ## Card data
//!
//! A full card number exists in exactly one place past parsing: the body of the charge request.
//! Every `Debug`, `Display` and `Serialize` of a card number masks it to BIN + last 4; numbers
//! the gateway echoes back are masked on ingest; gateway messages kept in errors have every
//! card-number-like digit run masked; tracing fields carry ids, never bodies.
#![doc(test(attr(deny(warnings, rust_2018_idioms), allow(dead_code, unused_variables))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
pub mod callback;
mod client;
pub mod config;
mod error;
mod gateway;
mod live;
pub mod model;
pub mod observer;
pub mod policy;
pub mod presets;
pub mod telemetry;
mod wire;

pub use crate::builder::{BuildError, PgClientBuilder};
pub use crate::client::PgClient;
pub use crate::config::PgClientConfig;
pub use crate::error::{CallPath, FailureClass, PgError};
pub use crate::gateway::{
    Accepted, BoxFuture, ChargeOutcome, PathBreaker, PaymentGateway, Uncertain,
};
pub use crate::live::ChargeObserver;
pub use crate::model::{
    CardNumber, CardType, Currency, IdempotencyKey, MaskedCardNumber, Money, OrderId,
    OrderTransactions, PaymentRequest, TransactionDetail, TransactionKey, TransactionStatus,
    TransactionSummary, UserId,
};

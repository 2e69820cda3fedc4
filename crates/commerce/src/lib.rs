//! # commerce
//!
//! An order/payment service that keeps selling through a payment gateway (PG) outage and
//! never loses or double-charges an order. axum + sqlx (SQLite embedded, or Postgres by URL), card payments
//! through a PG protected by seawall, PG callbacks verified and cross-checked, a recovery job,
//! a transactional outbox and an audit trail of every payment transition.
//!
//! - [`startup::Application`]: `Application::build(settings)`, `port()`, `run_until_stopped()`.
//! - [`orders`]: placing POINT and CARD orders (state in the database before the PG is called).
//! - [`payments`]: the one `apply(observation)` every source of truth goes through.
//! - [`gateway`]: the PG port (`Arc<dyn PaymentGateway>`) and its pg-client adapter.
//! - [`recovery`], [`outbox`], [`retention`]: the background jobs; [`instance`]: the name this instance holds
//!   the recovery lease under.
//! - [`persistence`]: all SQL; [`configuration`]: layered typed settings.
//! - [`secrets`]: random secrets and ids from the OS RNG.
//! - [`serve`]: what `cargo run -p commerce` runs. The PG-outage demo is the
//!   `commerce-demo` crate (`cargo run --release -p commerce-demo`).
//!
//! See the crate README for the API and the data model.

pub mod configuration;
pub mod domain;
pub mod error;
pub mod gateway;
pub mod instance;
mod local_pg;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod persistence;
pub mod recovery;
pub mod retention;
pub mod routes;
pub mod secrets;
pub mod serve;
pub mod sink;
pub mod startup;
pub mod subscriptions;
pub mod telemetry;
pub mod vault;

pub use crate::configuration::Settings;
pub use crate::startup::{AppHandle, Application};

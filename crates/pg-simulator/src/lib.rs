//! A faithful simulated card payment gateway (PG) with deterministic fault injection.
//!
//! By default it behaves exactly like the canonical Loopers PG simulator that the seawall
//! payment demo was written against: `POST /api/v1/payments` waits 100–500 ms, fails 40 % of
//! the time with a 500 *before* creating anything, otherwise creates a PENDING transaction that
//! is processed 1–5 s later into SUCCESS (70 %) / limit exceeded (20 %) / invalid card (10 %)
//! and reported by one raw, unsigned callback. On top of that it can produce, on demand and
//! reproducibly, every failure a real PG produces (the PG-side items of the F1–F21 list): see
//! [`Fault`] and the crate README.
//!
//! It is a test double, not a PG: it holds everything in memory and authenticates nobody.
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use pg_simulator::{Latency, Simulator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pg = Simulator::builder()
//!     .seed(7)
//!     .latency(Latency::none())
//!     .request_fail_rate(0.0)
//!     .processing_delay(Duration::ZERO..=Duration::ZERO)
//!     .allow_any_loopback_callback()
//!     .callback_secret("s3cr3t")
//!     .idempotency(true)
//!     .spawn()
//!     .await?;
//! println!("PG at {}/api/v1/payments", pg.base_url());
//! // ... run the client under test against pg.base_url() ...
//! pg.ledger().assert_no_double_charge();
//! pg.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Forcing a fault for one request
//!
//! Send `X-Sim-Fault: charge-but-timeout` (comma-separated for several, `name=<ms>` to override
//! a delay), or, with [`SimulatorBuilder::magic_cards`] on, use a magic card number such as
//! `4000-0000-0000-0002` (always invalid card).
//! Every injected fault is recorded: [`SimulatorHandle::fault_log`].
#![doc(test(no_crate_inject, attr(deny(warnings, rust_2018_idioms))))]

mod api;
mod callback;
pub mod cli;
mod clock;
pub mod config;
mod decider;
pub mod fault;
mod idempotency;
mod journal;
mod key;
mod ledger;
pub mod model;
mod processing;
mod rng;
mod server;
pub mod signature;
mod state;
mod stats;

pub use config::{CallbackRetry, ConfigError, FaultConfig, Latency, SimConfig};
pub use decider::{Decider, PaymentPlan, QueryPlan};
pub use fault::{ActiveFaults, Fault, FaultRecord, Trigger};
pub use key::{KeyGenerator, RandomKeys, ScriptedKeys, local_date};
pub use ledger::{LedgerSnapshot, Transaction, TransitionError};
pub use model::{CardNumber, CardType, Outcome, TransactionStatus};
pub use rng::SimRng;
pub use server::{CallbackReport, Simulator, SimulatorBuilder, SimulatorHandle, SpawnError};
pub use stats::StatsSnapshot;

//! # seawall
//!
//! Composable async resilience decorators for Rust: **timeout**, **retry** (backoff with
//! jitter, retry budget), **circuit breaker** (count and time windows, slow calls, half-open
//! probes, special states), **bulkhead**, **rate limiter** and **fallback**, stacked into one [`Policy`] that
//! runs any async operation and returns its value or one flat [`Error`]. A [`registry`] holds
//! named instances built from configuration files and reconfigures them while they run,
//! keeping their state; [`presets`] give documented starting points.
//!
//! seawall follows Resilience4j's semantics where they are right and fixes what its users
//! complain about: a timeout cancels the work instead of abandoning it, a dropped call gives
//! back its bulkhead permit, errors never nest however deep the stack, and every decorator can
//! be reconfigured while it runs. A warm policy makes **no heap allocation per call** and costs
//! a few nanoseconds on the happy path.
//!
//! ## Quick start
//!
//! Timeout + retry + bulkhead around an HTTP call:
//!
//! ```no_run
//! use std::time::Duration;
//! use seawall::{Backoff, Bulkhead, Policy, Retry, Timeout};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let http = reqwest::Client::new();
//! let policy = Policy::builder()
//!     .timeout(Timeout::new(Duration::from_secs(10)))      // the caller's whole budget
//!     .retry(
//!         Retry::builder()
//!             .name("catalog")
//!             .max_attempts(3)
//!             .backoff(Backoff::exponential(Duration::from_millis(100)).full_jitter())
//!             .build()?
//!             .retry_if(|e: &reqwest::Error| e.is_connect() || e.is_timeout()),
//!     )
//!     .bulkhead(Bulkhead::new(32))                           // at most 32 calls in flight
//!     .timeout(Timeout::new(Duration::from_secs(2)))       // each attempt
//!     .build();
//!
//! let body = policy
//!     .call(|| async { http.get("http://localhost:8080/items").send().await?.text().await })
//!     .await?;
//! println!("{body}");
//! # Ok(())
//! # }
//! ```
//!
//! Each decorator also runs calls on its own (`retry.call(..)`, `bulkhead.call(..)`), and the
//! operation can read its attempt number with [`Policy::call_with_attempt`].
//!
//! ## Composition order
//!
//! Decorators are listed **outermost first**. The recommended order, and why:
//!
//! | position | decorator | reason |
//! |---|---|---|
//! | 1 | fallback | sees the final outcome of everything inside; inside a retry it would hide failures the retry must see |
//! | 2 | timeout (total) | the caller's latency budget, waits between retries included |
//! | 3 | retry | each attempt goes through everything below it |
//! | 4 | circuit breaker | every attempt is recorded; an open breaker is not retried (by default) |
//! | 5 | rate limiter | every attempt the dependency sees is counted against its rate |
//! | 6 | bulkhead | a permit is held only while an attempt runs, never while a retry waits |
//! | 7 | timeout (per attempt) | from the callee's latency profile; a timed-out attempt is retried |
//!
//! ## One error type
//!
//! Every call returns `Result<T, Error<E>>` where `E` is the operation's own error. The error
//! says what happened last — [`ErrorKind::Inner`], [`ErrorKind::Timeout`],
//! [`ErrorKind::BulkheadFull`], [`ErrorKind::CircuitOpen`], [`ErrorKind::RateLimited`] — and,
//! if it came through a retry, how many attempts were made and why the retry gave up
//! ([`Error::attempts`], [`Error::gave_up`]). Predicates (`is_timeout()`, …) work the same
//! through any stack. The tower layers return [`BoxError`]s holding the same marker types
//! ([`error::Elapsed`], [`error::BulkheadFull`], …), so `err.is::<Elapsed>()` works there.
//!
//! ## Time
//!
//! All waiting and time reads go through [`Clock`]: tokio's clock by default, so tests with
//! `#[tokio::test(start_paused = true)]` control every timeout and backoff exactly; or a
//! [`clock::ManualClock`] stepped by hand.
//!
//! ## Cargo features
//!
//! | feature | adds |
//! |---|---|
//! | `tower` | a tower `Layer` and `Service` for every decorator ([`timeout::TimeoutLayer`], …) |
//! | `tracing` | `tracing` events on state changes (retry, rejection, timeout, fallback, breaker transitions, configuration changes), targets `seawall::<decorator>` |
//! | `serde` | configuration documents in TOML, YAML or JSON for the [`registry`] ([`registry::document`]) |
//! | `metrics` | `metrics` facade output for registry instances ([`metrics::RegistryMetrics`]), Resilience4j's Micrometer names |
//! | `full` | all of the above |
//!
//! No feature is on by default; the core needs only tokio's `time` and `sync`.
//!
//! ## Minimum supported Rust version
//!
//! Rust 1.88 (edition 2024). Raising it is not a breaking change, but it will always trail the
//! latest stable release by at least six months.
#![doc(test(attr(deny(warnings, rust_2018_idioms), allow(dead_code, unused_variables))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod bulkhead;
pub mod circuit_breaker;
pub mod clock;
pub mod config;
pub mod error;
mod event;
pub mod fallback;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod policy;
pub mod presets;
pub mod rate_limiter;
pub mod registry;
pub mod retry;
pub mod timeout;
pub mod tuning;

pub use crate::bulkhead::Bulkhead;
pub use crate::circuit_breaker::CircuitBreaker;
pub use crate::clock::Clock;
pub use crate::config::ConfigError;
pub use crate::error::{Error, ErrorKind, GaveUp};
pub use crate::fallback::{Fallback, ResultFallback};
pub use crate::policy::{Attempt, Policy};
pub use crate::rate_limiter::RateLimiter;
pub use crate::retry::{Backoff, Jitter, Retry, RetryBudget};
pub use crate::timeout::Timeout;

/// A boxed, thread-safe error: what the tower layers return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

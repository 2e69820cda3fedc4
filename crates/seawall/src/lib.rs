#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings, rust_2018_idioms), allow(dead_code, unused_variables))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod adaptive;
pub mod bulkhead;
pub mod circuit_breaker;
pub mod clock;
pub mod config;
pub mod error;
mod event;
pub mod fallback;
#[cfg(feature = "fault")]
#[cfg_attr(docsrs, doc(cfg(feature = "fault")))]
pub mod fault;
pub mod hedge;
pub mod keyed;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod policy;
pub mod presets;
pub mod rate_limiter;
pub mod registry;
pub mod retry;
pub(crate) mod sync;
pub mod timeout;
pub mod tuning;

pub use crate::adaptive::AdaptiveLimiter;
pub use crate::bulkhead::Bulkhead;
pub use crate::circuit_breaker::CircuitBreaker;
pub use crate::clock::Clock;
pub use crate::config::ConfigError;
pub use crate::error::{Error, ErrorKind, GaveUp};
pub use crate::fallback::{Fallback, ResultFallback};
#[cfg(feature = "fault")]
pub use crate::fault::FaultInjector;
pub use crate::hedge::Hedge;
pub use crate::policy::{Attempt, Policy};
pub use crate::rate_limiter::RateLimiter;
pub use crate::retry::{Backoff, Jitter, Retry, RetryBudget};
pub use crate::timeout::Timeout;

/// A boxed, thread-safe error: what the tower layers return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

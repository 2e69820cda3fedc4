//! Behaviour of the core decorators and their composition, on tokio's paused clock.

mod support;

mod adaptive;
mod adaptive_admission;
mod queue_model;

mod bulkhead;
mod circuit_breaker;
mod circuit_breaker_timing;
mod composition;
mod error_size;
mod fallback;
#[cfg(feature = "fault")]
mod fault;
mod hedge;
mod permission;
mod rate_limiter;
mod retry;
mod timeout;
mod tower;

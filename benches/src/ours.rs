//! seawall's contenders, configured as in [`config`](crate::config): each decorator through its
//! native API ([`Native`]) and through its tower layer ([`Tower`]).
//!
//! # The circuit breaker
//!
//! seawall's breaker is not on this branch yet. When it lands, it plugs in here and nowhere
//! else in the adapters: a `breaker(window)` constructor returning
//! `Native(CircuitBreaker::builder()…build()?)` (any seawall `Stage` already works with
//! [`Native`]), a `breaker_tower(window)` one returning
//! `Tower::new(CircuitBreakerLayer::new(breaker).layer(Echo), boxed_error)`, and the breaker
//! added to [`stack`] and [`stack_tower`]. The rows to add are marked `seawall breaker:` in
//! [`scenarios`](crate::scenarios); the crate's `README.md` has the details.

use seawall::bulkhead::BulkheadLayer;
use seawall::fallback::FallbackLayer;
use seawall::retry::RetryLayer;
use seawall::timeout::TimeoutLayer;
use seawall::{Backoff, BoxError, Bulkhead, Fallback, Policy, Retry, Timeout};
use tower::ServiceBuilder;
use tower_layer::Layer;

use crate::config::{BACKOFF, BULKHEAD_PERMITS, MAX_ATTEMPTS, TIMEOUT};
use crate::contender::{Contender, Native, Tower, boxed_error};
use crate::harness::Echo;

fn timeout_decorator() -> Timeout {
    Timeout::new(TIMEOUT)
}

fn bulkhead_decorator() -> Bulkhead {
    Bulkhead::new(BULKHEAD_PERMITS)
}

fn retry_decorator() -> Retry {
    Retry::builder()
        .max_attempts(u32::try_from(MAX_ATTEMPTS).expect("fits"))
        .backoff(Backoff::exponential(BACKOFF))
        .build()
        .expect("a valid seawall retry configuration")
}

/// seawall's `Timeout`, native API.
pub fn timeout() -> impl Contender + Clone + Send + 'static {
    Native(timeout_decorator())
}

/// seawall's `TimeoutLayer` around the inner service.
pub fn timeout_tower() -> impl Contender + Clone + Send + 'static {
    Tower::new(
        TimeoutLayer::new(timeout_decorator()).layer(Echo),
        boxed_error,
    )
}

/// seawall's `Bulkhead` (rejects at once when full), native API.
pub fn bulkhead() -> impl Contender + Clone + Send + 'static {
    Native(bulkhead_decorator())
}

/// seawall's `BulkheadLayer` (reject mode) around the inner service.
pub fn bulkhead_tower() -> impl Contender + Clone + Send + 'static {
    Tower::new(
        BulkheadLayer::new(bulkhead_decorator()).layer(Echo),
        boxed_error,
    )
}

/// seawall's `Retry`, native API.
pub fn retry() -> impl Contender + Clone + Send + 'static {
    Native(retry_decorator())
}

/// seawall's `RetryLayer` around the inner service.
pub fn retry_tower() -> impl Contender + Clone + Send + 'static {
    Tower::new(RetryLayer::new(retry_decorator()).layer(Echo), boxed_error)
}

/// seawall's full stack **without the breaker** (not on this branch yet), native API,
/// outermost first: fallback (a fixed value) → timeout → retry → bulkhead.
pub fn stack() -> impl Contender + Clone + Send + 'static {
    Native(
        Policy::builder()
            .fallback(Fallback::value(0_u64))
            .timeout(timeout_decorator())
            .retry(retry_decorator())
            .bulkhead(bulkhead_decorator())
            .build(),
    )
}

/// seawall's full stack without the breaker, as tower layers in the same order.
pub fn stack_tower() -> impl Contender + Clone + Send + 'static {
    let service = ServiceBuilder::new()
        .layer(FallbackLayer::new(|_: BoxError| Ok::<u64, BoxError>(0)))
        .layer(TimeoutLayer::new(timeout_decorator()))
        .layer(RetryLayer::new(retry_decorator()))
        .layer(BulkheadLayer::new(bulkhead_decorator()))
        .service(Echo);
    Tower::new(service, boxed_error)
}

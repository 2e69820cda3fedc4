//! Tuning presets: documented starting configurations by traffic scale and call path.
#![doc = include_str!("docs/presets.md")]

use std::time::Duration;

use crate::bulkhead::BulkheadConfig;
use crate::circuit_breaker::{CircuitBreakerConfig, OpenWait, SlidingWindow};
use crate::retry::{Backoff, RetryConfig};
use crate::timeout::TimeoutConfig;

/// A starting configuration for one dependency; every field is meant to be overridden.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Preset {
    /// The preset's name (the first column of the table).
    pub name: &'static str,
    /// The circuit breaker.
    pub circuit_breaker: CircuitBreakerConfig,
    /// The bulkhead.
    pub bulkhead: BulkheadConfig,
    /// The retry (`max_attempts` 1 = no retry).
    pub retry: RetryConfig,
    /// The per-attempt timeout.
    pub timeout: TimeoutConfig,
}

struct Values {
    name: &'static str,
    window: u32,
    minimum: u32,
    failure: f64,
    slow_call: Duration,
    slow_rate: f64,
    open_wait: Duration,
    half_open: u32,
    bulkhead: usize,
    max_wait: Duration,
    timeout: Duration,
    attempts: u32,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn build(v: &Values) -> Preset {
    let circuit_breaker = CircuitBreakerConfig {
        sliding_window: SlidingWindow::count(v.window),
        minimum_number_of_calls: v.minimum,
        failure_rate_threshold: v.failure,
        slow_call_duration_threshold: Some(v.slow_call),
        slow_call_rate_threshold: v.slow_rate,
        open_wait: OpenWait::Fixed(v.open_wait),
        permitted_calls_in_half_open: v.half_open,
        ..CircuitBreakerConfig::default()
    };
    let bulkhead = BulkheadConfig {
        max_concurrent_calls: v.bulkhead,
        max_wait: v.max_wait,
    };
    let retry = RetryConfig {
        max_attempts: v.attempts,
        backoff: Backoff::exponential(secs(1)).max(secs(30)).full_jitter(),
        ..RetryConfig::default()
    };
    Preset {
        name: v.name,
        circuit_breaker,
        bulkhead,
        retry,
        timeout: TimeoutConfig::new(v.timeout),
    }
}

/// Under about 1,000 calls a day: small window, quick recovery, fail fast.
pub fn small() -> Preset {
    build(&Values {
        name: "small",
        window: 10,
        minimum: 3,
        failure: 50.0,
        slow_call: secs(2),
        slow_rate: 50.0,
        open_wait: secs(5),
        half_open: 3,
        bulkhead: 10,
        max_wait: Duration::ZERO,
        timeout: secs(3),
        attempts: 1,
    })
}

/// 1,000–10,000 calls a day.
pub fn medium() -> Preset {
    build(&Values {
        name: "medium",
        window: 20,
        minimum: 5,
        failure: 50.0,
        slow_call: secs(2),
        slow_rate: 50.0,
        open_wait: secs(10),
        half_open: 3,
        bulkhead: 20,
        max_wait: Duration::ZERO,
        timeout: secs(6),
        attempts: 1,
    })
}

/// Over 10,000 calls a day: stable statistics, patient recovery, a large waiting bulkhead.
pub fn large() -> Preset {
    build(&Values {
        name: "large",
        window: 50,
        minimum: 10,
        failure: 50.0,
        slow_call: secs(2),
        slow_rate: 50.0,
        open_wait: secs(20),
        half_open: 5,
        bulkhead: 50,
        max_wait: secs(10),
        timeout: secs(3),
        attempts: 1,
    })
}

/// A user waits: fail fast, never retry, a sensitive breaker, a large bulkhead.
pub fn real_time() -> Preset {
    build(&Values {
        name: "real_time",
        window: 20,
        minimum: 5,
        failure: 50.0,
        slow_call: secs(2),
        slow_rate: 50.0,
        open_wait: secs(10),
        half_open: 3,
        bulkhead: 50,
        max_wait: Duration::ZERO,
        timeout: secs(3),
        attempts: 1,
    })
}

/// Scheduler and batch paths: patient timeouts, retries with backoff, a tolerant breaker, a
/// small bulkhead.
pub fn background() -> Preset {
    build(&Values {
        name: "background",
        window: 20,
        minimum: 5,
        failure: 65.0,
        slow_call: secs(10),
        slow_rate: 80.0,
        open_wait: secs(30),
        half_open: 3,
        bulkhead: 10,
        max_wait: secs(5),
        timeout: secs(20),
        attempts: 5,
    })
}

/// Every preset, in the table's order.
pub fn all() -> Vec<Preset> {
    vec![small(), medium(), large(), real_time(), background()]
}

/// The preset named `name` (the table's first column).
pub fn by_name(name: &str) -> Option<Preset> {
    all().into_iter().find(|preset| preset.name == name)
}

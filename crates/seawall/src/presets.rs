//! Tuning presets: documented starting configurations by traffic scale, call path and
//! payment kind.
#![doc = include_str!("docs/presets.md")]

use std::time::Duration;

use crate::bulkhead::BulkheadConfig;
use crate::circuit_breaker::{CircuitBreakerConfig, SlidingWindow};
use crate::retry::{Backoff, RetryConfig};
use crate::timeout::TimeoutConfig;

/// A starting configuration for one dependency; every field is meant to be overridden.
#[derive(Clone, Debug, PartialEq)]
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
    /// How often a recovery (reconciliation) job should run.
    pub recovery_interval: Duration,
}

/// Dunning for recurring payments: retry a failed renewal after these delays, then cancel.
pub const DUNNING_SCHEDULE: [Duration; 4] = [
    Duration::from_secs(86_400),
    Duration::from_secs(3 * 86_400),
    Duration::from_secs(7 * 86_400),
    Duration::from_secs(14 * 86_400),
];

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
    recovery: Duration,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn build(v: &Values) -> Preset {
    let circuit_breaker = CircuitBreakerConfig::builder()
        .sliding_window(SlidingWindow::count(v.window))
        .minimum_number_of_calls(v.minimum)
        .failure_rate_threshold(v.failure)
        .slow_call_duration_threshold(v.slow_call)
        .slow_call_rate_threshold(v.slow_rate)
        .wait_in_open(v.open_wait)
        .permitted_calls_in_half_open(v.half_open)
        .build()
        .expect("preset values are valid");
    Preset {
        name: v.name,
        circuit_breaker,
        bulkhead: BulkheadConfig {
            max_concurrent_calls: v.bulkhead,
            max_wait: v.max_wait,
        },
        retry: RetryConfig {
            max_attempts: v.attempts,
            backoff: Backoff::exponential(secs(1)).max(secs(30)).full_jitter(),
            ..RetryConfig::default()
        },
        timeout: TimeoutConfig {
            duration: v.timeout,
        },
        recovery_interval: v.recovery,
    }
}

/// < 1,000 orders a day: small window, quick recovery, fail fast.
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
        recovery: secs(120),
    })
}

/// 1,000–10,000 orders a day: the seeds' own settings.
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
        recovery: secs(60),
    })
}

/// > 10,000 orders a day: stable statistics, patient recovery, a large waiting bulkhead.
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
        recovery: secs(30),
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
        recovery: secs(60),
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
        recovery: secs(300),
    })
}

/// One-time card payments: the user waits; never retry a charge on the request path.
pub fn one_time_payment() -> Preset {
    build(&Values {
        name: "one_time_payment",
        window: 20,
        minimum: 5,
        failure: 50.0,
        slow_call: secs(2),
        slow_rate: 50.0,
        open_wait: secs(10),
        half_open: 5,
        bulkhead: 20,
        max_wait: Duration::ZERO,
        timeout: secs(4),
        attempts: 1,
        recovery: secs(60),
    })
}

/// Recurring payments: accuracy over speed, scheduler retries, dunning for declines.
pub fn subscription_payment() -> Preset {
    build(&Values {
        name: "subscription_payment",
        window: 20,
        minimum: 5,
        failure: 65.0,
        slow_call: secs(10),
        slow_rate: 80.0,
        open_wait: secs(45),
        half_open: 3,
        bulkhead: 15,
        max_wait: secs(5),
        timeout: secs(20),
        attempts: 5,
        recovery: secs(3_600),
    })
}

/// Every preset, in the table's order.
pub fn all() -> Vec<Preset> {
    vec![
        small(),
        medium(),
        large(),
        real_time(),
        background(),
        one_time_payment(),
        subscription_payment(),
    ]
}

/// The preset named `name` (the table's first column).
pub fn by_name(name: &str) -> Option<Preset> {
    all().into_iter().find(|preset| preset.name == name)
}

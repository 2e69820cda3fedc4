//! Keyed instances: created from a template on first use, evicted by policy, reconfigured
//! live, with bounded labels and bounded memory. Time is a `ManualClock`.

mod eviction;
mod memory;
mod metrics;

use allocation_counter as _;
mod template;

use std::time::Duration;

use seawall::Clock;
use seawall::circuit_breaker::CircuitBreakerConfig;
use seawall::clock::ManualClock;
use seawall::keyed::Keyed;
use seawall::registry::CircuitBreakers;

/// Breakers keyed by a string on a manual clock, `max_keys` keys, idle after `ttl`.
fn breakers(clock: &ManualClock, max_keys: usize, ttl: Option<Duration>) -> Keyed<CircuitBreakers> {
    Keyed::builder(CircuitBreakerConfig::default())
        .name("charge")
        .max_keys(max_keys)
        .max_labelled_keys(max_keys)
        .idle_ttl(ttl)
        .clock(Clock::from(clock.clone()))
        .build()
        .unwrap()
}

fn open(keyed: &Keyed<CircuitBreakers>, key: &str) {
    keyed.get(key).transition_to_open().unwrap();
}

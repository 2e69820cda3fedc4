//! Presets for card payments.
#![doc = include_str!("presets.md")]

use std::time::Duration;

use seawall::circuit_breaker::{OpenWait, SlidingWindow};
use seawall::retry::Backoff;

use crate::config::PathConfig;

/// Dunning for recurring payments: retry a failed renewal after these delays, then cancel.
pub const DUNNING_SCHEDULE: [Duration; 4] = [
    Duration::from_secs(86_400),
    Duration::from_secs(3 * 86_400),
    Duration::from_secs(7 * 86_400),
    Duration::from_secs(14 * 86_400),
];

/// A starting configuration for one kind of payment; every field is meant to be overridden.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PaymentPreset {
    /// The preset's name (the first column of the table).
    pub name: &'static str,
    /// The charge path's timeouts and decorators.
    pub charge: PathConfig,
    /// How often the reconciliation job should look at pending payments.
    pub reconciliation_interval: Duration,
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
    read_timeout: Duration,
    attempts: u32,
    reconciliation: Duration,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn build(v: &Values) -> PaymentPreset {
    let mut charge = PathConfig {
        read_timeout: v.read_timeout,
        ..PathConfig::default()
    };
    let breaker = &mut charge.circuit_breaker;
    breaker.sliding_window = SlidingWindow::count(v.window);
    breaker.minimum_number_of_calls = v.minimum;
    breaker.failure_rate_threshold = v.failure;
    breaker.slow_call_duration_threshold = Some(v.slow_call);
    breaker.slow_call_rate_threshold = v.slow_rate;
    breaker.open_wait = OpenWait::Fixed(v.open_wait);
    breaker.permitted_calls_in_half_open = v.half_open;
    charge.bulkhead.max_concurrent_calls = v.bulkhead;
    charge.bulkhead.max_wait = v.max_wait;
    charge.retry.max_attempts = v.attempts;
    charge.retry.backoff = Backoff::exponential(secs(1)).max(secs(30)).full_jitter();
    PaymentPreset {
        name: v.name,
        charge,
        reconciliation_interval: v.reconciliation,
    }
}

/// One-time card payments: the user waits; an uncertain charge is never retried.
pub fn one_time_payment() -> PaymentPreset {
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
        read_timeout: secs(4),
        attempts: 3,
        reconciliation: secs(60),
    })
}

/// Recurring payments: accuracy over speed, scheduler retries, dunning for declines.
pub fn subscription_payment() -> PaymentPreset {
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
        read_timeout: secs(20),
        attempts: 5,
        reconciliation: secs(3_600),
    })
}

/// Every preset, in the table's order.
pub fn all() -> Vec<PaymentPreset> {
    vec![one_time_payment(), subscription_payment()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = include_str!("presets.md");

    fn duration(text: &str) -> Duration {
        humantime_serde::re::humantime::parse_duration(text).unwrap()
    }

    #[test]
    fn every_preset_equals_its_documented_row_and_is_valid() {
        let rows: Vec<Vec<&str>> = TABLE
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| line.trim_matches('|').split('|').map(str::trim).collect())
            .collect();
        assert_eq!(rows.len(), all().len(), "one row per preset");
        for (row, preset) in rows.iter().zip(all()) {
            let name = row[0].trim_matches('`');
            assert_eq!(preset.name, name);
            let charge = &preset.charge;
            let breaker = &charge.circuit_breaker;
            assert_eq!(
                breaker.sliding_window,
                SlidingWindow::count(row[1].parse().unwrap())
            );
            assert_eq!(
                breaker.minimum_number_of_calls,
                row[2].parse::<u32>().unwrap()
            );
            assert_eq!(
                breaker.failure_rate_threshold,
                row[3].parse::<f64>().unwrap()
            );
            assert_eq!(breaker.slow_call_duration_threshold, Some(duration(row[4])));
            assert_eq!(
                breaker.slow_call_rate_threshold,
                row[5].parse::<f64>().unwrap()
            );
            assert_eq!(breaker.open_wait, OpenWait::Fixed(duration(row[6])));
            assert_eq!(
                breaker.permitted_calls_in_half_open,
                row[7].parse::<u32>().unwrap()
            );
            assert_eq!(
                charge.bulkhead.max_concurrent_calls,
                row[8].parse::<usize>().unwrap()
            );
            assert_eq!(charge.bulkhead.max_wait, duration(row[9]));
            assert_eq!(charge.read_timeout, duration(row[10]));
            assert_eq!(charge.retry.max_attempts, row[11].parse::<u32>().unwrap());
            assert_eq!(preset.reconciliation_interval, duration(row[12]));
            charge.validate().unwrap();
        }
        assert_eq!(DUNNING_SCHEDULE[3], Duration::from_secs(14 * 86_400));
    }
}

use std::time::Duration;

use seawall::circuit_breaker::{OpenWait, SlidingWindow};
use seawall::presets::{self, Preset};

/// The documented table, as shipped in the crate's docs.
const TABLE: &str = include_str!("../../src/docs/presets.md");

fn duration(text: &str) -> Duration {
    humantime::parse_duration(text).unwrap_or_else(|err| panic!("{text}: {err}"))
}

#[test]
fn every_preset_equals_its_documented_row() {
    let rows: Vec<Vec<&str>> = TABLE
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| line.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), presets::all().len(), "one row per preset");
    for row in rows {
        let name = row[0].trim_matches('`');
        let preset: Preset = presets::by_name(name).unwrap_or_else(|| panic!("no preset {name}"));
        let breaker = &preset.circuit_breaker;
        assert_eq!(
            breaker.sliding_window,
            SlidingWindow::count(row[1].parse().unwrap()),
            "{name} window"
        );
        assert_eq!(
            breaker.minimum_number_of_calls,
            row[2].parse::<u32>().unwrap(),
            "{name} minimum"
        );
        assert_eq!(
            breaker.failure_rate_threshold,
            row[3].parse::<f64>().unwrap(),
            "{name} failure"
        );
        assert_eq!(
            breaker.slow_call_duration_threshold,
            Some(duration(row[4])),
            "{name} slow call"
        );
        assert_eq!(
            breaker.slow_call_rate_threshold,
            row[5].parse::<f64>().unwrap(),
            "{name} slow %"
        );
        assert_eq!(
            breaker.open_wait,
            OpenWait::Fixed(duration(row[6])),
            "{name} open wait"
        );
        assert_eq!(
            breaker.permitted_calls_in_half_open,
            row[7].parse::<u32>().unwrap(),
            "{name} half-open"
        );
        assert_eq!(
            preset.bulkhead.max_concurrent_calls,
            row[8].parse::<usize>().unwrap(),
            "{name} bulkhead"
        );
        assert_eq!(
            preset.bulkhead.max_wait,
            duration(row[9]),
            "{name} max wait"
        );
        assert_eq!(preset.timeout.duration, duration(row[10]), "{name} timeout");
        assert_eq!(
            preset.retry.max_attempts,
            row[11].parse::<u32>().unwrap(),
            "{name} attempts"
        );
    }
}

#[test]
fn a_preset_is_a_starting_point_users_override() {
    let mut preset = presets::medium();
    preset.bulkhead.max_concurrent_calls = 35;
    preset.circuit_breaker.slow_call_duration_threshold = Some(Duration::from_millis(1500));
    preset.circuit_breaker.validate().unwrap();
    let breaker = seawall::CircuitBreaker::builder()
        .config(preset.circuit_breaker)
        .build()
        .unwrap();
    assert_eq!(breaker.config().sliding_window, SlidingWindow::count(20));
    assert_eq!(
        breaker.config().slow_call_duration_threshold,
        Some(Duration::from_millis(1500))
    );
}

//! What a page shows: one [`Tile`] per instance name, read from a seawall [`Registries`].
//!
//! Pure apart from reading the instances: rates per second are a function of two readings of
//! the breakers' call totals and the time between them ([`per_second`]), so the tests here are
//! synchronous and exact.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use seawall::circuit_breaker::CallTotals;
use seawall::registry::Registries;
use serde::Serialize;

/// One registry's instances at one moment, as the page's `snapshot` event carries it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Snapshot {
    /// The registry's name, as given to the dashboard.
    pub registry: String,
    /// One tile per instance name, sorted by name.
    pub tiles: Vec<Tile>,
}

/// Every instance of one name (a standard policy names its breaker, bulkhead, retry and timeout
/// alike, so they share a tile).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Tile {
    /// The instance name (from configuration files: the page escapes it).
    pub name: String,
    /// The registry sections holding an instance of this name (`circuitbreaker`, `retry`, …).
    pub kinds: Vec<&'static str>,
    /// The circuit breaker of this name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerTile>,
    /// The bulkhead of this name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bulkhead: Option<BulkheadTile>,
    /// The adaptive limiter of this name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<AdaptiveTile>,
    /// The rate limiter of this name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limiter: Option<RateLimiterTile>,
}

/// A circuit breaker's part of a tile.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BreakerTile {
    /// `CLOSED`, `OPEN`, `HALF_OPEN`, `DISABLED`, `FORCED_OPEN` or `METRICS_ONLY`.
    pub state: &'static str,
    /// The window's failure rate in percent (`None` below the minimum number of calls).
    pub failure_rate: Option<f64>,
    /// The failure rate that opens the breaker, in percent.
    pub failure_rate_threshold: f64,
    /// The window's slow-call rate in percent (`None` below the minimum number of calls).
    pub slow_call_rate: Option<f64>,
    /// The slow-call rate that opens the breaker, in percent.
    pub slow_call_rate_threshold: f64,
    /// Calls recorded per second since the previous snapshot (`None` in the first one).
    pub calls_per_second: Option<f64>,
    /// Calls rejected per second since the previous snapshot (`None` in the first one).
    pub rejections_per_second: Option<f64>,
    /// Calls rejected since the state was entered.
    pub not_permitted_calls: u64,
    /// Calls in the window.
    pub buffered_calls: u64,
    /// The call totals this snapshot was computed from (not sent).
    #[serde(skip)]
    pub totals: CallTotals,
}

/// A bulkhead's part of a tile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BulkheadTile {
    /// Calls running now.
    pub in_use: usize,
    /// The most calls that may run at once.
    pub max_concurrent_calls: usize,
    /// Calls rejected since the bulkhead was created.
    pub rejected_calls: u64,
}

/// An adaptive limiter's part of a tile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AdaptiveTile {
    /// The concurrency limit it has learned.
    pub limit: usize,
    /// Calls running now.
    pub inflight: usize,
    /// Calls rejected since the limiter was created.
    pub rejected_calls: u64,
}

/// A rate limiter's part of a tile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RateLimiterTile {
    /// Permits left in this period.
    pub available_permits: u32,
    /// Calls waiting for a permit.
    pub waiting_calls: u64,
    /// Calls rejected since the limiter was created.
    pub rejected_calls: u64,
}

/// The previous reading a stream keeps to turn totals into rates.
#[derive(Clone, Debug, Default)]
pub(crate) struct Previous {
    totals: HashMap<String, CallTotals>,
}

impl Previous {
    /// Remembers the totals of `snapshot` for the next one.
    pub(crate) fn remember(&mut self, snapshot: &Snapshot) {
        self.totals = snapshot
            .tiles
            .iter()
            .filter_map(|tile| Some((tile.name.clone(), tile.breaker.as_ref()?.totals)))
            .collect();
    }
}

/// Events per second between two readings of a cumulative count; `None` with no time between
/// them. A count that went down (the instance was replaced) counts from zero.
pub fn per_second(before: u64, after: u64, elapsed: Duration) -> Option<f64> {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return None;
    }
    let delta = after.checked_sub(before).unwrap_or(after);
    Some(delta as f64 / seconds)
}

fn recorded(totals: &CallTotals) -> u64 {
    totals
        .successful
        .saturating_add(totals.failed)
        .saturating_add(totals.ignored)
}

/// Fills the rates of `snapshot`'s breakers from the `previous` reading, taken `elapsed` ago
/// (`None` for the first snapshot of a stream: no rates yet).
pub(crate) fn fill_rates(snapshot: &mut Snapshot, previous: &Previous, elapsed: Option<Duration>) {
    for tile in &mut snapshot.tiles {
        let Some(breaker) = tile.breaker.as_mut() else {
            continue;
        };
        let (Some(elapsed), Some(before)) = (elapsed, previous.totals.get(&tile.name)) else {
            continue;
        };
        breaker.calls_per_second = per_second(recorded(before), recorded(&breaker.totals), elapsed);
        breaker.rejections_per_second =
            per_second(before.not_permitted, breaker.totals.not_permitted, elapsed);
    }
}

/// Reads every instance of `registries` into tiles (rates left empty: see [`fill_rates`]).
pub(crate) fn read(registry: &str, registries: &Registries) -> Snapshot {
    let mut tiles: BTreeMap<String, Tile> = BTreeMap::new();
    for (name, breaker) in registries.circuit_breakers().all() {
        let metrics = breaker.metrics();
        let config = breaker.config();
        tile(&mut tiles, name, "circuitbreaker").breaker = Some(BreakerTile {
            state: metrics.state.as_str(),
            failure_rate: metrics.failure_rate,
            failure_rate_threshold: config.failure_rate_threshold,
            slow_call_rate: metrics.slow_call_rate,
            slow_call_rate_threshold: config.slow_call_rate_threshold,
            calls_per_second: None,
            rejections_per_second: None,
            not_permitted_calls: metrics.not_permitted_calls,
            buffered_calls: metrics.buffered_calls,
            totals: breaker.call_totals(),
        });
    }
    for (name, bulkhead) in registries.bulkheads().all() {
        let max = bulkhead.max_concurrent_calls();
        tile(&mut tiles, name, "bulkhead").bulkhead = Some(BulkheadTile {
            in_use: max.saturating_sub(bulkhead.available_permits()),
            max_concurrent_calls: max,
            rejected_calls: bulkhead.rejected_calls(),
        });
    }
    for (name, limiter) in registries.adaptive_limiters().all() {
        tile(&mut tiles, name, "adaptivelimiter").adaptive = Some(AdaptiveTile {
            limit: limiter.limit(),
            inflight: limiter.inflight(),
            rejected_calls: limiter.rejected_calls(),
        });
    }
    for (name, limiter) in registries.rate_limiters().all() {
        tile(&mut tiles, name, "ratelimiter").rate_limiter = Some(RateLimiterTile {
            available_permits: limiter.available_permits(),
            waiting_calls: limiter.waiting_calls(),
            rejected_calls: limiter.rejected_calls(),
        });
    }
    for name in registries.retries().names() {
        tile(&mut tiles, name, "retry");
    }
    for name in registries.timeouts().names() {
        tile(&mut tiles, name, "timelimiter");
    }
    for name in registries.hedges().names() {
        tile(&mut tiles, name, "hedge");
    }
    Snapshot {
        registry: registry.to_owned(),
        tiles: tiles.into_values().collect(),
    }
}

/// The tile of `name`, created if new, with `kind` added to its kinds.
fn tile<'a>(
    tiles: &'a mut BTreeMap<String, Tile>,
    name: String,
    kind: &'static str,
) -> &'a mut Tile {
    let tile = tiles.entry(name.clone()).or_insert_with(|| Tile {
        name,
        kinds: Vec::new(),
        breaker: None,
        bulkhead: None,
        adaptive: None,
        rate_limiter: None,
    });
    tile.kinds.push(kind);
    tile
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_the_count_gained_over_the_seconds_between_readings() {
        assert_eq!(per_second(10, 40, Duration::from_secs(2)), Some(15.0));
        assert_eq!(per_second(7, 7, Duration::from_millis(500)), Some(0.0));
    }

    #[test]
    fn there_is_no_rate_without_time_between_readings() {
        assert_eq!(per_second(0, 5, Duration::ZERO), None);
    }

    #[test]
    fn a_count_that_went_down_counts_from_zero() {
        assert_eq!(per_second(100, 4, Duration::from_secs(1)), Some(4.0));
    }

    #[test]
    fn instances_of_one_name_share_a_tile_sorted_by_name() {
        let registries = Registries::new();
        let _ = registries.policy("pg");
        let _ = registries.bulkheads().get_or_create("alpha");
        let snapshot = read("main", &registries);
        let names: Vec<_> = snapshot.tiles.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["alpha", "pg"]);
        let pg = &snapshot.tiles[1];
        assert_eq!(
            pg.kinds,
            ["circuitbreaker", "bulkhead", "retry", "timelimiter"]
        );
        assert_eq!(pg.breaker.as_ref().map(|b| b.state), Some("CLOSED"));
        assert!(snapshot.tiles[0].breaker.is_none());
    }

    #[test]
    fn the_first_snapshot_has_no_rates_and_the_next_has_them() {
        let registries = Registries::new();
        let breaker = registries.circuit_breakers().get_or_create("pg");
        let mut previous = Previous::default();
        let mut first = read("main", &registries);
        fill_rates(&mut first, &previous, None);
        assert_eq!(
            first.tiles[0].breaker.as_ref().unwrap().calls_per_second,
            None
        );
        previous.remember(&first);
        for _ in 0..6 {
            breaker.try_acquire().unwrap().success();
        }
        let _ = breaker.transition_to_forced_open();
        for _ in 0..2 {
            assert!(breaker.try_acquire().is_err());
        }
        let mut second = read("main", &registries);
        fill_rates(&mut second, &previous, Some(Duration::from_secs(2)));
        let tile = second.tiles[0].breaker.as_ref().unwrap();
        assert_eq!(tile.calls_per_second, Some(3.0));
        assert_eq!(tile.rejections_per_second, Some(1.0));
        assert_eq!(tile.state, "FORCED_OPEN");
    }

    #[test]
    fn a_snapshot_serialises_with_camel_case_keys_and_without_totals() {
        let registries = Registries::new();
        let _ = registries.circuit_breakers().get_or_create("pg");
        let json = serde_json::to_value(read("main", &registries)).unwrap();
        let breaker = &json["tiles"][0]["breaker"];
        assert_eq!(breaker["state"], "CLOSED");
        assert_eq!(breaker["failureRateThreshold"], 50.0);
        assert!(breaker.get("totals").is_none());
        assert!(json["tiles"][0].get("bulkhead").is_none());
    }
}

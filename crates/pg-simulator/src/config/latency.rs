//! Delay distributions: request and query latency, processing delay, the slow fault.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::rng::SimRng;

/// A delay distribution (request latency, query latency, processing delay, slow latency).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Latency {
    /// No delay.
    None,
    /// Always the same delay.
    Fixed {
        /// The delay.
        #[serde(with = "humantime_serde")]
        value: Duration,
    },
    /// Uniform between `min` and `max` inclusive (whole milliseconds when both are).
    Uniform {
        /// Shortest delay.
        #[serde(with = "humantime_serde")]
        min: Duration,
        /// Longest delay.
        #[serde(with = "humantime_serde")]
        max: Duration,
    },
    /// Log-normal with the given median and 99th percentile, capped at `max`.
    LongTail {
        /// Median delay.
        #[serde(with = "humantime_serde")]
        median: Duration,
        /// 99th percentile.
        #[serde(with = "humantime_serde")]
        p99: Duration,
        /// Hard cap.
        #[serde(with = "humantime_serde")]
        max: Duration,
    },
}

/// z-score of the 99th percentile of the standard normal distribution.
const Z_P99: f64 = 2.326_347_874;

impl Latency {
    /// No delay.
    pub const fn none() -> Self {
        Self::None
    }

    /// Always `value`.
    pub const fn fixed(value: Duration) -> Self {
        Self::Fixed { value }
    }

    /// Uniform in `range` (inclusive).
    pub fn uniform(range: RangeInclusive<Duration>) -> Self {
        Self::Uniform {
            min: *range.start(),
            max: *range.end(),
        }
    }

    /// Log-normal with the given median and p99, capped at `max`.
    pub const fn long_tail(median: Duration, p99: Duration, max: Duration) -> Self {
        Self::LongTail { median, p99, max }
    }

    /// Draws one delay.
    pub fn sample(&self, rng: &mut SimRng) -> Duration {
        match *self {
            Self::None => Duration::ZERO,
            Self::Fixed { value } => value,
            Self::Uniform { min, max } => {
                if min.subsec_nanos() % 1_000_000 == 0 && max.subsec_nanos() % 1_000_000 == 0 {
                    let lo = u64::try_from(min.as_millis()).unwrap_or(u64::MAX);
                    let hi = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
                    Duration::from_millis(rng.range_inclusive(lo, hi))
                } else {
                    let lo = u64::try_from(min.as_micros()).unwrap_or(u64::MAX);
                    let hi = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
                    Duration::from_micros(rng.range_inclusive(lo, hi))
                }
            }
            Self::LongTail { median, p99, max } => {
                let med = median.as_secs_f64();
                if med <= 0.0 {
                    return Duration::ZERO;
                }
                let sigma = (p99.as_secs_f64().max(med) / med).ln() / Z_P99;
                let secs = med * (sigma * rng.standard_normal()).exp();
                Duration::try_from_secs_f64(secs).map_or(max, |d| d.min(max))
            }
        }
    }

    /// The largest delay this distribution can produce.
    pub const fn upper_bound(&self) -> Duration {
        match *self {
            Self::None => Duration::ZERO,
            Self::Fixed { value } => value,
            Self::Uniform { max, .. } | Self::LongTail { max, .. } => max,
        }
    }

    pub(super) fn validate(&self, field: &'static str) -> Result<(), ConfigError> {
        match *self {
            Self::Uniform { min, max } if min > max => Err(ConfigError::new(field, "min > max")),
            Self::LongTail { median, p99, max } if median > p99 || p99 > max => Err(
                ConfigError::new(field, "long tail needs median <= p99 <= max"),
            ),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = |d: Duration| humantime::format_duration(d).to_string();
        match *self {
            Self::None => f.write_str("none"),
            Self::Fixed { value } => write!(f, "fixed:{}", h(value)),
            Self::Uniform { min, max } => write!(f, "uniform:{}..{}", h(min), h(max)),
            Self::LongTail { median, p99, max } => write!(
                f,
                "long-tail:median={},p99={},max={}",
                h(median),
                h(p99),
                h(max)
            ),
        }
    }
}

impl FromStr for Latency {
    type Err = String;

    /// `none`, `fixed:200ms`, `uniform:100ms..500ms` (or just `100ms..500ms`), or
    /// `long-tail:median=200ms,p99=5s,max=30s`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = |v: &str| humantime::parse_duration(v.trim()).map_err(|e| format!("`{v}`: {e}"));
        let s = s.trim();
        if s == "none" || s == "0" {
            return Ok(Self::None);
        }
        let (kind, rest) = s.split_once(':').unwrap_or(("", s));
        match kind {
            "fixed" => Ok(Self::Fixed { value: d(rest)? }),
            "uniform" | "" => {
                let (a, b) = rest
                    .split_once("..")
                    .ok_or_else(|| format!("expected MIN..MAX, got `{rest}`"))?;
                Ok(Self::Uniform {
                    min: d(a)?,
                    max: d(b.trim_start_matches('='))?,
                })
            }
            "long-tail" => {
                let mut parts = BTreeMap::new();
                for kv in rest.split(',') {
                    let (k, v) = kv
                        .split_once('=')
                        .ok_or_else(|| format!("expected key=value, got `{kv}`"))?;
                    parts.insert(k.trim().to_owned(), d(v)?);
                }
                let get = |k: &str| {
                    parts
                        .get(k)
                        .copied()
                        .ok_or_else(|| format!("missing `{k}`"))
                };
                Ok(Self::LongTail {
                    median: get("median")?,
                    p99: get("p99")?,
                    max: get("max")?,
                })
            }
            other => Err(format!("unknown latency kind `{other}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_specs_parse() {
        assert_eq!("none".parse::<Latency>(), Ok(Latency::None));
        assert_eq!(
            "100ms..500ms".parse::<Latency>(),
            Ok(Latency::uniform(
                Duration::from_millis(100)..=Duration::from_millis(500)
            ))
        );
        assert_eq!(
            "fixed:2s".parse::<Latency>(),
            Ok(Latency::fixed(Duration::from_secs(2)))
        );
        let lt: Latency = "long-tail:median=100ms,p99=2s,max=5s".parse().unwrap();
        assert_eq!(lt.upper_bound(), Duration::from_secs(5));
        assert!("wobbly:1s".parse::<Latency>().is_err());
    }

    #[test]
    fn long_tail_samples_respect_median_and_cap() {
        let lt = Latency::long_tail(
            Duration::from_millis(100),
            Duration::from_secs(2),
            Duration::from_secs(3),
        );
        let mut rng = SimRng::seed_from_u64(3);
        let mut samples: Vec<_> = (0..10_000).map(|_| lt.sample(&mut rng)).collect();
        samples.sort();
        let median = samples[5_000].as_secs_f64();
        let p99 = samples[9_900].as_secs_f64();
        assert!((0.09..0.11).contains(&median), "median {median}");
        assert!((1.6..2.5).contains(&p99), "p99 {p99}");
        assert!(samples.iter().all(|d| *d <= Duration::from_secs(3)));
    }
}

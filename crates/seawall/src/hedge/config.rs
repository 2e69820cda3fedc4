//! A hedge's settings, as plain data, and their document form.

use std::time::Duration;

use crate::config::{ConfigError, MAX_DURATION, check_duration};

/// The most hedged attempts a hedge may start for one call, beyond the primary.
pub const MAX_HEDGED_ATTEMPTS: u32 = 16;

/// The largest latency sample a percentile delay may keep.
pub const MAX_LATENCY_WINDOW: usize = 10_000;

/// A hedge's settings: what a registry stores, a config file describes and a live
/// reconfiguration replaces.
///
/// In a document (feature `serde`, section `hedge`) the keys are Polly's and Resilience4j's
/// where they have one:
///
/// | field | document key | default |
/// |---|---|---|
/// | `delay` | `delay` | `"2s"` (Polly's) |
/// | `max_hedged_attempts` | `max_hedged_attempts` | 1 |
/// | `delay_percentile` | `delay_percentile` (e.g. `0.95`; absent: a fixed delay) | none |
/// | `delay_floor` | `delay_floor` | `"0s"` |
/// | `delay_ceiling` | `delay_ceiling` | `"30s"` |
/// | `latency_window_size` | `latency_window_size` | 100 |
/// | `minimum_number_of_samples` | `minimum_number_of_samples` | 20 |
/// | `hedge_on_failure` | `hedge_on_failure` | `true` |
/// | `budget` | `budget: { ratio, min_per_second, max_tokens }` | none |
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HedgeConfig {
    /// How long after the primary attempt (and after each hedge) the next hedged attempt
    /// starts. Zero is **parallel mode**: every hedged attempt starts on the call's first poll.
    /// In percentile mode, the delay used until enough latencies are recorded.
    pub delay: Duration,
    /// How many hedged attempts may start beyond the primary (up to [`MAX_HEDGED_ATTEMPTS`]).
    /// Zero turns hedging off: the hedge only passes calls through, so it can stay in a
    /// policy and be turned on live.
    pub max_hedged_attempts: u32,
    /// Percentile mode: the delay is this percentile (in `(0, 1]`, e.g. `0.95`) of the recent
    /// latencies of accepted attempts, clamped to `[delay_floor, delay_ceiling]`.
    pub delay_percentile: Option<f64>,
    /// The shortest percentile delay.
    pub delay_floor: Duration,
    /// The longest percentile delay.
    pub delay_ceiling: Duration,
    /// How many recent latencies the percentile is taken over (1 to [`MAX_LATENCY_WINDOW`]).
    pub latency_window_size: usize,
    /// How many latencies must be recorded before the percentile is used instead of `delay`
    /// (1 to `latency_window_size`).
    pub minimum_number_of_samples: usize,
    /// When an attempt fails with an unacceptable outcome, start the next hedged attempt at
    /// once instead of waiting for the delay (as Polly does; default true).
    pub hedge_on_failure: bool,
    /// A budget capping the extra load (none: every hedge the delay allows is started).
    pub budget: Option<HedgeBudgetConfig>,
}

impl Default for HedgeConfig {
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(2),
            max_hedged_attempts: 1,
            delay_percentile: None,
            delay_floor: Duration::ZERO,
            delay_ceiling: Duration::from_secs(30),
            latency_window_size: 100,
            minimum_number_of_samples: 20,
            hedge_on_failure: true,
            budget: None,
        }
    }
}

impl HedgeConfig {
    /// A fixed delay of `delay` and one hedged attempt.
    pub fn fixed(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    /// Parallel mode: `max_hedged_attempts` hedged attempts started with the primary.
    pub fn parallel(max_hedged_attempts: u32) -> Self {
        Self {
            delay: Duration::ZERO,
            max_hedged_attempts,
            ..Self::default()
        }
    }

    /// Percentile mode: the delay follows `percentile` of recent latencies, clamped to
    /// `[floor, ceiling]`; `floor` is used until enough latencies are recorded.
    pub fn percentile(percentile: f64, floor: Duration, ceiling: Duration) -> Self {
        Self {
            delay: floor,
            delay_percentile: Some(percentile),
            delay_floor: floor,
            delay_ceiling: ceiling,
            ..Self::default()
        }
    }

    /// Checks every rule, naming the key as a document spells it.
    ///
    /// # Errors
    ///
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_duration("delay", self.delay, Duration::ZERO)?;
        if self.max_hedged_attempts > MAX_HEDGED_ATTEMPTS {
            return Err(ConfigError::new(
                "max_hedged_attempts",
                format!(
                    "must be <= {MAX_HEDGED_ATTEMPTS}, got {}",
                    self.max_hedged_attempts
                ),
            ));
        }
        if let Some(p) = self.delay_percentile
            && !(p.is_finite() && p > 0.0 && p <= 1.0)
        {
            return Err(ConfigError::new(
                "delay_percentile",
                format!("must be in (0, 1], got {p}"),
            ));
        }
        check_duration("delay_floor", self.delay_floor, Duration::ZERO)?;
        check_duration("delay_ceiling", self.delay_ceiling, self.delay_floor).map_err(|_| {
            ConfigError::new(
                "delay_ceiling",
                format!(
                    "must be in [delay_floor ({:?}), {MAX_DURATION:?}], got {:?}",
                    self.delay_floor, self.delay_ceiling
                ),
            )
        })?;
        if !(1..=MAX_LATENCY_WINDOW).contains(&self.latency_window_size) {
            return Err(ConfigError::new(
                "latency_window_size",
                format!(
                    "must be in [1, {MAX_LATENCY_WINDOW}], got {}",
                    self.latency_window_size
                ),
            ));
        }
        if !(1..=self.latency_window_size).contains(&self.minimum_number_of_samples) {
            return Err(ConfigError::new(
                "minimum_number_of_samples",
                format!(
                    "must be in [1, latency_window_size ({})], got {}",
                    self.latency_window_size, self.minimum_number_of_samples
                ),
            ));
        }
        if let Some(budget) = &self.budget {
            budget.validate()?;
        }
        Ok(())
    }
}

/// A hedging budget's settings: at most `ratio` extra calls per primary call, plus
/// `min_per_second` hedges a second whatever the ratio, saved up to `max_tokens`.
///
/// Token semantics as the retry budget's ([`RetryBudget`](crate::RetryBudget)): every call
/// deposits `ratio` tokens, every hedged attempt withdraws one, and a hedge is not started
/// when no token is left. The bucket starts empty; a reserve of `min_per_second` tokens,
/// refilled continuously, lets a quiet service hedge at all.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct HedgeBudgetConfig {
    /// Tokens each call deposits: the share of extra calls allowed (default 0.1, i.e. 10 %).
    pub ratio: f64,
    /// Hedges allowed per second beyond the ratio (default 10).
    pub min_per_second: f64,
    /// The most tokens calls may save up (default 100).
    pub max_tokens: f64,
}

impl Default for HedgeBudgetConfig {
    fn default() -> Self {
        Self::new(0.1, 10.0)
    }
}

#[cfg(feature = "serde")]
crate::config::serde::document_form! {
    HedgeBudgetConfig {
        ratio: f64 = ratio,
        min_per_second: f64 = min_per_second,
        max_tokens: f64 = max_tokens,
    }
}

impl HedgeBudgetConfig {
    /// At most `ratio` extra calls per call, plus `min_per_second` a second.
    pub const fn new(ratio: f64, min_per_second: f64) -> Self {
        Self {
            ratio,
            min_per_second,
            max_tokens: 100.0,
        }
    }

    /// Checks the values, naming the key (`budget.ratio`, …).
    ///
    /// # Errors
    ///
    /// A value that is not finite or out of its range: `ratio` in `[0.001, 1000]`,
    /// `min_per_second` in `[0, 1e6]`, `max_tokens` in `[1, 1e6]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |key: &'static str, value: f64, min: f64, max: f64| {
            if value.is_finite() && (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::new(
                    key,
                    format!("must be in [{min}, {max}], got {value}"),
                ))
            }
        };
        check("budget.ratio", self.ratio, 0.001, 1000.0)?;
        check("budget.min_per_second", self.min_per_second, 0.0, 1e6)?;
        check("budget.max_tokens", self.max_tokens, 1.0, 1e6)
    }
}

#[cfg(feature = "serde")]
mod document {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    use super::{HedgeBudgetConfig, HedgeConfig};
    use crate::config::serde::duration;

    #[derive(Deserialize, Serialize)]
    #[serde(default, deny_unknown_fields)]
    struct Keys {
        #[serde(with = "duration")]
        delay: Duration,
        max_hedged_attempts: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        delay_percentile: Option<f64>,
        #[serde(with = "duration")]
        delay_floor: Duration,
        #[serde(with = "duration")]
        delay_ceiling: Duration,
        latency_window_size: usize,
        minimum_number_of_samples: usize,
        hedge_on_failure: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        budget: Option<HedgeBudgetConfig>,
    }

    impl Default for Keys {
        fn default() -> Self {
            HedgeConfig::default().into()
        }
    }

    impl From<HedgeConfig> for Keys {
        fn from(c: HedgeConfig) -> Self {
            Self {
                delay: c.delay,
                max_hedged_attempts: c.max_hedged_attempts,
                delay_percentile: c.delay_percentile,
                delay_floor: c.delay_floor,
                delay_ceiling: c.delay_ceiling,
                latency_window_size: c.latency_window_size,
                minimum_number_of_samples: c.minimum_number_of_samples,
                hedge_on_failure: c.hedge_on_failure,
                budget: c.budget,
            }
        }
    }

    impl serde::Serialize for HedgeConfig {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            Keys::from(self.clone()).serialize(serializer)
        }
    }

    impl<'de> serde::Deserialize<'de> for HedgeConfig {
        /// Reads the document keys; keys left out keep their defaults. The values are not
        /// validated here (call [`validate`](HedgeConfig::validate), or build a hedge).
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let k = Keys::deserialize(crate::config::serde::MapOnly(deserializer))?;
            Ok(Self {
                delay: k.delay,
                max_hedged_attempts: k.max_hedged_attempts,
                delay_percentile: k.delay_percentile,
                delay_floor: k.delay_floor,
                delay_ceiling: k.delay_ceiling,
                latency_window_size: k.latency_window_size,
                minimum_number_of_samples: k.minimum_number_of_samples,
                hedge_on_failure: k.hedge_on_failure,
                budget: k.budget,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_is_valid() {
        HedgeConfig::default().validate().unwrap();
        HedgeConfig::parallel(3).validate().unwrap();
    }

    #[test]
    fn each_broken_rule_names_its_key() {
        let key = |c: HedgeConfig| c.validate().unwrap_err().key().to_owned();
        let mut c = HedgeConfig::parallel(0);
        c.validate().expect("zero hedges: hedging off");
        c.max_hedged_attempts = MAX_HEDGED_ATTEMPTS + 1;
        assert_eq!(key(c), "max_hedged_attempts");
        let mut c = HedgeConfig::percentile(1.5, Duration::ZERO, Duration::from_secs(1));
        assert_eq!(key(c.clone()), "delay_percentile");
        c.delay_percentile = Some(0.95);
        c.delay_floor = Duration::from_secs(2);
        assert_eq!(key(c.clone()), "delay_ceiling");
        c.delay_floor = Duration::ZERO;
        c.minimum_number_of_samples = 101;
        assert_eq!(key(c.clone()), "minimum_number_of_samples");
        c.minimum_number_of_samples = 1;
        c.latency_window_size = 0;
        assert_eq!(key(c.clone()), "latency_window_size");
        c.latency_window_size = 10;
        c.budget = Some(HedgeBudgetConfig::new(f64::NAN, 1.0));
        assert_eq!(key(c), "budget.ratio");
    }
}

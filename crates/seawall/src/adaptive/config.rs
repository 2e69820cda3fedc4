//! The adaptive limiter's configuration.

use std::time::Duration;

use crate::Bulkhead;
use crate::config::{ConfigError, check_duration};

/// How an [`AdaptiveLimiter`](super::AdaptiveLimiter) moves its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[non_exhaustive]
pub enum LimitAlgorithm {
    /// Loss-based: + `additive_increase` (default 1) per successful sample while at least
    /// half the limit is in use; × `backoff_ratio` on a drop or an RTT above `rtt_timeout`.
    /// Recommended for clients.
    #[default]
    Aimd,
    /// Delay-based (TCP Vegas): estimates the queue at the dependency as
    /// `ceil(limit × (1 − rtt_noload / rtt))` and keeps it between `vegas_alpha × log` and
    /// `vegas_beta × log`, where `log` is `log10(limit)` rounded down and at least 1.
    Vegas,
    /// Delay-based (Netflix's Gradient2): scales the limit by `rtt_tolerance × long-term
    /// average RTT / latest RTT` (clamped to [0.5, 1]) and adds `queue_size`, smoothed.
    Gradient2,
}

/// An adaptive limiter's settings: what a registry stores, a config file describes and a
/// live reconfiguration replaces.
///
/// In a document (feature `serde`) the keys are `algorithm` (`"aimd"`, `"vegas"`,
/// `"gradient2"`), `initial_limit`, `min_limit`, `max_limit`, `max_wait_duration`,
/// `backoff_ratio`, `rtt_timeout_duration`, `additive_increase` (AIMD), `smoothing`, `vegas_alpha`, `vegas_beta`,
/// `probe_multiplier` (Vegas), `queue_size`, `rtt_tolerance`, `long_window` (Gradient2),
/// `window_size` and `min_window_duration` (sample windows, every algorithm).
/// The defaults are those of Netflix's concurrency-limits, except `min_limit` (1).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct AdaptiveLimiterConfig {
    /// The algorithm (default AIMD).
    pub algorithm: LimitAlgorithm,
    /// The limit before any sample (default 20).
    pub initial_limit: usize,
    /// The limit never goes below this (default 1; at least 1, so calls keep sampling).
    pub min_limit: usize,
    /// The limit never goes above this (default 200; at most
    /// [`Bulkhead::MAX_CONCURRENT_CALLS`]).
    pub max_limit: usize,
    /// How long a call may wait for a permit (default zero: reject at once).
    pub max_wait: Duration,
    /// AIMD: the factor applied on a drop (default 0.9; in [0.5, 1)).
    pub backoff_ratio: f64,
    /// AIMD: a sample slower than this counts as a drop (default 5 s).
    pub rtt_timeout: Duration,
    /// AIMD: what a successful sample adds to the limit (default 1; > 0). Above 1 the limit
    /// grows faster than doubling per round trip, for a dependency whose round trips are
    /// long compared with how quickly the load arrives.
    pub additive_increase: f64,
    /// Vegas and Gradient2: how far the limit moves towards each new estimate, in (0, 1];
    /// `None` is the algorithm's default (Vegas 1.0, Gradient2 0.2).
    pub smoothing: Option<f64>,
    /// Vegas: below `vegas_alpha × log` queued calls the limit grows by `log` (default 3).
    pub vegas_alpha: f64,
    /// Vegas: above `vegas_beta × log` queued calls the limit shrinks by `log` (default 6).
    pub vegas_beta: f64,
    /// Vegas: the no-load RTT is re-measured every `probe_multiplier × limit` samples
    /// (default 30; 0 never re-measures).
    pub probe_multiplier: u32,
    /// Gradient2: the calls allowed to queue at the dependency (default 4).
    pub queue_size: f64,
    /// Gradient2: how much slower than the long-term average the latest RTT may be before
    /// the limit shrinks (default 1.5; at least 1).
    pub rtt_tolerance: f64,
    /// Gradient2: the number of samples of the long-term RTT average (default 600; ≥ 1).
    pub long_window: u32,
    /// Samples aggregated into one before the algorithm sees them: their mean RTT, the most
    /// calls in flight, and whether any was a drop (default 1: every sample on its own).
    pub window_size: u32,
    /// The shortest time a window of samples spans (default zero).
    pub min_window: Duration,
}

#[cfg(feature = "serde")]
crate::config::serde::document_form! {
    AdaptiveLimiterConfig {
        algorithm: LimitAlgorithm = algorithm,
        initial_limit: usize = initial_limit,
        min_limit: usize = min_limit,
        max_limit: usize = max_limit,
        #[serde(with = "crate::config::serde::duration")]
        max_wait_duration: Duration = max_wait,
        backoff_ratio: f64 = backoff_ratio,
        #[serde(with = "crate::config::serde::duration")]
        rtt_timeout_duration: Duration = rtt_timeout,
        additive_increase: f64 = additive_increase,
        smoothing: Option<f64> = smoothing,
        vegas_alpha: f64 = vegas_alpha,
        vegas_beta: f64 = vegas_beta,
        probe_multiplier: u32 = probe_multiplier,
        queue_size: f64 = queue_size,
        rtt_tolerance: f64 = rtt_tolerance,
        long_window: u32 = long_window,
        window_size: u32 = window_size,
        #[serde(with = "crate::config::serde::duration")]
        min_window_duration: Duration = min_window,
    }
}

impl Default for AdaptiveLimiterConfig {
    fn default() -> Self {
        Self::new(LimitAlgorithm::Aimd)
    }
}

impl AdaptiveLimiterConfig {
    /// The defaults with `algorithm`.
    pub const fn new(algorithm: LimitAlgorithm) -> Self {
        Self {
            algorithm,
            initial_limit: 20,
            min_limit: 1,
            max_limit: 200,
            max_wait: Duration::ZERO,
            backoff_ratio: 0.9,
            rtt_timeout: Duration::from_secs(5),
            additive_increase: 1.0,
            smoothing: None,
            vegas_alpha: 3.0,
            vegas_beta: 6.0,
            probe_multiplier: 30,
            queue_size: 4.0,
            rtt_tolerance: 1.5,
            long_window: 600,
            window_size: 1,
            min_window: Duration::ZERO,
        }
    }

    /// The smoothing in use: the configured one, or the algorithm's default.
    pub fn smoothing_or_default(&self) -> f64 {
        self.smoothing.unwrap_or(match self.algorithm {
            LimitAlgorithm::Gradient2 => 0.2,
            LimitAlgorithm::Aimd | LimitAlgorithm::Vegas => 1.0,
        })
    }

    /// Checks every rule, naming the key and the rule broken.
    ///
    /// # Errors
    ///
    /// Limits out of order (`1 <= min_limit <= initial_limit <= max_limit <=`
    /// [`Bulkhead::MAX_CONCURRENT_CALLS`]), a backoff ratio outside [0.5, 1), an additive
    /// increase not above 0, a smoothing
    /// outside (0, 1], Vegas thresholds not `0 < vegas_alpha <= vegas_beta`, a negative or
    /// non-finite queue size, a tolerance below 1, a long window or window size of 0, or a
    /// duration above
    /// [`MAX_DURATION`](crate::config::MAX_DURATION).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_limits()?;
        check_duration("max_wait_duration", self.max_wait, Duration::ZERO)?;
        check_duration("rtt_timeout_duration", self.rtt_timeout, Duration::ZERO)?;
        check_real(
            "backoff_ratio",
            self.backoff_ratio,
            |r| (0.5..1.0).contains(&r),
            "in [0.5, 1)",
        )?;
        check_real(
            "additive_increase",
            self.additive_increase,
            |a| a > 0.0,
            "> 0",
        )?;
        if let Some(smoothing) = self.smoothing {
            check_real("smoothing", smoothing, |s| s > 0.0 && s <= 1.0, "in (0, 1]")?;
        }
        check_real("vegas_alpha", self.vegas_alpha, |a| a > 0.0, "> 0")?;
        check_real(
            "vegas_beta",
            self.vegas_beta,
            |b| b >= self.vegas_alpha,
            ">= vegas_alpha",
        )?;
        check_real("queue_size", self.queue_size, |q| q >= 0.0, ">= 0")?;
        check_real("rtt_tolerance", self.rtt_tolerance, |t| t >= 1.0, ">= 1")?;
        if self.long_window == 0 {
            return Err(ConfigError::new("long_window", "must be >= 1, got 0"));
        }
        if self.window_size == 0 {
            return Err(ConfigError::new("window_size", "must be >= 1, got 0"));
        }
        check_duration("min_window_duration", self.min_window, Duration::ZERO)
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        if self.min_limit == 0 {
            return Err(ConfigError::new("min_limit", "must be >= 1, got 0"));
        }
        if self.max_limit > Bulkhead::MAX_CONCURRENT_CALLS {
            return Err(ConfigError::new(
                "max_limit",
                format!(
                    "must be <= {}, got {}",
                    Bulkhead::MAX_CONCURRENT_CALLS,
                    self.max_limit
                ),
            ));
        }
        if self.max_limit < self.min_limit {
            return Err(ConfigError::new(
                "max_limit",
                format!(
                    "must be >= min_limit ({}), got {}",
                    self.min_limit, self.max_limit
                ),
            ));
        }
        if !(self.min_limit..=self.max_limit).contains(&self.initial_limit) {
            return Err(ConfigError::new(
                "initial_limit",
                format!(
                    "must be in [min_limit, max_limit] = [{}, {}], got {}",
                    self.min_limit, self.max_limit, self.initial_limit
                ),
            ));
        }
        Ok(())
    }
}

fn check_real(
    key: &'static str,
    value: f64,
    rule: impl FnOnce(f64) -> bool,
    text: &str,
) -> Result<(), ConfigError> {
    if value.is_finite() && rule(value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be {text}, got {value}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_for_every_algorithm() {
        for algorithm in [
            LimitAlgorithm::Aimd,
            LimitAlgorithm::Vegas,
            LimitAlgorithm::Gradient2,
        ] {
            assert_eq!(AdaptiveLimiterConfig::new(algorithm).validate(), Ok(()));
        }
    }

    #[test]
    fn validation_names_the_key_and_the_rule() {
        let cases = [
            (
                AdaptiveLimiterConfig {
                    min_limit: 0,
                    ..Default::default()
                },
                "min_limit",
            ),
            (
                AdaptiveLimiterConfig {
                    max_limit: 10,
                    ..Default::default()
                },
                "initial_limit",
            ),
            (
                AdaptiveLimiterConfig {
                    min_limit: 5,
                    max_limit: 4,
                    ..Default::default()
                },
                "max_limit",
            ),
            (
                AdaptiveLimiterConfig {
                    backoff_ratio: 1.0,
                    ..Default::default()
                },
                "backoff_ratio",
            ),
            (
                AdaptiveLimiterConfig {
                    backoff_ratio: f64::NAN,
                    ..Default::default()
                },
                "backoff_ratio",
            ),
            (
                AdaptiveLimiterConfig {
                    additive_increase: 0.0,
                    ..Default::default()
                },
                "additive_increase",
            ),
            (
                AdaptiveLimiterConfig {
                    smoothing: Some(0.0),
                    ..Default::default()
                },
                "smoothing",
            ),
            (
                AdaptiveLimiterConfig {
                    vegas_beta: 2.0,
                    ..Default::default()
                },
                "vegas_beta",
            ),
            (
                AdaptiveLimiterConfig {
                    queue_size: -1.0,
                    ..Default::default()
                },
                "queue_size",
            ),
            (
                AdaptiveLimiterConfig {
                    rtt_tolerance: 0.9,
                    ..Default::default()
                },
                "rtt_tolerance",
            ),
            (
                AdaptiveLimiterConfig {
                    long_window: 0,
                    ..Default::default()
                },
                "long_window",
            ),
        ];
        for (config, key) in cases {
            let error = config.validate().unwrap_err();
            assert_eq!(error.key(), key, "{error}");
        }
    }

    #[test]
    fn smoothing_defaults_per_algorithm() {
        assert_eq!(
            AdaptiveLimiterConfig::new(LimitAlgorithm::Vegas).smoothing_or_default(),
            1.0
        );
        assert_eq!(
            AdaptiveLimiterConfig::new(LimitAlgorithm::Gradient2).smoothing_or_default(),
            0.2
        );
    }
}

//! The fault injector's configuration.

use std::time::Duration;

use crate::config::{ConfigError, check_duration};

/// A fault injector's settings: what a registry stores and a game-day document describes.
///
/// Three kinds of fault, each drawn independently on every call with its own injection rate
/// (a probability in `[0, 1]`):
///
/// - **error**: the call fails with [`InjectedFault`](super::InjectedFault) (or the error made
///   by [`FaultInjector::with_error`](super::FaultInjector::with_error)) without running the
///   operation;
/// - **latency**: the call waits `latency_duration` on the injector's clock, then goes on
///   (to an injected error or outcome, if one is drawn too, else to the operation);
/// - **outcome**: the call returns the value made by
///   [`FaultInjector::with_outcome`](super::FaultInjector::with_outcome) **without running
///   the operation** (as Polly's outcome strategy). Without such a value the rate has no
///   effect.
///
/// An injected error wins over an injected outcome when both are drawn.
///
/// In a document (feature `serde`, section `fault`) the keys are the field names:
///
/// ```toml
/// [fault.instances.pg-charge]
/// enabled = true
/// error_injection_rate = 0.05
/// latency_injection_rate = 0.2
/// latency_duration = "3s"
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct FaultConfig {
    /// Whether anything is injected at all (default **false**: an injector does nothing until
    /// it is switched on, so a forgotten game-day setting cannot hurt production).
    pub enabled: bool,
    /// The probability of failing a call with an injected error (default 0).
    pub error_injection_rate: f64,
    /// The probability of delaying a call by `latency_duration` (default 0).
    pub latency_injection_rate: f64,
    /// The injected delay (default 1 s; at most [`MAX_DURATION`](crate::config::MAX_DURATION)).
    pub latency_duration: Duration,
    /// The probability of replacing a call's outcome (default 0).
    pub outcome_injection_rate: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            error_injection_rate: 0.0,
            latency_injection_rate: 0.0,
            latency_duration: Duration::from_secs(1),
            outcome_injection_rate: 0.0,
        }
    }
}

#[cfg(feature = "serde")]
crate::config::serde::document_form! {
    FaultConfig {
        enabled: bool = enabled,
        error_injection_rate: f64 = error_injection_rate,
        latency_injection_rate: f64 = latency_injection_rate,
        #[serde(with = "crate::config::serde::duration")]
        latency_duration: Duration = latency_duration,
        outcome_injection_rate: f64 = outcome_injection_rate,
    }
}

impl FaultConfig {
    /// A disabled injector with no fault configured.
    pub fn new() -> Self {
        Self::default()
    }

    /// Switched on (`true`) or off.
    #[must_use]
    pub const fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Fails calls with an injected error at `rate`.
    #[must_use]
    pub const fn error(mut self, rate: f64) -> Self {
        self.error_injection_rate = rate;
        self
    }

    /// Delays calls by `duration` at `rate`.
    #[must_use]
    pub const fn latency(mut self, rate: f64, duration: Duration) -> Self {
        self.latency_injection_rate = rate;
        self.latency_duration = duration;
        self
    }

    /// Replaces outcomes at `rate`.
    #[must_use]
    pub const fn outcome(mut self, rate: f64) -> Self {
        self.outcome_injection_rate = rate;
        self
    }

    /// Checks every rule, naming the key as a document spells it.
    ///
    /// # Errors
    ///
    /// A rate outside `[0, 1]` or not finite, or a latency above
    /// [`MAX_DURATION`](crate::config::MAX_DURATION).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_rate("error_injection_rate", self.error_injection_rate)?;
        check_rate("latency_injection_rate", self.latency_injection_rate)?;
        check_rate("outcome_injection_rate", self.outcome_injection_rate)?;
        check_duration("latency_duration", self.latency_duration, Duration::ZERO)
    }
}

fn check_rate(key: &'static str, rate: f64) -> Result<(), ConfigError> {
    if rate.is_finite() && (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be in [0, 1], got {rate}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_outside_zero_to_one_are_refused_by_name() {
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let err = FaultConfig::new().error(bad).validate().unwrap_err();
            assert_eq!(err.key(), "error_injection_rate");
        }
        let err = FaultConfig::new().outcome(2.0).validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "outcome_injection_rate: must be in [0, 1], got 2"
        );
        let err = FaultConfig::new()
            .latency(0.5, Duration::from_secs(400 * 86_400))
            .validate()
            .unwrap_err();
        assert_eq!(err.key(), "latency_duration");
        assert!(
            FaultConfig::new()
                .error(1.0)
                .latency(0.0, Duration::ZERO)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn the_default_injects_nothing() {
        let config = FaultConfig::default();
        assert!(!config.enabled);
        assert_eq!(config.error_injection_rate, 0.0);
        assert!(config.validate().is_ok());
    }
}

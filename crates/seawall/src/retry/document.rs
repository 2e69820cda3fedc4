//! A retry's document form: Resilience4j's flat keys (plus seawall's own), read into and
//! written from the typed [`RetryConfig`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Backoff, Jitter, Progression, RetryBudgetConfig, RetryConfig};
use crate::config::serde::duration;

#[derive(Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Keys {
    max_attempts: u32,
    #[serde(with = "duration")]
    wait_duration: Duration,
    enable_exponential_backoff: bool,
    exponential_backoff_multiplier: f64,
    #[serde(with = "duration::option", skip_serializing_if = "Option::is_none")]
    exponential_max_wait_duration: Option<Duration>,
    enable_linear_backoff: bool,
    #[serde(with = "duration")]
    linear_backoff_step: Duration,
    jitter: Jitter,
    #[serde(with = "duration::option", skip_serializing_if = "Option::is_none")]
    max_elapsed: Option<Duration>,
    fail_after_max_attempts: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget: Option<RetryBudgetConfig>,
}

impl Default for Keys {
    fn default() -> Self {
        RetryConfig::default().into()
    }
}

impl From<RetryConfig> for Keys {
    fn from(config: RetryConfig) -> Self {
        let backoff = config.backoff;
        let (wait, exponential, multiplier, linear, step) = match backoff.progression() {
            Progression::Exponential {
                initial,
                multiplier,
            } => (initial, true, multiplier, false, Duration::ZERO),
            Progression::Linear { initial, step } => (initial, false, 2.0, true, step),
            Progression::Constant(wait) => (wait, false, 2.0, false, Duration::ZERO),
            _ => (Duration::ZERO, false, 2.0, false, Duration::ZERO),
        };
        Self {
            max_attempts: config.max_attempts,
            wait_duration: wait,
            enable_exponential_backoff: exponential,
            exponential_backoff_multiplier: multiplier,
            exponential_max_wait_duration: backoff.cap(),
            enable_linear_backoff: linear,
            linear_backoff_step: step,
            jitter: backoff.jitter_mode(),
            max_elapsed: config.max_elapsed,
            fail_after_max_attempts: config.fail_after_max_attempts,
            budget: config.budget,
        }
    }
}

impl Keys {
    /// The typed configuration; only both growth kinds at once cannot be read.
    pub(super) fn into_config(self) -> Result<RetryConfig, String> {
        let backoff = match (self.enable_exponential_backoff, self.enable_linear_backoff) {
            (true, true) => {
                return Err(
                    "enable_linear_backoff: cannot be true while enable_exponential_backoff is (at most one of them may be)"
                        .to_owned(),
                );
            }
            (true, false) => Backoff::exponential(self.wait_duration)
                .multiplier(self.exponential_backoff_multiplier),
            (false, true) => Backoff::linear(self.wait_duration, self.linear_backoff_step),
            (false, false) if self.wait_duration.is_zero() => Backoff::none(),
            (false, false) => Backoff::constant(self.wait_duration),
        };
        let backoff = match self.exponential_max_wait_duration {
            Some(max) => backoff.max(max),
            None => backoff,
        };
        Ok(RetryConfig {
            max_attempts: self.max_attempts,
            backoff: backoff.jitter(self.jitter),
            max_elapsed: self.max_elapsed,
            fail_after_max_attempts: self.fail_after_max_attempts,
            budget: self.budget,
        })
    }
}

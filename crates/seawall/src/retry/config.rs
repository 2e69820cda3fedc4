//! A retry's settings, as plain data.

use std::time::Duration;

use super::{Backoff, RetryBudgetConfig};
use crate::config::{ConfigError, check_duration};

/// The most attempts a retry may make: more is a loop, not a retry.
pub const MAX_ATTEMPTS: u32 = 10_000;

/// A retry's settings: what a registry stores, a config file describes and a live
/// reconfiguration replaces.
///
/// In a document (feature `serde`) the keys are Resilience4j's, plus seawall's own:
///
/// | field | document keys |
/// |---|---|
/// | `max_attempts` | `max_attempts` |
/// | `backoff` | `wait_duration`, `enable_exponential_backoff`, `exponential_backoff_multiplier`, `exponential_max_wait_duration` (the cap of any kind), `enable_linear_backoff`, `linear_backoff_step`, `jitter` (`none`, `full`, `equal`, `decorrelated`) |
/// | `max_elapsed` | `max_elapsed` |
/// | `fail_after_max_attempts` | `fail_after_max_attempts` |
/// | `budget` | `budget: { max_tokens, token_ratio }` |
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// The maximum number of attempts, counting the first call (≥ 1, ≤ [`MAX_ATTEMPTS`];
    /// default 3).
    pub max_attempts: u32,
    /// The wait before each retry (default [`Backoff::default`]).
    pub backoff: Backoff,
    /// Stop when the next wait would end this long after the first attempt started.
    pub max_elapsed: Option<Duration>,
    /// Fail with [`ErrorKind::RetriesExhausted`](crate::ErrorKind::RetriesExhausted) when every result was rejected (default
    /// false: return the last result).
    pub fail_after_max_attempts: bool,
    /// A retry budget of the retry's own, created with it (a budget shared by several retries
    /// is given to [`RetryBuilder::budget`](super::RetryBuilder::budget) instead). Fixed once the retry exists: the budget
    /// is state.
    pub budget: Option<RetryBudgetConfig>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: Backoff::default(),
            max_elapsed: None,
            fail_after_max_attempts: false,
            budget: None,
        }
    }
}

impl RetryConfig {
    /// Checks every rule, naming the key as a document spells it.
    ///
    /// # Errors
    ///
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                "max_attempts",
                "must be >= 1 (it counts the first call), got 0",
            ));
        }
        if self.max_attempts > MAX_ATTEMPTS {
            return Err(ConfigError::new(
                "max_attempts",
                format!("must be <= {MAX_ATTEMPTS}, got {}", self.max_attempts),
            ));
        }
        self.backoff.validate().map_err(|err| {
            let key = match err.key() {
                "multiplier" => "exponential_backoff_multiplier",
                "step" => "linear_backoff_step",
                "max" => "exponential_max_wait_duration",
                "jitter" => "jitter",
                _ => "wait_duration",
            };
            ConfigError::new(key, err.rule().to_owned())
        })?;
        if let Some(max_elapsed) = self.max_elapsed {
            check_duration("max_elapsed", max_elapsed, Duration::from_nanos(1))?;
        }
        if let Some(budget) = &self.budget {
            budget.validate()?;
        }
        Ok(())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for RetryConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        super::document::Keys::from(self.clone()).serialize(serializer)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for RetryConfig {
    /// Reads the document keys; keys left out keep their defaults. The values are not
    /// validated here (call [`validate`](Self::validate), or build a retry, which does).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <super::document::Keys as serde::Deserialize>::deserialize(crate::config::serde::MapOnly(
            deserializer,
        ))?
        .into_config()
        .map_err(serde::de::Error::custom)
    }
}

//! What every decorator's configuration shares: the error naming a key and a rule, the
//! bounds on durations, and (feature `serde`) reading configurations from documents.
//!
//! Each decorator has one configuration type, plain data with public fields and
//! Resilience4j's defaults: [`TimeoutConfig`](crate::timeout::TimeoutConfig),
//! [`RetryConfig`](crate::retry::RetryConfig),
//! [`CircuitBreakerConfig`](crate::circuit_breaker::CircuitBreakerConfig),
//! [`BulkheadConfig`](crate::bulkhead::BulkheadConfig) and
//! [`RateLimiterConfig`](crate::rate_limiter::RateLimiterConfig). A configuration is checked
//! once, when a decorator is built from it or reconfigured with it (or by its `validate`).
//!
//! With the `serde` feature each of them reads and writes the keys of a configuration
//! document (Resilience4j's names; durations as humantime strings such as `"250ms"` or
//! `"1m 30s"`, or integers of milliseconds); keys left out keep their defaults, and
//! `overlay` reads keys over any other starting point.

#[cfg(feature = "serde")]
pub(crate) mod serde;

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

#[cfg(feature = "serde")]
pub use self::serde::overlay;

/// The longest duration any setting accepts: 365 days. Longer values are refused by
/// validation, so time arithmetic on them cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Checks that `value` is in `[min, MAX_DURATION]`.
pub(crate) fn check_duration(
    key: &'static str,
    value: Duration,
    min: Duration,
) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::new(
            key,
            format!("must be >= {min:?}, got {value:?}"),
        ));
    }
    if value > MAX_DURATION {
        return Err(ConfigError::new(
            key,
            format!("must be <= 365 days, got {value:?}"),
        ));
    }
    Ok(())
}

/// One segment of a key path: a key or name that is empty or has a dot in it is quoted
/// (`""`, `"a.b"`), so that a path is never blank and reads back unambiguously.
pub(crate) fn segment(key: &str) -> Cow<'_, str> {
    if key.is_empty() || key.contains('.') {
        Cow::Owned(format!("{key:?}"))
    } else {
        Cow::Borrowed(key)
    }
}

/// The path of instance or configuration `name` of a registry section.
pub(crate) fn entry_path(section: &str, group: &str, name: &str) -> String {
    format!("{section}.{group}.{}", segment(name))
}

/// A configuration value broke a rule. The message names the key and the rule, e.g.
/// `max_attempts: must be >= 1, got 0`.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigError {
    key: Cow<'static, str>,
    rule: Cow<'static, str>,
}

impl ConfigError {
    /// An error for `key` (a dotted path) breaking `rule`.
    pub fn new(key: impl Into<Cow<'static, str>>, rule: impl Into<Cow<'static, str>>) -> Self {
        Self {
            key: key.into(),
            rule: rule.into(),
        }
    }

    /// The dotted path of the offending key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The rule that was broken, with the offending value.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The same error under a parent path: `retry.max_attempts` under `instances.pg` becomes
    /// `instances.pg.retry.max_attempts`.
    #[must_use]
    pub fn under(self, parent: &str) -> Self {
        Self {
            key: Cow::Owned(format!("{parent}.{}", self.key)),
            rule: self.rule,
        }
    }
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigError")
            .field("key", &self.key)
            .field("rule", &self.rule)
            .finish()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.rule)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_read_as_a_path() {
        let err = ConfigError::new("max_attempts", "must be >= 1, got 0").under("instances.pg");
        assert_eq!(err.key(), "instances.pg.max_attempts");
        assert_eq!(
            err.to_string(),
            "instances.pg.max_attempts: must be >= 1, got 0"
        );
    }
}

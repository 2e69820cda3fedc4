//! Configuration errors shared by every builder.

use std::borrow::Cow;
use std::fmt;

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

//! A retry budget shared by every caller of a retry: gRPC's retry throttling.
//!
//! The budget holds up to `max_tokens` tokens and starts full. Every retryable failure costs one
//! token; every success refunds `token_ratio` tokens. Retries are refused while the budget holds
//! `max_tokens / 2` tokens or fewer. In an outage the budget drains after about `max_tokens / 2`
//! failures and retries stop, so a fleet of callers sends roughly one request per operation
//! instead of `max_attempts` of them; as successes return, retries come back.
//!
//! Tokens are kept in thousandths (gRPC keeps three decimal places) in one atomic.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::ConfigError;

const SCALE: f64 = 1000.0;

/// Tokens as the budget counts them: thousandths, rounded.
fn thousandths(tokens: f64) -> u64 {
    (tokens * SCALE).round() as u64
}

/// A retry budget's settings: `max_tokens` and `token_ratio`, each in `[0.001, 1000]` (tokens
/// are counted in thousandths, so a smaller value would round to nothing).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryBudgetConfig {
    /// The capacity; retries are refused while half of it or less is left.
    pub max_tokens: f64,
    /// Tokens refunded per success.
    pub token_ratio: f64,
}

impl Default for RetryBudgetConfig {
    /// gRPC's example: 10 tokens, each success refunding 0.1.
    fn default() -> Self {
        Self::new(10.0, 0.1)
    }
}

#[cfg(feature = "serde")]
crate::config::serde::document_form! {
    RetryBudgetConfig {
        max_tokens: f64 = max_tokens,
        token_ratio: f64 = token_ratio,
    }
}

impl RetryBudgetConfig {
    /// A budget of `max_tokens`, refunding `token_ratio` per success.
    pub const fn new(max_tokens: f64, token_ratio: f64) -> Self {
        Self {
            max_tokens,
            token_ratio,
        }
    }

    /// Checks both values, naming the key (`budget.max_tokens`, `budget.token_ratio`).
    ///
    /// # Errors
    ///
    /// A value that is not finite, or outside `[0.001, 1000]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_tokens("budget.max_tokens", self.max_tokens)?;
        check_tokens("budget.token_ratio", self.token_ratio)
    }
}

fn check_tokens(key: &'static str, value: f64) -> Result<(), ConfigError> {
    if !(value.is_finite() && value > 0.0 && value <= 1000.0) {
        return Err(ConfigError::new(
            key,
            format!("must be in (0, 1000], got {value}"),
        ));
    }
    if thousandths(value) == 0 {
        return Err(ConfigError::new(
            key,
            format!("must be >= 0.001 (tokens are counted in thousandths), got {value}"),
        ));
    }
    Ok(())
}

/// A token budget that throttles retries across every caller sharing it.
///
/// # Examples
///
/// ```
/// use seawall::RetryBudget;
///
/// // gRPC's example: 10 tokens, each success refunds 0.1.
/// let budget = RetryBudget::new(10.0, 0.1).unwrap();
/// assert!(budget.allows_retry());
/// for _ in 0..5 {
///     budget.record_failure();
/// }
/// assert_eq!(budget.tokens(), 5.0);
/// assert!(!budget.allows_retry()); // 5 <= 10 / 2
/// budget.record_success();
/// assert!(budget.allows_retry());
/// ```
///
/// # Clone
///
/// Clones share the same tokens.
#[derive(Clone)]
pub struct RetryBudget {
    shared: Arc<Shared>,
}

struct Shared {
    max: u64,
    ratio: u64,
    tokens: AtomicU64,
}

impl RetryBudget {
    /// A full budget of `max_tokens` (in `(0, 1000]`), refunding `token_ratio` (in `(0, 1000]`)
    /// per success.
    ///
    /// # Errors
    ///
    /// Values outside those ranges or not finite.
    pub fn new(max_tokens: f64, token_ratio: f64) -> Result<Self, ConfigError> {
        Self::from_config(RetryBudgetConfig::new(max_tokens, token_ratio))
    }

    /// A full budget as `config` describes it.
    ///
    /// # Errors
    ///
    /// As [`RetryBudgetConfig::validate`].
    pub fn from_config(config: RetryBudgetConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let max = thousandths(config.max_tokens);
        Ok(Self {
            shared: Arc::new(Shared {
                max,
                ratio: thousandths(config.token_ratio),
                tokens: AtomicU64::new(max),
            }),
        })
    }

    /// The tokens left.
    pub fn tokens(&self) -> f64 {
        self.shared.tokens.load(Ordering::Relaxed) as f64 / SCALE
    }

    /// The capacity.
    pub fn max_tokens(&self) -> f64 {
        self.shared.max as f64 / SCALE
    }

    /// The refund per success.
    pub fn token_ratio(&self) -> f64 {
        self.shared.ratio as f64 / SCALE
    }

    /// Whether a retry may be made now: more than half the tokens are left.
    pub fn allows_retry(&self) -> bool {
        self.shared.tokens.load(Ordering::Relaxed) * 2 > self.shared.max
    }

    /// A retryable failure: costs one token.
    pub fn record_failure(&self) {
        // Relaxed: the budget is a statistical throttle; it orders nothing else.
        let _ = self
            .shared
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tokens| {
                (tokens > 0).then(|| tokens.saturating_sub(1000))
            });
    }

    /// A success: refunds `token_ratio` tokens, up to the capacity.
    #[inline]
    pub fn record_success(&self) {
        let shared = &*self.shared;
        // A full budget (the normal state) costs one load and no write.
        if shared.tokens.load(Ordering::Relaxed) >= shared.max {
            return;
        }
        let _ = shared
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tokens| {
                (tokens < shared.max).then(|| (tokens + shared.ratio).min(shared.max))
            });
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("tokens", &self.tokens())
            .field("max_tokens", &self.max_tokens())
            .field("token_ratio", &self.token_ratio())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_drains_to_half_then_refuses_and_refills_with_successes() {
        let budget = RetryBudget::new(4.0, 0.5).unwrap();
        assert_eq!(budget.tokens(), 4.0);
        budget.record_failure();
        assert!(budget.allows_retry()); // 3 > 2
        budget.record_failure();
        assert!(!budget.allows_retry()); // 2 <= 2
        budget.record_failure();
        budget.record_failure();
        budget.record_failure();
        assert_eq!(budget.tokens(), 0.0, "never below zero");
        for _ in 0..4 {
            budget.record_success();
        }
        assert_eq!(budget.tokens(), 2.0);
        assert!(!budget.allows_retry());
        budget.record_success();
        assert!(budget.allows_retry());
        for _ in 0..100 {
            budget.record_success();
        }
        assert_eq!(budget.tokens(), 4.0, "never above the capacity");
    }

    #[test]
    fn clones_share_tokens() {
        let budget = RetryBudget::new(2.0, 1.0).unwrap();
        let other = budget.clone();
        other.record_failure();
        assert_eq!(budget.tokens(), 1.0);
    }

    #[test]
    fn a_value_that_rounds_to_no_tokens_is_refused() {
        let err = RetryBudget::new(0.0004, 0.1).unwrap_err();
        assert_eq!(err.key(), "budget.max_tokens");
        assert!(err.rule().contains("0.001"), "{err}");
        assert!(RetryBudget::new(10.0, 0.0004).is_err());
        assert!(RetryBudget::new(0.001, 0.001).is_ok());
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        assert_eq!(
            RetryBudget::new(0.0, 0.1).unwrap_err().to_string(),
            "budget.max_tokens: must be in (0, 1000], got 0"
        );
        assert_eq!(
            RetryBudget::new(10.0, f64::NAN).unwrap_err().key(),
            "budget.token_ratio"
        );
    }
}

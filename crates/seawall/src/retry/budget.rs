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
        if !(max_tokens.is_finite() && max_tokens > 0.0 && max_tokens <= 1000.0) {
            return Err(ConfigError::new(
                "budget.max_tokens",
                format!("must be in (0, 1000], got {max_tokens}"),
            ));
        }
        if !(token_ratio.is_finite() && token_ratio > 0.0 && token_ratio <= 1000.0) {
            return Err(ConfigError::new(
                "budget.token_ratio",
                format!("must be in (0, 1000], got {token_ratio}"),
            ));
        }
        let max = (max_tokens * SCALE).round() as u64;
        Ok(Self {
            shared: Arc::new(Shared {
                max,
                ratio: ((token_ratio * SCALE).round() as u64).max(1),
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

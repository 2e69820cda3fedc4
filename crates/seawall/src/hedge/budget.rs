//! The hedging budget: caps the extra load hedging puts on a dependency.
//!
//! Token semantics like the retry budget's (`retry/budget.rs`): tokens are kept in thousandths
//! in one atomic. Every call deposits `ratio` tokens (up to `max_tokens`), every hedged attempt
//! withdraws one. The bucket starts empty, so over any run at most `ratio × calls` hedges come
//! from it. A reserve of `min_per_second` tokens, refilled continuously on the hedge's clock and
//! touched only when a hedge is about to start, lets a service with few calls hedge at all.
//! Hedges are therefore at most `ratio × calls + min_per_second × (1 + seconds)`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::HedgeBudgetConfig;
use crate::clock::Instant;

const SCALE: f64 = 1000.0;
const ONE: u64 = 1000;

fn thousandths(tokens: f64) -> u64 {
    (tokens * SCALE).round() as u64
}

/// The budget's live state; its settings can change while it keeps its tokens.
pub(crate) struct Budget {
    enabled: AtomicBool,
    ratio: AtomicU64,
    max: AtomicU64,
    min_per_second: AtomicU64,
    tokens: AtomicU64,
    reserve: Mutex<Reserve>,
}

struct Reserve {
    /// Thousandths of a token.
    tokens: u64,
    refilled: Option<Instant>,
}

impl Budget {
    pub(crate) fn new(config: Option<HedgeBudgetConfig>) -> Self {
        let budget = Self {
            enabled: AtomicBool::new(false),
            ratio: AtomicU64::new(0),
            max: AtomicU64::new(0),
            min_per_second: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            reserve: Mutex::new(Reserve {
                tokens: 0,
                refilled: None,
            }),
        };
        budget.set_config(config);
        budget
    }

    /// Applies new settings; the tokens saved so far stay (capped at the new maximum).
    pub(crate) fn set_config(&self, config: Option<HedgeBudgetConfig>) {
        let Some(config) = config else {
            self.enabled.store(false, Ordering::Relaxed);
            return;
        };
        self.ratio
            .store(thousandths(config.ratio), Ordering::Relaxed);
        let max = thousandths(config.max_tokens);
        self.max.store(max, Ordering::Relaxed);
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(t.min(max)));
        let per_second = thousandths(config.min_per_second);
        self.min_per_second.store(per_second, Ordering::Relaxed);
        let mut reserve = self.reserve.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.enabled.load(Ordering::Relaxed) {
            // A budget turned on starts with a full reserve.
            reserve.tokens = per_second;
            reserve.refilled = None;
        }
        reserve.tokens = reserve.tokens.min(per_second);
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// A call started: deposits `ratio` tokens. A full bucket costs one load and no write.
    #[inline]
    pub(crate) fn deposit(&self) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let max = self.max.load(Ordering::Relaxed);
        if self.tokens.load(Ordering::Relaxed) >= max {
            return;
        }
        let ratio = self.ratio.load(Ordering::Relaxed);
        // Relaxed: the budget is a statistical throttle; it orders nothing else.
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                (t < max).then(|| (t + ratio).min(max))
            });
    }

    /// Takes a token for a hedge about to start at `now`; false when none is left.
    pub(crate) fn withdraw(&self, now: Instant) -> bool {
        if !self.enabled.load(Ordering::Relaxed) {
            return true;
        }
        let taken = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(ONE));
        if taken.is_ok() {
            return true;
        }
        let per_second = self.min_per_second.load(Ordering::Relaxed);
        let mut reserve = self.reserve.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = reserve.refilled {
            let elapsed = (now - last).as_nanos();
            let refill = elapsed.saturating_mul(u128::from(per_second)) / 1_000_000_000;
            let refill = u64::try_from(refill).unwrap_or(u64::MAX);
            reserve.tokens = reserve.tokens.saturating_add(refill).min(per_second);
        }
        reserve.refilled = Some(now);
        match reserve.tokens.checked_sub(ONE) {
            Some(left) => {
                reserve.tokens = left;
                true
            }
            None => false,
        }
    }

    /// The tokens saved from calls (not counting the reserve).
    pub(crate) fn tokens(&self) -> f64 {
        self.tokens.load(Ordering::Relaxed) as f64 / SCALE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn ten_percent_allows_one_hedge_per_ten_calls_beyond_the_reserve() {
        let budget = Budget::new(Some(HedgeBudgetConfig::new(0.1, 2.0)));
        for _ in 0..100 {
            budget.deposit();
        }
        assert_eq!(budget.tokens(), 10.0);
        let granted = (0..100).filter(|_| budget.withdraw(at(0))).count();
        assert_eq!(granted, 10 + 2, "ten from the calls, two from the reserve");
    }

    #[test]
    fn the_reserve_refills_at_its_rate_and_no_further() {
        let budget = Budget::new(Some(HedgeBudgetConfig::new(0.1, 2.0)));
        assert!(budget.withdraw(at(0)));
        assert!(budget.withdraw(at(0)));
        assert!(!budget.withdraw(at(0)));
        assert!(!budget.withdraw(at(499)), "one token takes 500 ms");
        assert!(budget.withdraw(at(500)));
        assert!(!budget.withdraw(at(500)));
        assert!(
            budget.withdraw(at(1000)),
            "a part-token is kept between checks"
        );
        assert!(!budget.withdraw(at(1000)));
        assert!(budget.withdraw(at(60_000)));
        assert!(budget.withdraw(at(60_000)));
        assert!(!budget.withdraw(at(60_000)), "capped at one second's worth");
    }

    #[test]
    fn saved_tokens_are_capped_and_kept_across_a_reconfiguration() {
        let mut config = HedgeBudgetConfig::new(1.0, 0.0);
        config.max_tokens = 5.0;
        let budget = Budget::new(Some(config));
        for _ in 0..50 {
            budget.deposit();
        }
        assert_eq!(budget.tokens(), 5.0);
        config.max_tokens = 3.0;
        budget.set_config(Some(config));
        assert_eq!(budget.tokens(), 3.0);
    }

    #[test]
    fn no_budget_allows_every_hedge() {
        let budget = Budget::new(None);
        budget.deposit();
        assert!((0..1000).all(|_| budget.withdraw(at(0))));
    }
}

//! A breaker's metrics: the window's view, and cumulative totals kept while someone reads
//! them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::State;
use super::rules::Counts;

/// A point-in-time view of a breaker's metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// The state.
    pub state: State,
    /// Failed / buffered × 100, or `None` below the minimum number of calls.
    pub failure_rate: Option<f64>,
    /// Slow / buffered × 100, or `None` below the minimum number of calls.
    pub slow_call_rate: Option<f64>,
    /// Calls in the window.
    pub buffered_calls: u64,
    /// Failed calls in the window.
    pub failed_calls: u64,
    /// Successful calls in the window (slow ones included).
    pub successful_calls: u64,
    /// Slow calls in the window.
    pub slow_calls: u64,
    /// Slow successful calls in the window.
    pub slow_successful_calls: u64,
    /// Slow failed calls in the window.
    pub slow_failed_calls: u64,
    /// Calls rejected since the state was entered (CLOSED's count carries into OPEN).
    pub not_permitted_calls: u64,
}

impl MetricsSnapshot {
    pub(crate) fn new(state: State, counts: Counts, minimum: u32, not_permitted: u64) -> Self {
        let rates = counts.rates(minimum);
        Self {
            state,
            failure_rate: rates.failure,
            slow_call_rate: rates.slow,
            buffered_calls: counts.calls,
            failed_calls: counts.failures,
            successful_calls: counts.calls - counts.failures,
            slow_calls: counts.slow,
            slow_successful_calls: counts.slow - counts.slow_failures,
            slow_failed_calls: counts.slow_failures,
            not_permitted_calls: not_permitted,
        }
    }
}

/// Cumulative call counts of a breaker, counted from the first time someone asked for them
/// ([`CircuitBreaker::call_totals`](super::CircuitBreaker::call_totals), or the `metrics`
/// feature's registry output): a dashboard derives calls per second from two of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallTotals {
    /// Calls recorded as successes.
    pub successful: u64,
    /// Calls recorded as failures.
    pub failed: u64,
    /// Calls whose result was ignored.
    pub ignored: u64,
    /// Calls the breaker rejected.
    pub not_permitted: u64,
}

/// Cumulative call counts since the breaker was created, kept only while someone reads them
/// (metrics): counting costs an atomic add per call.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) tracking: AtomicBool,
    pub(crate) successful: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) ignored: AtomicU64,
    pub(crate) not_permitted: AtomicU64,
}

impl Totals {
    pub(crate) fn read(&self) -> CallTotals {
        CallTotals {
            successful: self.successful.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            ignored: self.ignored.load(Ordering::Relaxed),
            not_permitted: self.not_permitted.load(Ordering::Relaxed),
        }
    }

    #[inline]
    pub(crate) fn count(&self, counter: &AtomicU64) {
        if self.tracking.load(Ordering::Relaxed) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

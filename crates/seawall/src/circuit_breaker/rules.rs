//! The breaker's rules as pure functions: no runtime, no clock, no atomics.
//!
//! The decisions ([`Counts::rates`], [`exceeded`], [`is_slow`], [`transition_allowed`]) are
//! taken by the lock-free engine (`engine.rs`) and by the test-only reference model
//! (`model.rs`), a plainly written single-threaded breaker. The model-based tests run random
//! sequences of calls, results, clock steps and manual transitions through both and require
//! identical states and metrics.

use std::fmt;
use std::time::Duration;

use super::TransitionReason;
use super::config::CircuitBreakerConfig;

/// The states of a circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls pass and are recorded; the breaker opens when a rate reaches its threshold.
    Closed,
    /// Calls are rejected until the wait is over.
    Open,
    /// A limited number of probe calls pass; their results close or reopen the breaker.
    HalfOpen,
    /// Every call passes; nothing is recorded.
    Disabled,
    /// Every call is rejected until a manual transition.
    ForcedOpen,
    /// Every call passes and is recorded; threshold breaches are announced, never acted on.
    MetricsOnly,
}

impl State {
    /// All states, in Resilience4j's order.
    pub const ALL: [Self; 6] = [
        Self::Closed,
        Self::Open,
        Self::HalfOpen,
        Self::Disabled,
        Self::ForcedOpen,
        Self::MetricsOnly,
    ];

    /// Resilience4j's name: `CLOSED`, `OPEN`, `HALF_OPEN`, `DISABLED`, `FORCED_OPEN`,
    /// `METRICS_ONLY`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "CLOSED",
            Self::Open => "OPEN",
            Self::HalfOpen => "HALF_OPEN",
            Self::Disabled => "DISABLED",
            Self::ForcedOpen => "FORCED_OPEN",
            Self::MetricsOnly => "METRICS_ONLY",
        }
    }

    /// The lowercase label used for metrics: `closed`, `open`, `half_open`, …
    pub const fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::Disabled => "disabled",
            Self::ForcedOpen => "forced_open",
            Self::MetricsOnly => "metrics_only",
        }
    }

    /// Whether calls are let through without a limit in this state.
    pub const fn permits_all(self) -> bool {
        matches!(self, Self::Closed | Self::Disabled | Self::MetricsOnly)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Whether Resilience4j's transition table allows `from → to`. Same-state transitions are
/// allowed (and silent).
///
/// | from \ to | CLOSED | OPEN | HALF_OPEN | DISABLED | FORCED_OPEN | METRICS_ONLY |
/// |---|---|---|---|---|---|---|
/// | CLOSED | self | yes | **no** | yes | yes | yes |
/// | OPEN | yes | self | yes | yes | yes | yes |
/// | HALF_OPEN | yes | yes | self | yes | yes | yes |
/// | FORCED_OPEN | yes | yes | yes | yes | self | yes |
/// | DISABLED | yes | yes | yes | self | yes | yes |
/// | METRICS_ONLY | yes | **no** | **no** | yes | yes | self |
pub(crate) const fn transition_allowed(from: State, to: State) -> bool {
    !matches!(
        (from, to),
        (State::Closed, State::HalfOpen)
            | (State::MetricsOnly, State::Open)
            | (State::MetricsOnly, State::HalfOpen)
    )
}

/// How a call's result counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Counted as a success.
    Success,
    /// Counted as a failure.
    Failure,
    /// Not counted at all; a half-open probe slot is given back.
    Ignored,
}

/// A call is slow when it takes **strictly** longer than the threshold.
pub(crate) fn is_slow(elapsed: Duration, threshold: Option<Duration>) -> bool {
    threshold.is_some_and(|threshold| elapsed > threshold)
}

/// One recorded outcome, as stored in a window: bit 0 present, bit 1 failure, bit 2 slow.
pub(crate) const PRESENT: u8 = 1;
pub(crate) const FAILURE: u8 = 2;
pub(crate) const SLOW: u8 = 4;

pub(crate) const fn code(failure: bool, slow: bool) -> u8 {
    PRESENT | if failure { FAILURE } else { 0 } | if slow { SLOW } else { 0 }
}

/// Aggregated outcomes of a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Counts {
    /// Recorded calls.
    pub(crate) calls: u64,
    /// Of which failed.
    pub(crate) failures: u64,
    /// Of which slow.
    pub(crate) slow: u64,
    /// Of which both slow and failed.
    pub(crate) slow_failures: u64,
}

impl Counts {
    /// Both counts added (wrapping: a stripe's totals may be read mid-update).
    pub(crate) fn plus(&self, other: &Self) -> Self {
        Self {
            calls: self.calls.wrapping_add(other.calls),
            failures: self.failures.wrapping_add(other.failures),
            slow: self.slow.wrapping_add(other.slow),
            slow_failures: self.slow_failures.wrapping_add(other.slow_failures),
        }
    }

    #[cfg(test)]
    pub(crate) fn add(&mut self, code: u8) {
        let (calls, failures, slow, slow_failures) = split(code);
        self.calls += calls;
        self.failures += failures;
        self.slow += slow;
        self.slow_failures += slow_failures;
    }

    #[cfg(test)]
    pub(crate) fn remove(&mut self, code: u8) {
        let (calls, failures, slow, slow_failures) = split(code);
        self.calls -= calls;
        self.failures -= failures;
        self.slow -= slow;
        self.slow_failures -= slow_failures;
    }

    #[cfg(test)]
    pub(crate) fn merge(&mut self, other: &Self) {
        self.calls += other.calls;
        self.failures += other.failures;
        self.slow += other.slow;
        self.slow_failures += other.slow_failures;
    }

    #[cfg(test)]
    pub(crate) fn unmerge(&mut self, other: &Self) {
        self.calls -= other.calls;
        self.failures -= other.failures;
        self.slow -= other.slow;
        self.slow_failures -= other.slow_failures;
    }

    /// The failure and slow-call rates in percent, or `None` for both while fewer than
    /// `minimum` calls (or none at all) are recorded — undefined, not −1.
    pub(crate) fn rates(&self, minimum: u32) -> Rates {
        if self.calls == 0 || self.calls < u64::from(minimum) {
            return Rates::default();
        }
        let calls = self.calls as f64;
        Rates {
            failure: Some(self.failures as f64 * 100.0 / calls),
            slow: Some(self.slow as f64 * 100.0 / calls),
        }
    }
}

/// `(calls, failures, slow, slow_failures)` contributed by one outcome code.
pub(crate) const fn split(code: u8) -> (u64, u64, u64, u64) {
    let present = (code & PRESENT) as u64;
    let failure = ((code & FAILURE) >> 1) as u64;
    let slow = ((code & SLOW) >> 2) as u64;
    (present, failure, slow, failure & slow)
}

/// Failure and slow-call rates in percent; `None` below the minimum number of calls.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Rates {
    /// Failed calls / calls × 100.
    pub(crate) failure: Option<f64>,
    /// Slow calls / calls × 100.
    pub(crate) slow: Option<f64>,
}

/// The rates that reached their thresholds (a rate **at** its threshold counts).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Exceeded {
    /// The failure rate, if at or above its threshold.
    pub(crate) failure: Option<f64>,
    /// The slow-call rate, if at or above its threshold.
    pub(crate) slow: Option<f64>,
}

impl Exceeded {
    /// Whether any threshold was reached.
    pub(crate) fn any(&self) -> bool {
        self.failure.is_some() || self.slow.is_some()
    }

    /// Why the breaker opens.
    pub(crate) fn reason(&self) -> TransitionReason {
        match (self.failure, self.slow) {
            (Some(_), Some(_)) => TransitionReason::FailureAndSlowCallRateExceeded,
            (None, Some(_)) => TransitionReason::SlowCallRateExceeded,
            _ => TransitionReason::FailureRateExceeded,
        }
    }
}

/// Compares rates with the configured thresholds.
pub(crate) fn exceeded(rates: Rates, config: &CircuitBreakerConfig) -> Exceeded {
    Exceeded {
        failure: rates
            .failure
            .filter(|rate| *rate >= config.failure_rate_threshold),
        slow: rates
            .slow
            .filter(|rate| *rate >= config.slow_call_rate_threshold),
    }
}

/// The permission to make one call, tagged with the state generation that granted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    generation: u64,
}

impl Ticket {
    pub(crate) const fn from_generation(generation: u64) -> Self {
        Self { generation }
    }

    /// The generation that granted the call.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

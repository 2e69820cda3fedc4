//! What a circuit breaker reports.

use std::sync::Arc;
use std::time::Duration;

use super::State;
use crate::event::Event;

/// Why a breaker changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransitionReason {
    /// The failure rate reached its threshold.
    FailureRateExceeded,
    /// The slow-call rate reached its threshold.
    SlowCallRateExceeded,
    /// Both rates reached their thresholds.
    FailureAndSlowCallRateExceeded,
    /// The open wait was over.
    OpenWaitElapsed,
    /// The half-open probes' rates were below the thresholds.
    ProbesSucceeded,
    /// The half-open probes' rates reached a threshold.
    ProbesFailed,
    /// Half-open lasted longer than its maximum wait.
    HalfOpenMaxWaitElapsed,
    /// A manual transition.
    Manual,
    /// A reset.
    Reset,
}

/// What a circuit breaker reports. Per-call events ([`Success`](Self::Success),
/// [`Error`](Self::Error), [`Ignored`](Self::Ignored)) are emitted only when asked for
/// ([`CircuitBreakerBuilder::per_call_events`](super::CircuitBreakerBuilder::per_call_events)).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CircuitBreakerEvent {
    /// The breaker changed state.
    StateTransition {
        /// The breaker's name.
        name: Arc<str>,
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
        /// Why.
        reason: TransitionReason,
    },
    /// The failure rate reached its threshold (in CLOSED before opening; once per episode in
    /// METRICS_ONLY).
    FailureRateExceeded {
        /// The breaker's name.
        name: Arc<str>,
        /// The rate, in percent.
        rate: f64,
    },
    /// The slow-call rate reached its threshold.
    SlowCallRateExceeded {
        /// The breaker's name.
        name: Arc<str>,
        /// The rate, in percent.
        rate: f64,
    },
    /// A call was rejected (not emitted in FORCED_OPEN, as in Resilience4j).
    CallNotPermitted {
        /// The breaker's name.
        name: Arc<str>,
        /// The rejecting state.
        state: State,
    },
    /// The breaker was reset.
    Reset {
        /// The breaker's name.
        name: Arc<str>,
    },
    /// A call was recorded as a success.
    Success {
        /// The breaker's name.
        name: Arc<str>,
        /// How long it took, if measured.
        elapsed: Option<Duration>,
    },
    /// A call was recorded as a failure.
    Error {
        /// The breaker's name.
        name: Arc<str>,
        /// How long it took, if measured.
        elapsed: Option<Duration>,
    },
    /// A call's result was ignored.
    Ignored {
        /// The breaker's name.
        name: Arc<str>,
        /// How long it took, if measured.
        elapsed: Option<Duration>,
    },
}

impl Event for CircuitBreakerEvent {
    #[cfg(feature = "tracing")]
    fn trace(&self) {
        match self {
            Self::StateTransition {
                name,
                from,
                to,
                reason,
            } => tracing::warn!(
                target: "seawall::circuit_breaker",
                name = %name, from = from.as_str(), to = to.as_str(), reason = ?reason,
                "circuit breaker state changed"
            ),
            Self::FailureRateExceeded { name, rate } => tracing::info!(
                target: "seawall::circuit_breaker",
                name = %name, rate,
                "failure rate exceeded"
            ),
            Self::SlowCallRateExceeded { name, rate } => tracing::info!(
                target: "seawall::circuit_breaker",
                name = %name, rate,
                "slow-call rate exceeded"
            ),
            Self::Reset { name } => tracing::info!(
                target: "seawall::circuit_breaker",
                name = %name,
                "circuit breaker reset"
            ),
            // Per call: too frequent to log by default; listeners see them.
            Self::CallNotPermitted { .. }
            | Self::Success { .. }
            | Self::Error { .. }
            | Self::Ignored { .. } => {}
        }
    }
}

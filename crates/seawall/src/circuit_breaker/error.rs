//! The circuit breaker's errors.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::State;

/// A circuit breaker did not permit the call; the operation was not started.
#[derive(Clone, PartialEq, Eq)]
pub struct CircuitOpen {
    name: Arc<str>,
    state: State,
    retry_after: Option<Duration>,
}

impl CircuitOpen {
    /// A marker for the breaker `name`, rejecting in `state`; `retry_after` is the rest of its
    /// open wait, if known.
    pub fn new(name: Arc<str>, state: State, retry_after: Option<Duration>) -> Self {
        Self {
            name,
            state,
            retry_after,
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state that rejected the call: OPEN, FORCED_OPEN, or HALF_OPEN with every probe
    /// slot taken.
    pub fn state(&self) -> State {
        self.state
    }

    /// The rest of the breaker's open wait, if known.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Debug for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitOpen")
            .field("name", &self.name)
            .field("state", &self.state)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker '{}' is {} and does not permit further calls",
            self.name, self.state
        )
    }
}

impl std::error::Error for CircuitOpen {}

/// A manual transition that Resilience4j's transition table forbids (e.g. CLOSED →
/// HALF_OPEN). The state did not change.
#[derive(Clone, PartialEq, Eq)]
pub struct IllegalTransition {
    name: Arc<str>,
    from: State,
    to: State,
}

impl IllegalTransition {
    pub(crate) fn new(name: Arc<str>, from: State, to: State) -> Self {
        Self { name, from, to }
    }

    /// The state the breaker is in.
    pub fn from(&self) -> State {
        self.from
    }

    /// The state that was asked for.
    pub fn to(&self) -> State {
        self.to
    }
}

impl fmt::Debug for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IllegalTransition")
            .field("name", &self.name)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker '{}' tried an illegal state transition from {} to {}",
            self.name, self.from, self.to
        )
    }
}

impl std::error::Error for IllegalTransition {}

//! The circuit breaker's errors.

use std::fmt;
use std::sync::Arc;

use super::State;

/// A circuit breaker did not permit the call; the operation was not started.
///
/// A zero-sized marker, as tower's are: a tower layer rejecting a call while the breaker is
/// open boxes it into a `BoxError` without allocating (`err.is::<CircuitOpen>()`). Through the
/// native API the [`Error`](crate::Error) around it also tells which breaker rejected the call
/// ([`Error::rejected_by`](crate::Error::rejected_by)) and how long its open wait still lasts
/// ([`Error::retry_after`](crate::Error::retry_after)); a breaker answers the same with
/// [`CircuitBreaker::retry_after`](super::CircuitBreaker::retry_after).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CircuitOpen {
    _private: (),
}

impl CircuitOpen {
    pub(crate) const fn new() -> Self {
        Self { _private: () }
    }
}

impl fmt::Debug for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CircuitOpen")
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("circuit breaker is open and does not permit further calls")
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

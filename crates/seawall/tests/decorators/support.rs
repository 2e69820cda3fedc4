//! Shared test helpers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use seawall::clock::{Clock, Instant};

/// A test error with a retryability flag and an optional `Retry-After` hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) transient: bool,
    pub(crate) retry_after: Option<Duration>,
}

impl Failure {
    pub(crate) fn transient() -> Self {
        Self {
            transient: true,
            retry_after: None,
        }
    }

    pub(crate) fn permanent() -> Self {
        Self {
            transient: false,
            retry_after: None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.transient {
            f.write_str("transient failure")
        } else {
            f.write_str("permanent failure")
        }
    }
}

impl std::error::Error for Failure {}

/// Counts how many of its values have been dropped.
#[derive(Clone, Default)]
pub(crate) struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    pub(crate) fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }

    pub(crate) fn dropped(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

pub(crate) struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Records when each attempt of an operation started, on tokio's (paused) clock.
#[derive(Clone)]
pub(crate) struct AttemptLog {
    clock: Clock,
    origin: Instant,
    starts: Arc<std::sync::Mutex<Vec<Duration>>>,
}

impl AttemptLog {
    pub(crate) fn new() -> Self {
        let clock = Clock::tokio();
        let origin = clock.now();
        Self {
            clock,
            origin,
            starts: Arc::default(),
        }
    }

    pub(crate) fn record(&self) -> usize {
        let mut starts = self.starts.lock().unwrap();
        starts.push(self.clock.now() - self.origin);
        starts.len()
    }

    pub(crate) fn starts(&self) -> Vec<Duration> {
        self.starts.lock().unwrap().clone()
    }

    /// The waits between consecutive attempts.
    pub(crate) fn gaps(&self) -> Vec<Duration> {
        self.starts().windows(2).map(|w| w[1] - w[0]).collect()
    }

    pub(crate) fn count(&self) -> usize {
        self.starts.lock().unwrap().len()
    }
}

pub(crate) fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// A breaker's rejection, as a user gets one: from a forced-open breaker.
pub(crate) fn circuit_open() -> seawall::error::CircuitOpen {
    let breaker = seawall::CircuitBreaker::builder()
        .name("pg")
        .build()
        .unwrap();
    breaker.transition_to_forced_open().unwrap();
    breaker.try_acquire().unwrap_err()
}

//! The one way to build a [`CircuitBreaker`].

use std::sync::Arc;
use std::time::Duration;

use super::engine::Shared;
use super::{CircuitBreaker, CircuitBreakerConfig, OpenWait, SlidingWindow, State};
use crate::clock::Clock;
use crate::config::ConfigError;
use crate::retry::{Backoff, RandomSource, SplitMix64};

/// Configures a [`CircuitBreaker`]: its [`CircuitBreakerConfig`] (start from one with
/// [`config`](Self::config), or set the values one by one), its name, clock and random source.
/// [`build`](Self::build) validates everything once.
///
/// ```
/// use std::time::Duration;
/// use seawall::circuit_breaker::{CircuitBreaker, SlidingWindow};
///
/// let breaker = CircuitBreaker::builder()
///     .name("pg")
///     .sliding_window(SlidingWindow::count(20))
///     .minimum_number_of_calls(10)
///     .failure_rate_threshold(50.0)
///     .slow_call_duration_threshold(Duration::from_secs(2))
///     .wait_in_open(Duration::from_secs(10))
///     .build()
///     .unwrap();
/// assert_eq!(breaker.config().minimum_number_of_calls, 10);
///
/// let err = CircuitBreaker::builder().failure_rate_threshold(0.0).build().unwrap_err();
/// assert_eq!(err.key(), "failure_rate_threshold");
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until built"]
pub struct CircuitBreakerBuilder {
    name: Arc<str>,
    config: CircuitBreakerConfig,
    clock: Option<Clock>,
    random: Option<Arc<dyn RandomSource>>,
    per_call_events: bool,
}

impl CircuitBreakerBuilder {
    pub(crate) fn new() -> Self {
        Self {
            name: Arc::from("circuit-breaker"),
            config: CircuitBreakerConfig::default(),
            clock: None,
            random: None,
            per_call_events: false,
        }
    }

    /// The instance name (default `"circuit-breaker"`), in events, errors and metrics.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Starts from a whole configuration (the setters below change single values of it).
    pub fn config(mut self, config: CircuitBreakerConfig) -> Self {
        self.config = config;
        self
    }

    /// Opens when the failure rate is at or above this percentage (default 50; in (0, 100]).
    pub fn failure_rate_threshold(mut self, percent: f64) -> Self {
        self.config.failure_rate_threshold = percent;
        self
    }

    /// Opens when the slow-call rate is at or above this percentage (default 100; in (0, 100]).
    pub fn slow_call_rate_threshold(mut self, percent: f64) -> Self {
        self.config.slow_call_rate_threshold = percent;
        self
    }

    /// A call is slow when it takes strictly longer than this (default 60 s; ≥ 1 ns).
    pub fn slow_call_duration_threshold(mut self, threshold: Duration) -> Self {
        self.config.slow_call_duration_threshold = Some(threshold);
        self
    }

    /// Turns slow-call tracking off: no call is ever slow and, with a count window, the
    /// breaker reads no clock on the happy path.
    pub fn disable_slow_call_tracking(mut self) -> Self {
        self.config.slow_call_duration_threshold = None;
        self
    }

    /// How many probes half-open lets through (default 10; ≥ 1).
    pub fn permitted_calls_in_half_open(mut self, calls: u32) -> Self {
        self.config.permitted_calls_in_half_open = calls;
        self
    }

    /// How long half-open may last before moving to `then` ([`State::Open`] or
    /// [`State::Closed`]; default: no limit, then OPEN).
    pub fn max_wait_in_half_open(mut self, max_wait: Duration, then: State) -> Self {
        self.config.max_wait_in_half_open = max_wait;
        self.config.state_after_half_open_wait = then;
        self
    }

    /// The closed state's window (default: the last 100 calls).
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.config.sliding_window = window;
        self
    }

    /// How many calls must be recorded before rates are computed (default 100; ≥ 1). A count
    /// window clamps it to its size.
    pub fn minimum_number_of_calls(mut self, calls: u32) -> Self {
        self.config.minimum_number_of_calls = calls;
        self
    }

    /// A fixed wait in the open state (default 60 s; ≥ 1 ms).
    pub fn wait_in_open(mut self, wait: Duration) -> Self {
        self.config.open_wait = OpenWait::Fixed(wait);
        self
    }

    /// A wait in the open state that grows with consecutive openings.
    pub fn wait_in_open_backoff(mut self, backoff: Backoff) -> Self {
        self.config.open_wait = OpenWait::Backoff(backoff);
        self
    }

    /// Whether the open state ends by itself when its wait is over, without waiting for a
    /// call (default false).
    pub fn automatic_half_open(mut self, automatic: bool) -> Self {
        self.config.automatic_half_open = automatic;
        self
    }

    /// The state a new breaker starts in (default closed).
    pub fn initial_state(mut self, state: State) -> Self {
        self.config.initial_state = state;
        self
    }

    /// The clock (default: tokio's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The random source for a jittered open wait (default: seeded from entropy).
    pub fn random(mut self, random: impl RandomSource + 'static) -> Self {
        self.random = Some(Arc::new(random));
        self
    }

    /// Also emit an event for every recorded call (success, error, ignored). Off by default:
    /// events are for state changes.
    pub fn per_call_events(mut self, on: bool) -> Self {
        self.per_call_events = on;
        self
    }

    /// The configuration set so far, validated, without building a breaker: for a registry's
    /// [`add_config`](crate::registry::Registry::add_config) or a live
    /// [`reconfigure`](CircuitBreaker::reconfigure). The name, clock and random source are
    /// not part of a configuration.
    ///
    /// # Errors
    ///
    /// The first configuration rule broken, naming the key.
    pub fn build_config(self) -> Result<CircuitBreakerConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }

    /// Validates and builds the breaker.
    ///
    /// # Errors
    ///
    /// The first configuration rule broken, naming the key.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        self.config.validate()?;
        let random = self
            .random
            .unwrap_or_else(|| Arc::new(SplitMix64::from_entropy()));
        Ok(CircuitBreaker::from_shared(Shared::new(
            self.name,
            self.config,
            self.clock.unwrap_or_default(),
            random,
            self.per_call_events,
        )))
    }
}

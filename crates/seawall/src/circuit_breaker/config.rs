//! The circuit breaker's configuration: Resilience4j's options and defaults, validated once.

use std::fmt;
use std::time::Duration;

use super::State;
use crate::config::ConfigError;
use crate::retry::Backoff;

/// How the breaker remembers recent calls in the closed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `n` calls: the oldest outcome leaves as a new one enters.
    Count(u32),
    /// The calls of the last `size`, in buckets of `bucket` (the window holds the current
    /// partial bucket and the previous whole ones, so it covers between `size - bucket` and
    /// `size` of history).
    Time {
        /// The length of the window.
        size: Duration,
        /// The width of one bucket (the window's resolution).
        bucket: Duration,
    },
}

impl SlidingWindow {
    /// The last `n` calls.
    pub const fn count(n: u32) -> Self {
        Self::Count(n)
    }

    /// The calls of the last `size`, with one-second buckets (Resilience4j's resolution).
    pub const fn time(size: Duration) -> Self {
        Self::Time {
            size,
            bucket: Duration::from_secs(1),
        }
    }

    /// The calls of the last `size`, in buckets of `bucket` (e.g. 100 ms for a finer window).
    pub const fn time_with_buckets(size: Duration, bucket: Duration) -> Self {
        Self::Time { size, bucket }
    }

    /// The number of buckets of a time window.
    pub(crate) fn bucket_count(size: Duration, bucket: Duration) -> u64 {
        let size = size.as_nanos();
        let bucket = bucket.as_nanos().max(1);
        u64::try_from(size.div_ceil(bucket)).unwrap_or(u64::MAX)
    }
}

impl Default for SlidingWindow {
    /// The last 100 calls.
    fn default() -> Self {
        Self::Count(100)
    }
}

/// How long the breaker stays open before it lets probes through.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OpenWait {
    /// Always the same wait.
    Fixed(Duration),
    /// A wait that grows with the number of consecutive openings (1 for the first opening
    /// after closed, 2 after a failed half-open trial, …), using the retry backoff types, e.g.
    /// `Backoff::exponential(10s).max(5min).full_jitter()`.
    Backoff(Backoff),
}

impl OpenWait {
    /// The wait for the `attempt`-th consecutive opening (1-based).
    pub(crate) fn wait(&self, attempt: u32, random: &dyn crate::retry::RandomSource) -> Duration {
        match self {
            Self::Fixed(wait) => *wait,
            Self::Backoff(backoff) => backoff.delay(attempt.max(1), None, random),
        }
    }
}

/// A validated circuit-breaker configuration. Build one with [`CircuitBreakerConfig::builder`].
///
/// The defaults are Resilience4j's: failure rate 50 %, slow-call rate 100 %, slow calls over
/// 60 s, 10 probes in half-open, no maximum wait in half-open (then OPEN), a count window of
/// 100 calls, a minimum of 100 calls, 60 s open, no automatic open → half-open, starting closed.
#[derive(Clone, PartialEq)]
pub struct CircuitBreakerConfig {
    pub(crate) failure_rate_threshold: f64,
    pub(crate) slow_call_rate_threshold: f64,
    pub(crate) slow_call_duration_threshold: Option<Duration>,
    pub(crate) permitted_calls_in_half_open: u32,
    pub(crate) max_wait_in_half_open: Duration,
    pub(crate) state_after_half_open_wait: State,
    pub(crate) sliding_window: SlidingWindow,
    pub(crate) minimum_number_of_calls: u32,
    pub(crate) open_wait: OpenWait,
    pub(crate) automatic_half_open: bool,
    pub(crate) initial_state: State,
}

impl CircuitBreakerConfig {
    /// Starts from Resilience4j's defaults.
    pub fn builder() -> CircuitBreakerConfigBuilder {
        CircuitBreakerConfigBuilder {
            config: Self::default_unchecked(),
        }
    }

    /// Starts from this configuration (for a variation of it).
    pub fn to_builder(&self) -> CircuitBreakerConfigBuilder {
        CircuitBreakerConfigBuilder {
            config: self.clone(),
        }
    }

    fn default_unchecked() -> Self {
        Self {
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: Some(Duration::from_secs(60)),
            permitted_calls_in_half_open: 10,
            max_wait_in_half_open: Duration::ZERO,
            state_after_half_open_wait: State::Open,
            sliding_window: SlidingWindow::Count(100),
            minimum_number_of_calls: 100,
            open_wait: OpenWait::Fixed(Duration::from_secs(60)),
            automatic_half_open: false,
            initial_state: State::Closed,
        }
    }

    /// The failure rate (percent) at or above which the breaker opens.
    pub fn failure_rate_threshold(&self) -> f64 {
        self.failure_rate_threshold
    }

    /// The slow-call rate (percent) at or above which the breaker opens.
    pub fn slow_call_rate_threshold(&self) -> f64 {
        self.slow_call_rate_threshold
    }

    /// A call is slow when it takes strictly longer than this; `None` when slow-call tracking
    /// is off (then the breaker reads no clock for count windows).
    pub fn slow_call_duration_threshold(&self) -> Option<Duration> {
        self.slow_call_duration_threshold
    }

    /// How many probes the half-open state lets through.
    pub fn permitted_calls_in_half_open(&self) -> u32 {
        self.permitted_calls_in_half_open
    }

    /// How long half-open may last before it gives up (zero: no limit).
    pub fn max_wait_in_half_open(&self) -> Duration {
        self.max_wait_in_half_open
    }

    /// Where half-open goes when its maximum wait expires (open or closed).
    pub fn state_after_half_open_wait(&self) -> State {
        self.state_after_half_open_wait
    }

    /// The closed state's sliding window.
    pub fn sliding_window(&self) -> SlidingWindow {
        self.sliding_window
    }

    /// The configured minimum number of calls before rates are computed.
    pub fn minimum_number_of_calls(&self) -> u32 {
        self.minimum_number_of_calls
    }

    /// The minimum actually applied in the closed state: a count window clamps it to its size.
    pub fn effective_minimum_number_of_calls(&self) -> u32 {
        match self.sliding_window {
            SlidingWindow::Count(size) => self.minimum_number_of_calls.min(size),
            SlidingWindow::Time { .. } => self.minimum_number_of_calls,
        }
    }

    /// How many probe results half-open waits for before deciding: `min(minimum, permitted)`.
    pub fn half_open_decision_calls(&self) -> u32 {
        self.minimum_number_of_calls
            .min(self.permitted_calls_in_half_open)
    }

    /// How long the breaker stays open.
    pub fn open_wait(&self) -> OpenWait {
        self.open_wait
    }

    /// Whether a timer moves open to half-open without waiting for a call.
    pub fn automatic_half_open(&self) -> bool {
        self.automatic_half_open
    }

    /// The state a new breaker starts in.
    pub fn initial_state(&self) -> State {
        self.initial_state
    }

    /// Checks every rule, naming the key and the rule broken.
    ///
    /// # Errors
    ///
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_rate("failure_rate_threshold", self.failure_rate_threshold)?;
        check_rate("slow_call_rate_threshold", self.slow_call_rate_threshold)?;
        if self.slow_call_duration_threshold == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "slow_call_duration_threshold",
                "must be >= 1ns, got 0ns",
            ));
        }
        if self.permitted_calls_in_half_open == 0 {
            return Err(ConfigError::new(
                "permitted_number_of_calls_in_half_open_state",
                "must be >= 1, got 0",
            ));
        }
        if !matches!(self.state_after_half_open_wait, State::Open | State::Closed) {
            return Err(ConfigError::new(
                "transition_to_state_after_wait_duration",
                format!(
                    "must be OPEN or CLOSED, got {}",
                    self.state_after_half_open_wait
                ),
            ));
        }
        match self.sliding_window {
            SlidingWindow::Count(0) => {
                return Err(ConfigError::new(
                    "sliding_window_size",
                    "must be >= 1, got 0",
                ));
            }
            SlidingWindow::Count(size) if size > MAX_COUNT_WINDOW => {
                return Err(ConfigError::new(
                    "sliding_window_size",
                    format!("must be <= {MAX_COUNT_WINDOW}, got {size}"),
                ));
            }
            SlidingWindow::Count(_) => {}
            SlidingWindow::Time { size, bucket } => {
                if bucket.is_zero() {
                    return Err(ConfigError::new(
                        "sliding_window_bucket",
                        "must be > 0, got 0ns",
                    ));
                }
                if size < bucket {
                    return Err(ConfigError::new(
                        "sliding_window_size",
                        format!("must be >= the bucket width {bucket:?}, got {size:?}"),
                    ));
                }
                let buckets = SlidingWindow::bucket_count(size, bucket);
                if buckets > MAX_TIME_BUCKETS {
                    return Err(ConfigError::new(
                        "sliding_window_size",
                        format!(
                            "must span at most {MAX_TIME_BUCKETS} buckets, got {buckets} ({size:?} / {bucket:?})"
                        ),
                    ));
                }
            }
        }
        if self.minimum_number_of_calls == 0 {
            return Err(ConfigError::new(
                "minimum_number_of_calls",
                "must be >= 1, got 0",
            ));
        }
        match self.open_wait {
            OpenWait::Fixed(wait) if wait < Duration::from_millis(1) => {
                return Err(ConfigError::new(
                    "wait_duration_in_open_state",
                    format!("must be >= 1ms, got {wait:?}"),
                ));
            }
            OpenWait::Fixed(_) => {}
            OpenWait::Backoff(backoff) => {
                backoff
                    .validate()
                    .map_err(|err| err.under("wait_duration_in_open_state"))?;
            }
        }
        Ok(())
    }
}

/// The largest count window (outcomes are one byte each).
pub const MAX_COUNT_WINDOW: u32 = 1 << 24;
/// The most buckets a time window may have.
pub const MAX_TIME_BUCKETS: u64 = 1 << 16;

fn check_rate(key: &'static str, rate: f64) -> Result<(), ConfigError> {
    if rate.is_finite() && rate > 0.0 && rate <= 100.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be in (0, 100], got {rate}"),
        ))
    }
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self::default_unchecked()
    }
}

impl fmt::Debug for CircuitBreakerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerConfig")
            .field("failure_rate_threshold", &self.failure_rate_threshold)
            .field("slow_call_rate_threshold", &self.slow_call_rate_threshold)
            .field(
                "slow_call_duration_threshold",
                &self.slow_call_duration_threshold,
            )
            .field(
                "permitted_calls_in_half_open",
                &self.permitted_calls_in_half_open,
            )
            .field("max_wait_in_half_open", &self.max_wait_in_half_open)
            .field(
                "state_after_half_open_wait",
                &self.state_after_half_open_wait,
            )
            .field("sliding_window", &self.sliding_window)
            .field("minimum_number_of_calls", &self.minimum_number_of_calls)
            .field("open_wait", &self.open_wait)
            .field("automatic_half_open", &self.automatic_half_open)
            .field("initial_state", &self.initial_state)
            .finish()
    }
}

/// Builds a [`CircuitBreakerConfig`]; [`build`](Self::build) validates every value.
#[derive(Clone, Debug)]
pub struct CircuitBreakerConfigBuilder {
    config: CircuitBreakerConfig,
}

impl From<CircuitBreakerConfig> for CircuitBreakerConfigBuilder {
    /// Starts from an existing configuration.
    fn from(config: CircuitBreakerConfig) -> Self {
        Self { config }
    }
}

impl CircuitBreakerConfigBuilder {
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
    /// breaker reads no clock on the happy path. (A seawall extension: Resilience4j always
    /// measures calls.)
    pub fn disable_slow_call_tracking(mut self) -> Self {
        self.config.slow_call_duration_threshold = None;
        self
    }

    /// How many probes half-open lets through (default 10; ≥ 1).
    pub fn permitted_calls_in_half_open(mut self, calls: u32) -> Self {
        self.config.permitted_calls_in_half_open = calls;
        self
    }

    /// How long half-open may last before moving to `then` (default: no limit, then OPEN).
    /// `then` must be [`State::Open`] or [`State::Closed`].
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

    /// Whether a timer moves open to half-open when the wait is over, without waiting for a
    /// call (default false). Needs a tokio runtime when the breaker opens.
    pub fn automatic_half_open(mut self, automatic: bool) -> Self {
        self.config.automatic_half_open = automatic;
        self
    }

    /// The state a new breaker starts in (default closed).
    pub fn initial_state(mut self, state: State) -> Self {
        self.config.initial_state = state;
        self
    }

    /// Validates and returns the configuration.
    ///
    /// # Errors
    ///
    /// The first rule broken, naming the key.
    pub fn build(self) -> Result<CircuitBreakerConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

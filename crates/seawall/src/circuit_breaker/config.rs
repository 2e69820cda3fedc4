//! The circuit breaker's configuration: Resilience4j's options and defaults, as plain data.

use std::time::Duration;

use super::State;
use crate::config::{ConfigError, check_duration};
use crate::retry::{Backoff, Jitter};

/// How the breaker remembers recent calls in the closed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `n` calls: the oldest outcome leaves as a new one enters.
    Count(u32),
    /// Approximately the last `n` calls, recorded by threads at once without contention:
    /// each thread records into its stripe's own ring of about `n / S` calls (`S` is the
    /// available parallelism, a power of two, at most 8). Once every stripe is full the
    /// window holds `n` calls, and its failures (and slow calls) differ from those of the
    /// exact last `n` calls by at most the stripes' **skew** — the number of the last `n`
    /// calls by which busier stripes exceed their `n / S` share — so the rates by at most
    /// `100 · skew / n` points. Opt in where many threads share one breaker and an exact
    /// order of the last `n` calls matters less than throughput; [`Count`](Self::Count)
    /// stays the default.
    StripedCount(u32),
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

    /// Approximately the last `n` calls, striped per thread (see
    /// [`StripedCount`](Self::StripedCount)).
    ///
    /// # Examples
    ///
    /// ```
    /// use seawall::circuit_breaker::{CircuitBreaker, SlidingWindow};
    ///
    /// // One breaker in front of a dependency that every worker thread calls.
    /// let breaker = CircuitBreaker::builder()
    ///     .sliding_window(SlidingWindow::striped_count(200))
    ///     .minimum_number_of_calls(100)
    ///     .build()?;
    /// assert_eq!(breaker.config().sliding_window, SlidingWindow::StripedCount(200));
    /// # Ok::<(), seawall::config::ConfigError>(())
    /// ```
    pub const fn striped_count(n: u32) -> Self {
        Self::StripedCount(n)
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

impl Default for OpenWait {
    /// 60 s, Resilience4j's default.
    fn default() -> Self {
        Self::Fixed(Duration::from_secs(60))
    }
}

/// A circuit breaker's settings: what a registry stores, a configuration document describes
/// and a live reconfiguration replaces.
///
/// Plain data: change the fields you need from [`Default`], which holds Resilience4j's
/// defaults (failure rate 50 %, slow-call rate 100 %, slow calls over 60 s, 10 probes in
/// half-open, no maximum wait in half-open, a count window of 100 calls, a minimum of 100
/// calls, 60 s open, no automatic open → half-open, starting closed). Values are checked by
/// [`validate`](Self::validate), which every constructor and reconfiguration calls; its errors
/// name the key as a configuration document spells it (the table below).
///
/// ```
/// use std::time::Duration;
/// use seawall::circuit_breaker::{CircuitBreakerConfig, OpenWait, SlidingWindow};
///
/// let mut config = CircuitBreakerConfig::default();
/// config.sliding_window = SlidingWindow::count(20);
/// config.minimum_number_of_calls = 10;
/// config.open_wait = OpenWait::Fixed(Duration::from_secs(10));
/// config.validate().unwrap();
///
/// config.failure_rate_threshold = 120.0;
/// let err = config.validate().unwrap_err();
/// assert_eq!(err.to_string(), "failure_rate_threshold: must be in (0, 100], got 120");
/// ```
///
/// # In a document
///
/// With the `serde` feature the type reads and writes Resilience4j's keys (durations as
/// `"10s"`-style strings, or integers of milliseconds). Keys left out keep their defaults.
///
/// | field | document keys |
/// |---|---|
/// | `failure_rate_threshold` | `failure_rate_threshold` |
/// | `slow_call_rate_threshold` | `slow_call_rate_threshold` |
/// | `slow_call_duration_threshold` | `slow_call_duration_threshold`; `slow_call_tracking: false` for `None` |
/// | `permitted_calls_in_half_open` | `permitted_number_of_calls_in_half_open_state` |
/// | `max_wait_in_half_open` | `max_wait_duration_in_half_open_state` |
/// | `state_after_half_open_wait` | `transition_to_state_after_wait_duration` |
/// | `sliding_window` | `sliding_window_type` (`COUNT_BASED`, `COUNT_BASED_STRIPED`, `TIME_BASED`), `sliding_window_size` (calls, or seconds), `sliding_window_bucket` |
/// | `minimum_number_of_calls` | `minimum_number_of_calls` |
/// | `open_wait` | `wait_duration_in_open_state`, `enable_exponential_backoff`, `exponential_backoff_multiplier`, `exponential_max_wait_duration_in_open_state`, `wait_duration_in_open_state_jitter` |
/// | `automatic_half_open` | `automatic_transition_from_open_to_half_open_enabled` |
/// | `initial_state` | `initial_state` |
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CircuitBreakerConfig {
    /// Opens when the failure rate is at or above this percentage (default 50; in (0, 100]).
    pub failure_rate_threshold: f64,
    /// Opens when the slow-call rate is at or above this percentage (default 100; in
    /// (0, 100]).
    pub slow_call_rate_threshold: f64,
    /// A call is slow when it takes strictly longer than this (default 60 s). `None` turns
    /// slow-call tracking off: no call is slow and a count-window breaker reads no clock on the
    /// happy path (a seawall extension: Resilience4j always measures calls).
    pub slow_call_duration_threshold: Option<Duration>,
    /// How many probes half-open lets through (default 10; ≥ 1).
    pub permitted_calls_in_half_open: u32,
    /// How long half-open may last before moving to
    /// [`state_after_half_open_wait`](Self::state_after_half_open_wait) (default zero: no
    /// limit).
    pub max_wait_in_half_open: Duration,
    /// Where half-open goes when its maximum wait expires: [`State::Open`] (default) or
    /// [`State::Closed`].
    pub state_after_half_open_wait: State,
    /// The closed state's window (default: the last 100 calls).
    pub sliding_window: SlidingWindow,
    /// How many calls must be recorded before rates are computed (default 100; ≥ 1). A count
    /// window clamps it to its size.
    pub minimum_number_of_calls: u32,
    /// How long the breaker stays open (default a fixed 60 s).
    pub open_wait: OpenWait,
    /// Whether the open state ends by itself when its wait is over, without waiting for a
    /// call (default false). The move is decided from the clock whenever the breaker is asked
    /// for its state or for a permit, and announced on time by a timer where a tokio runtime
    /// exists.
    pub automatic_half_open: bool,
    /// The state a new breaker starts in (default closed).
    pub initial_state: State,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration_threshold: Some(Duration::from_secs(60)),
            permitted_calls_in_half_open: 10,
            max_wait_in_half_open: Duration::ZERO,
            state_after_half_open_wait: State::Open,
            sliding_window: SlidingWindow::Count(100),
            minimum_number_of_calls: 100,
            open_wait: OpenWait::default(),
            automatic_half_open: false,
            initial_state: State::Closed,
        }
    }
}

/// The largest count window (outcomes are two bits each, in a pair of rings).
pub const MAX_COUNT_WINDOW: u32 = 1 << 24;
/// The most buckets a time window may have.
pub const MAX_TIME_BUCKETS: u64 = 1 << 16;

#[cfg(test)]
impl CircuitBreakerConfig {
    /// A test's way to write a configuration: the breaker's builder, ending in
    /// `build_config`.
    pub(crate) fn builder() -> super::CircuitBreakerBuilder {
        super::CircuitBreakerBuilder::new()
    }

    /// A variation of this configuration, written with the builder.
    pub(crate) fn to_builder(&self) -> super::CircuitBreakerBuilder {
        super::CircuitBreakerBuilder::new().config(self.clone())
    }
}

impl CircuitBreakerConfig {
    /// The minimum actually applied in the closed state: a count window clamps it to its size.
    pub(crate) fn effective_minimum_number_of_calls(&self) -> u32 {
        match self.sliding_window {
            SlidingWindow::Count(size) | SlidingWindow::StripedCount(size) => {
                self.minimum_number_of_calls.min(size)
            }
            SlidingWindow::Time { .. } => self.minimum_number_of_calls,
        }
    }

    /// How many probe results half-open waits for before deciding: `min(minimum, permitted)`.
    pub(crate) fn half_open_decision_calls(&self) -> u32 {
        self.minimum_number_of_calls
            .min(self.permitted_calls_in_half_open)
    }

    /// The most memory this configuration's window can take, in bytes: one byte per call of a
    /// count window, 32 bytes per bucket of a time window. The window is allocated as it
    /// fills, up to this; a registry's
    /// [`BuildContext::memory_budget`](crate::registry::BuildContext::memory_budget) bounds the
    /// sum over its breakers.
    pub fn window_memory_bound(&self) -> usize {
        super::window::memory_bound(self.sliding_window)
    }

    /// Checks every rule, naming the key (as a document spells it) and the rule broken.
    ///
    /// # Errors
    ///
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_rate("failure_rate_threshold", self.failure_rate_threshold)?;
        check_rate("slow_call_rate_threshold", self.slow_call_rate_threshold)?;
        if let Some(threshold) = self.slow_call_duration_threshold {
            check_duration(
                "slow_call_duration_threshold",
                threshold,
                Duration::from_nanos(1),
            )?;
        }
        if self.permitted_calls_in_half_open == 0 {
            return Err(ConfigError::new(
                "permitted_number_of_calls_in_half_open_state",
                "must be >= 1, got 0",
            ));
        }
        check_duration(
            "max_wait_duration_in_half_open_state",
            self.max_wait_in_half_open,
            Duration::ZERO,
        )?;
        if !matches!(self.state_after_half_open_wait, State::Open | State::Closed) {
            return Err(ConfigError::new(
                "transition_to_state_after_wait_duration",
                format!(
                    "must be OPEN or CLOSED, got {}",
                    self.state_after_half_open_wait
                ),
            ));
        }
        validate_window(self.sliding_window)?;
        if self.minimum_number_of_calls == 0 {
            return Err(ConfigError::new(
                "minimum_number_of_calls",
                "must be >= 1, got 0",
            ));
        }
        match self.open_wait {
            OpenWait::Fixed(wait) => {
                check_duration(
                    "wait_duration_in_open_state",
                    wait,
                    Duration::from_millis(1),
                )?;
            }
            OpenWait::Backoff(backoff) => validate_open_backoff(&backoff)?,
        }
        Ok(())
    }
}

fn validate_window(window: SlidingWindow) -> Result<(), ConfigError> {
    match window {
        SlidingWindow::Count(0) | SlidingWindow::StripedCount(0) => Err(ConfigError::new(
            "sliding_window_size",
            "must be >= 1, got 0",
        )),
        SlidingWindow::Count(size) | SlidingWindow::StripedCount(size)
            if size > MAX_COUNT_WINDOW =>
        {
            Err(ConfigError::new(
                "sliding_window_size",
                format!("must be <= {MAX_COUNT_WINDOW}, got {size}"),
            ))
        }
        SlidingWindow::Count(_) | SlidingWindow::StripedCount(_) => Ok(()),
        SlidingWindow::Time { size, bucket } => {
            check_duration("sliding_window_bucket", bucket, Duration::from_nanos(1))?;
            check_duration("sliding_window_size", size, Duration::from_nanos(1))?;
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
            Ok(())
        }
    }
}

/// The open wait's backoff, with errors named by the document's keys.
fn validate_open_backoff(backoff: &Backoff) -> Result<(), ConfigError> {
    backoff.validate().map_err(|err| {
        let key = match err.key() {
            "multiplier" => "exponential_backoff_multiplier",
            "jitter" => "wait_duration_in_open_state_jitter",
            "max" => "exponential_max_wait_duration_in_open_state",
            _ => "wait_duration_in_open_state",
        };
        ConfigError::new(key, err.rule().to_owned())
    })?;
    if backoff.jitter_mode() == Jitter::None && backoff.base_delay(1) < Duration::from_millis(1) {
        return Err(ConfigError::new(
            "wait_duration_in_open_state",
            format!("must be >= 1ms, got {:?}", backoff.base_delay(1)),
        ));
    }
    Ok(())
}

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

#[cfg(feature = "serde")]
mod document {
    //! The document form: Resilience4j's flat keys, read into and written from the typed
    //! fields.

    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    use super::{CircuitBreakerConfig, OpenWait, SlidingWindow, State};
    use crate::config::ConfigError;
    use crate::config::serde::{duration, window_size};
    use crate::retry::{Backoff, Jitter, Progression};

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub(super) enum WindowType {
        CountBased,
        CountBasedStriped,
        TimeBased,
    }

    #[derive(Deserialize, Serialize)]
    #[serde(default, deny_unknown_fields)]
    pub(crate) struct Keys {
        failure_rate_threshold: f64,
        slow_call_rate_threshold: f64,
        slow_call_tracking: bool,
        #[serde(with = "duration")]
        slow_call_duration_threshold: Duration,
        permitted_number_of_calls_in_half_open_state: u32,
        #[serde(with = "duration")]
        max_wait_duration_in_half_open_state: Duration,
        transition_to_state_after_wait_duration: State,
        sliding_window_type: WindowType,
        #[serde(with = "window_size")]
        sliding_window_size: window_size::Size,
        #[serde(with = "duration")]
        sliding_window_bucket: Duration,
        minimum_number_of_calls: u32,
        #[serde(with = "duration")]
        wait_duration_in_open_state: Duration,
        enable_exponential_backoff: bool,
        exponential_backoff_multiplier: f64,
        #[serde(with = "duration::option", skip_serializing_if = "Option::is_none")]
        exponential_max_wait_duration_in_open_state: Option<Duration>,
        wait_duration_in_open_state_jitter: Jitter,
        automatic_transition_from_open_to_half_open_enabled: bool,
        initial_state: State,
    }

    impl Default for Keys {
        fn default() -> Self {
            CircuitBreakerConfig::default().into()
        }
    }

    impl From<CircuitBreakerConfig> for Keys {
        fn from(config: CircuitBreakerConfig) -> Self {
            let (window_type, size, bucket) = match config.sliding_window {
                SlidingWindow::Count(size) => (
                    WindowType::CountBased,
                    window_size::Size::Calls(size),
                    Duration::from_secs(1),
                ),
                SlidingWindow::StripedCount(size) => (
                    WindowType::CountBasedStriped,
                    window_size::Size::Calls(size),
                    Duration::from_secs(1),
                ),
                SlidingWindow::Time { size, bucket } => {
                    (WindowType::TimeBased, window_size::Size::Time(size), bucket)
                }
            };
            let (wait, exponential, multiplier, max, jitter) = match config.open_wait {
                OpenWait::Fixed(wait) => (wait, false, 2.0, None, Jitter::None),
                OpenWait::Backoff(backoff) => {
                    let (wait, exponential, multiplier) = match backoff.progression() {
                        Progression::Exponential {
                            initial,
                            multiplier,
                        } => (initial, true, multiplier),
                        Progression::Constant(wait) => (wait, false, 2.0),
                        Progression::Linear { initial, .. } => (initial, false, 2.0),
                        _ => (Duration::ZERO, false, 2.0),
                    };
                    (
                        wait,
                        exponential,
                        multiplier,
                        backoff.cap(),
                        backoff.jitter_mode(),
                    )
                }
            };
            Self {
                failure_rate_threshold: config.failure_rate_threshold,
                slow_call_rate_threshold: config.slow_call_rate_threshold,
                slow_call_tracking: config.slow_call_duration_threshold.is_some(),
                slow_call_duration_threshold: config
                    .slow_call_duration_threshold
                    .unwrap_or(Duration::from_secs(60)),
                permitted_number_of_calls_in_half_open_state: config.permitted_calls_in_half_open,
                max_wait_duration_in_half_open_state: config.max_wait_in_half_open,
                transition_to_state_after_wait_duration: config.state_after_half_open_wait,
                sliding_window_type: window_type,
                sliding_window_size: size,
                sliding_window_bucket: bucket,
                minimum_number_of_calls: config.minimum_number_of_calls,
                wait_duration_in_open_state: wait,
                enable_exponential_backoff: exponential,
                exponential_backoff_multiplier: multiplier,
                exponential_max_wait_duration_in_open_state: max,
                wait_duration_in_open_state_jitter: jitter,
                automatic_transition_from_open_to_half_open_enabled: config.automatic_half_open,
                initial_state: config.initial_state,
            }
        }
    }

    impl Keys {
        /// The typed configuration. Only a count window sized by a duration cannot be read.
        pub(super) fn into_config(self) -> Result<CircuitBreakerConfig, ConfigError> {
            let keys = self;
            let sliding_window = match keys.sliding_window_type {
                WindowType::CountBased | WindowType::CountBasedStriped
                    if keys.sliding_window_size.is_time() =>
                {
                    return Err(ConfigError::new(
                        "sliding_window_size",
                        "a COUNT_BASED window's size is a number of calls, not a duration",
                    ));
                }
                WindowType::CountBased => SlidingWindow::Count(keys.sliding_window_size.calls()),
                WindowType::CountBasedStriped => {
                    SlidingWindow::StripedCount(keys.sliding_window_size.calls())
                }
                WindowType::TimeBased => SlidingWindow::Time {
                    size: keys.sliding_window_size.time(),
                    bucket: keys.sliding_window_bucket,
                },
            };
            let wait = keys.wait_duration_in_open_state;
            let jitter = keys.wait_duration_in_open_state_jitter;
            let open_wait = if keys.enable_exponential_backoff {
                let backoff = Backoff::exponential(wait)
                    .multiplier(keys.exponential_backoff_multiplier)
                    .jitter(jitter);
                OpenWait::Backoff(capped(
                    backoff,
                    keys.exponential_max_wait_duration_in_open_state,
                ))
            } else if jitter != Jitter::None {
                let backoff = Backoff::constant(wait).jitter(jitter);
                OpenWait::Backoff(capped(
                    backoff,
                    keys.exponential_max_wait_duration_in_open_state,
                ))
            } else {
                OpenWait::Fixed(wait)
            };
            Ok(CircuitBreakerConfig {
                failure_rate_threshold: keys.failure_rate_threshold,
                slow_call_rate_threshold: keys.slow_call_rate_threshold,
                slow_call_duration_threshold: keys
                    .slow_call_tracking
                    .then_some(keys.slow_call_duration_threshold),
                permitted_calls_in_half_open: keys.permitted_number_of_calls_in_half_open_state,
                max_wait_in_half_open: keys.max_wait_duration_in_half_open_state,
                state_after_half_open_wait: keys.transition_to_state_after_wait_duration,
                sliding_window,
                minimum_number_of_calls: keys.minimum_number_of_calls,
                open_wait,
                automatic_half_open: keys.automatic_transition_from_open_to_half_open_enabled,
                initial_state: keys.initial_state,
            })
        }
    }

    fn capped(backoff: Backoff, max: Option<Duration>) -> Backoff {
        match max {
            Some(max) => backoff.max(max),
            None => backoff,
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for CircuitBreakerConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        document::Keys::from(self.clone()).serialize(serializer)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for CircuitBreakerConfig {
    /// Reads the document keys; keys left out keep their defaults. The values are not
    /// validated here (call [`validate`](Self::validate), or build a breaker, which does).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        document::Keys::deserialize(crate::config::serde::MapOnly(deserializer))?
            .into_config()
            .map_err(serde::de::Error::custom)
    }
}

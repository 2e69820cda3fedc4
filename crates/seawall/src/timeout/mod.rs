//! Timeout: bound how long a call may take, and cancel it when the time is up.
//!
//! When the deadline passes, the operation's future is **dropped** — the work is cancelled, not
//! left running in the background (the most common complaint about Resilience4j's time limiter).
//!
//! Where the timeout sits in a [`Policy`](crate::Policy) decides what it bounds:
//!
//! - **inside a retry** (`.retry(..).timeout(..)`): each attempt gets the full timeout, and a
//!   timed-out attempt is retried like any other failure;
//! - **outside a retry** (`.timeout(..).retry(..)`): the timeout bounds the whole retry loop,
//!   waits included — the caller's total latency budget.
//!
//! Both at once is the usual production shape: a per-attempt timeout from the callee's latency
//! profile, and a total timeout from the caller's.
//!
//! The timer is armed only when the operation does not complete on its first poll, so a call
//! that is ready at once reads no clock and registers no timer.

pub mod error;
pub mod future;
#[cfg(feature = "tower")]
mod layer;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{Clock, duration_to_nanos};
use crate::config::{ConfigError, check_duration};
use crate::event::{Event, Listeners};
use crate::policy::impl_decorator;

pub use self::error::Elapsed;
pub use self::future::TimeoutFuture;
#[cfg(feature = "tower")]
pub use self::layer::{TimeoutLayer, TimeoutResponseFuture, TimeoutService};

/// Bounds the time a call may take.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use seawall::Timeout;
///
/// let timeout = Timeout::new(Duration::from_millis(100));
/// let err = timeout
///     .call(|| async {
///         tokio::time::sleep(Duration::from_secs(5)).await;
///         Ok::<_, std::io::Error>("too late")
///     })
///     .await
///     .unwrap_err();
/// assert!(err.is_timeout());
/// # }
/// ```
///
/// # Clone
///
/// Clones share the duration (a [`set_duration`](Timeout::set_duration) applies to all of them)
/// and the listeners.
#[derive(Clone)]
pub struct Timeout {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    name: Arc<str>,
    duration_nanos: AtomicU64,
    /// What a timeout's error points to (rebuilt only when the duration changed).
    origin: crate::error::TimeoutOrigin,
    pub(crate) totals: Totals,
    /// Set once metrics or a listener watch the calls: a tower call then reports to the
    /// timeout itself.
    watched: AtomicBool,
    clock: Clock,
    listeners: Listeners<TimeoutEvent>,
}

/// Cumulative call counts, kept only while someone reads them (metrics).
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) tracking: AtomicBool,
    pub(crate) successful: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) timed_out: AtomicU64,
}

impl Totals {
    #[inline]
    pub(crate) fn finished(&self, ok: bool) {
        if self.tracking.load(Ordering::Relaxed) {
            let counter = if ok { &self.successful } else { &self.failed };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Shared {
    pub(crate) fn duration(&self) -> Duration {
        Duration::from_nanos(self.duration_nanos.load(Ordering::Relaxed))
    }

    /// The error of a call that timed out `after` its start.
    pub(crate) fn elapsed<E>(&self, after: Duration) -> crate::Error<E> {
        self.origin.elapsed(after)
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Whether anyone would see what a call does: metrics totals, a listener, or (feature
    /// `tracing`) a subscriber interested in timeouts.
    #[cfg(feature = "tower")]
    pub(crate) fn is_observed(&self) -> bool {
        self.watched.load(Ordering::Relaxed) || tracing_enabled()
    }

    /// Keeps call totals from now on (metrics read them).
    #[cfg(feature = "metrics")]
    pub(crate) fn track(&self) {
        self.totals.tracking.store(true, Ordering::Relaxed);
        self.watched.store(true, Ordering::Relaxed);
    }

    pub(crate) fn timed_out(&self, after: Duration) {
        if self.totals.tracking.load(Ordering::Relaxed) {
            self.totals.timed_out.fetch_add(1, Ordering::Relaxed);
        }
        self.listeners.emit(|| TimeoutEvent::TimedOut {
            name: self.name.clone(),
            after,
        });
    }
}

// ===== impl Timeout =====

impl Timeout {
    /// A timeout of `duration` on tokio's clock, named `"timeout"`.
    pub fn new(duration: Duration) -> Self {
        Self::builder(duration).build()
    }

    /// Starts configuring a timeout of `duration`.
    pub fn builder(duration: Duration) -> TimeoutBuilder {
        TimeoutBuilder {
            name: Arc::from("timeout"),
            duration,
            clock: None,
        }
    }

    /// The instance name (used in events and metrics).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current duration.
    pub fn duration(&self) -> Duration {
        self.shared.duration()
    }

    /// Changes the duration for calls that start their timer from now on.
    pub fn set_duration(&self, duration: Duration) {
        self.shared
            .duration_nanos
            .store(duration_to_nanos(duration), Ordering::Relaxed);
    }

    /// The current configuration.
    pub fn config(&self) -> TimeoutConfig {
        TimeoutConfig {
            duration: self.duration(),
        }
    }

    /// Applies a whole configuration.
    ///
    /// # Errors
    ///
    /// An invalid configuration; nothing changes.
    pub fn reconfigure(&self, config: TimeoutConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.set_duration(config.duration);
        Ok(())
    }

    /// Registers a listener for this timeout's events (shared by clones).
    pub fn on_event(&self, listener: impl Fn(&TimeoutEvent) + Send + Sync + 'static) {
        self.shared.listeners.add(listener);
        self.shared.watched.store(true, Ordering::Relaxed);
    }

    #[cfg(any(feature = "tower", feature = "metrics"))]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("name", &self.shared.name)
            .field("duration", &self.duration())
            .finish()
    }
}

impl From<Duration> for Timeout {
    fn from(duration: Duration) -> Self {
        Self::new(duration)
    }
}

impl_decorator!(impl[] Timeout
    => TimeoutFuture<'p, S::Future<'p, O>> = |this, inner| TimeoutFuture::new(&this.shared, inner.start()));

/// A timeout's settings: what a registry stores and a config file describes.
///
/// In a document (feature `serde`) the keys are Resilience4j's time limiter's:
/// `timeout_duration` (`"2s"`), and `cancel_running_future`, which may only be `true` (seawall
/// always cancels a call that times out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimeoutConfig {
    /// How long a call may take (default 1 s, as Resilience4j's time limiter; at most
    /// [`MAX_DURATION`](crate::config::MAX_DURATION)).
    pub duration: Duration,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(1),
        }
    }
}

impl TimeoutConfig {
    /// A timeout of `duration`.
    pub const fn new(duration: Duration) -> Self {
        Self { duration }
    }

    /// Checks every rule, naming the key as a document spells it.
    ///
    /// # Errors
    ///
    /// A duration above [`MAX_DURATION`](crate::config::MAX_DURATION).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_duration("timeout_duration", self.duration, Duration::ZERO)
    }
}

#[cfg(feature = "serde")]
mod document {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    use super::TimeoutConfig;
    use crate::config::serde::duration;

    #[derive(Deserialize, Serialize)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Keys {
        #[serde(with = "duration")]
        timeout_duration: Duration,
        cancel_running_future: bool,
    }

    impl Default for Keys {
        fn default() -> Self {
            TimeoutConfig::default().into()
        }
    }

    impl From<TimeoutConfig> for Keys {
        fn from(config: TimeoutConfig) -> Self {
            Self {
                timeout_duration: config.duration,
                cancel_running_future: true,
            }
        }
    }

    impl Keys {
        pub(super) fn into_config(self) -> Result<TimeoutConfig, String> {
            if self.cancel_running_future {
                Ok(TimeoutConfig::new(self.timeout_duration))
            } else {
                Err("cancel_running_future: must be true: seawall always cancels a call that times out".to_owned())
            }
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for TimeoutConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        document::Keys::from(*self).serialize(serializer)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for TimeoutConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        document::Keys::deserialize(crate::config::serde::MapOnly(deserializer))?
            .into_config()
            .map_err(serde::de::Error::custom)
    }
}

/// Configures a [`Timeout`].
#[derive(Debug)]
pub struct TimeoutBuilder {
    name: Arc<str>,
    duration: Duration,
    clock: Option<Clock>,
}

impl TimeoutBuilder {
    /// The instance name (default `"timeout"`).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The clock to time calls with (default: tokio's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the timeout. Any duration is valid: zero means "fail unless ready at once".
    pub fn build(self) -> Timeout {
        Timeout {
            shared: Arc::new(Shared {
                name: self.name,
                duration_nanos: AtomicU64::new(duration_to_nanos(self.duration)),
                origin: crate::error::TimeoutOrigin::new(Duration::from_nanos(duration_to_nanos(
                    self.duration,
                ))),
                totals: Totals::default(),
                watched: AtomicBool::new(false),
                clock: self.clock.unwrap_or_default(),
                listeners: Listeners::new(),
            }),
        }
    }
}

/// What a [`Timeout`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutEvent {
    /// A call ran past its timeout and was cancelled.
    TimedOut {
        /// The timeout's name.
        name: Arc<str>,
        /// The timeout that elapsed.
        after: Duration,
    },
}

/// Whether a subscriber would record a timed-out call.
#[cfg(feature = "tower")]
fn tracing_enabled() -> bool {
    #[cfg(feature = "tracing")]
    {
        tracing::enabled!(target: "seawall::timeout", tracing::Level::DEBUG)
    }
    #[cfg(not(feature = "tracing"))]
    {
        false
    }
}

impl Event for TimeoutEvent {
    #[cfg(feature = "tracing")]
    fn trace(&self) {
        match self {
            Self::TimedOut { name, after } => {
                tracing::debug!(target: "seawall::timeout", name = %name, after = ?after, "call timed out");
            }
        }
    }
}

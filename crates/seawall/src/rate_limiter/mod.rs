//! Rate limiter: at most `limit_for_period` calls per `limit_refresh_period`, smoothly.
//!
//! The limiter is a GCRA (generic cell rate algorithm, a leaky bucket without a background
//! drip): the whole state is one atomic "theoretical arrival time", advanced by compare-and-swap.
//! Calls are spaced by `period / limit`, with a burst of up to `limit` calls at once. Unlike
//! Resilience4j's cycles aligned to the limiter's creation, permits refill continuously, so
//! there is no burst of `2 × limit` across a cycle boundary.
//!
//! A call that would exceed the rate waits for its slot if the wait is at most `timeout`
//! (the slot is reserved, so waiting callers are served in order); otherwise it is rejected
//! **at once** with [`ErrorKind::RateLimited`](crate::ErrorKind::RateLimited) and a
//! `retry_after` hint — Resilience4j parks the caller for the whole timeout before failing.
//! A waiting call that is dropped gives its reservation back when no later call has
//! reserved after it.

pub mod future;
#[cfg(feature = "tower")]
mod layer;
#[cfg(all(test, loom))]
mod loom_tests;
mod schedule;

use crate::sync::atomic::{AtomicU64, Ordering};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::clock::{Clock, Instant, duration_to_nanos};
use crate::config::{ConfigError, check_duration};
use crate::error::RateLimited;
use crate::event::{Event, Listeners};
use crate::policy::impl_decorator;

use self::schedule::Slot;

pub use self::future::RateLimiterFuture;
#[cfg(feature = "tower")]
pub use self::layer::{RateLimiterLayer, RateLimiterResponseFuture, RateLimiterService};

/// A rate limiter's settings.
///
/// In a document (feature `serde`) the keys are Resilience4j's: `limit_for_period`,
/// `limit_refresh_period` and `timeout_duration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimiterConfig {
    /// Calls allowed per period, and the largest burst (≥ 1; Resilience4j's default 50).
    pub limit_for_period: u32,
    /// The period (≥ 1 ns; Resilience4j's default 500 ns; at most
    /// [`MAX_DURATION`](crate::config::MAX_DURATION)).
    pub limit_refresh_period: Duration,
    /// How long a call may wait for its slot (Resilience4j's default 5 s; zero: never wait; at
    /// most [`MAX_DURATION`](crate::config::MAX_DURATION)).
    pub timeout: Duration,
}

#[cfg(feature = "serde")]
crate::config::serde::document_form! {
    RateLimiterConfig {
        limit_for_period: u32 = limit_for_period,
        #[serde(with = "crate::config::serde::duration")]
        limit_refresh_period: Duration = limit_refresh_period,
        #[serde(with = "crate::config::serde::duration")]
        timeout_duration: Duration = timeout,
    }
}

impl Default for RateLimiterConfig {
    fn default() -> Self {
        Self {
            limit_for_period: 50,
            limit_refresh_period: Duration::from_nanos(500),
            timeout: Duration::from_secs(5),
        }
    }
}

impl RateLimiterConfig {
    /// `limit_for_period` calls per `limit_refresh_period`, waiting up to 5 s for a slot
    /// (Resilience4j's default timeout).
    pub const fn new(limit_for_period: u32, limit_refresh_period: Duration) -> Self {
        Self {
            limit_for_period,
            limit_refresh_period,
            timeout: Duration::from_secs(5),
        }
    }

    /// Checks every rule, naming the key and the rule broken.
    ///
    /// # Errors
    ///
    /// A zero limit or period, or a duration above
    /// [`MAX_DURATION`](crate::config::MAX_DURATION).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.limit_for_period == 0 {
            return Err(ConfigError::new("limit_for_period", "must be >= 1, got 0"));
        }
        check_duration(
            "limit_refresh_period",
            self.limit_refresh_period,
            Duration::from_nanos(1),
        )?;
        check_duration("timeout_duration", self.timeout, Duration::ZERO)
    }

    /// The spacing between calls at the steady rate, in nanoseconds (at least 1).
    fn interval(&self) -> u64 {
        (duration_to_nanos(self.limit_refresh_period) / u64::from(self.limit_for_period)).max(1)
    }

    /// How far ahead of now the schedule may run: a burst of `limit` calls.
    fn tolerance(&self) -> u64 {
        self.interval()
            .saturating_mul(u64::from(self.limit_for_period - 1))
    }
}

/// Limits the rate of calls. See the [module docs](self).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use seawall::RateLimiter;
///
/// // 2 calls per second, no waiting: the third call in the same instant is rejected.
/// let limiter = RateLimiter::builder()
///     .name("pg")
///     .limit_for_period(2)
///     .limit_refresh_period(Duration::from_secs(1))
///     .timeout(Duration::ZERO)
///     .build()
///     .unwrap();
/// for _ in 0..2 {
///     limiter.call(|| async { Ok::<_, std::io::Error>(()) }).await.unwrap();
/// }
/// let err = limiter.call(|| async { Ok::<_, std::io::Error>(()) }).await.unwrap_err();
/// assert!(err.is_rate_limited());
/// assert_eq!(err.retry_after(), Some(Duration::from_millis(500)));
/// # }
/// ```
///
/// # Clone
///
/// Clones share the rate: a limiter limits every call made through any of its clones.
#[derive(Clone)]
pub struct RateLimiter {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    name: Arc<str>,
    /// Who a rejection names (built once: a rejection allocates nothing).
    origin: Arc<crate::error::Origin>,
    config: ArcSwap<RateLimiterConfig>,
    /// The theoretical arrival time of the next call, in the clock's nanoseconds.
    arrival: AtomicU64,
    waiting: AtomicU64,
    rejected: AtomicU64,
    clock: Clock,
    listeners: Listeners<RateLimiterEvent>,
}

/// What [`Shared::reserve`] decided.
pub(crate) enum Reservation {
    /// Go now.
    Now,
    /// A slot is reserved this far ahead; `slot` identifies it for a release.
    Wait { delay: Duration, slot: u64 },
    /// Rejected: the next slot is this far ahead.
    Rejected(RateLimited),
}

impl Shared {
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Reserves the next slot if it is at most `timeout` away.
    pub(crate) fn reserve(&self, now: Instant) -> Reservation {
        let config = **self.config.load();
        let slot = schedule::reserve(
            &self.arrival,
            now.as_nanos(),
            config.interval(),
            config.tolerance(),
            duration_to_nanos(config.timeout),
        );
        match slot {
            Slot::Now => Reservation::Now,
            Slot::Wait { wait, slot } => Reservation::Wait {
                delay: Duration::from_nanos(wait),
                slot,
            },
            Slot::Rejected { wait } => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                let retry_after = Duration::from_nanos(wait);
                self.listeners.emit(|| RateLimiterEvent::Rejected {
                    name: self.name.clone(),
                    retry_after,
                });
                Reservation::Rejected(RateLimited::new(&self.origin, Some(retry_after)))
            }
        }
    }

    /// A waiting call gave up: give its slot back if nobody reserved after it.
    pub(crate) fn release(&self, slot: u64) {
        let _ = schedule::release(&self.arrival, slot, self.config.load().interval());
    }

    pub(crate) fn waiting(&self, delta: i64) {
        if delta > 0 {
            self.waiting.fetch_add(1, Ordering::Relaxed);
        } else {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

// ===== impl RateLimiter =====

impl RateLimiter {
    /// Starts configuring a limiter (Resilience4j's defaults).
    pub fn builder() -> RateLimiterBuilder {
        RateLimiterBuilder {
            name: Arc::from("rate-limiter"),
            config: RateLimiterConfig::default(),
            clock: None,
        }
    }

    /// The instance name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current configuration.
    pub fn config(&self) -> RateLimiterConfig {
        **self.shared.config.load()
    }

    /// Replaces the configuration; the schedule (calls already admitted) is kept.
    ///
    /// # Errors
    ///
    /// An invalid configuration; nothing changes.
    pub fn reconfigure(&self, config: RateLimiterConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.shared.config.store(Arc::new(config));
        Ok(())
    }

    /// Calls that could start right now without waiting (Resilience4j's available
    /// permissions; negative values are not reported).
    pub fn available_permits(&self) -> u32 {
        let config = self.config();
        let interval = config.interval();
        let now = self.shared.clock.now().as_nanos();
        let arrival = self.shared.arrival.load(Ordering::Acquire).max(now);
        let headroom = now
            .saturating_add(config.tolerance())
            .saturating_add(interval)
            .saturating_sub(arrival);
        u32::try_from(headroom / interval)
            .unwrap_or(u32::MAX)
            .min(config.limit_for_period)
    }

    /// Calls waiting for their slot now.
    pub fn waiting_calls(&self) -> u64 {
        self.shared.waiting.load(Ordering::Relaxed)
    }

    /// Calls rejected since creation.
    pub fn rejected_calls(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// Registers a listener for this limiter's events (shared by clones).
    pub fn on_event(&self, listener: impl Fn(&RateLimiterEvent) + Send + Sync + 'static) {
        self.shared.listeners.add(listener);
    }

    #[cfg(feature = "tower")]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.shared.name)
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

impl_decorator!(impl[] RateLimiter
    => RateLimiterFuture<'p, S::Future<'p, O>> = |this, inner| RateLimiterFuture::new(&this.shared, inner.start()));

/// Configures a [`RateLimiter`].
#[derive(Debug)]
pub struct RateLimiterBuilder {
    name: Arc<str>,
    config: RateLimiterConfig,
    clock: Option<Clock>,
}

impl RateLimiterBuilder {
    /// The instance name (default `"rate-limiter"`).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The whole configuration.
    pub fn config(mut self, config: RateLimiterConfig) -> Self {
        self.config = config;
        self
    }

    /// Calls per period (and burst).
    pub fn limit_for_period(mut self, limit: u32) -> Self {
        self.config.limit_for_period = limit;
        self
    }

    /// The period.
    pub fn limit_refresh_period(mut self, period: Duration) -> Self {
        self.config.limit_refresh_period = period;
        self
    }

    /// How long a call may wait for its slot.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// The clock (default: tokio's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates and builds the limiter.
    ///
    /// # Errors
    ///
    /// A zero limit or period.
    pub fn build(self) -> Result<RateLimiter, ConfigError> {
        self.config.validate()?;
        Ok(RateLimiter {
            shared: Arc::new(Shared {
                origin: crate::error::Origin::new(
                    crate::error::Marker::RateLimited,
                    Some(self.name.clone()),
                ),
                name: self.name,
                config: ArcSwap::from_pointee(self.config),
                arrival: AtomicU64::new(0),
                waiting: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                clock: self.clock.unwrap_or_default(),
                listeners: Listeners::new(),
            }),
        })
    }
}

/// What a [`RateLimiter`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimiterEvent {
    /// A call was rejected: its slot was further away than the timeout.
    Rejected {
        /// The limiter's name.
        name: Arc<str>,
        /// When a slot is expected.
        retry_after: Duration,
    },
}

impl Event for RateLimiterEvent {
    #[cfg(feature = "tracing")]
    fn trace(&self) {
        match self {
            Self::Rejected { name, retry_after } => tracing::debug!(
                target: "seawall::rate_limiter",
                name = %name, retry_after = ?retry_after,
                "rate limit exceeded, call rejected"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn limiter(limit: u32, period_ms: u64, timeout_ms: u64) -> (RateLimiter, ManualClock) {
        let clock = ManualClock::new();
        let limiter = RateLimiter::builder()
            .limit_for_period(limit)
            .limit_refresh_period(Duration::from_millis(period_ms))
            .timeout(Duration::from_millis(timeout_ms))
            .clock(clock.clone().into())
            .build()
            .unwrap();
        (limiter, clock)
    }

    fn reserve(limiter: &RateLimiter) -> Reservation {
        limiter.shared.reserve(limiter.shared.clock.now())
    }

    #[test]
    fn a_burst_of_the_limit_passes_then_calls_are_spaced_evenly() {
        let (limiter, clock) = limiter(4, 1_000, 0);
        assert_eq!(limiter.available_permits(), 4);
        for _ in 0..4 {
            assert!(matches!(reserve(&limiter), Reservation::Now));
        }
        assert_eq!(limiter.available_permits(), 0);
        match reserve(&limiter) {
            Reservation::Rejected(limited) => {
                assert_eq!(limited.retry_after(), Some(Duration::from_millis(250)));
            }
            _ => panic!("the fifth call in the same instant is rejected"),
        }
        clock.advance(Duration::from_millis(250));
        assert_eq!(
            limiter.available_permits(),
            1,
            "one slot refilled, not a whole cycle"
        );
        assert!(matches!(reserve(&limiter), Reservation::Now));
        assert!(matches!(reserve(&limiter), Reservation::Rejected(_)));
        assert_eq!(limiter.rejected_calls(), 2);
    }

    #[test]
    fn a_call_within_the_timeout_reserves_its_slot_and_waits() {
        let (limiter, _clock) = limiter(2, 1_000, 600);
        assert!(matches!(reserve(&limiter), Reservation::Now));
        assert!(matches!(reserve(&limiter), Reservation::Now));
        match reserve(&limiter) {
            Reservation::Wait { delay, .. } => assert_eq!(delay, Duration::from_millis(500)),
            _ => panic!("expected a wait"),
        }
        // The next slot is now 1 s away: beyond the 600 ms timeout.
        assert!(matches!(reserve(&limiter), Reservation::Rejected(_)));
    }

    #[test]
    fn a_released_last_reservation_is_given_back() {
        let (limiter, _clock) = limiter(1, 1_000, 5_000);
        assert!(matches!(reserve(&limiter), Reservation::Now));
        let Reservation::Wait { slot, .. } = reserve(&limiter) else {
            panic!("expected a wait");
        };
        limiter.shared.release(slot);
        match reserve(&limiter) {
            Reservation::Wait { delay, .. } => assert_eq!(delay, Duration::from_millis(1_000)),
            _ => panic!("expected the same slot again"),
        }
    }

    #[test]
    fn invalid_settings_name_their_key() {
        let err = RateLimiter::builder()
            .limit_for_period(0)
            .build()
            .unwrap_err();
        assert_eq!(err.to_string(), "limit_for_period: must be >= 1, got 0");
        let err = RateLimiter::builder()
            .limit_refresh_period(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(err.key(), "limit_refresh_period");
    }
}

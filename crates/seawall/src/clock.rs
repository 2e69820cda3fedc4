//! The one place seawall reads time and waits.
//!
//! Every time-based decorator takes a [`Clock`]. The default is tokio's clock, so tests that run
//! with `#[tokio::test(start_paused = true)]` control every timeout, backoff and open-state wait.
//! [`ManualClock`] is a clock that only moves when told to, for pure state-machine tests and for
//! async tests that want to step time by hand without a paused runtime.
//!
//! Instants are [`Instant`]s: nanoseconds since the clock's origin, packed in a `u64` so that
//! lock-free state (the circuit breaker's open-until deadline, time-window buckets) can store them
//! in an atomic.

#![allow(clippy::disallowed_methods)] // this module is the sanctioned home of time reads and sleeps

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::ops::{Add, Sub};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pin_project_lite::pin_project;

/// A point in time on a [`Clock`]: the time elapsed since that clock's origin.
///
/// Instants from different clocks are not comparable. Arithmetic saturates instead of
/// overflowing: an `Instant` covers about 584 years.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Self = Self(0);

    /// An instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the clock's origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + duration`, saturating at the largest representable instant.
    pub fn saturating_add(self, duration: Duration) -> Self {
        Self(self.0.saturating_add(duration_to_nanos(duration)))
    }
}

impl Add<Duration> for Instant {
    type Output = Self;

    fn add(self, rhs: Duration) -> Self {
        self.saturating_add(rhs)
    }
}

impl Sub for Instant {
    type Output = Duration;

    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({:?})", Duration::from_nanos(self.0))
    }
}

/// Converts a duration to whole nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(crate) fn duration_to_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A source of time and of sleeps.
///
/// Cloning a clock shares it: a clone has the same origin (and, for a manual clock, the same
/// current time).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use seawall::clock::{Clock, ManualClock};
///
/// let manual = ManualClock::new();
/// let clock = Clock::from(manual.clone());
/// let start = clock.now();
/// manual.advance(Duration::from_millis(250));
/// assert_eq!(clock.now() - start, Duration::from_millis(250));
/// ```
#[derive(Clone)]
pub struct Clock {
    source: Source,
}

#[derive(Clone)]
enum Source {
    Tokio { origin: tokio::time::Instant },
    Coarse(Arc<Coarse>),
    Manual(ManualClock),
}

/// A clock whose reading is a plain atomic load, refreshed by a background thread.
struct Coarse {
    origin: tokio::time::Instant,
    now: AtomicU64,
    /// How often the background thread refreshes `now`, in nanoseconds.
    resolution: u64,
}

impl Coarse {
    fn start(resolution: Duration) -> Arc<Self> {
        // Real time, even when started inside a runtime whose time is paused (and perhaps
        // advanced far ahead): the thread below ticks on real time, and an origin in its
        // future would hold the reading at zero until real time caught up.
        let origin = tokio::time::Instant::from_std(std::time::Instant::now());
        let resolution = resolution.max(Duration::from_micros(100));
        let coarse = Arc::new(Self {
            origin,
            now: AtomicU64::new(0),
            resolution: duration_to_nanos(resolution),
        });
        let weak = Arc::downgrade(&coarse);
        // The ticker stops when the last clone of the clock is gone.
        let spawned = std::thread::Builder::new()
            .name("seawall-coarse-clock".into())
            .spawn(move || {
                while let Some(coarse) = weak.upgrade() {
                    coarse.tick();
                    drop(coarse);
                    std::thread::sleep(resolution);
                }
            });
        if spawned.is_err() {
            // No thread: the reading stays at the origin; callers still get a valid clock.
            coarse.tick();
        }
        coarse
    }

    fn tick(&self) {
        let elapsed = duration_to_nanos(self.origin.elapsed());
        // Relaxed: readers need a recent value, not ordering with other memory.
        self.now.fetch_max(elapsed, Ordering::Relaxed);
    }
}

impl Clock {
    /// tokio's clock (`tokio::time`), so paused test time applies. The origin is now.
    pub fn tokio() -> Self {
        Self {
            source: Source::Tokio {
                origin: tokio::time::Instant::now(),
            },
        }
    }

    /// A coarse clock: reading it is one atomic load (under a nanosecond instead of tens of
    /// nanoseconds), at the price of being up to a millisecond behind. One background thread
    /// serves every coarse clock of the process. Use it where a breaker keeps a time window
    /// on a hot path (a breaker on tokio's clock already times slow calls mostly from this
    /// clock: see the circuit breaker's docs); it does **not** follow tokio's paused test
    /// time (use [`Clock::tokio`] or a [`ManualClock`] in tests). Sleeps are tokio's.
    pub fn coarse() -> Self {
        Self {
            source: Source::Coarse(shared_coarse().clone()),
        }
    }

    /// A coarse clock refreshed every `resolution` (at least 100 µs) by its own thread.
    pub fn coarse_with_resolution(resolution: Duration) -> Self {
        Self {
            source: Source::Coarse(Coarse::start(resolution)),
        }
    }

    /// The current time.
    #[inline]
    pub fn now(&self) -> Instant {
        match &self.source {
            Source::Tokio { origin } => Instant(duration_to_nanos(
                tokio::time::Instant::now().saturating_duration_since(*origin),
            )),
            Source::Coarse(coarse) => Instant(coarse.now.load(Ordering::Relaxed)),
            Source::Manual(manual) => manual.now(),
        }
    }

    /// A future that completes `duration` from now.
    ///
    /// # Panics
    ///
    /// With the tokio clock, polling the returned future outside a tokio runtime with the time
    /// driver enabled panics, as `tokio::time::sleep` does.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        self.sleep_until(self.now() + duration)
    }

    /// A future that completes at `deadline` (at once if it has passed).
    ///
    /// # Panics
    ///
    /// As for [`Clock::sleep`].
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        let inner = match &self.source {
            Source::Manual(manual) => SleepInner::Manual {
                sleep: ManualSleep {
                    clock: manual.clone(),
                    deadline,
                    id: None,
                },
            },
            Source::Tokio { origin } => Self::tokio_sleep(*origin, deadline),
            Source::Coarse(coarse) => Self::tokio_sleep(coarse.origin, deadline),
        };
        Sleep { inner }
    }

    fn tokio_sleep(origin: tokio::time::Instant, deadline: Instant) -> SleepInner {
        let at = origin
            .checked_add(Duration::from_nanos(deadline.0))
            .unwrap_or_else(far_future);
        SleepInner::Tokio {
            sleep: tokio::time::sleep_until(at),
        }
    }

    /// Whether this is tokio's clock (a clock of its own kind is needed only otherwise: a
    /// fresh [`Clock::tokio`] sleeps the same; the circuit breaker times calls lazily only on
    /// it).
    pub(crate) fn is_tokio(&self) -> bool {
        matches!(self.source, Source::Tokio { .. })
    }

    /// Whether this is a coarse clock ([`Clock::coarse`]): a reading is one atomic load.
    pub(crate) fn is_coarse(&self) -> bool {
        matches!(self.source, Source::Coarse(_))
    }

    /// Whether this is a [`ManualClock`].
    pub fn is_manual(&self) -> bool {
        matches!(self.source, Source::Manual(_))
    }
}

/// The process-wide coarse clock behind [`Clock::coarse`] (1 ms), started on first use.
fn shared_coarse() -> &'static Arc<Coarse> {
    static SHARED: std::sync::OnceLock<Arc<Coarse>> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| Coarse::start(Duration::from_millis(1)))
}

/// A reading of the process-wide coarse clock, for timing a call's first poll without a
/// precise clock read (the circuit breaker on tokio's clock: see `circuit_breaker/engine`).
/// Only the difference of two readings means anything; it is real time, even under tokio's
/// paused time. The first reading starts the coarse clock's thread.
#[inline]
pub(crate) fn coarse_reading() -> u64 {
    shared_coarse().now.load(Ordering::Relaxed)
}

/// The time from `start` (a [`coarse_reading`]) to now as the coarse clock saw it, less one
/// resolution: a poll that merely straddles a tick of the clock counts as zero, and a poll
/// that blocks its thread for `t` counts as about `t` (within one resolution, plus however
/// late the clock's thread runs).
/// In nanoseconds.
#[inline]
pub(crate) fn coarse_elapsed_nanos(start: u64) -> u64 {
    let coarse = shared_coarse();
    let ticks = coarse.now.load(Ordering::Relaxed).saturating_sub(start);
    ticks.saturating_sub(coarse.resolution)
}

/// About 30 years from now: tokio's own "far future" for deadlines that overflow.
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

impl Default for Clock {
    /// tokio's clock.
    fn default() -> Self {
        Self::tokio()
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Self {
        Self {
            source: Source::Manual(manual),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Tokio { .. } => f.write_str("Clock::Tokio"),
            Source::Coarse(_) => f.write_str("Clock::Coarse"),
            Source::Manual(manual) => write!(f, "Clock::Manual({:?})", manual.now()),
        }
    }
}

pin_project! {
    /// A future returned by [`Clock::sleep`] and [`Clock::sleep_until`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it cancels the wait; nothing else is affected.
    #[must_use = "futures do nothing unless polled"]
    pub struct Sleep {
        #[pin]
        inner: SleepInner,
    }
}

pin_project! {
    #[project = SleepProj]
    enum SleepInner {
        Tokio { #[pin] sleep: tokio::time::Sleep },
        Manual { sleep: ManualSleep },
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project().inner.project() {
            SleepProj::Tokio { sleep } => sleep.poll(cx),
            SleepProj::Manual { sleep } => sleep.poll(cx),
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            SleepInner::Tokio { sleep } => f.debug_tuple("Sleep").field(&sleep.deadline()).finish(),
            SleepInner::Manual { sleep } => f.debug_tuple("Sleep").field(&sleep.deadline).finish(),
        }
    }
}

/// A clock that moves only when [`advance`](ManualClock::advance)d.
///
/// Clones share the same time. Sleeps on a manual clock complete when the clock is advanced past
/// their deadline; they work on any executor (no tokio time driver needed).
#[derive(Clone, Default)]
pub struct ManualClock {
    shared: Arc<ManualShared>,
}

#[derive(Default)]
struct ManualShared {
    now: AtomicU64,
    sleepers: Mutex<Sleepers>,
}

#[derive(Default)]
struct Sleepers {
    next_id: u64,
    waiting: HashMap<u64, (Instant, Waker)>,
}

impl ManualClock {
    /// A clock at its origin.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        Instant(self.shared.now.load(Ordering::Acquire))
    }

    /// Moves time forward and wakes every sleep whose deadline has been reached.
    pub fn advance(&self, by: Duration) {
        let by = duration_to_nanos(by);
        let now = Instant(
            self.shared
                .now
                .fetch_add(by, Ordering::AcqRel)
                .saturating_add(by),
        );
        self.wake_due(now);
    }

    /// Sets the time. Moving backwards is allowed (for tests of clock anomalies).
    pub fn set(&self, to: Instant) {
        self.shared.now.store(to.0, Ordering::Release);
        self.wake_due(to);
    }

    fn wake_due(&self, now: Instant) {
        let due: Vec<Waker> = {
            let mut sleepers = self.lock();
            let ids: Vec<u64> = sleepers
                .waiting
                .iter()
                .filter(|(_, (deadline, _))| *deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| sleepers.waiting.remove(&id).map(|(_, waker)| waker))
                .collect()
        };
        due.into_iter().for_each(Waker::wake);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sleepers> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.shared
            .sleepers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many sleeps are currently waiting on this clock.
    pub fn sleepers(&self) -> usize {
        self.lock().waiting.len()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

struct ManualSleep {
    clock: ManualClock,
    deadline: Instant,
    id: Option<u64>,
}

impl ManualSleep {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.now() >= self.deadline {
            self.deregister();
            return Poll::Ready(());
        }
        let mut sleepers = self.clock.lock();
        // Re-check under the lock: `advance` may have run between the check above and here.
        if self.clock.now() >= self.deadline {
            drop(sleepers);
            self.deregister();
            return Poll::Ready(());
        }
        let id = *self.id.get_or_insert_with(|| {
            sleepers.next_id += 1;
            sleepers.next_id
        });
        sleepers
            .waiting
            .insert(id, (self.deadline, cx.waker().clone()));
        Poll::Pending
    }

    fn deregister(&mut self) {
        if let Some(id) = self.id.take() {
            self.clock.lock().waiting.remove(&id);
        }
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        self.deregister();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates() {
        let late = Instant::from_nanos(u64::MAX - 1);
        assert_eq!((late + Duration::from_secs(1)).as_nanos(), u64::MAX);
        assert_eq!(Instant::ZERO - late, Duration::ZERO);
        assert_eq!(late - Instant::ZERO, Duration::from_nanos(u64::MAX - 1));
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let clock = ManualClock::new();
        let other = clock.clone();
        clock.advance(Duration::from_millis(5));
        assert_eq!(other.now(), Instant::from_nanos(5_000_000));
    }

    #[test]
    fn manual_sleep_completes_only_after_the_deadline() {
        let manual = ManualClock::new();
        let clock = Clock::from(manual.clone());
        let mut sleep = tokio_test::task::spawn(clock.sleep(Duration::from_millis(10)));
        assert!(sleep.poll().is_pending());
        assert_eq!(manual.sleepers(), 1);
        manual.advance(Duration::from_millis(9));
        assert!(!sleep.is_woken());
        assert!(sleep.poll().is_pending());
        manual.advance(Duration::from_millis(1));
        assert!(sleep.is_woken());
        assert!(sleep.poll().is_ready());
        assert_eq!(manual.sleepers(), 0);
    }

    #[test]
    fn dropped_manual_sleep_deregisters() {
        let manual = ManualClock::new();
        let clock = Clock::from(manual.clone());
        let mut sleep = tokio_test::task::spawn(clock.sleep(Duration::from_secs(1)));
        assert!(sleep.poll().is_pending());
        drop(sleep);
        assert_eq!(manual.sleepers(), 0);
    }

    #[test]
    fn a_coarse_clock_moves_forward_by_itself() {
        let clock = Clock::coarse_with_resolution(Duration::from_micros(100));
        let start = clock.now();
        // A bounded wait for the ticker thread: real time is the point of this clock.
        let mut later = start;
        for _ in 0..2_000 {
            later = clock.now();
            if later > start {
                break;
            }
            std::thread::yield_now();
            std::thread::park_timeout(Duration::from_millis(1));
        }
        assert!(later > start, "the background thread advanced the reading");
        assert!(!clock.is_manual());
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = Clock::tokio();
        let start = clock.now();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(clock.now() - start, Duration::from_secs(3));
        let before = clock.now();
        clock.sleep(Duration::from_millis(1500)).await;
        assert_eq!(clock.now() - before, Duration::from_millis(1500));
    }
}

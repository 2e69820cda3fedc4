//! Bulkhead: a limit on concurrent calls, so one slow dependency cannot take every task,
//! connection or thread the service has.
//!
//! A call takes a permit before its operation starts and gives it back when it finishes **or
//! when its future is dropped** (cancelled, timed out by an outer timeout, or lost in a
//! `select!`). When no permit is free the call waits up to `max_wait` (default zero: reject at
//! once, Resilience4j's default) and then fails with
//! [`ErrorKind::BulkheadFull`](crate::ErrorKind::BulkheadFull) without running the operation.
//!
//! Waiting calls are served first come, first served, and newcomers do not overtake them. A
//! free permit costs one compare-and-swap to take and one atomic add to give back; only
//! waiting touches a queue (see `permits.rs`). The limit can change at run time: growing
//! takes effect at once, shrinking as permits come back.

pub mod error;
pub mod future;
#[cfg(feature = "tower")]
mod layer;
pub(crate) mod permits;

use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use self::permits::Permits;

use crate::clock::{Clock, duration_to_nanos};
use crate::config::{ConfigError, check_duration};
use crate::event::{Event, Listeners};
use crate::policy::impl_decorator;

pub use self::error::BulkheadFull;
pub use self::future::BulkheadFuture;
#[cfg(feature = "tower")]
pub use self::layer::{BulkheadLayer, BulkheadMode, BulkheadResponseFuture, BulkheadService};

/// Limits how many calls run at once.
///
/// # Examples
///
/// At most one PG call in flight; a second is rejected at once, without running:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use seawall::Bulkhead;
/// use tokio::sync::Notify;
///
/// let bulkhead = Bulkhead::builder().name("pg").max_concurrent_calls(1).build().unwrap();
/// let done = Arc::new(Notify::new());
///
/// let slow = tokio::spawn({
///     let (bulkhead, done) = (bulkhead.clone(), done.clone());
///     async move {
///         bulkhead
///             .call(|| {
///                 let done = done.clone();
///                 async move { done.notified().await; Ok::<_, std::io::Error>("slow") }
///             })
///             .await
///     }
/// });
/// tokio::task::yield_now().await; // let the slow call take the permit
/// assert_eq!(bulkhead.available_permits(), 0);
///
/// let rejected = bulkhead.call(|| async { Ok::<_, std::io::Error>("fast") }).await;
/// assert!(rejected.unwrap_err().is_bulkhead_full());
///
/// done.notify_one();
/// assert_eq!(slow.await.unwrap().unwrap(), "slow");
/// assert_eq!(bulkhead.available_permits(), 1);
/// # }
/// ```
///
/// # Clone
///
/// Clones share the permits: a bulkhead limits every call made through any of its clones.
#[derive(Clone)]
pub struct Bulkhead {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    name: Arc<str>,
    /// Who a rejection names (built once: a rejection allocates nothing).
    origin: Arc<crate::error::Origin>,
    permits: Permits,
    max: AtomicUsize,
    max_wait_nanos: AtomicU64,
    /// Calls rejected since creation (counted on the rejection path only).
    rejected: AtomicU64,
    clock: Clock,
    listeners: Listeners<BulkheadEvent>,
}

impl Shared {
    pub(crate) fn permits(&self) -> &Permits {
        &self.permits
    }

    pub(crate) fn max_wait(&self) -> Duration {
        Duration::from_nanos(self.max_wait_nanos.load(Ordering::Relaxed))
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Counts and reports a rejection.
    pub(crate) fn rejected(&self) -> BulkheadFull {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        self.listeners.emit(|| BulkheadEvent::Rejected {
            name: self.name.clone(),
        });
        BulkheadFull::new()
    }

    /// Counts and reports a rejection, as the error of a native call.
    pub(crate) fn rejected_call<E>(&self) -> crate::Error<E> {
        self.rejected();
        crate::Error::rejected(&self.origin, None)
    }
}

// ===== impl Bulkhead =====

impl Bulkhead {
    /// The most permits a bulkhead can have (2⁶¹: the signed permit counter keeps room to go
    /// below zero while a shrink retires permits).
    pub const MAX_CONCURRENT_CALLS: usize = 1 << 61;

    /// A bulkhead of `max_concurrent_calls` permits that rejects at once when full.
    ///
    /// # Panics
    ///
    /// If `max_concurrent_calls` exceeds [`Bulkhead::MAX_CONCURRENT_CALLS`]; use
    /// [`Bulkhead::builder`] to get an error instead.
    #[track_caller]
    pub fn new(max_concurrent_calls: usize) -> Self {
        match Self::builder()
            .max_concurrent_calls(max_concurrent_calls)
            .build()
        {
            Ok(bulkhead) => bulkhead,
            Err(err) => panic!("{err}"),
        }
    }

    /// Starts configuring a bulkhead (defaults: 25 permits, no waiting, as in Resilience4j).
    pub fn builder() -> BulkheadBuilder {
        BulkheadBuilder {
            name: Arc::from("bulkhead"),
            max_concurrent_calls: 25,
            max_wait: Duration::ZERO,
            clock: None,
        }
    }

    /// The instance name (used in events and metrics).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The configured limit.
    pub fn max_concurrent_calls(&self) -> usize {
        self.shared.max.load(Ordering::Acquire)
    }

    /// Permits free right now (0 while a shrink is still retiring permits).
    pub fn available_permits(&self) -> usize {
        self.shared.permits.available()
    }

    /// How long a call waits for a permit before it is rejected.
    pub fn max_wait(&self) -> Duration {
        self.shared.max_wait()
    }

    /// Changes the maximum wait for calls that start waiting from now on.
    pub fn set_max_wait(&self, max_wait: Duration) {
        self.shared
            .max_wait_nanos
            .store(duration_to_nanos(max_wait), Ordering::Relaxed);
    }

    /// Changes the limit. Growing frees permits at once (waiting calls proceed); shrinking
    /// retires free permits at once and busy ones as they come back — calls in flight are
    /// never interrupted.
    ///
    /// # Errors
    ///
    /// A limit above [`Bulkhead::MAX_CONCURRENT_CALLS`].
    pub fn set_max_concurrent_calls(&self, max_concurrent_calls: usize) -> Result<(), ConfigError> {
        validate_max(max_concurrent_calls)?;
        let old = self.shared.max.swap(max_concurrent_calls, Ordering::AcqRel);
        // Both fit in an i64 (validated ≤ 2⁶¹).
        let delta = max_concurrent_calls as i64 - old as i64;
        if delta != 0 {
            self.shared.permits.adjust(delta);
        }
        Ok(())
    }

    /// Calls rejected since the bulkhead was created.
    pub fn rejected_calls(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// The current configuration.
    pub fn config(&self) -> BulkheadConfig {
        BulkheadConfig {
            max_concurrent_calls: self.max_concurrent_calls(),
            max_wait: self.max_wait(),
        }
    }

    /// Applies a whole configuration: the limit (growing at once, shrinking as permits
    /// return) and the maximum wait.
    ///
    /// # Errors
    ///
    /// An invalid configuration; nothing changes.
    pub fn reconfigure(&self, config: BulkheadConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.set_max_concurrent_calls(config.max_concurrent_calls)?;
        self.set_max_wait(config.max_wait);
        Ok(())
    }

    /// Registers a listener for this bulkhead's events (shared by clones).
    pub fn on_event(&self, listener: impl Fn(&BulkheadEvent) + Send + Sync + 'static) {
        self.shared.listeners.add(listener);
    }

    /// Takes a permit if one is free, without waiting. The permit is returned when dropped.
    ///
    /// # Errors
    ///
    /// [`BulkheadFull`] when no permit is free.
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_>, BulkheadFull> {
        if self.shared.permits.try_take() {
            Ok(BulkheadPermit::new(&self.shared))
        } else {
            Err(self.shared.rejected())
        }
    }

    #[cfg(feature = "tower")]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.shared.name)
            .field("max_concurrent_calls", &self.max_concurrent_calls())
            .field("available_permits", &self.available_permits())
            .field("max_wait", &self.max_wait())
            .finish()
    }
}

impl_decorator!(impl[] Bulkhead
    => BulkheadFuture<'p, S::Future<'p, O>> = |this, inner| BulkheadFuture::new(&this.shared, inner.start()));

fn validate_max(max_concurrent_calls: usize) -> Result<(), ConfigError> {
    if max_concurrent_calls > Bulkhead::MAX_CONCURRENT_CALLS {
        return Err(ConfigError::new(
            "max_concurrent_calls",
            format!(
                "must be <= {}, got {max_concurrent_calls}",
                Bulkhead::MAX_CONCURRENT_CALLS
            ),
        ));
    }
    Ok(())
}

/// A bulkhead's settings: what a registry stores, a config file describes and a live
/// reconfiguration replaces.
///
/// In a document (feature `serde`) the keys are Resilience4j's: `max_concurrent_calls` and
/// `max_wait_duration` (`"100ms"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkheadConfig {
    /// How many calls may run at once (default 25; 0 rejects everything; at most
    /// [`Bulkhead::MAX_CONCURRENT_CALLS`]).
    pub max_concurrent_calls: usize,
    /// How long a call may wait for a permit (default zero: reject at once; at most
    /// [`MAX_DURATION`](crate::config::MAX_DURATION)).
    pub max_wait: Duration,
}

#[cfg(feature = "serde")]
crate::config::serde::document_form! {
    BulkheadConfig {
        max_concurrent_calls: usize = max_concurrent_calls,
        #[serde(with = "crate::config::serde::duration")]
        max_wait_duration: Duration = max_wait,
    }
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 25,
            max_wait: Duration::ZERO,
        }
    }
}

impl BulkheadConfig {
    /// `max_concurrent_calls` permits, rejecting at once when they are all taken.
    pub const fn new(max_concurrent_calls: usize) -> Self {
        Self {
            max_concurrent_calls,
            max_wait: Duration::ZERO,
        }
    }

    /// Checks every rule, naming the key and the rule broken.
    ///
    /// # Errors
    ///
    /// A limit above [`Bulkhead::MAX_CONCURRENT_CALLS`], or a wait above
    /// [`MAX_DURATION`](crate::config::MAX_DURATION).
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_max(self.max_concurrent_calls)?;
        check_duration("max_wait_duration", self.max_wait, Duration::ZERO)
    }
}

/// Configures a [`Bulkhead`].
#[derive(Debug)]
pub struct BulkheadBuilder {
    name: Arc<str>,
    max_concurrent_calls: usize,
    max_wait: Duration,
    clock: Option<Clock>,
}

impl BulkheadBuilder {
    /// The instance name (default `"bulkhead"`).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// How many calls may run at once (default 25; 0 rejects everything).
    pub fn max_concurrent_calls(mut self, max_concurrent_calls: usize) -> Self {
        self.max_concurrent_calls = max_concurrent_calls;
        self
    }

    /// How long a call may wait for a permit (default zero: reject at once).
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The clock for the maximum wait (default: tokio's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Starts from a whole configuration.
    pub fn config(mut self, config: BulkheadConfig) -> Self {
        self.max_concurrent_calls = config.max_concurrent_calls;
        self.max_wait = config.max_wait;
        self
    }

    /// Validates and builds the bulkhead.
    ///
    /// # Errors
    ///
    /// As [`BulkheadConfig::validate`].
    pub fn build(self) -> Result<Bulkhead, ConfigError> {
        let config = BulkheadConfig {
            max_concurrent_calls: self.max_concurrent_calls,
            max_wait: self.max_wait,
        };
        config.validate()?;
        Ok(Bulkhead {
            shared: Arc::new(Shared {
                origin: crate::error::Origin::new(
                    crate::error::Marker::BulkheadFull,
                    Some(self.name.clone()),
                ),
                name: self.name,
                permits: Permits::new(self.max_concurrent_calls),
                max: AtomicUsize::new(self.max_concurrent_calls),
                max_wait_nanos: AtomicU64::new(duration_to_nanos(self.max_wait)),
                rejected: AtomicU64::new(0),
                clock: self.clock.unwrap_or_default(),
                listeners: Listeners::new(),
            }),
        })
    }
}

/// A bulkhead permit: the right to run one call. Dropping it gives the permit back (or
/// retires it, while a shrink is in progress).
#[must_use = "the permit is released as soon as it is dropped"]
#[clippy::has_significant_drop]
pub struct BulkheadPermit<'a> {
    shared: &'a Shared,
}

impl<'a> BulkheadPermit<'a> {
    pub(crate) fn new(shared: &'a Shared) -> Self {
        Self { shared }
    }
}

impl Drop for BulkheadPermit<'_> {
    fn drop(&mut self) {
        self.shared.permits.give_back();
    }
}

impl fmt::Debug for BulkheadPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadPermit")
            .field("bulkhead", &self.shared.name)
            .finish()
    }
}

/// What a [`Bulkhead`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BulkheadEvent {
    /// A call found no free permit (within the maximum wait) and was rejected.
    Rejected {
        /// The bulkhead's name.
        name: Arc<str>,
    },
}

impl Event for BulkheadEvent {
    #[cfg(feature = "tracing")]
    fn trace(&self) {
        match self {
            Self::Rejected { name } => {
                tracing::debug!(target: "seawall::bulkhead", name = %name, "bulkhead full, call rejected");
            }
        }
    }
}

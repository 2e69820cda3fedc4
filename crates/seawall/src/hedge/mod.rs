//! Hedging: when a call is slow, start another attempt and take whichever answers first.
//!
//! The standard answer to tail latency on idempotent reads, such as a payment status query.
//! The **primary** attempt starts at once. If it has not answered after the **delay**, a
//! **hedged** attempt starts beside it, then another after each further delay, up to
//! `max_hedged_attempts`. The first *acceptable* outcome wins, and every other attempt still
//! running is **dropped** — cancelled, not left running in the background.
//!
//! - **The delay** is fixed, or (percentile mode) a percentile of the recent latencies of
//!   accepted attempts, clamped to a floor and a ceiling; until enough latencies are recorded
//!   the configured `delay` is used. A delay of zero is **parallel mode**: every hedged attempt
//!   starts together with the primary.
//! - **Acceptable outcomes** are decided by a [`HedgeClassifier`]: by default a success is
//!   acceptable and an error is not. An unacceptable outcome is kept while other attempts run;
//!   when every attempt has finished and none was acceptable, the **last** outcome is
//!   returned.
//! - **A failed attempt** starts the next hedge at once, without waiting for the delay (as
//!   Polly does), unless `hedge_on_failure` is off: a fast failure is the clearest sign that
//!   another attempt is needed.
//! - **A budget** ([`HedgeBudgetConfig`]) caps the extra load, e.g. 10 % more calls than the
//!   primaries plus a few a second; when it refuses, no hedge starts for that call and the
//!   attempts already running go on.
//! - **Attempt numbers**: the operation can read which attempt it is
//!   ([`Policy::call_with_attempt`](crate::Policy::call_with_attempt)): 1 for the primary,
//!   2, 3, … for the hedges in the order they start.
//!
//! `max_hedged_attempts: 0` turns hedging off without taking the hedge out of a policy, so a
//! registry can turn it on and off live.
//!
//! Only hedge what is safe to run twice: reads, or writes made idempotent by a key. A call
//! whose primary answers before the delay makes no allocation and arms no timer if it is ready
//! at once; each hedged attempt is boxed (hedging is the slow path).

mod budget;
mod config;
pub mod future;
mod latency;
#[cfg(feature = "tower")]
mod layer;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use self::budget::Budget;
use self::latency::Latencies;
use crate::Error;
use crate::clock::{Clock, Instant};
use crate::config::ConfigError;
use crate::event::{Event, Listeners};
use crate::policy::impl_decorator;

pub use self::config::{HedgeBudgetConfig, HedgeConfig, MAX_HEDGED_ATTEMPTS, MAX_LATENCY_WINDOW};
pub use self::future::HedgeFuture;
#[cfg(feature = "tower")]
pub use self::layer::{HedgeLayer, HedgeResponseFuture, HedgeService};

/// Runs a slow call again beside itself and returns the first acceptable outcome.
///
/// # Examples
///
/// A status query hedged after 50 ms: the slow primary is overtaken and cancelled.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use seawall::Hedge;
/// use seawall::hedge::HedgeConfig;
///
/// let hedge = Hedge::builder()
///     .name("pg-status")
///     .config(HedgeConfig::fixed(Duration::from_millis(50)))
///     .build()?;
/// let status = hedge
///     .call_with_attempt(|attempt| async move {
///         let took = if attempt.is_first() { 5_000 } else { 10 };
///         seawall::Clock::tokio().sleep(Duration::from_millis(took)).await;
///         Ok::<_, std::io::Error>(attempt.number())
///     })
///     .await?;
/// assert_eq!(status, 2, "the hedge answered first");
/// # Ok(())
/// # }
/// ```
///
/// # Clone
///
/// Clones share their configuration, budget, recorded latencies, listeners and counts.
pub struct Hedge<C = DefaultClassifier> {
    shared: Arc<Shared>,
    classifier: C,
}

impl<C: Clone> Clone for Hedge<C> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

pub(crate) struct Shared {
    name: Arc<str>,
    /// Read only once a call is pending (the slow path).
    config: ArcSwap<HedgeConfig>,
    /// A mirror of `config.delay_percentile.is_some()`: whether latencies are recorded.
    percentile: AtomicBool,
    budget: Budget,
    latencies: Latencies,
    clock: Clock,
    listeners: Listeners<HedgeEvent>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    started: AtomicU64,
    won: AtomicU64,
    refused: AtomicU64,
}

impl Shared {
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn config(&self) -> arc_swap::Guard<Arc<HedgeConfig>> {
        self.config.load()
    }

    fn set_config(&self, config: HedgeConfig) {
        self.budget.set_config(config.budget);
        self.latencies.resize(config.latency_window_size);
        self.percentile
            .store(config.delay_percentile.is_some(), Ordering::Relaxed);
        self.config.store(Arc::new(config));
    }

    /// A call starts: it pays its share into the budget.
    #[inline]
    pub(crate) fn call_started(&self) {
        self.budget.deposit();
    }

    /// The delay before the next hedged attempt.
    pub(crate) fn next_delay(&self) -> Duration {
        let config = self.config.load();
        if config.delay_percentile.is_none() {
            return config.delay;
        }
        self.latencies.with(|ring| latency::delay(&config, ring))
    }

    /// An attempt started at `started` was accepted now.
    pub(crate) fn accepted(&self, started: Instant) {
        if self.percentile.load(Ordering::Relaxed) {
            let latency = self.clock.now().saturating_duration_since(started);
            self.latencies.with(|ring| ring.record(latency));
        }
    }

    /// Asks the budget for a hedge starting at `now`.
    pub(crate) fn may_hedge(&self, now: Instant) -> bool {
        if self.budget.withdraw(now) {
            return true;
        }
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
        self.listeners.emit(|| HedgeEvent::BudgetExhausted {
            name: self.name.clone(),
        });
        false
    }

    pub(crate) fn hedge_started(&self, attempt: u32, after: Duration) {
        self.counters.started.fetch_add(1, Ordering::Relaxed);
        self.listeners.emit(|| HedgeEvent::Started {
            name: self.name.clone(),
            attempt,
            after,
        });
    }

    pub(crate) fn hedge_won(&self, attempt: u32) {
        self.counters.won.fetch_add(1, Ordering::Relaxed);
        self.listeners.emit(|| HedgeEvent::Won {
            name: self.name.clone(),
            attempt,
        });
    }
}

/// Decides which outcomes of an attempt are acceptable: an acceptable outcome ends the call
/// and cancels the other attempts; an unacceptable one is kept while others run.
pub trait HedgeClassifier<T, E> {
    /// Whether `outcome` is acceptable.
    fn accepts(&self, outcome: &Result<T, Error<E>>) -> bool;
}

/// Accepts every success and no error.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultClassifier;

impl<T, E> HedgeClassifier<T, E> for DefaultClassifier {
    #[inline]
    fn accepts(&self, outcome: &Result<T, Error<E>>) -> bool {
        outcome.is_ok()
    }
}

/// Accepts the outcomes a predicate accepts.
#[derive(Clone, Copy)]
pub struct AcceptIf<F>(F);

impl<F> fmt::Debug for AcceptIf<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AcceptIf(..)")
    }
}

impl<T, E, F> HedgeClassifier<T, E> for AcceptIf<F>
where
    F: Fn(&Result<T, Error<E>>) -> bool,
{
    fn accepts(&self, outcome: &Result<T, Error<E>>) -> bool {
        (self.0)(outcome)
    }
}

// ===== impl Hedge =====

impl Hedge {
    /// Starts configuring a hedge.
    pub fn builder() -> HedgeBuilder {
        HedgeBuilder::default()
    }
}

impl<C> Hedge<C> {
    /// The instance name (used in events and metrics).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current configuration.
    pub fn config(&self) -> HedgeConfig {
        (**self.shared.config.load()).clone()
    }

    /// Replaces the whole configuration for calls deciding from now on (shared by clones).
    /// The budget keeps its tokens and the recorded latencies stay (unless the window size
    /// changes).
    ///
    /// # Errors
    ///
    /// An invalid configuration; nothing changes.
    pub fn reconfigure(&self, config: HedgeConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.shared.set_config(config);
        Ok(())
    }

    /// Which outcomes are acceptable: `predicate` replaces the default (a success is, an
    /// error is not). Accept a definite error, e.g. "not found", so that it ends the call at
    /// once instead of waiting for the hedges.
    pub fn accept_if<T, E, F>(self, predicate: F) -> Hedge<AcceptIf<F>>
    where
        F: Fn(&Result<T, Error<E>>) -> bool,
    {
        self.with_classifier(AcceptIf(predicate))
    }

    /// Replaces the classifier.
    pub fn with_classifier<D>(self, classifier: D) -> Hedge<D> {
        Hedge {
            shared: self.shared,
            classifier,
        }
    }

    /// Counts since the hedge was built.
    pub fn metrics(&self) -> HedgeMetrics {
        let counters = &self.shared.counters;
        HedgeMetrics {
            hedges_started: counters.started.load(Ordering::Relaxed),
            hedges_won: counters.won.load(Ordering::Relaxed),
            budget_refusals: counters.refused.load(Ordering::Relaxed),
            budget_tokens: self.shared.budget.tokens(),
        }
    }

    /// Registers a listener for this hedge's events (shared by clones).
    pub fn on_event(&self, listener: impl Fn(&HedgeEvent) + Send + Sync + 'static) {
        self.shared.listeners.add(listener);
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn classifier(&self) -> &C {
        &self.classifier
    }
}

impl<C: fmt::Debug> fmt::Debug for Hedge<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedge")
            .field("name", &self.shared.name)
            .field("config", &self.config())
            .field("classifier", &self.classifier)
            .finish()
    }
}

impl_decorator!(impl[C] Hedge<C> where [C: HedgeClassifier<T, E>]
    => HedgeFuture<'p, C, S, S::Future<'p, O>, T, E> = |this, inner| HedgeFuture::new(this, inner));

/// Configures a [`Hedge`].
#[derive(Debug)]
pub struct HedgeBuilder {
    name: Arc<str>,
    config: HedgeConfig,
    clock: Option<Clock>,
}

impl Default for HedgeBuilder {
    fn default() -> Self {
        Self {
            name: Arc::from("hedge"),
            config: HedgeConfig::default(),
            clock: None,
        }
    }
}

impl HedgeBuilder {
    /// The instance name (default `"hedge"`).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Starts from a whole configuration.
    pub fn config(mut self, config: HedgeConfig) -> Self {
        self.config = config;
        self
    }

    /// A fixed delay before each hedged attempt (zero: parallel mode).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.config.delay = delay;
        self
    }

    /// How many hedged attempts may start beyond the primary (default 1; 0 turns hedging
    /// off).
    pub fn max_hedged_attempts(mut self, max: u32) -> Self {
        self.config.max_hedged_attempts = max;
        self
    }

    /// A hedging budget.
    pub fn budget(mut self, budget: HedgeBudgetConfig) -> Self {
        self.config.budget = Some(budget);
        self
    }

    /// The clock for delays and latencies (default: tokio's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates and builds the hedge.
    ///
    /// # Errors
    ///
    /// As [`HedgeConfig::validate`].
    pub fn build(self) -> Result<Hedge, ConfigError> {
        self.config.validate()?;
        let shared = Shared {
            name: self.name,
            config: ArcSwap::from_pointee(self.config.clone()),
            percentile: AtomicBool::new(false),
            budget: Budget::new(None),
            latencies: Latencies::new(self.config.latency_window_size),
            clock: self.clock.unwrap_or_default(),
            listeners: Listeners::new(),
            counters: Counters::default(),
        };
        shared.set_config(self.config);
        Ok(Hedge {
            shared: Arc::new(shared),
            classifier: DefaultClassifier,
        })
    }
}

/// Counts of what a [`Hedge`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct HedgeMetrics {
    /// Hedged attempts started.
    pub hedges_started: u64,
    /// Calls a hedged attempt (not the primary) won.
    pub hedges_won: u64,
    /// Hedges the budget refused.
    pub budget_refusals: u64,
    /// Tokens saved in the budget (not counting its per-second reserve).
    pub budget_tokens: f64,
}

/// What a [`Hedge`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HedgeEvent {
    /// A hedged attempt started.
    Started {
        /// The hedge's name.
        name: Arc<str>,
        /// Its attempt number (2 for the first hedge).
        attempt: u32,
        /// The delay it waited for (zero in parallel mode or after a failure).
        after: Duration,
    },
    /// A hedged attempt's outcome won; the others were cancelled.
    Won {
        /// The hedge's name.
        name: Arc<str>,
        /// The winning attempt's number.
        attempt: u32,
    },
    /// The budget refused a hedge.
    BudgetExhausted {
        /// The hedge's name.
        name: Arc<str>,
    },
}

impl Event for HedgeEvent {
    #[cfg(feature = "tracing")]
    fn trace(&self) {
        match self {
            Self::Started {
                name,
                attempt,
                after,
            } => tracing::debug!(
                target: "seawall::hedge",
                name = %name, attempt, after = ?after,
                "hedged attempt started"
            ),
            Self::Won { name, attempt } => tracing::debug!(
                target: "seawall::hedge",
                name = %name, attempt,
                "hedged attempt won"
            ),
            Self::BudgetExhausted { name } => tracing::debug!(
                target: "seawall::hedge",
                name = %name,
                "hedging budget exhausted, no hedge started"
            ),
        }
    }
}

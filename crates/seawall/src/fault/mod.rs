//! Fault injection: make calls fail, slow down or answer wrongly on purpose, to rehearse an
//! outage ("game day") instead of waiting for one (feature `fault`).
//!
//! A [`FaultInjector`] draws, on every call, whether to inject each of three kinds of fault at
//! its own rate (see [`FaultConfig`]): an **error** (the call fails with
//! [`InjectedFault`] without running the operation), a **latency** (the call waits on the
//! injector's [`Clock`] first) and a **replaced outcome** (the call returns a value you
//! provide, without running the operation).
//!
//! Place the injector **innermost**, next to the operation, so that the real decorators
//! (timeout, retry, circuit breaker, fallback) handle the injected faults as they would handle
//! the dependency's own:
//!
//! ```text
//! retry ─▶ circuit breaker ─▶ bulkhead ─▶ timeout ─▶ fault ─▶ your operation
//! ```
//!
//! - **Off means free.** Without the `fault` feature there is no fault code in the crate. With
//!   it, an injector that is not [enabled](FaultInjector::set_enabled) costs each call one
//!   relaxed atomic load, and allocates nothing; nor does an injected error. An injected delay
//!   allocates its timer (kept out of the future so that the future stays small on every
//!   call).
//! - **Live.** Switch it on and off ([`FaultInjector::set_enabled`]) and change its rates
//!   ([`FaultInjector::reconfigure`], or the registry's section `fault`) while it runs; the
//!   next call sees the change.
//! - **Reproducible.** Draws come from a [`SplitMix64`] generator: the same seed
//!   ([`FaultInjectorBuilder::seed`], or the registry's
//!   [`BuildContext::seed`](crate::registry::BuildContext::seed)) gives the same sequence of
//!   injected calls. Reconfiguring keeps the generator where it is.
//!
//! # A game-day document
//!
//! Off by default; the day's operator switches it on for the PG's charge path, then off again
//! (through a registry reload, or an admin endpoint calling
//! [`Registry::patch`](crate::registry::Registry::patch) with `{"enabled": false}`):
//!
//! ```
//! # #[cfg(feature = "serde")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use seawall::registry::{BuildContext, Registries, document::Format};
//!
//! let document = r#"
//! fault:
//!   instances:
//!     pg-charge:
//!       enabled: true
//!       error_injection_rate: 0.05   # one charge in twenty fails
//!       latency_injection_rate: 0.2  # one in five is slow
//!       latency_duration: 3s
//! "#;
//! let registries = Registries::from_str(document, Format::Yaml, BuildContext::default().seed(42))?;
//! let injector = registries.fault_injectors().find("pg-charge").unwrap();
//! assert!(injector.is_enabled());
//!
//! // End of the game day.
//! injector.set_enabled(false);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "serde"))]
//! # fn main() {}
//! ```

mod config;
pub mod error;
pub mod future;
mod inject;
#[cfg(feature = "tower")]
mod layer;
mod plan;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::clock::Clock;
use crate::config::ConfigError;
use crate::event::{Event, Listeners};
use crate::policy::impl_decorator;
use crate::retry::{RandomSource, SplitMix64};

pub use self::config::FaultConfig;
pub use self::error::InjectedFault;
pub use self::future::FaultFuture;
pub use self::inject::{ErrorFn, InjectError, InjectOutcome, InjectedError, NoOutcome, OutcomeFn};
#[cfg(feature = "tower")]
pub use self::layer::{FaultLayer, FaultResponseFuture, FaultService};
use self::plan::{Action, Plan};

/// Injects errors, latency and replaced outcomes into calls, at configured rates.
///
/// `Fe` makes the injected errors ([`InjectedError`]: the [`InjectedFault`] marker, or your
/// own through [`with_error`](Self::with_error)) and `Fo` the injected outcomes ([`NoOutcome`]
/// unless [`with_outcome`](Self::with_outcome) gives one).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), seawall::ConfigError> {
/// use seawall::FaultInjector;
/// use seawall::fault::FaultConfig;
///
/// let injector = FaultInjector::builder()
///     .config(FaultConfig::new().enabled(true).error(1.0))
///     .seed(7)
///     .build()?;
/// let err = injector
///     .call(|| async { Ok::<_, std::io::Error>("never runs") })
///     .await
///     .unwrap_err();
/// assert!(err.is_injected());
///
/// injector.set_enabled(false);
/// let ok = injector.call(|| async { Ok::<_, std::io::Error>("runs") }).await;
/// assert_eq!(ok.unwrap(), "runs");
/// # Ok(())
/// # }
/// ```
///
/// # Clone
///
/// Clones share everything: the switch, the rates, the random generator, the counts and the
/// listeners. So do the injectors made by [`with_error`](Self::with_error) and
/// [`with_outcome`](Self::with_outcome): switching a registry's instance off switches off
/// every typed injector made from it.
#[derive(Clone)]
pub struct FaultInjector<Fe = InjectedError, Fo = NoOutcome> {
    shared: Arc<Shared>,
    error: Fe,
    outcome: Fo,
}

pub(crate) struct Shared {
    /// The switch: the only thing a disabled injector reads.
    enabled: AtomicBool,
    name: Arc<str>,
    config: ArcSwap<FaultConfig>,
    random: SplitMix64,
    clock: Clock,
    totals: [AtomicU64; 3],
    listeners: Listeners<FaultEvent>,
}

impl Shared {
    /// One relaxed load: whether to draw at all.
    #[inline]
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The faults for the next call of an enabled injector; an injected delay is counted here.
    pub(crate) fn plan(&self) -> Plan {
        let plan = plan::plan(&self.config.load(), || self.random.next_u64());
        if plan.delay.is_some() {
            self.injected(FaultKind::Latency);
        }
        plan
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub(crate) fn injected(&self, kind: FaultKind) {
        self.totals[kind as usize].fetch_add(1, Ordering::Relaxed);
        self.listeners.emit_to_listeners(|| FaultEvent::Injected {
            name: self.name.clone(),
            kind,
        });
    }

    fn set_enabled(&self, enabled: bool) {
        if self.enabled.swap(enabled, Ordering::Relaxed) != enabled {
            self.listeners.emit(|| FaultEvent::Switched {
                name: self.name.clone(),
                enabled,
            });
        }
    }
}

/// A kind of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// The call failed with an injected error.
    Error = 0,
    /// The call was delayed.
    Latency = 1,
    /// The call's outcome was replaced.
    Outcome = 2,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::Error, Self::Latency, Self::Outcome];

    /// The lowercase name (`error`, `latency`, `outcome`), as in metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Latency => "latency",
            Self::Outcome => "outcome",
        }
    }
}

// ===== impl FaultInjector =====

impl FaultInjector {
    /// A fault injector named `"fault"` with `config`, on tokio's clock, its generator seeded
    /// from the process's random hash seed.
    ///
    /// # Errors
    ///
    /// An invalid configuration (see [`FaultConfig::validate`]).
    pub fn new(config: FaultConfig) -> Result<Self, ConfigError> {
        Self::builder().config(config).build()
    }

    /// Starts configuring a fault injector (disabled, with no fault, by default).
    pub fn builder() -> FaultInjectorBuilder {
        FaultInjectorBuilder {
            name: Arc::from("fault"),
            config: FaultConfig::default(),
            clock: None,
            seed: None,
        }
    }
}

impl<Fe, Fo> FaultInjector<Fe, Fo> {
    /// The instance name (used in events and metrics).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Whether faults are being injected.
    pub fn is_enabled(&self) -> bool {
        self.shared.is_enabled()
    }

    /// Switches injection on or off for the calls that start from now on. A change is an
    /// event ([`FaultEvent::Switched`], logged by the `tracing` feature); setting the current
    /// value again is not.
    pub fn set_enabled(&self, enabled: bool) {
        self.shared.set_enabled(enabled);
    }

    /// The current configuration.
    pub fn config(&self) -> FaultConfig {
        FaultConfig {
            enabled: self.is_enabled(),
            ..**self.shared.config.load()
        }
    }

    /// Applies a whole configuration, switch included, to the calls that start from now on.
    /// The random generator keeps its place, so a seeded run stays reproducible.
    ///
    /// # Errors
    ///
    /// An invalid configuration; nothing changes.
    pub fn reconfigure(&self, config: FaultConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.shared.config.store(Arc::new(config));
        self.shared.set_enabled(config.enabled);
        Ok(())
    }

    /// How many faults of `kind` were injected since the injector was built.
    pub fn injected(&self, kind: FaultKind) -> u64 {
        self.shared.totals[kind as usize].load(Ordering::Relaxed)
    }

    /// Registers a listener for this injector's events (shared by clones). Each injection is
    /// an event for listeners ([`FaultEvent::Injected`]), never logged.
    pub fn on_event(&self, listener: impl Fn(&FaultEvent) + Send + Sync + 'static) {
        self.shared.listeners.add(listener);
    }

    /// The same injector (same switch, rates, generator and counts) failing calls with
    /// `make()`, an error of the operation's own type, instead of [`InjectedFault`]: the
    /// caller's error handling then cannot tell the rehearsal from the real thing.
    pub fn with_error<F>(self, make: F) -> FaultInjector<ErrorFn<F>, Fo> {
        FaultInjector {
            shared: self.shared,
            error: ErrorFn::new(make),
            outcome: self.outcome,
        }
    }

    /// The same injector replacing outcomes (at `outcome_injection_rate`) with `make()`, an
    /// `Ok` value or an operation error, without running the operation.
    pub fn with_outcome<F>(self, make: F) -> FaultInjector<Fe, OutcomeFn<F>> {
        FaultInjector {
            shared: self.shared,
            error: self.error,
            outcome: OutcomeFn::new(make),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn parts(&self) -> (&Fe, &Fo) {
        (&self.error, &self.outcome)
    }
}

impl<Fe, Fo> fmt::Debug for FaultInjector<Fe, Fo> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjector")
            .field("name", &self.shared.name)
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

/// What an injector does with a drawn action, for the native API and the tower layer alike:
/// `None` runs the operation.
pub(crate) fn act<T, E, Fe, Fo>(
    shared: &Shared,
    error: &Fe,
    outcome: &Fo,
    action: Action,
) -> Option<Result<T, crate::Error<E>>>
where
    Fe: InjectError<E>,
    Fo: InjectOutcome<T, E>,
{
    match action {
        Action::Run => None,
        Action::Fail => {
            shared.injected(FaultKind::Error);
            Some(Err(error.inject_error()))
        }
        Action::Replace => {
            let replaced = outcome.inject_outcome()?;
            shared.injected(FaultKind::Outcome);
            Some(replaced.map_err(crate::Error::from_inner))
        }
    }
}

impl_decorator!(impl[Fe, Fo] FaultInjector<Fe, Fo> where [Fe: InjectError<E>, Fo: InjectOutcome<T, E>]
    => FaultFuture<'p, Fe, Fo, S::Future<'p, O>>
    = |this, inner| FaultFuture::new(this, inner.start()));

/// Configures a [`FaultInjector`].
#[derive(Debug)]
pub struct FaultInjectorBuilder {
    name: Arc<str>,
    config: FaultConfig,
    clock: Option<Clock>,
    seed: Option<u64>,
}

impl FaultInjectorBuilder {
    /// The instance name (default `"fault"`).
    #[must_use]
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The whole configuration, switch included (default: disabled, no fault).
    #[must_use]
    pub fn config(mut self, config: FaultConfig) -> Self {
        self.config = config;
        self
    }

    /// The clock injected delays wait on (default: tokio's).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Seeds the random generator: the same seed gives the same sequence of injected calls
    /// (default: seeded from the process's random hash seed).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the injector.
    ///
    /// # Errors
    ///
    /// An invalid configuration (see [`FaultConfig::validate`]).
    pub fn build(self) -> Result<FaultInjector, ConfigError> {
        self.config.validate()?;
        // Its injected errors share a process-wide origin: built here, not on a call.
        crate::error::prepare_unnamed();
        Ok(FaultInjector {
            shared: Arc::new(Shared {
                enabled: AtomicBool::new(self.config.enabled),
                name: self.name,
                config: ArcSwap::from_pointee(self.config),
                random: self
                    .seed
                    .map_or_else(SplitMix64::from_entropy, SplitMix64::seeded),
                clock: self.clock.unwrap_or_default(),
                totals: Default::default(),
                listeners: Listeners::new(),
            }),
            error: InjectedError,
            outcome: NoOutcome,
        })
    }
}

/// What a [`FaultInjector`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultEvent {
    /// Injection was switched on or off (logged by the `tracing` feature).
    Switched {
        /// The injector's name.
        name: Arc<str>,
        /// Whether it is now on.
        enabled: bool,
    },
    /// A fault was injected into a call (for listeners only: never logged, as it happens per
    /// call).
    Injected {
        /// The injector's name.
        name: Arc<str>,
        /// What was injected.
        kind: FaultKind,
    },
}

impl Event for FaultEvent {
    #[cfg(feature = "tracing")]
    fn trace(&self) {
        match self {
            Self::Switched { name, enabled } => {
                tracing::warn!(target: "seawall::fault", name = %name, enabled, "fault injection switched");
            }
            Self::Injected { name, kind } => {
                tracing::trace!(target: "seawall::fault", name = %name, kind = kind.as_str(), "fault injected");
            }
        }
    }
}

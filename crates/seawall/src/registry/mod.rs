//! Named instances, shared configurations, and live reconfiguration that keeps state.
//!
//! A [`Registry`] holds the instances of one kind (circuit breakers, retries, bulkheads,
//! timeouts, rate limiters) by name, with a `default` configuration and named base configurations:
//!
//! - [`Registry::get_or_create`] returns the instance of that name, creating it from the
//!   configuration of the same name, else from `default`; an existing instance is returned as
//!   it is (its configuration is not changed by asking again).
//! - [`Registry::reconfigure`] and [`Registry::update`] change an instance's configuration
//!   **while it runs**: the new configuration is validated whole, then applied atomically to
//!   the next calls; the instance keeps its state (an open breaker stays open, its window keeps
//!   its counts). Resilience4j can only replace an instance, losing its state.
//! - Events report instances added, removed and replaced, and every configuration change
//!   with its old and new values.
//!
//! [`Registries`] bundles one registry per kind, can be built from a configuration document
//! (TOML, YAML or JSON, feature `serde`), and builds a standard [`Policy`](crate::Policy) by name.

#[cfg(feature = "serde")]
pub mod document;
mod kind;
mod registries;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

#[cfg(feature = "fault")]
pub use self::kind::FaultInjectors;
pub use self::kind::{
    AdaptiveLimiters, Bulkheads, CircuitBreakers, Hedges, Kind, RateLimiters, Retries, Timeouts,
};
pub use self::registries::{Registries, StandardPolicy};
use crate::clock::Clock;
use crate::config::{ConfigError, entry_path};
use crate::event::{Event, Listeners};

/// The name of the configuration every registry has, and every other inherits from.
pub const DEFAULT_CONFIG: &str = "default";

/// Labels attached to an instance (merged with the registry's; the instance's win on a clash).
pub type Tags = BTreeMap<String, String>;

/// What every instance of a registry is built with.
#[derive(Clone, Debug, Default)]
pub struct BuildContext {
    clock: Option<Clock>,
    seed: Option<u64>,
    memory_budget: Option<usize>,
}

/// The default memory budget of a document's circuit-breaker windows: 64 MiB.
pub const DEFAULT_MEMORY_BUDGET: usize = 64 << 20;

impl BuildContext {
    /// Instances time their calls on `clock` (default: tokio's).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Jitter draws from a generator seeded with `seed` (per instance: the seed plus a hash
    /// of the name), for reproducible runs.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The most memory the circuit breakers' windows of a registry may take in all, in bytes
    /// (default [`DEFAULT_MEMORY_BUDGET`]). A window is allocated as it fills, but a document
    /// whose windows could together outgrow this is refused when it is built or reloaded,
    /// naming the instance that crosses it, and so is a reconfiguration
    /// ([`Registry::reconfigure`], [`Registry::update`], `Registry::patch`) that grows a
    /// window past it. Instances created by [`Registry::get_or_create`] (as
    /// [`Registries::policy`] does) are not refused, but count against it from then on.
    #[must_use]
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    pub(crate) fn memory_budget_or_default(&self) -> usize {
        self.memory_budget.unwrap_or(DEFAULT_MEMORY_BUDGET)
    }

    pub(crate) fn clock_or_default(&self) -> Clock {
        self.clock.clone().unwrap_or_default()
    }

    fn seed_for(&self, name: &str) -> Option<u64> {
        self.seed.map(|seed| {
            name.bytes()
                .fold(seed ^ 0xcbf2_9ce4_8422_2325, |hash, byte| {
                    (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
                })
        })
    }
}

/// What went wrong with a registry operation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// No instance has this name.
    InstanceNotFound {
        /// The registry's section (`circuitbreaker`, …).
        section: &'static str,
        /// The name asked for.
        name: String,
    },
    /// No configuration has this name.
    ConfigNotFound {
        /// The registry's section.
        section: &'static str,
        /// The name asked for.
        name: String,
    },
    /// A configuration broke a rule; the key is the full path.
    Invalid(ConfigError),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InstanceNotFound { section, name } => {
                write!(f, "{section}: no instance named '{name}'")
            }
            Self::ConfigNotFound { section, name } => {
                write!(f, "{section}: no configuration named '{name}'")
            }
            Self::Invalid(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(err) => Some(err),
            _ => None,
        }
    }
}

/// What a registry reports.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RegistryEvent<C> {
    /// An instance was created.
    Added {
        /// The registry's section.
        section: &'static str,
        /// The instance's name.
        name: Arc<str>,
    },
    /// An instance was removed.
    Removed {
        /// The registry's section.
        section: &'static str,
        /// The instance's name.
        name: Arc<str>,
    },
    /// An instance was replaced by another of the same name.
    Replaced {
        /// The registry's section.
        section: &'static str,
        /// The instance's name.
        name: Arc<str>,
    },
    /// A running instance's configuration changed (its state was kept).
    ConfigChanged {
        /// The registry's section.
        section: &'static str,
        /// The instance's name.
        name: Arc<str>,
        /// The configuration before.
        old: C,
        /// The configuration after.
        new: C,
    },
}

impl<C: fmt::Debug + Send + Sync + 'static> Event for RegistryEvent<C> {
    #[cfg(feature = "tracing")]
    fn trace(&self) {
        match self {
            Self::Added { section, name } => {
                tracing::debug!(target: "seawall::registry", section, name = %name, "instance added");
            }
            Self::Removed { section, name } => {
                tracing::info!(target: "seawall::registry", section, name = %name, "instance removed");
            }
            Self::Replaced { section, name } => {
                tracing::info!(target: "seawall::registry", section, name = %name, "instance replaced");
            }
            Self::ConfigChanged {
                section,
                name,
                old,
                new,
            } => tracing::info!(
                target: "seawall::registry",
                section, name = %name, old = ?old, new = ?new,
                "configuration changed"
            ),
        }
    }
}

struct Entry<K: Kind> {
    instance: K::Instance,
    /// Shared: a document's instances that inherit one configuration's tags hold one copy.
    tags: Arc<Tags>,
}

pub(crate) struct Inner<K: Kind> {
    configs: RwLock<HashMap<String, K::Config>>,
    instances: RwLock<BTreeMap<String, Entry<K>>>,
    tags: Tags,
    context: BuildContext,
    listeners: Listeners<RegistryEvent<K::Config>>,
    /// Serialises reconfigurations so that each event's `old` is the previous `new`.
    reconfiguring: Mutex<()>,
    /// Keyed sets built from a configuration, reconfigured when it changes.
    followers: crate::keyed::Followers<K::Config>,
}

/// The named instances of one kind. See the [module docs](self).
///
/// # Clone
///
/// Clones share the same instances, configurations and listeners.
pub struct Registry<K: Kind> {
    inner: Arc<Inner<K>>,
}

impl<K: Kind> Clone for Registry<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Kind> Default for Registry<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Kind> fmt::Debug for Registry<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("section", &K::SECTION)
            .field("instances", &self.names())
            .finish_non_exhaustive()
    }
}

// ===== impl Registry =====

impl<K: Kind> Registry<K> {
    /// An empty registry whose `default` configuration is the library's.
    pub fn new() -> Self {
        Self::with_context(BuildContext::default(), Tags::new())
    }

    /// An empty registry building instances with `context` and labelling them with `tags`.
    pub fn with_context(context: BuildContext, tags: Tags) -> Self {
        let mut configs = HashMap::new();
        configs.insert(DEFAULT_CONFIG.to_owned(), K::default_config());
        Self {
            inner: Arc::new(Inner {
                configs: RwLock::new(configs),
                instances: RwLock::new(BTreeMap::new()),
                tags,
                context,
                listeners: Listeners::new(),
                reconfiguring: Mutex::new(()),
                followers: crate::keyed::Followers::default(),
            }),
        }
    }

    /// The registry's section name (`circuitbreaker`, `retry`, `bulkhead`, `timelimiter`).
    pub fn section(&self) -> &'static str {
        K::SECTION
    }

    /// Adds (or replaces) a named configuration, `default` included.
    ///
    /// # Errors
    ///
    /// An invalid configuration, its key under `<section>.configs.<name>`.
    pub fn add_config(&self, name: &str, config: K::Config) -> Result<(), ConfigError> {
        K::validate(&config).map_err(|err| err.under(&entry_path(K::SECTION, "configs", name)))?;
        let stored = {
            let mut configs = write(&self.inner.configs);
            configs.insert(name.to_owned(), config);
            configs.get(name).cloned()
        };
        // After the insert: a keyed set made meanwhile read the new value or is told it now.
        if let Some(config) = stored {
            self.inner.followers.notify(name, &config);
        }
        Ok(())
    }

    /// A named configuration.
    pub fn config(&self, name: &str) -> Option<K::Config> {
        read(&self.inner.configs).get(name).cloned()
    }

    /// The `default` configuration.
    pub fn default_config(&self) -> K::Config {
        self.config(DEFAULT_CONFIG)
            .unwrap_or_else(K::default_config)
    }

    /// The instance `name`, created from the configuration of the same name or else
    /// `default` if it does not exist yet.
    pub fn get_or_create(&self, name: &str) -> K::Instance {
        if let Some(instance) = self.find(name) {
            return instance;
        }
        let config = self.config(name).unwrap_or_else(|| self.default_config());
        self.insert_new(name, &config, Arc::default())
    }

    /// The instance `name`, created from `config` if it does not exist yet (an existing
    /// instance is returned unchanged, as in Resilience4j).
    ///
    /// # Errors
    ///
    /// An invalid configuration for a new instance.
    pub fn get_or_create_with(
        &self,
        name: &str,
        config: &K::Config,
        tags: Tags,
    ) -> Result<K::Instance, ConfigError> {
        self.get_or_create_shared(name, config, Arc::new(tags))
    }

    /// [`get_or_create_with`](Self::get_or_create_with) with tags shared between instances.
    pub(crate) fn get_or_create_shared(
        &self,
        name: &str,
        config: &K::Config,
        tags: Arc<Tags>,
    ) -> Result<K::Instance, ConfigError> {
        if let Some(instance) = self.find(name) {
            return Ok(instance);
        }
        K::validate(config).map_err(|err| err.under(&entry_path(K::SECTION, "instances", name)))?;
        Ok(self.insert_new(name, config, tags))
    }

    /// The instance `name`, created from the named configuration `config_name` if it does not
    /// exist yet.
    ///
    /// # Errors
    ///
    /// [`RegistryError::ConfigNotFound`] for an unknown configuration name.
    pub fn get_or_create_from(
        &self,
        name: &str,
        config_name: &str,
    ) -> Result<K::Instance, RegistryError> {
        if let Some(instance) = self.find(name) {
            return Ok(instance);
        }
        let config = self
            .config(config_name)
            .ok_or_else(|| RegistryError::ConfigNotFound {
                section: K::SECTION,
                name: config_name.to_owned(),
            })?;
        Ok(self.insert_new(name, &config, Arc::default()))
    }

    fn insert_new(&self, name: &str, config: &K::Config, tags: Arc<Tags>) -> K::Instance {
        let instance = {
            let mut instances = write(&self.inner.instances);
            // Another caller may have created it since we looked.
            if let Some(entry) = instances.get(name) {
                return entry.instance.clone();
            }
            // Every configuration a registry holds or is given was validated first.
            let instance = K::build(name, config, &self.inner.context)
                .expect("a validated configuration builds");
            instances.insert(
                name.to_owned(),
                Entry {
                    instance: instance.clone(),
                    tags,
                },
            );
            instance
        };
        self.inner.listeners.emit(|| RegistryEvent::Added {
            section: K::SECTION,
            name: name.into(),
        });
        instance
    }

    /// The instance `name`, if it exists.
    pub fn find(&self, name: &str) -> Option<K::Instance> {
        read(&self.inner.instances)
            .get(name)
            .map(|entry| entry.instance.clone())
    }

    /// Removes the instance `name` from the registry (handles already given out keep working).
    pub fn remove(&self, name: &str) -> Option<K::Instance> {
        let removed = write(&self.inner.instances).remove(name)?;
        self.inner.listeners.emit(|| RegistryEvent::Removed {
            section: K::SECTION,
            name: name.into(),
        });
        Some(removed.instance)
    }

    /// Puts `instance` under `name`, returning the one it replaced (a replacement starts with
    /// the new instance's state; prefer [`reconfigure`](Self::reconfigure) to keep state).
    pub fn replace(&self, name: &str, instance: K::Instance) -> Option<K::Instance> {
        let previous = {
            let mut instances = write(&self.inner.instances);
            let tags = instances
                .get(name)
                .map(|entry| entry.tags.clone())
                .unwrap_or_default();
            instances.insert(name.to_owned(), Entry { instance, tags })
        };
        match previous {
            Some(previous) => {
                self.inner.listeners.emit(|| RegistryEvent::Replaced {
                    section: K::SECTION,
                    name: name.into(),
                });
                Some(previous.instance)
            }
            None => {
                self.inner.listeners.emit(|| RegistryEvent::Added {
                    section: K::SECTION,
                    name: name.into(),
                });
                None
            }
        }
    }

    /// The names of all instances, sorted.
    pub fn names(&self) -> Vec<String> {
        read(&self.inner.instances).keys().cloned().collect()
    }

    /// All instances with their names, sorted by name.
    pub fn all(&self) -> Vec<(String, K::Instance)> {
        read(&self.inner.instances)
            .iter()
            .map(|(name, entry)| (name.clone(), entry.instance.clone()))
            .collect()
    }

    /// The labels of instance `name`: the registry's tags overridden by the instance's.
    pub fn tags(&self, name: &str) -> Option<Tags> {
        let instances = read(&self.inner.instances);
        let entry = instances.get(name)?;
        let mut tags = self.inner.tags.clone();
        tags.extend(
            entry
                .tags
                .iter()
                .map(|(key, value)| (key.clone(), value.clone())),
        );
        Some(tags)
    }

    /// The configuration instance `name` runs with now.
    ///
    /// # Errors
    ///
    /// [`RegistryError::InstanceNotFound`].
    pub fn current_config(&self, name: &str) -> Result<K::Config, RegistryError> {
        self.find(name)
            .map(|instance| K::current(&instance))
            .ok_or_else(|| self.not_found(name))
    }

    /// Changes instance `name`'s configuration while it runs: validated whole, then applied
    /// to the next calls; the instance keeps its state. Emits
    /// [`RegistryEvent::ConfigChanged`] with the old and new values.
    ///
    /// # Errors
    ///
    /// An unknown instance, an invalid configuration (its key under
    /// `<section>.instances.<name>`), or a breaker's window grown past the registry's
    /// [memory budget](BuildContext::memory_budget); nothing changes.
    pub fn reconfigure(&self, name: &str, config: K::Config) -> Result<(), RegistryError> {
        self.update(name, |_| Ok(config))
    }

    /// Changes instance `name`'s configuration from its current one (e.g. one field), with
    /// the same guarantees as [`reconfigure`](Self::reconfigure).
    ///
    /// # Errors
    ///
    /// As [`reconfigure`](Self::reconfigure), or the error `change` returns.
    pub fn update(
        &self,
        name: &str,
        change: impl FnOnce(K::Config) -> Result<K::Config, ConfigError>,
    ) -> Result<(), RegistryError> {
        self.change(name, change, Budget::Check)
    }

    /// [`update`](Self::update), with the memory budget checked here or (for a reload, which
    /// checks the whole document first and may grow one window as it shrinks another)
    /// already checked.
    pub(crate) fn change(
        &self,
        name: &str,
        change: impl FnOnce(K::Config) -> Result<K::Config, ConfigError>,
        budget: Budget,
    ) -> Result<(), RegistryError> {
        let instance = self.find(name).ok_or_else(|| self.not_found(name))?;
        let path = entry_path(K::SECTION, "instances", name);
        let (old, new) = {
            let _serial = self
                .inner
                .reconfiguring
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let old = K::current(&instance);
            let new =
                change(old.clone()).map_err(|err| RegistryError::Invalid(err.under(&path)))?;
            K::validate(&new).map_err(|err| RegistryError::Invalid(err.under(&path)))?;
            if budget == Budget::Check {
                self.check_growth(name, &old, &new)
                    .map_err(|err| RegistryError::Invalid(err.under(&path)))?;
            }
            K::apply(&instance, &new).map_err(|err| RegistryError::Invalid(err.under(&path)))?;
            (old, new)
        };
        if old != new {
            self.inner.listeners.emit(|| RegistryEvent::ConfigChanged {
                section: K::SECTION,
                name: name.into(),
                old,
                new,
            });
        }
        Ok(())
    }

    /// Refuses a change that grows instance `name`'s memory past the budget, counting every
    /// other instance at its current configuration.
    fn check_growth(
        &self,
        name: &str,
        old: &K::Config,
        new: &K::Config,
    ) -> Result<(), ConfigError> {
        let bound = K::memory_bound(new);
        if bound <= K::memory_bound(old) {
            return Ok(());
        }
        let others = read(&self.inner.instances)
            .iter()
            .filter(|(other, _)| other.as_str() != name)
            .map(|(_, entry)| K::memory_bound(&K::current(&entry.instance)))
            .fold(0, usize::saturating_add);
        let total = others.saturating_add(bound);
        let budget = self.inner.context.memory_budget_or_default();
        if total > budget {
            return Err(over_budget("sliding_window_size", total, budget));
        }
        Ok(())
    }

    /// Registers a listener for this registry's events.
    pub fn on_event(&self, listener: impl Fn(&RegistryEvent<K::Config>) + Send + Sync + 'static) {
        self.inner.listeners.add(listener);
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner<K>> {
        Arc::downgrade(&self.inner)
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner<K>>) -> Option<Self> {
        weak.upgrade().map(|inner| Self { inner })
    }

    pub(crate) fn context(&self) -> &BuildContext {
        &self.inner.context
    }

    pub(crate) fn followers(&self) -> &crate::keyed::Followers<K::Config> {
        &self.inner.followers
    }

    fn not_found(&self, name: &str) -> RegistryError {
        RegistryError::InstanceNotFound {
            section: self.section(),
            name: name.to_owned(),
        }
    }
}

/// Whether a change checks the memory budget itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Budget {
    Check,
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    CheckedByCaller,
}

/// The error of windows that could outgrow the memory budget, at `key`.
pub(crate) fn over_budget(key: impl Into<String>, total: usize, budget: usize) -> ConfigError {
    ConfigError::new(
        key.into(),
        format!(
            "the breakers' windows could take {} in all, over the registry's memory budget of {} (BuildContext::memory_budget)",
            mebibytes(total),
            mebibytes(budget)
        ),
    )
}

fn mebibytes(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

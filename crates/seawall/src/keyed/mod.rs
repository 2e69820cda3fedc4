//! Keyed instances: one circuit breaker, rate limiter or bulkhead per host, merchant or card
//! issuer, created on first use from a template configuration, with bounded memory.
//!
//! A [`Keyed<K, Q>`] maps keys of type `Q` to instances of the registry kind `K`
//! ([`CircuitBreakers`](crate::registry::CircuitBreakers),
//! [`RateLimiters`](crate::registry::RateLimiters), …). [`Keyed::get`] returns the key's
//! instance, building it from the template the first time; the handle is a cheap clone that
//! shares the instance's state.
//!
//! # Eviction policy
//!
//! At most [`max_keys`](KeyedConfig::max_keys) keys have an instance of their own.
//!
//! - **Idle keys go first.** A key not used for [`idle_ttl`](KeyedConfig::idle_ttl) (on the
//!   [`Clock`]) is evicted by the next lookup once the sweep is due (every quarter
//!   of the TTL), or by [`Keyed::evict_idle`].
//! - **At the bound, the least recently used keys go**, an eighth of the bound at a time (at
//!   least one key), so the scan costs each new key a constant amortised share. A key used
//!   again later gets a fresh instance from the template.
//! - **An instance that still protects is never evicted**: a breaker that is not CLOSED (OPEN,
//!   HALF_OPEN, FORCED_OPEN, DISABLED, METRICS_ONLY), a bulkhead with calls in flight, a rate
//!   limiter that has spent permits in its period. A failing key therefore cannot escape its
//!   open breaker by churning through new keys; its neighbours are evicted instead.
//! - **When every key is un-evictable and the bound is reached**, a new key shares one
//!   *overflow* instance (`name[other]`, built from the template) instead of getting its own.
//!   Calls are neither refused for a reason that has nothing to do with the dependency nor let
//!   through unprotected, and memory stays bounded (`max_keys + 1` instances). The key is not
//!   remembered: a later lookup gets its own instance as soon as there is room. This is the
//!   cache behaviour Resilience4j and tower users expect from a bounded map, with the one
//!   exception above made for instances that still protect.
//!
//! # Metrics labels
//!
//! The first [`max_labelled_keys`](KeyedConfig::max_labelled_keys) keys are labelled with their
//! own name ([`Keyed::label`]); every later key, and the overflow instance, is labelled
//! [`OTHER_LABEL`], so the number of series stays bounded however many keys pass.
//!
//! # Live reconfiguration
//!
//! [`Keyed::reconfigure`] validates the new template, then applies it to every live instance:
//! each keeps its state (an open breaker stays open). A keyed set made by
//! [`Registry::keyed`](crate::registry::Registry::keyed) follows its registry configuration.

mod config;
mod eviction;
#[cfg(feature = "metrics")]
mod metrics;
mod registry;

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

pub use self::config::{KeyedBuilder, KeyedConfig};
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use self::metrics::KeyedMetrics;
pub(crate) use self::registry::Followers;
use crate::clock::{Clock, duration_to_nanos};
use crate::config::ConfigError;
use crate::event::{Event, Listeners};
use crate::registry::{BuildContext, Kind};

/// The metrics label of keys past [`max_labelled_keys`](KeyedConfig::max_labelled_keys).
pub const OTHER_LABEL: &str = "other";

/// Shards of the key map: lookups on different shards never contend.
const SHARDS: usize = 16;

/// A key's last use is stored only when it moved by this much, so a hot key's lookups do not
/// all write the same cache line.
const TOUCH_RESOLUTION_NANOS: u64 = 1_000_000;

/// How many eviction passes a new key may start before it settles for the overflow instance.
const INSERT_PASSES: usize = 3;

/// Why a key's instance was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Eviction {
    /// Unused for longer than the idle TTL.
    Idle,
    /// Least recently used when the bound was reached.
    Capacity,
}

/// What a [`Keyed`] reports.
#[derive(Clone)]
#[non_exhaustive]
pub enum KeyedEvent<Q, I> {
    /// A key got an instance of its own.
    Created {
        /// The key.
        key: Q,
        /// Its metrics label: its name, or [`OTHER_LABEL`].
        label: Arc<str>,
        /// The new instance.
        instance: I,
    },
    /// A key's instance was evicted.
    Evicted {
        /// The key.
        key: Q,
        /// Its metrics label.
        label: Arc<str>,
        /// The evicted instance (handles given out keep working).
        instance: I,
        /// Why.
        reason: Eviction,
    },
    /// A new key found every slot un-evictable and shares the overflow instance (per lookup,
    /// so delivered to listeners only, never traced).
    Overflowed {
        /// The key.
        key: Q,
    },
}

impl<Q: fmt::Debug, I> fmt::Debug for KeyedEvent<Q, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Created { key, label, .. } => f
                .debug_struct("Created")
                .field("key", key)
                .field("label", label)
                .finish_non_exhaustive(),
            Self::Evicted {
                key, label, reason, ..
            } => f
                .debug_struct("Evicted")
                .field("key", key)
                .field("label", label)
                .field("reason", reason)
                .finish_non_exhaustive(),
            Self::Overflowed { key } => f.debug_struct("Overflowed").field("key", key).finish(),
        }
    }
}

impl<Q, I> Event for KeyedEvent<Q, I>
where
    Q: fmt::Debug + Send + Sync + 'static,
    I: Send + Sync + 'static,
{
    #[cfg(feature = "tracing")]
    fn trace(&self) {
        match self {
            Self::Created { key, .. } => {
                tracing::trace!(target: "seawall::keyed", key = ?key, "instance created");
            }
            Self::Evicted { key, reason, .. } => {
                tracing::debug!(target: "seawall::keyed", key = ?key, reason = ?reason, "instance evicted");
            }
            Self::Overflowed { key } => {
                tracing::trace!(target: "seawall::keyed", key = ?key, "every key is in use; sharing the overflow instance");
            }
        }
    }
}

struct Slot<I> {
    instance: I,
    /// Nanoseconds on the clock of the last lookup.
    touched: AtomicU64,
    label: Arc<str>,
}

impl<I> Slot<I> {
    #[inline]
    fn touch(&self, now: u64) {
        if now.saturating_sub(self.touched.load(Ordering::Relaxed)) >= TOUCH_RESOLUTION_NANOS {
            self.touched.store(now, Ordering::Relaxed);
        }
    }
}

type Shard<Q, I> = RwLock<HashMap<Q, Slot<I>>>;

struct Inner<K: Kind, Q> {
    name: Arc<str>,
    settings: KeyedConfig,
    template: RwLock<K::Config>,
    context: BuildContext,
    clock: Clock,
    hasher: RandomState,
    shards: Box<[Shard<Q, K::Instance>]>,
    len: AtomicUsize,
    /// When the next idle sweep is due (nanoseconds on the clock).
    next_sweep: AtomicU64,
    evicting: Mutex<()>,
    overflow: K::Instance,
    /// The keys that own a label (at most `max_labelled_keys`).
    labelled: Mutex<HashSet<Q>>,
    other: Arc<str>,
    listeners: Listeners<KeyedEvent<Q, K::Instance>>,
    reconfiguring: Mutex<()>,
}

/// One instance of kind `K` per key `Q`, built from a template configuration on first use.
/// See the [module docs](self) for the eviction policy.
///
/// # Examples
///
/// ```
/// use seawall::circuit_breaker::{CircuitBreakerConfig, State};
/// use seawall::keyed::Keyed;
/// use seawall::registry::CircuitBreakers;
///
/// let breakers = Keyed::<CircuitBreakers>::builder(CircuitBreakerConfig::default())
///     .name("charge")
///     .max_keys(1_000)
///     .build()?;
/// let visa = breakers.get("VISA");
/// assert_eq!(visa.name(), "charge[VISA]");
/// visa.transition_to_open()?;
/// assert_eq!(breakers.get("VISA").state(), State::Open); // same instance
/// assert_eq!(breakers.get("AMEX").state(), State::Closed); // its own
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Clone
///
/// Clones share the same keys and instances.
pub struct Keyed<K: Kind, Q = String> {
    inner: Arc<Inner<K, Q>>,
}

impl<K: Kind, Q> Clone for Keyed<K, Q> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Kind, Q> fmt::Debug for Keyed<K, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyed")
            .field("section", &K::SECTION)
            .field("name", &self.inner.name)
            .field("len", &self.inner.len.load(Ordering::Relaxed))
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl<K: Kind, Q> Keyed<K, Q>
where
    Q: Hash + Eq + Clone + fmt::Display + fmt::Debug + Send + Sync + 'static,
{
    /// Starts a keyed set whose instances are built from `template`.
    pub fn builder(template: K::Config) -> KeyedBuilder<K, Q> {
        KeyedBuilder {
            template,
            name: "keyed".to_owned(),
            settings: KeyedConfig::default(),
            context: BuildContext::default(),
            key: PhantomData,
        }
    }

    fn from_builder(builder: KeyedBuilder<K, Q>) -> Result<Self, ConfigError> {
        builder.settings.validate()?;
        K::validate(&builder.template).map_err(|err| err.under("template"))?;
        let clock = builder.context.clock_or_default();
        let overflow = K::build(
            &format!("{}[{OTHER_LABEL}]", builder.name),
            &builder.template,
            &builder.context,
        )?;
        let now = clock.now().as_nanos();
        let first_sweep = builder
            .settings
            .idle_ttl
            .map_or(u64::MAX, |ttl| now.saturating_add(sweep_interval(ttl)));
        Ok(Self {
            inner: Arc::new(Inner {
                name: builder.name.into(),
                settings: builder.settings,
                template: RwLock::new(builder.template),
                context: builder.context,
                clock,
                hasher: RandomState::new(),
                shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
                len: AtomicUsize::new(0),
                next_sweep: AtomicU64::new(first_sweep),
                evicting: Mutex::new(()),
                overflow,
                labelled: Mutex::default(),
                other: OTHER_LABEL.into(),
                listeners: Listeners::new(),
                reconfiguring: Mutex::new(()),
            }),
        })
    }

    /// The instance of `key`, built from the template on first use.
    ///
    /// A lookup of a live key takes a shard's read lock and clones a handle; it writes the
    /// key's last-use time at most once a millisecond. Past the bound with every instance
    /// un-evictable, the shared overflow instance is returned (see the [module docs](self)).
    pub fn get<B>(&self, key: &B) -> K::Instance
    where
        Q: Borrow<B>,
        B: Hash + Eq + ToOwned<Owned = Q> + ?Sized,
    {
        let now = self.now();
        self.sweep_if_due(now);
        let shard = self.shard(key);
        if let Some(slot) = read(shard).get(key) {
            slot.touch(now);
            return slot.instance.clone();
        }
        self.insert(shard, key.to_owned(), now)
    }

    /// The instance of `key` if it has one, without building it or counting a use.
    pub fn find<B>(&self, key: &B) -> Option<K::Instance>
    where
        Q: Borrow<B>,
        B: Hash + Eq + ?Sized,
    {
        read(self.shard(key))
            .get(key)
            .map(|slot| slot.instance.clone())
    }

    /// Whether `key` has an instance of its own.
    pub fn contains<B>(&self, key: &B) -> bool
    where
        Q: Borrow<B>,
        B: Hash + Eq + ?Sized,
    {
        read(self.shard(key)).contains_key(key)
    }

    /// The metrics label of a live key: its name, or [`OTHER_LABEL`].
    pub fn label<B>(&self, key: &B) -> Option<Arc<str>>
    where
        Q: Borrow<B>,
        B: Hash + Eq + ?Sized,
    {
        read(self.shard(key))
            .get(key)
            .map(|slot| slot.label.clone())
    }

    /// How many keys have an instance of their own (never more than `max_keys`).
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Whether no key has an instance.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live keys with their labels and instances, in no particular order.
    pub fn entries(&self) -> Vec<(Q, Arc<str>, K::Instance)> {
        let mut entries = Vec::with_capacity(self.len());
        for shard in &*self.inner.shards {
            entries.extend(
                read(shard)
                    .iter()
                    .map(|(key, slot)| (key.clone(), slot.label.clone(), slot.instance.clone())),
            );
        }
        entries
    }

    /// The instance new keys share when every slot is un-evictable at the bound.
    pub fn overflow(&self) -> K::Instance {
        self.inner.overflow.clone()
    }

    /// The name instances are called after (`name[key]`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The settings.
    pub fn settings(&self) -> KeyedConfig {
        self.inner.settings
    }

    /// The template new instances are built from.
    pub fn template(&self) -> K::Config {
        read(&self.inner.template).clone()
    }

    /// Replaces the template and applies it to every live instance (and the overflow
    /// instance), each keeping its state: an open breaker stays open.
    ///
    /// # Errors
    ///
    /// An invalid template, its key under `template`; nothing changes.
    pub fn reconfigure(&self, template: K::Config) -> Result<(), ConfigError> {
        K::validate(&template).map_err(|err| err.under("template"))?;
        let _serial = lock(&self.inner.reconfiguring);
        // Stored before the scan: an instance built from the old template holds its shard's
        // write lock until it is inserted, so the scan below reaches it.
        let template = {
            let mut stored = write(&self.inner.template);
            *stored = template;
            stored.clone()
        };
        K::apply(&self.inner.overflow, &template).map_err(|err| err.under("template"))?;
        for shard in &*self.inner.shards {
            for slot in read(shard).values() {
                K::apply(&slot.instance, &template).map_err(|err| err.under("template"))?;
            }
        }
        Ok(())
    }

    /// Evicts every idle key whose instance may be evicted now; returns how many went.
    /// Lookups do this by themselves every quarter of the TTL; call it from a timer to free
    /// memory when lookups stop.
    pub fn evict_idle(&self) -> usize {
        let now = self.now();
        self.evict(now, false)
    }

    /// Registers a listener for keys created, evicted and overflowed.
    pub fn on_event(&self, listener: impl Fn(&KeyedEvent<Q, K::Instance>) + Send + Sync + 'static) {
        self.inner.listeners.add(listener);
    }

    fn now(&self) -> u64 {
        self.inner.clock.now().as_nanos()
    }

    fn shard<B: Hash + ?Sized>(&self, key: &B) -> &Shard<Q, K::Instance> {
        let hash = self.inner.hasher.hash_one(key);
        // The high bits: the map inside the shard uses the low ones.
        &self.inner.shards[(hash >> 58) as usize % SHARDS]
    }

    #[inline]
    fn sweep_if_due(&self, now: u64) {
        let due = self.inner.next_sweep.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        let Some(ttl) = self.inner.settings.idle_ttl else {
            return;
        };
        let next = now.saturating_add(sweep_interval(ttl));
        if self
            .inner
            .next_sweep
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.evict(now, false);
        }
    }

    fn insert(&self, shard: &Shard<Q, K::Instance>, key: Q, now: u64) -> K::Instance {
        let max_keys = self.inner.settings.max_keys;
        let mut map = None;
        // Other new keys may take the room a pass made: a few passes before the overflow.
        for _ in 0..INSERT_PASSES {
            if self.len() >= max_keys {
                self.evict(now, true);
            }
            let locked = write(shard);
            if let Some(slot) = locked.get(&key) {
                slot.touch(now);
                return slot.instance.clone();
            }
            let reserved =
                self.inner
                    .len
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |len| {
                        (len < max_keys).then_some(len + 1)
                    });
            if reserved.is_ok() {
                map = Some(locked);
                break;
            }
        }
        let Some(mut map) = map else {
            // Per call, and many calls may overflow: listeners only, never traced.
            self.inner
                .listeners
                .emit_to_listeners(|| KeyedEvent::Overflowed { key: key.clone() });
            return self.inner.overflow.clone();
        };
        let label = self.label_for(&key);
        let name = format!("{}[{key}]", self.inner.name);
        let template = read(&self.inner.template);
        // The template was validated when it was set.
        let instance =
            K::build(&name, &template, &self.inner.context).expect("a validated template builds");
        drop(template);
        map.insert(
            key.clone(),
            Slot {
                instance: instance.clone(),
                touched: AtomicU64::new(now),
                label: label.clone(),
            },
        );
        drop(map);
        self.inner.listeners.emit(|| KeyedEvent::Created {
            key,
            label,
            instance: instance.clone(),
        });
        instance
    }

    fn label_for(&self, key: &Q) -> Arc<str> {
        let mut labelled = lock(&self.inner.labelled);
        if labelled.contains(key) {
            return key.to_string().into();
        }
        if labelled.len() < self.inner.settings.max_labelled_keys {
            labelled.insert(key.clone());
            return key.to_string().into();
        }
        self.inner.other.clone()
    }

    /// One eviction pass: every idle key, and (to make room at the bound) a batch of least
    /// recently used keys, among those whose instance may be evicted. Returns how many went.
    fn evict(&self, now: u64, make_room: bool) -> usize {
        let one_at_a_time = lock(&self.inner.evicting);
        let max_keys = self.inner.settings.max_keys;
        // Another pass may have made room while this one waited.
        let len = self.len();
        let excess = if make_room && len >= max_keys {
            (len + eviction::batch(max_keys)).saturating_sub(max_keys)
        } else {
            0
        };
        let idle_before = self
            .inner
            .settings
            .idle_ttl
            .and_then(|ttl| now.checked_sub(duration_to_nanos(ttl)));
        // First over every key, asking only the oldest whether they may go (asking a breaker
        // its state costs more than reading a time); then, if un-evictable keys were among
        // the oldest, over the evictable ones only.
        let mut evicted = 0;
        let mut events = Vec::new();
        for only_evictable in [false, true] {
            let mut touched = self.touched(only_evictable);
            let Some(plan) =
                eviction::plan(&mut touched, idle_before, excess - evicted.min(excess))
            else {
                break;
            };
            drop(touched);
            evicted += self.remove(plan, idle_before, &mut events);
            if evicted >= excess {
                break;
            }
        }
        // After the pass: a listener may look keys up (and start a pass) itself.
        drop(one_at_a_time);
        for event in events {
            self.inner.listeners.emit(|| event);
        }
        evicted
    }

    /// The last-use times of every key, or of the keys whose instance may be evicted now.
    fn touched(&self, only_evictable: bool) -> Vec<u64> {
        let mut touched = Vec::with_capacity(self.len());
        for shard in &*self.inner.shards {
            touched.extend(
                read(shard)
                    .values()
                    .filter(|slot| !only_evictable || K::evictable(&slot.instance))
                    .map(|slot| slot.touched.load(Ordering::Relaxed)),
            );
        }
        touched
    }

    /// Removes up to `plan.count` evictable keys last used at or before `plan.cutoff`, adding
    /// their events to `events` if anyone observes them.
    fn remove(
        &self,
        plan: eviction::Plan,
        idle_before: Option<u64>,
        events: &mut Vec<KeyedEvent<Q, K::Instance>>,
    ) -> usize {
        let observed = self.inner.listeners.is_observed();
        let mut left = plan.count;
        for shard in &*self.inner.shards {
            if left == 0 {
                break;
            }
            write(shard).retain(|key, slot| {
                let touched = slot.touched.load(Ordering::Relaxed);
                let go = left > 0 && touched <= plan.cutoff && K::evictable(&slot.instance);
                if go {
                    left -= 1;
                    if observed {
                        let reason = if idle_before.is_some_and(|before| touched <= before) {
                            Eviction::Idle
                        } else {
                            Eviction::Capacity
                        };
                        events.push(KeyedEvent::Evicted {
                            key: key.clone(),
                            label: slot.label.clone(),
                            instance: slot.instance.clone(),
                            reason,
                        });
                    }
                }
                !go
            });
        }
        let count = plan.count - left;
        self.inner.len.fetch_sub(count, Ordering::AcqRel);
        count
    }
}

/// How often lookups sweep idle keys: a quarter of the TTL, so a key lives at most
/// 1.25 × the TTL past its last use while lookups go on.
fn sweep_interval(ttl: std::time::Duration) -> u64 {
    (duration_to_nanos(ttl) / 4).max(1)
}

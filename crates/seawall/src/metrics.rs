//! `metrics` facade output for the instances of a [`Registries`] (feature `metrics`).
//!
//! Names and labels follow Resilience4j's Micrometer names with a `seawall_` prefix, so
//! existing dashboards port by renaming:
//!
//! | metric | type | labels | value |
//! |---|---|---|---|
//! | `seawall_circuitbreaker_calls` | counter | `name`, `kind` = `successful` / `failed` / `ignored` | calls recorded |
//! | `seawall_circuitbreaker_not_permitted_calls` | counter | `name`, `kind` = `not_permitted` | calls rejected |
//! | `seawall_circuitbreaker_state` | gauge | `name`, `state` = `closed` / `open` / `half_open` / `disabled` / `forced_open` / `metrics_only` | 1 for the current state, else 0 |
//! | `seawall_circuitbreaker_failure_rate` | gauge | `name` | percent, **NaN** below the minimum number of calls |
//! | `seawall_circuitbreaker_slow_call_rate` | gauge | `name` | percent, NaN below the minimum |
//! | `seawall_circuitbreaker_buffered_calls` | gauge | `name`, `kind` = `successful` / `failed` | calls in the window |
//! | `seawall_circuitbreaker_slow_calls` | gauge | `name`, `kind` = `successful` / `failed` | slow calls in the window |
//! | `seawall_retry_calls` | counter | `name`, `kind` = `successful_without_retry` / `successful_with_retry` / `failed_without_retry` / `failed_with_retry` | finished calls |
//! | `seawall_bulkhead_available_concurrent_calls` | gauge | `name` | free permits |
//! | `seawall_bulkhead_max_allowed_concurrent_calls` | gauge | `name` | the limit |
//! | `seawall_bulkhead_rejected_calls` | counter | `name` | calls rejected |
//! | `seawall_timeout_calls` | counter | `name`, `kind` = `successful` / `failed` / `timeout` | finished calls |
//! | `seawall_ratelimiter_available_permissions` | gauge | `name` | calls that could start now |
//! | `seawall_ratelimiter_waiting_threads` | gauge | `name` | calls waiting for their slot (Resilience4j's name) |
//! | `seawall_ratelimiter_rejected_calls` | counter | `name` | calls rejected |
//! | `seawall_fault_injections` | counter | `name`, `kind` = `error` / `latency` / `outcome` | faults injected (feature `fault`) |
//! | `seawall_fault_enabled` | gauge | `name` | 1 while injection is on, else 0 (feature `fault`) |
//! | `seawall_hedge_attempts` | counter | `name`, `kind` = `started` / `won` / `budget_refused` | hedged attempts |
//! | `seawall_hedge_budget_tokens` | gauge | `name` | tokens saved in the hedging budget |
//! | `seawall_adaptivelimiter_limit` | gauge | `name` | the current concurrency limit |
//! | `seawall_adaptivelimiter_inflight_calls` | gauge | `name` | calls holding a permit |
//! | `seawall_adaptivelimiter_rejected_calls` | counter | `name` | calls rejected |
//!
//! Every instance's tags are added as labels. Undefined rates are NaN rather than
//! Resilience4j's −1, which dashboards average into nonsense.
//!
//! Handles are registered once per instance, when it is bound; nothing is formatted per
//! call. Counters and gauges are refreshed from the instances by [`RegistryMetrics::publish`]
//! — call it before each scrape (Prometheus pulls; this mirrors Micrometer's gauges) — and
//! a breaker's state gauge also changes the moment the breaker does. Binding turns on the
//! breakers' and timeouts' call totals, which cost one atomic add per call.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use metrics::{Counter, Gauge, Label, counter, gauge};

use crate::circuit_breaker::{CircuitBreaker, CircuitBreakerEvent, State};
use crate::registry::{Kind, Registries, Registry, RegistryEvent, Tags};
use crate::{AdaptiveLimiter, Bulkhead, RateLimiter, Retry, Timeout};

fn labels(name: &str, tags: Option<Tags>) -> Vec<Label> {
    let mut labels = vec![Label::new("name", name.to_owned())];
    for (key, value) in tags.unwrap_or_default() {
        if key != "name" && key != "kind" && key != "state" {
            labels.push(Label::new(key, value));
        }
    }
    labels
}

fn with(labels: &[Label], key: &'static str, value: &'static str) -> Vec<Label> {
    let mut labels = labels.to_vec();
    labels.push(Label::new(key, value));
    labels
}

struct BreakerHandles {
    breaker: CircuitBreaker,
    successful: Counter,
    failed: Counter,
    ignored: Counter,
    not_permitted: Counter,
    states: Arc<[(State, Gauge); 6]>,
    failure_rate: Gauge,
    slow_call_rate: Gauge,
    buffered_successful: Gauge,
    buffered_failed: Gauge,
    slow_successful: Gauge,
    slow_failed: Gauge,
}

fn set_state(states: &[(State, Gauge); 6], current: State) {
    for (state, gauge) in states {
        gauge.set(if *state == current { 1.0 } else { 0.0 });
    }
}

impl BreakerHandles {
    fn bind(name: &str, breaker: CircuitBreaker, tags: Option<Tags>) -> Self {
        let base = labels(name, tags);
        let calls = |kind| counter!("seawall_circuitbreaker_calls", with(&base, "kind", kind));
        let states: Arc<[(State, Gauge); 6]> = Arc::new(State::ALL.map(|state| {
            (
                state,
                gauge!(
                    "seawall_circuitbreaker_state",
                    with(&base, "state", state.label())
                ),
            )
        }));
        breaker.shared().track_totals();
        set_state(&states, breaker.state());
        let on_change = states.clone();
        breaker.on_event(move |event| {
            if let CircuitBreakerEvent::StateTransition { to, .. } = event {
                set_state(&on_change, *to);
            }
        });
        Self {
            successful: calls("successful"),
            failed: calls("failed"),
            ignored: calls("ignored"),
            not_permitted: counter!(
                "seawall_circuitbreaker_not_permitted_calls",
                with(&base, "kind", "not_permitted")
            ),
            states,
            failure_rate: gauge!("seawall_circuitbreaker_failure_rate", base.clone()),
            slow_call_rate: gauge!("seawall_circuitbreaker_slow_call_rate", base.clone()),
            buffered_successful: gauge!(
                "seawall_circuitbreaker_buffered_calls",
                with(&base, "kind", "successful")
            ),
            buffered_failed: gauge!(
                "seawall_circuitbreaker_buffered_calls",
                with(&base, "kind", "failed")
            ),
            slow_successful: gauge!(
                "seawall_circuitbreaker_slow_calls",
                with(&base, "kind", "successful")
            ),
            slow_failed: gauge!(
                "seawall_circuitbreaker_slow_calls",
                with(&base, "kind", "failed")
            ),
            breaker,
        }
    }

    fn publish(&self) {
        let totals = &self.breaker.shared().totals;
        self.successful
            .absolute(totals.successful.load(Ordering::Relaxed));
        self.failed.absolute(totals.failed.load(Ordering::Relaxed));
        self.ignored
            .absolute(totals.ignored.load(Ordering::Relaxed));
        self.not_permitted
            .absolute(totals.not_permitted.load(Ordering::Relaxed));
        let metrics = self.breaker.metrics();
        set_state(&self.states, metrics.state);
        self.failure_rate
            .set(metrics.failure_rate.unwrap_or(f64::NAN));
        self.slow_call_rate
            .set(metrics.slow_call_rate.unwrap_or(f64::NAN));
        self.buffered_successful
            .set(metrics.successful_calls as f64);
        self.buffered_failed.set(metrics.failed_calls as f64);
        self.slow_successful
            .set(metrics.slow_successful_calls as f64);
        self.slow_failed.set(metrics.slow_failed_calls as f64);
    }
}

struct RetryHandles {
    retry: Retry,
    kinds: [Counter; 4],
}

impl RetryHandles {
    fn bind(name: &str, retry: Retry, tags: Option<Tags>) -> Self {
        let base = labels(name, tags);
        retry.shared().track();
        let kind = |kind| counter!("seawall_retry_calls", with(&base, "kind", kind));
        Self {
            kinds: [
                kind("successful_without_retry"),
                kind("successful_with_retry"),
                kind("failed_without_retry"),
                kind("failed_with_retry"),
            ],
            retry,
        }
    }

    fn publish(&self) {
        let metrics = self.retry.metrics();
        let values = [
            metrics.successful_without_retry,
            metrics.successful_with_retry,
            metrics.failed_without_retry,
            metrics.failed_with_retry,
        ];
        for (counter, value) in self.kinds.iter().zip(values) {
            counter.absolute(value);
        }
    }
}

struct BulkheadHandles {
    bulkhead: Bulkhead,
    available: Gauge,
    max_allowed: Gauge,
    rejected: Counter,
}

impl BulkheadHandles {
    fn bind(name: &str, bulkhead: Bulkhead, tags: Option<Tags>) -> Self {
        let base = labels(name, tags);
        Self {
            available: gauge!("seawall_bulkhead_available_concurrent_calls", base.clone()),
            max_allowed: gauge!(
                "seawall_bulkhead_max_allowed_concurrent_calls",
                base.clone()
            ),
            rejected: counter!("seawall_bulkhead_rejected_calls", base),
            bulkhead,
        }
    }

    fn publish(&self) {
        self.available.set(self.bulkhead.available_permits() as f64);
        self.max_allowed
            .set(self.bulkhead.max_concurrent_calls() as f64);
        self.rejected.absolute(self.bulkhead.rejected_calls());
    }
}

struct TimeoutHandles {
    timeout: Timeout,
    successful: Counter,
    failed: Counter,
    timed_out: Counter,
}

impl TimeoutHandles {
    fn bind(name: &str, timeout: Timeout, tags: Option<Tags>) -> Self {
        let base = labels(name, tags);
        timeout.shared().track();
        let kind = |kind| counter!("seawall_timeout_calls", with(&base, "kind", kind));
        Self {
            successful: kind("successful"),
            failed: kind("failed"),
            timed_out: kind("timeout"),
            timeout,
        }
    }

    fn publish(&self) {
        let totals = &self.timeout.shared().totals;
        self.successful
            .absolute(totals.successful.load(Ordering::Relaxed));
        self.failed.absolute(totals.failed.load(Ordering::Relaxed));
        self.timed_out
            .absolute(totals.timed_out.load(Ordering::Relaxed));
    }
}

struct RateLimiterHandles {
    limiter: RateLimiter,
    available: Gauge,
    waiting: Gauge,
    rejected: Counter,
}

impl RateLimiterHandles {
    fn bind(name: &str, limiter: RateLimiter, tags: Option<Tags>) -> Self {
        let base = labels(name, tags);
        Self {
            available: gauge!("seawall_ratelimiter_available_permissions", base.clone()),
            waiting: gauge!("seawall_ratelimiter_waiting_threads", base.clone()),
            rejected: counter!("seawall_ratelimiter_rejected_calls", base),
            limiter,
        }
    }

    fn publish(&self) {
        self.available
            .set(f64::from(self.limiter.available_permits()));
        self.waiting.set(self.limiter.waiting_calls() as f64);
        self.rejected.absolute(self.limiter.rejected_calls());
    }
}

#[cfg(feature = "fault")]
struct FaultHandles {
    injector: crate::FaultInjector,
    injections: [Counter; 3],
    enabled: Gauge,
}

#[cfg(feature = "fault")]
impl FaultHandles {
    fn bind(name: &str, injector: crate::FaultInjector, tags: Option<Tags>) -> Self {
        let base = labels(name, tags);
        Self {
            injections: crate::fault::FaultKind::ALL.map(|kind| {
                counter!(
                    "seawall_fault_injections",
                    with(&base, "kind", kind.as_str())
                )
            }),
            enabled: gauge!("seawall_fault_enabled", base),
            injector,
        }
    }

    fn publish(&self) {
        for (counter, kind) in self.injections.iter().zip(crate::fault::FaultKind::ALL) {
            counter.absolute(self.injector.injected(kind));
        }
        self.enabled
            .set(if self.injector.is_enabled() { 1.0 } else { 0.0 });
    }
}

struct HedgeHandles {
    hedge: crate::Hedge,
    started: Counter,
    won: Counter,
    refused: Counter,
    tokens: Gauge,
}

impl HedgeHandles {
    fn bind(name: &str, hedge: crate::Hedge, tags: Option<Tags>) -> Self {
        let base = labels(name, tags);
        let kind = |kind| counter!("seawall_hedge_attempts", with(&base, "kind", kind));
        Self {
            started: kind("started"),
            won: kind("won"),
            refused: kind("budget_refused"),
            tokens: gauge!("seawall_hedge_budget_tokens", base.clone()),
            hedge,
        }
    }

    fn publish(&self) {
        let metrics = self.hedge.metrics();
        self.started.absolute(metrics.hedges_started);
        self.won.absolute(metrics.hedges_won);
        self.refused.absolute(metrics.budget_refusals);
        self.tokens.set(metrics.budget_tokens);
    }
}

struct AdaptiveLimiterHandles {
    limiter: AdaptiveLimiter,
    limit: Gauge,
    inflight: Gauge,
    rejected: Counter,
}

impl AdaptiveLimiterHandles {
    fn bind(name: &str, limiter: AdaptiveLimiter, tags: Option<Tags>) -> Self {
        let base = labels(name, tags);
        Self {
            limit: gauge!("seawall_adaptivelimiter_limit", base.clone()),
            inflight: gauge!("seawall_adaptivelimiter_inflight_calls", base.clone()),
            rejected: counter!("seawall_adaptivelimiter_rejected_calls", base),
            limiter,
        }
    }

    fn publish(&self) {
        self.limit.set(self.limiter.limit() as f64);
        self.inflight.set(self.limiter.inflight() as f64);
        self.rejected.absolute(self.limiter.rejected_calls());
    }
}

/// Handles by instance name: a replaced instance's handles replace the old ones.
#[derive(Default)]
struct Bound {
    breakers: BTreeMap<String, BreakerHandles>,
    retries: BTreeMap<String, RetryHandles>,
    bulkheads: BTreeMap<String, BulkheadHandles>,
    timeouts: BTreeMap<String, TimeoutHandles>,
    rate_limiters: BTreeMap<String, RateLimiterHandles>,
    #[cfg(feature = "fault")]
    faults: BTreeMap<String, FaultHandles>,
    hedges: BTreeMap<String, HedgeHandles>,
    adaptive_limiters: BTreeMap<String, AdaptiveLimiterHandles>,
}

/// Metrics for every instance of a [`Registries`], present and future. See the
/// [module docs](self) for the names.
///
/// Create it after installing the global recorder (handles are taken from the recorder
/// installed when an instance is bound).
///
/// # Examples
///
/// ```
/// use seawall::metrics::RegistryMetrics;
/// use seawall::registry::Registries;
///
/// let registries = Registries::new();
/// let metrics = RegistryMetrics::new(&registries); // after installing a recorder
/// let breaker = registries.circuit_breakers().get_or_create("pg"); // bound on creation
/// metrics.publish(); // before each scrape
/// ```
#[derive(Clone)]
pub struct RegistryMetrics {
    bound: Arc<Mutex<Bound>>,
    registries: Registries,
}

impl std::fmt::Debug for RegistryMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryMetrics").finish_non_exhaustive()
    }
}

impl RegistryMetrics {
    /// Binds every instance of `registries`, and every instance added later.
    pub fn new(registries: &Registries) -> Self {
        let metrics = Self {
            bound: Arc::default(),
            registries: registries.clone(),
        };
        let weak = Arc::downgrade(&metrics.bound);
        follow(
            registries.circuit_breakers(),
            &weak,
            |bound, name, instance, tags| {
                bound
                    .breakers
                    .insert(name.to_owned(), BreakerHandles::bind(name, instance, tags));
            },
        );
        follow(
            registries.retries(),
            &weak,
            |bound, name, instance, tags| {
                bound
                    .retries
                    .insert(name.to_owned(), RetryHandles::bind(name, instance, tags));
            },
        );
        follow(
            registries.bulkheads(),
            &weak,
            |bound, name, instance, tags| {
                bound
                    .bulkheads
                    .insert(name.to_owned(), BulkheadHandles::bind(name, instance, tags));
            },
        );
        follow(
            registries.timeouts(),
            &weak,
            |bound, name, instance, tags| {
                bound
                    .timeouts
                    .insert(name.to_owned(), TimeoutHandles::bind(name, instance, tags));
            },
        );
        follow(
            registries.rate_limiters(),
            &weak,
            |bound, name, instance, tags| {
                bound.rate_limiters.insert(
                    name.to_owned(),
                    RateLimiterHandles::bind(name, instance, tags),
                );
            },
        );
        #[cfg(feature = "fault")]
        follow(
            registries.fault_injectors(),
            &weak,
            |bound, name, instance, tags| {
                bound
                    .faults
                    .insert(name.to_owned(), FaultHandles::bind(name, instance, tags));
            },
        );
        follow(registries.hedges(), &weak, |bound, name, instance, tags| {
            bound
                .hedges
                .insert(name.to_owned(), HedgeHandles::bind(name, instance, tags));
        });
        follow(
            registries.adaptive_limiters(),
            &weak,
            |bound, name, instance, tags| {
                bound.adaptive_limiters.insert(
                    name.to_owned(),
                    AdaptiveLimiterHandles::bind(name, instance, tags),
                );
            },
        );
        metrics
    }

    /// Refreshes every counter and gauge from its instance. Call it before each scrape.
    pub fn publish(&self) {
        let bound = self.bound.lock().unwrap_or_else(PoisonError::into_inner);
        bound.breakers.values().for_each(BreakerHandles::publish);
        bound.retries.values().for_each(RetryHandles::publish);
        bound.bulkheads.values().for_each(BulkheadHandles::publish);
        bound.timeouts.values().for_each(TimeoutHandles::publish);
        bound
            .rate_limiters
            .values()
            .for_each(RateLimiterHandles::publish);
        #[cfg(feature = "fault")]
        bound.faults.values().for_each(FaultHandles::publish);
        bound.hedges.values().for_each(HedgeHandles::publish);
        bound
            .adaptive_limiters
            .values()
            .for_each(AdaptiveLimiterHandles::publish);
    }

    /// The registries being measured.
    pub fn registries(&self) -> &Registries {
        &self.registries
    }
}

type Bind<I> = fn(&mut Bound, &str, I, Option<Tags>);

/// Binds the registry's instances now and whenever one is added or replaced.
fn follow<K: Kind>(registry: &Registry<K>, bound: &Weak<Mutex<Bound>>, bind: Bind<K::Instance>) {
    if let Some(strong) = bound.upgrade() {
        let mut guard = strong.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, instance) in registry.all() {
            bind(&mut guard, &name, instance, registry.tags(&name));
        }
    }
    let weak = bound.clone();
    // Weak both ways: the registry's listener must not keep the registry (or us) alive.
    let source = registry.downgrade();
    registry.on_event(move |event| {
        let (RegistryEvent::Added { name, .. } | RegistryEvent::Replaced { name, .. }) = event
        else {
            return;
        };
        let Some(source) = Registry::upgrade(&source) else {
            return;
        };
        let (Some(strong), Some(instance)) = (weak.upgrade(), source.find(name)) else {
            return;
        };
        let mut guard = strong.lock().unwrap_or_else(PoisonError::into_inner);
        bind(&mut guard, name, instance, source.tags(name));
    });
}

//! One registry per kind, and the standard policy built from them by name.

use super::{
    AdaptiveLimiters, BuildContext, Bulkheads, CircuitBreakers, Hedges, RateLimiters, Registry,
    Retries, Tags, Timeouts,
};
use crate::circuit_breaker::CircuitBreaker;
use crate::policy::{Identity, Layered, Policy};
use crate::{Bulkhead, Retry, Timeout};

/// The policy [`Registries::policy`] builds: retry, then circuit breaker, then bulkhead, then
/// a per-attempt timeout (the order recommended in the crate docs).
pub type StandardPolicy =
    Policy<Layered<Retry, Layered<CircuitBreaker, Layered<Bulkhead, Layered<Timeout, Identity>>>>>;

/// One registry per kind, sharing a build context and tags.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use seawall::registry::Registries;
///
/// let registries = Registries::new();
/// registries
///     .bulkheads()
///     .add_config("pg", seawall::bulkhead::BulkheadConfig::new(20))
///     .unwrap();
/// let policy = registries.policy("pg"); // retry → breaker → bulkhead → timeout, all named "pg"
/// assert_eq!(registries.bulkheads().find("pg").unwrap().max_concurrent_calls(), 20);
///
/// // Live: a smaller bulkhead for the next calls; the breaker's state is untouched.
/// registries.bulkheads().update("pg", |mut c| { c.max_concurrent_calls = 5; Ok(c) }).unwrap();
/// let value = policy.call(|| async { Ok::<_, std::io::Error>(7) }).await.unwrap();
/// assert_eq!(value, 7);
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Registries {
    pub(super) circuit_breakers: Registry<CircuitBreakers>,
    pub(super) retries: Registry<Retries>,
    pub(super) bulkheads: Registry<Bulkheads>,
    pub(super) timeouts: Registry<Timeouts>,
    pub(super) rate_limiters: Registry<RateLimiters>,
    #[cfg(feature = "fault")]
    pub(super) fault_injectors: Registry<super::FaultInjectors>,
    pub(super) hedges: Registry<Hedges>,
    pub(super) adaptive_limiters: Registry<AdaptiveLimiters>,
}

impl Registries {
    /// Empty registries with the library's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty registries building instances with `context`, labelled with `tags`.
    pub fn with_context(context: BuildContext, tags: Tags) -> Self {
        Self {
            circuit_breakers: Registry::with_context(context.clone(), tags.clone()),
            retries: Registry::with_context(context.clone(), tags.clone()),
            bulkheads: Registry::with_context(context.clone(), tags.clone()),
            timeouts: Registry::with_context(context.clone(), tags.clone()),
            #[cfg(feature = "fault")]
            fault_injectors: Registry::with_context(context.clone(), tags.clone()),
            rate_limiters: Registry::with_context(context.clone(), tags.clone()),
            hedges: Registry::with_context(context.clone(), tags.clone()),
            adaptive_limiters: Registry::with_context(context, tags),
        }
    }

    /// The circuit breakers.
    pub fn circuit_breakers(&self) -> &Registry<CircuitBreakers> {
        &self.circuit_breakers
    }

    /// The retries.
    pub fn retries(&self) -> &Registry<Retries> {
        &self.retries
    }

    /// The bulkheads.
    pub fn bulkheads(&self) -> &Registry<Bulkheads> {
        &self.bulkheads
    }

    /// The timeouts.
    pub fn timeouts(&self) -> &Registry<Timeouts> {
        &self.timeouts
    }

    /// The rate limiters.
    pub fn rate_limiters(&self) -> &Registry<RateLimiters> {
        &self.rate_limiters
    }

    /// The fault injectors (feature `fault`).
    #[cfg(feature = "fault")]
    pub fn fault_injectors(&self) -> &Registry<super::FaultInjectors> {
        &self.fault_injectors
    }

    /// The hedges (not part of [`policy`](Self::policy): hedge only idempotent calls, and
    /// compose a hedge into a policy of your own).
    pub fn hedges(&self) -> &Registry<Hedges> {
        &self.hedges
    }

    /// The adaptive concurrency limiters.
    pub fn adaptive_limiters(&self) -> &Registry<AdaptiveLimiters> {
        &self.adaptive_limiters
    }

    /// The standard policy for `name`: the retry, circuit breaker, bulkhead and timeout named
    /// `name` (each created from its configuration of that name, else `default`), composed
    /// retry → breaker → bulkhead → per-attempt timeout. The instances are shared: a live
    /// reconfiguration through the registries applies to the policy's next calls.
    pub fn policy(&self, name: &str) -> StandardPolicy {
        Policy::builder()
            .retry(self.retries.get_or_create(name))
            .circuit_breaker(self.circuit_breakers.get_or_create(name))
            .bulkhead(self.bulkheads.get_or_create(name))
            .timeout(self.timeouts.get_or_create(name))
            .build()
    }
}

//! The kinds of instance a registry holds, and how each is built and reconfigured.

use super::BuildContext;
use crate::adaptive::AdaptiveLimiterConfig;
use crate::bulkhead::BulkheadConfig;
use crate::circuit_breaker::{CircuitBreaker, CircuitBreakerConfig};
use crate::config::ConfigError;
use crate::hedge::{Hedge, HedgeConfig};
use crate::rate_limiter::RateLimiterConfig;
use crate::retry::RetryConfig;
use crate::timeout::TimeoutConfig;
use crate::{AdaptiveLimiter, Bulkhead, RateLimiter, Retry, Timeout};

mod sealed {
    use super::{BuildContext, ConfigError};

    /// What a registry does with instances of a kind. Not nameable outside the crate: users
    /// reach instances through [`Registry`](super::Registry), never build them through this.
    pub trait Sealed {
        /// The configuration of one instance.
        type Config: Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static;
        /// The instance (a cheap handle; clones share state).
        type Instance: Clone + Send + Sync + 'static;

        fn default_config() -> Self::Config;

        fn validate(config: &Self::Config) -> Result<(), ConfigError>;

        /// Builds a new instance from a validated configuration.
        fn build(
            name: &str,
            config: &Self::Config,
            context: &BuildContext,
        ) -> Result<Self::Instance, ConfigError>;

        fn current(instance: &Self::Instance) -> Self::Config;

        fn apply(instance: &Self::Instance, config: &Self::Config) -> Result<(), ConfigError>;

        /// The most memory an instance with this configuration can take beyond its fixed
        /// size (a breaker's window), counted against the memory budget.
        fn memory_bound(config: &Self::Config) -> usize {
            let _ = config;
            0
        }

        /// Whether a [`Keyed`](crate::keyed::Keyed) may evict this instance now: false
        /// while dropping it would lose protection (an open breaker, a busy bulkhead).
        fn evictable(instance: &Self::Instance) -> bool {
            let _ = instance;
            true
        }
    }
}

use self::sealed::Sealed;

/// A kind of instance a [`Registry`](super::Registry) can hold: [`CircuitBreakers`], [`Retries`],
/// [`Bulkheads`], [`Timeouts`], [`RateLimiters`] or [`AdaptiveLimiters`]. Sealed. `K::Config` is the kind's
/// configuration type and `K::Instance` its instance type.
pub trait Kind: Sealed + Send + Sync + 'static {
    /// The section name in configuration documents and metrics (`circuitbreaker`, …).
    const SECTION: &'static str;
}

/// Declares a kind: its marker type, its section, and how its instances are built.
macro_rules! kind {
    (
        $(#[$meta:meta])* $kind:ident: $config:ty => $instance:ty, $section:literal;
        build($name:ident, $cfg:ident, $context:ident) $build:block
        apply($instance_arg:ident, $new:ident) $apply:block
        $(memory($memory_cfg:ident) $memory:block)?
        $(evictable($evictable_instance:ident) $evictable:block)?
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub enum $kind {}

        impl Kind for $kind {
            const SECTION: &'static str = $section;
        }

        impl Sealed for $kind {
            type Config = $config;
            type Instance = $instance;

            fn default_config() -> $config {
                <$config>::default()
            }

            fn validate(config: &$config) -> Result<(), ConfigError> {
                config.validate()
            }

            fn build(
                $name: &str,
                $cfg: &$config,
                $context: &BuildContext,
            ) -> Result<$instance, ConfigError> $build

            fn current(instance: &$instance) -> $config {
                instance.config()
            }

            fn apply($instance_arg: &$instance, $new: &$config) -> Result<(), ConfigError> $apply

            $(fn memory_bound($memory_cfg: &$config) -> usize $memory)?

            $(fn evictable($evictable_instance: &$instance) -> bool $evictable)?
        }
    };
}

kind! {
    /// Circuit breakers.
    CircuitBreakers: CircuitBreakerConfig => CircuitBreaker, "circuitbreaker";
    build(name, config, context) {
        let mut builder = CircuitBreaker::builder()
            .name(name)
            .config(config.clone())
            .clock(context.clock_or_default());
        if let Some(seed) = context.seed_for(name) {
            builder = builder.random(crate::retry::SplitMix64::seeded(seed));
        }
        builder.build()
    }
    apply(instance, config) { instance.reconfigure(config.clone()) }
    memory(config) { config.window_memory_bound() }
    // Only a CLOSED breaker may go: an open, half-open or forced one must not be escaped by
    // churning keys.
    evictable(breaker) { breaker.state() == crate::circuit_breaker::State::Closed }
}

kind! {
    /// Retries.
    Retries: RetryConfig => Retry, "retry";
    build(name, config, context) {
        let mut builder = Retry::builder()
            .name(name)
            .config(config.clone())
            .clock(context.clock_or_default());
        if let Some(seed) = context.seed_for(name) {
            builder = builder.seed(seed);
        }
        builder.build()
    }
    apply(instance, config) { instance.reconfigure(config.clone()) }
}

kind! {
    /// Bulkheads.
    Bulkheads: BulkheadConfig => Bulkhead, "bulkhead";
    build(name, config, context) {
        Bulkhead::builder()
            .name(name)
            .config(*config)
            .clock(context.clock_or_default())
            .build()
    }
    apply(instance, config) { instance.reconfigure(*config) }
    // A bulkhead with calls in flight must not be replaced by a fresh one.
    evictable(bulkhead) { bulkhead.available_permits() >= bulkhead.max_concurrent_calls() }
}

kind! {
    /// Timeouts (Resilience4j's time limiters).
    Timeouts: TimeoutConfig => Timeout, "timelimiter";
    build(name, config, context) {
        Ok(Timeout::builder(config.duration)
            .name(name)
            .clock(context.clock_or_default())
            .build())
    }
    apply(instance, config) { instance.reconfigure(*config) }
}

#[cfg(feature = "fault")]
kind! {
    /// Fault injectors (feature `fault`). Reconfiguring one keeps its random generator's place.
    FaultInjectors: crate::fault::FaultConfig => crate::FaultInjector, "fault";
    build(name, config, context) {
        let mut builder = crate::FaultInjector::builder()
            .name(name)
            .config(*config)
            .clock(context.clock_or_default());
        if let Some(seed) = context.seed_for(name) {
            builder = builder.seed(seed);
        }
        builder.build()
    }
    apply(instance, config) { instance.reconfigure(*config) }
}

kind! {
    /// Rate limiters.
    RateLimiters: RateLimiterConfig => RateLimiter, "ratelimiter";
    build(name, config, context) {
        RateLimiter::builder()
            .name(name)
            .config(*config)
            .clock(context.clock_or_default())
            .build()
    }
    apply(instance, config) { instance.reconfigure(*config) }
    // A limiter that has spent permits in its period must not be escaped by churning keys.
    evictable(limiter) { limiter.available_permits() >= limiter.config().limit_for_period }
}

kind! {
    /// Hedges.
    Hedges: HedgeConfig => Hedge, "hedge";
    build(name, config, context) {
        Hedge::builder()
            .name(name)
            .config(config.clone())
            .clock(context.clock_or_default())
            .build()
    }
    apply(instance, config) { instance.reconfigure(config.clone()) }
}

kind! {
    /// Adaptive concurrency limiters. A live reconfiguration keeps the current limit (clamped
    /// into the new bounds) and the calls in flight.
    AdaptiveLimiters: AdaptiveLimiterConfig => AdaptiveLimiter, "adaptivelimiter";
    build(name, config, context) {
        AdaptiveLimiter::builder()
            .name(name)
            .config(*config)
            .clock(context.clock_or_default())
            .build()
    }
    apply(instance, config) { instance.reconfigure(*config) }
}

//! The one way to build a [`Retry`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::{
    Backoff, Counters, DefaultClassifier, RandomSource, Retry, RetryBudget, RetryConfig, Shared,
    SplitMix64,
};
use crate::clock::Clock;
use crate::config::ConfigError;
use crate::event::Listeners;

/// Configures a [`Retry`].
#[derive(Debug)]
pub struct RetryBuilder {
    name: Arc<str>,
    config: RetryConfig,
    budget: Option<RetryBudget>,
    random: Option<Arc<dyn RandomSource>>,
    clock: Option<Clock>,
}

impl Default for RetryBuilder {
    fn default() -> Self {
        Self {
            name: Arc::from("retry"),
            config: RetryConfig::default(),
            budget: None,
            random: None,
            clock: None,
        }
    }
}

impl RetryBuilder {
    /// The instance name (default `"retry"`).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The maximum number of attempts, **counting the first call** (default 3, as in
    /// Resilience4j). 1 disables retrying.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.config.max_attempts = max_attempts;
        self
    }

    /// The wait before each retry (default: [`Backoff::default`], exponential from 500 ms with
    /// full jitter, capped at 30 s).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.config.backoff = backoff;
        self
    }

    /// Retry at once, with no wait.
    pub fn no_backoff(self) -> Self {
        self.backoff(Backoff::none())
    }

    /// Stop retrying when the next wait would end more than `max_elapsed` after the first
    /// attempt started.
    pub fn max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.config.max_elapsed = Some(max_elapsed);
        self
    }

    /// When the results of all attempts were rejected by `retry_on_result`: return an error
    /// ([`ErrorKind::RetriesExhausted`](crate::ErrorKind::RetriesExhausted)) instead of the last
    /// result (default false, as in Resilience4j).
    pub fn fail_after_max_attempts(mut self, fail: bool) -> Self {
        self.config.fail_after_max_attempts = fail;
        self
    }

    /// Starts from a whole configuration.
    pub fn config(mut self, config: RetryConfig) -> Self {
        self.config = config;
        self
    }

    /// Throttle retries with a budget shared by every retry holding a clone of it (it takes
    /// the place of a budget described in the configuration).
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The random source for jitter (default: [`SplitMix64::from_entropy`]).
    pub fn random(mut self, random: impl RandomSource + 'static) -> Self {
        self.random = Some(Arc::new(random));
        self
    }

    /// A seeded random source, for reproducible jitter.
    pub fn seed(self, seed: u64) -> Self {
        self.random(SplitMix64::seeded(seed))
    }

    /// The clock for waits and the elapsed-time limit (default: tokio's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates and builds the retry.
    ///
    /// # Errors
    ///
    /// `max_attempts` of zero, an invalid backoff, or a zero `max_elapsed`.
    pub fn build(self) -> Result<Retry, ConfigError> {
        self.config.validate()?;
        let budget = match (self.budget, self.config.budget) {
            (Some(shared), _) => Some(shared),
            (None, Some(own)) => Some(RetryBudget::from_config(own)?),
            (None, None) => None,
        };
        let shared = Shared {
            name: self.name,
            config: ArcSwap::from_pointee(self.config.clone()),
            max_elapsed_nanos: AtomicU64::new(0),
            max_attempts: AtomicU32::new(0),
            budget,
            random: self
                .random
                .unwrap_or_else(|| Arc::new(SplitMix64::from_entropy())),
            clock: self.clock.unwrap_or_default(),
            listeners: Listeners::new(),
            counters: Counters::default(),
        };
        shared.set_config(self.config);
        Ok(Retry {
            shared: Arc::new(shared),
            classifier: DefaultClassifier,
        })
    }
}

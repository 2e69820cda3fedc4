//! Following a PG that is slow but working, instead of cutting it off.
//!
//! The charge path's limits were chosen for a PG that answers within half a second: a 1.5 s
//! read timeout, 64 attempts in flight, calls over 1 s slow. A PG whose normal is 2–4 s would
//! see every charge cut off or counted slow, and the breaker open on a PG that works. So the
//! charge path follows the latency of the charges the PG *accepted*, with seawall's 1.3 × P95
//! rule ([`SlowCallTuner`]):
//!
//! - the **read timeout** is `1.3 × P95`, between the configured `charge.read_timeout` (the
//!   floor) and [`ChargeTuningSettings::read_timeout_ceiling_ms`];
//! - the breaker's **slow-call threshold** is `1.3 × P95` between the configured threshold
//!   and the same ceiling, applied through the registry's live reconfiguration (the breaker
//!   keeps its state; a `ConfigChanged` event records the change);
//! - the **bulkhead** grows with the timeout (Little's law: the same orders per second at
//!   *k* times the latency hold *k* times the permits), between the configured size and
//!   [`ChargeTuningSettings::bulkhead_ceiling`];
//! - the adaptive limit's **wait for a permit** is half the read timeout: long enough for
//!   the first answers of a slow PG to open the gate (3 s at the 6 s ceiling), short enough
//!   that no waiter gets in behind a first wave that hangs, and 0.75 s on a fast PG, so a
//!   hang mid-run costs a waiting shopper under a second (measured in the demo's "PG down"
//!   row: p99 2.00 s with half, 2.47 s with two thirds, 4.30 s with a fixed 4 s).
//!
//! P95 is taken over the last `sample_size` accepted attempts, re-evaluated every `every` new
//! ones once `min_samples` are in; a change under 10 % is not made (no flapping). Until the
//! first evaluation the PG's latency is unknown, so the charge path starts at its ceilings,
//! and comes down to the configured values as soon as a fast PG has shown itself.
//!
//! A hanging PG is never followed: a timeout, a refused or a lost request is not an accepted
//! attempt, so it adds no sample ([`pg_client::PgClientBuilder::on_charge_accepted`]); the
//! limits stay where the last answers put them, and the timeouts, which the breaker counts
//! as failures, open it as before. What the ceilings cost: a service that starts while its
//! PG hangs waits up to the ceiling on its first charges, and a PG that turns slow *after*
//! the limits came down is not followed (its answers past the timeout are never seen); the
//! breaker opens on it as it did before this tuning.
//!
//! The tuning owns the charge breaker's slow-call threshold: a value set live through the
//! admin API holds until the next evaluation. Turn the tuning off to pin it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use pg_client::{CallPath, PgClient, PgClientConfig};
use seawall::ConfigError;
use seawall::registry::{CircuitBreakers, Registry};
use seawall::tuning::SlowCallTuner;
use serde::{Deserialize, Serialize};

use super::pg::CHARGE_BREAKER;

/// `[gateway.charge_tuning]`: how the charge path follows the PG's latency (see the
/// [module docs](self)).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ChargeTuningSettings {
    /// Follow the PG's latency (default true). Off: the configured limits, fixed.
    pub enabled: bool,
    /// Accepted charge attempts the P95 is taken over (default 50).
    pub sample_size: usize,
    /// Accepted attempts needed before the first evaluation (default 20).
    pub min_samples: usize,
    /// Re-evaluate after this many new accepted attempts (default 10).
    pub every: usize,
    /// The longest read timeout and slow-call threshold the tuning sets (default 6 s).
    pub read_timeout_ceiling_ms: u64,
    /// The most charge attempts in flight the tuning allows (default 192).
    pub bulkhead_ceiling: usize,
}

impl Default for ChargeTuningSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            sample_size: 50,
            min_samples: 20,
            every: 10,
            read_timeout_ceiling_ms: 6_000,
            bulkhead_ceiling: 192,
        }
    }
}

fn at_least(key: &'static str, value: u64, min: u64, what: &str) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::new(
            key,
            format!("must be >= {min}{what}, got {value}"),
        ));
    }
    Ok(())
}

fn count(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl ChargeTuningSettings {
    /// Checks the values, and the ceilings against the client's configured limits.
    ///
    /// # Errors
    ///
    /// The first rule broken, named `gateway.charge_tuning.<key>`.
    pub fn validate(&self, client: &PgClientConfig) -> Result<(), ConfigError> {
        at_least("sample_size", count(self.sample_size), 1, "")?;
        if self.sample_size > 10_000 {
            return Err(ConfigError::new(
                "sample_size",
                format!("must be <= 10000, got {}", self.sample_size),
            ));
        }
        at_least("min_samples", count(self.min_samples), 1, "")?;
        if self.min_samples > self.sample_size {
            return Err(ConfigError::new(
                "min_samples",
                format!(
                    "must be <= sample_size ({}), got {}",
                    self.sample_size, self.min_samples
                ),
            ));
        }
        at_least("every", count(self.every), 1, "")?;
        let charge = &client.charge;
        at_least(
            "read_timeout_ceiling_ms",
            self.read_timeout_ceiling_ms,
            millis(charge.read_timeout),
            " (gateway.client.charge.read_timeout)",
        )?;
        if self.read_timeout_ceiling_ms > crate::configuration::MAX_MS {
            return Err(ConfigError::new(
                "read_timeout_ceiling_ms",
                format!(
                    "must be <= {} (365 days), got {}",
                    crate::configuration::MAX_MS,
                    self.read_timeout_ceiling_ms
                ),
            ));
        }
        at_least(
            "bulkhead_ceiling",
            count(self.bulkhead_ceiling),
            count(charge.bulkhead.max_concurrent_calls),
            " (gateway.client.charge.bulkhead.max_concurrent_calls)",
        )
    }

    fn ceiling(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ceiling_ms)
    }
}

/// The recent accepted-attempt latencies, and when to look at them again. Pure: no clock.
#[derive(Clone, Debug)]
pub struct LatencyWindow {
    samples: VecDeque<Duration>,
    capacity: usize,
    min_samples: usize,
    every: usize,
    since_evaluation: usize,
    evaluated: bool,
}

impl LatencyWindow {
    /// A window of the last `settings.sample_size` latencies.
    pub fn new(settings: &ChargeTuningSettings) -> Self {
        let capacity = settings.sample_size.max(1);
        Self {
            samples: VecDeque::with_capacity(capacity),
            capacity,
            min_samples: settings.min_samples.clamp(1, capacity),
            every: settings.every.max(1),
            since_evaluation: 0,
            evaluated: false,
        }
    }

    /// Adds one latency; returns the P95 when it is time to evaluate (the first time
    /// `min_samples` are in, then every `every` new ones).
    pub fn push(&mut self, took: Duration) -> Option<Duration> {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(took);
        self.since_evaluation += 1;
        let due = if self.evaluated {
            self.since_evaluation >= self.every
        } else {
            self.samples.len() >= self.min_samples
        };
        if !due {
            return None;
        }
        self.evaluated = true;
        self.since_evaluation = 0;
        self.p95()
    }

    /// The 95th percentile (nearest rank) of the window; `None` when empty.
    pub fn p95(&self) -> Option<Duration> {
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        let rank = (sorted.len() * 95).div_ceil(100);
        sorted.get(rank.checked_sub(1)?).copied()
    }
}

/// The charge path's configured limits (the floors) and the tuning's rules. Pure.
#[derive(Clone, Debug, PartialEq)]
pub struct ChargeLimits {
    read_timeout: Duration,
    slow_call_threshold: Duration,
    bulkhead: usize,
    settings: ChargeTuningSettings,
}

impl ChargeLimits {
    /// The limits `client` configures, tuned by `settings`.
    pub fn new(client: &PgClientConfig, settings: &ChargeTuningSettings) -> Self {
        let charge = &client.charge;
        Self {
            read_timeout: charge.read_timeout,
            slow_call_threshold: charge
                .circuit_breaker
                .slow_call_duration_threshold
                .unwrap_or(charge.read_timeout),
            bulkhead: charge.bulkhead.max_concurrent_calls,
            settings: settings.clone(),
        }
    }

    fn tuner(&self, floor: Duration) -> SlowCallTuner {
        let ceiling = self.settings.ceiling();
        SlowCallTuner {
            min: floor.min(ceiling),
            max: ceiling,
            ..SlowCallTuner::default()
        }
    }

    /// The rule of the read timeout: 1.3 × P95 between the configured timeout and the ceiling.
    pub fn read_timeout_tuner(&self) -> SlowCallTuner {
        self.tuner(self.read_timeout)
    }

    /// The rule of the slow-call threshold: 1.3 × P95 between the configured threshold and
    /// the ceiling.
    pub fn slow_call_tuner(&self) -> SlowCallTuner {
        self.tuner(self.slow_call_threshold)
    }

    /// The read timeout to use after `p95`, if it changes enough from `current`.
    pub fn read_timeout_for(&self, p95: Duration, current: Duration) -> Option<Duration> {
        self.read_timeout_tuner().propose(p95, Some(current))
    }

    /// The bulkhead for a read timeout: the configured size scaled by how much longer than
    /// configured an attempt may take, between the configured size and the ceiling.
    pub fn bulkhead_for(&self, read_timeout: Duration) -> usize {
        let ratio = read_timeout.as_secs_f64() / self.read_timeout.as_secs_f64().max(1e-9);
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let scaled = (self.bulkhead as f64 * ratio).ceil().min(usize::MAX as f64) as usize;
        scaled.clamp(
            self.bulkhead,
            self.settings.bulkhead_ceiling.max(self.bulkhead),
        )
    }

    /// How long a charge waits for a permit of the adaptive limit under `read_timeout`.
    pub fn permit_wait_for(read_timeout: Duration) -> Duration {
        read_timeout / 2
    }

    /// The starting point, while the PG's latency is unknown: the ceilings.
    pub fn start(&self) -> (Duration, usize) {
        let ceiling = self.settings.ceiling().max(self.read_timeout);
        (ceiling, self.bulkhead_for(ceiling))
    }
}

/// The shell: observes accepted charges and applies the limits to the live client and breaker.
#[derive(Debug)]
pub struct ChargeTuner {
    limits: ChargeLimits,
    window: Mutex<LatencyWindow>,
    breakers: Registry<CircuitBreakers>,
    charge_breaker: Arc<str>,
    client: OnceLock<Weak<PgClient>>,
}

impl ChargeTuner {
    /// A tuner for the charge path of the client configured by `client`, its breaker
    /// `pg-charge` in `breakers`.
    pub fn new(
        client: &PgClientConfig,
        settings: &ChargeTuningSettings,
        breakers: Registry<CircuitBreakers>,
    ) -> Self {
        Self {
            limits: ChargeLimits::new(client, settings),
            window: Mutex::new(LatencyWindow::new(settings)),
            breakers,
            charge_breaker: Arc::from(CHARGE_BREAKER),
            client: OnceLock::new(),
        }
    }

    /// Tunes the charge breaker named `name` instead of `pg-charge` (a second PG's).
    #[must_use]
    pub fn for_breaker(mut self, name: &str) -> Self {
        self.charge_breaker = Arc::from(name);
        self
    }

    /// Starts following `client` (held weakly: the client holds the tuner through its
    /// observer): its charge path goes to the ceilings until the first evaluation.
    ///
    /// # Errors
    ///
    /// The breaker `pg-charge` is not in the registry, or a limit was refused.
    pub fn attach(&self, client: &Arc<PgClient>) -> Result<(), ConfigError> {
        let _ = self.client.set(Arc::downgrade(client));
        let (read_timeout, bulkhead) = self.limits.start();
        client.set_charge_read_timeout(read_timeout)?;
        client
            .bulkhead(CallPath::Charge)
            .set_max_concurrent_calls(bulkhead)?;
        set_permit_wait(client, read_timeout)?;
        self.breakers
            .update(&self.charge_breaker, |mut config| {
                config.slow_call_duration_threshold = Some(read_timeout);
                Ok(config)
            })
            .map_err(|e| ConfigError::new("gateway.charge_tuning", e.to_string()))?;
        self.sync_card_types();
        Ok(())
    }

    /// Passes the `pg-charge` breaker's configuration on to the card types' breakers (they
    /// follow the registry's configuration `pg-charge`, not the instance).
    fn sync_card_types(&self) {
        if let Err(error) =
            super::pg::sync_card_type_breakers_of(&self.breakers, &self.charge_breaker)
        {
            tracing::warn!(%error, "card types' breakers not tuned");
        }
    }

    /// One accepted charge attempt took `took`; evaluates and applies when it is time.
    pub fn observe(&self, took: Duration) {
        let p95 = self
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(took);
        if let Some(p95) = p95 {
            self.apply(p95);
        }
    }

    fn apply(&self, p95: Duration) {
        let Some(client) = self.client.get().and_then(Weak::upgrade) else {
            return;
        };
        if let Err(error) =
            self.limits
                .slow_call_tuner()
                .apply(&self.breakers, &self.charge_breaker, p95)
        {
            tracing::warn!(%error, "slow-call threshold not tuned");
        }
        self.sync_card_types();
        let current = client.charge_read_timeout();
        let Some(read_timeout) = self.limits.read_timeout_for(p95, current) else {
            return;
        };
        let bulkhead = self.limits.bulkhead_for(read_timeout);
        let applied = client
            .set_charge_read_timeout(read_timeout)
            .and_then(|()| {
                client
                    .bulkhead(CallPath::Charge)
                    .set_max_concurrent_calls(bulkhead)
            })
            .and_then(|()| set_permit_wait(&client, read_timeout));
        match applied {
            Ok(()) => tracing::info!(
                p95_ms = millis(p95),
                read_timeout_ms = millis(read_timeout),
                bulkhead,
                "charge limits follow the PG's latency"
            ),
            Err(error) => tracing::warn!(%error, "charge limits not tuned"),
        }
    }
}

/// Sets the charge path's wait for an adaptive-limit permit from its read timeout (the
/// limiter keeps its current limit).
fn set_permit_wait(client: &PgClient, read_timeout: Duration) -> Result<(), ConfigError> {
    let limiter = client.adaptive_limiter(CallPath::Charge);
    let mut config = limiter.config();
    config.max_wait = ChargeLimits::permit_wait_for(read_timeout);
    limiter.reconfigure(config)
}

#[cfg(test)]
#[path = "tuning_tests.rs"]
mod tests;

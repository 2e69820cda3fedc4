//! The payment gateways' settings (`[gateway]`, `[[gateway.others]]`, `[gateway.fault]`):
//! the primary PG's client over the service's tuned defaults, the other PGs a charge may
//! route to, and the fault injectors.

use std::time::Duration;

use pg_client::PgClientConfig;
use seawall::adaptive::{AdaptiveLimiterConfig, LimitAlgorithm};
use seawall::circuit_breaker::{OpenWait, SlidingWindow};
use serde::{Deserialize, Serialize};

use crate::gateway::tuning::ChargeTuningSettings;

/// Payment gateway client settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// The primary PG's name (default `A`): the call log's and the payment rows' `pg`; its
    /// callbacks come to `/api/v1/payments/callback`.
    pub name: String,
    /// The primary PG's place in the charge order among [`others`](Self::others) (lower
    /// first; default 0, and the primary goes first on a tie).
    pub priority: i32,
    /// Further PGs (`[[gateway.others]]`), each with its own client, breakers and callback
    /// secret; a charge fails over to the next PG only when the previous one provably
    /// created nothing (see [`crate::gateway::routing`]).
    pub others: Vec<PgRouteSettings>,
    /// PG base URL. `serve` starts an in-process simulator when this is unset. Overrides
    /// `client.base_url`.
    pub base_url: Option<String>,
    /// The `pg-client` configuration: per path (`charge`, `query`) timeouts, retry, circuit
    /// breaker and bulkhead (see the pg-client README). Durations are humantime strings
    /// (`"1500ms"`). The service's defaults ([`GatewaySettings::default_client`]) are tuned
    /// for the canonical PG; a `[gateway.client]` table (or `APP_GATEWAY__CLIENT__…`
    /// variables) changes only the keys it names, the others keep the service's values.
    #[serde(deserialize_with = "client_over_service_defaults")]
    pub client: PgClientConfig,
    /// A pg-simulator configuration file (TOML, as `pg-simulator --config` reads it) for the
    /// in-process simulator that `serve` starts when `base_url` is unset (unset: the canonical
    /// PG). Its `server` section is not used: the simulator listens on a free loopback port.
    pub simulator_config: Option<String>,
    /// How the charge path follows the PG's latency: read timeout, bulkhead and slow-call
    /// threshold at 1.3 × the P95 of accepted charges, between the configured values and
    /// ceilings (see [`ChargeTuningSettings`]; on by default).
    pub charge_tuning: ChargeTuningSettings,
    /// Gives every card type its own charge breaker (`pg-charge[SAMSUNG]`, …, following the
    /// `pg-charge` breaker's configuration and its live changes), so one issuer's outage
    /// fails only its card type's orders (default true).
    pub charge_breakers_by_card_type: bool,
    /// Fault injection for a game day, per path: `[gateway.fault.charge]` and
    /// `[gateway.fault.query]` take seawall's fault keys (`enabled`, `error_injection_rate`,
    /// `latency_injection_rate`, `latency_duration`, `outcome_injection_rate`). **Off by
    /// default**; switched live through the admin API (`PUT /api/v1/admin/faults/{name}`).
    pub fault: GatewayFaultSettings,
}

/// One more PG to route charges to (`[[gateway.others]]`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PgRouteSettings {
    /// Its name (letters, digits, `-`, `_`): the call log's and the payment rows' `pg`, and
    /// its callback path `/api/v1/payments/callback/{name}`.
    pub name: String,
    /// Its base URL (`serve` starts an in-process simulator for it when unset).
    pub base_url: Option<String>,
    /// The secret its callbacks are signed with (unset: unsigned, trusted after the re-query
    /// only, as `callback.allow_unsigned` says).
    pub callback_secret: Option<String>,
    /// Its place in the charge order (lower first).
    pub priority: i32,
    /// The registry name of its charge breaker (default `pg-charge-{name}`): configure it in
    /// the seawall configuration document, e.g. more sensitive than the primary's.
    pub charge_breaker: Option<String>,
    /// The registry name of its query breaker (default `pg-query-{name}`).
    pub query_breaker: Option<String>,
}

impl PgRouteSettings {
    /// The charge breaker's registry name.
    pub fn charge_breaker_name(&self) -> String {
        self.charge_breaker
            .clone()
            .unwrap_or_else(|| format!("pg-charge-{}", self.name))
    }

    /// The query breaker's registry name.
    pub fn query_breaker_name(&self) -> String {
        self.query_breaker
            .clone()
            .unwrap_or_else(|| format!("pg-query-{}", self.name))
    }
}

/// Whether `name` can name a PG (1 to 32 letters, digits, `-` or `_`).
pub fn valid_pg_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Fault injection on the PG paths (see [`crate::gateway::fault`]). Each path's injector is
/// created in the registry as `pg-charge` / `pg-query` (section `fault`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayFaultSettings {
    /// Faults on charges: an injected error is a charge that provably reached nothing.
    pub charge: seawall::fault::FaultConfig,
    /// Faults on queries and cancels.
    pub query: seawall::fault::FaultConfig,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            name: crate::startup::PRIMARY_PG.to_owned(),
            priority: 0,
            others: Vec::new(),
            base_url: None,
            client: Self::default_client(),
            simulator_config: None,
            charge_tuning: ChargeTuningSettings::default(),
            fault: GatewayFaultSettings::default(),
            charge_breakers_by_card_type: true,
        }
    }
}

/// Reads a partial `client` table over the service's tuned client, not over pg-client's own
/// defaults.
fn client_over_service_defaults<'de, D>(deserializer: D) -> Result<PgClientConfig, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let written = serde_json::Value::deserialize(deserializer)?;
    GatewaySettings::default_client()
        .overlay(written)
        .map_err(serde::de::Error::custom)
}

impl GatewaySettings {
    /// pg-client's defaults, adjusted for the canonical PG (answers within 500 ms, 40 %
    /// pre-create failures, cancel extension on):
    ///
    /// - charge: connect 500 ms, read 1.5 s (past it the outcome is uncertain), 3 attempts
    ///   (only failures that created nothing), at most 64 in flight;
    /// - query: connect 500 ms, read 1 s, 3 attempts, one hedged attempt after 500 ms;
    /// - both breakers: count window 30, minimum 20, failure rate 80 %, slow calls over 1 s
    ///   at 80 %, 5 s open, 3 half-open probes. A healthy canonical PG fails about 43 % of
    ///   attempts (40 % pre-create 500s, which are retried, plus a few post-create errors):
    ///   a 10-call window at 50 % trips on that a third of the time and 20 at 70 % still 1.4 %
    ///   of the evaluations (it flapped in the demo), while 30 at 80 % has odds of 4·10⁻⁵.
    pub fn default_client() -> PgClientConfig {
        let mut client = PgClientConfig {
            cancel_supported: true,
            ..PgClientConfig::default()
        };
        for path in [&mut client.charge, &mut client.query] {
            path.connect_timeout = Duration::from_millis(500);
            let breaker = &mut path.circuit_breaker;
            breaker.sliding_window = SlidingWindow::count(30);
            breaker.minimum_number_of_calls = 20;
            breaker.failure_rate_threshold = 80.0;
            breaker.slow_call_duration_threshold = Some(Duration::from_secs(1));
            breaker.slow_call_rate_threshold = 80.0;
            breaker.open_wait = OpenWait::Fixed(Duration::from_secs(5));
        }
        client.charge.read_timeout = Duration::from_millis(1_500);
        client.charge.bulkhead.max_concurrent_calls = 64;
        client.charge.adaptive_limiter = Some(Self::default_charge_limit());
        client.query.read_timeout = Duration::from_millis(1_000);
        // A status query still unanswered after 500 ms is sent once more beside the first
        // (pg-client's default delay and budget: at most 10 % more queries, plus 5 a second);
        // a read is safe to repeat, and recovery waits on the slowest of its queries.
        client.query.hedge.max_hedged_attempts = 1;
        client
    }

    /// The charge path's adaptive limit (inside the bulkhead, whatever size the tuning gives
    /// the bulkhead): AIMD from 16 calls in flight, so a PG that hangs on a freshly started
    /// service takes at most 16 charges, and its timeouts then shrink the limit (× 0.9 each,
    /// down to 4). Each answered charge adds 32, up to 192 (the tuning's bulkhead ceiling):
    /// the first answers of a PG that is slow but working open the gate within one round
    /// trip (at +1 per answer, a 2–4 s PG needs three round trips to reach the 75 charges
    /// in flight that 25 orders a second need; the demo's slow row sold a third of its
    /// orders). Only timeouts, uncertain failures and throttles are drops (pg-client's
    /// `LimitSignals`: its pre-create 500s are not); a slow answer never is
    /// (`rtt_timeout_duration` 60 s, far above the 6 s read-timeout ceiling). A call waits
    /// up to 4 s for a permit: shorter than the cold read timeout (6 s), so no waiter gets in
    /// behind a first wave that hangs; long enough for a slow PG's first answers. With the
    /// charge tuning on, the wait follows the read timeout (half of it; see
    /// [`crate::gateway::tuning`]).
    pub fn default_charge_limit() -> AdaptiveLimiterConfig {
        let mut limit = AdaptiveLimiterConfig::new(LimitAlgorithm::Aimd);
        limit.initial_limit = 16;
        limit.min_limit = 4;
        limit.max_limit = 192;
        limit.max_wait = Duration::from_secs(4);
        limit.rtt_timeout = Duration::from_secs(60);
        limit.additive_increase = 32.0;
        limit
    }

    /// The client configuration with the base URL in force.
    pub fn client_config(&self, base_url: &str) -> PgClientConfig {
        PgClientConfig {
            base_url: base_url.to_owned(),
            ..self.client.clone()
        }
    }
}

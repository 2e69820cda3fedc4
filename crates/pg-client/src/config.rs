//! Typed, serde-readable configuration of the client and of its two policies.
//!
//! Every field has a default (connect 1 s, read 3 s, breaker count window 10 / minimum 10 /
//! 50 % / slow 2 s at 50 % / open 10 s / 3 probes, bulkhead 20, 3 attempts with exponential ×2
//! backoff and full jitter), so a config file names only what it changes. Durations are
//! humantime strings (`"1s"`, `"250ms"`). The decorators' settings are seawall's configuration
//! types, with seawall's keys; a key left out keeps this client's default.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use pg_client::PgClientConfig;
//!
//! let config: PgClientConfig = serde_json::from_str(r#"{
//!     "base_url": "http://127.0.0.1:8082",
//!     "charge": { "read_timeout": "2s", "circuit_breaker": { "failure_rate_threshold": 60.0 } },
//!     "query": { "retry": { "max_attempts": 5 } }
//! }"#)?;
//! assert_eq!(config.charge.read_timeout, Duration::from_secs(2));
//! assert_eq!(config.charge.connect_timeout, Duration::from_secs(1));
//! assert_eq!(config.query.retry.max_attempts, 5);
//! config.validate()?;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use seawall::ConfigError;
use seawall::adaptive::AdaptiveLimiterConfig;
use seawall::bulkhead::BulkheadConfig;
use seawall::circuit_breaker::{CircuitBreakerConfig, OpenWait, SlidingWindow};
use seawall::hedge::{HedgeBudgetConfig, HedgeConfig};
use seawall::retry::{Backoff, RetryConfig};

use crate::model::Currency;

/// The canonical simulator's message for its injected 500, which it answers *before* creating
/// anything ("the server is unstable, try again later").
pub const CANONICAL_PRE_CREATE_MESSAGE: &str =
    "현재 서버가 불안정합니다. 잠시 후 다시 시도해주세요.";

/// The whole client.
///
/// Read from a document, every key left out keeps the client's default, at any depth (a
/// `charge.circuit_breaker` table that sets one key keeps the client's other breaker
/// defaults, not seawall's).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PgClientConfig {
    /// The instance name: the `client` metrics label and the prefix of the breaker, bulkhead
    /// and retry names (`{name}-charge`, `{name}-query`). Default `"pg"`.
    pub name: String,
    /// The gateway's base URL; the API lives under `{base_url}/api/v1/payments`. Default
    /// `http://localhost:8082` (the canonical simulator). `https://` needs the `rustls`
    /// feature.
    pub base_url: String,
    /// The one currency the gateway settles in; charges in another currency are refused before
    /// sending, and amounts read back are in it. Default KRW.
    pub currency: Currency,
    /// Whether the gateway has the cancel endpoint (an extension; the canonical gateway does
    /// not). Without it, [`cancel`](crate::PaymentGateway::cancel) is refused before sending.
    /// Default false.
    pub cancel_supported: bool,
    /// The gateway messages (`meta.message` of a 500) that prove nothing was created. A 500
    /// with any other message is *uncertain*. Default: the canonical simulator's
    /// [`CANONICAL_PRE_CREATE_MESSAGE`]. Empty for a gateway that has no such guarantee.
    pub pre_create_messages: Vec<String>,
    /// Charges and cancels.
    pub charge: PathConfig,
    /// Transaction detail and transactions of an order.
    pub query: PathConfig,
}

impl Default for PgClientConfig {
    fn default() -> Self {
        Self {
            name: "pg".to_owned(),
            base_url: "http://localhost:8082".to_owned(),
            currency: Currency::KRW,
            cancel_supported: false,
            pre_create_messages: vec![CANONICAL_PRE_CREATE_MESSAGE.to_owned()],
            charge: PathConfig::default(),
            query: PathConfig::default(),
        }
    }
}

impl PgClientConfig {
    /// The defaults with another base URL.
    pub fn with_base_url(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            ..Self::default()
        }
    }

    /// Checks every value, so a bad value is reported at start-up with its dotted key, as the
    /// document writes it.
    ///
    /// # Errors
    ///
    /// The first rule broken, e.g. `charge.retry.max_attempts: must be >= 1 ...`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() {
            return Err(ConfigError::new("name", "must not be blank"));
        }
        crate::builder::parse_base_url(&self.base_url)?;
        if self.charge.hedge.max_hedged_attempts != 0 {
            return Err(ConfigError::new(
                "charge.hedge.max_hedged_attempts",
                "must be 0: a charge is never hedged (a second charge could be a second payment)",
            ));
        }
        self.charge.validate().map_err(|e| e.under("charge"))?;
        self.query.validate().map_err(|e| e.under("query"))?;
        Ok(())
    }

    /// Reads a JSON document over the defaults; an error names the key path.
    ///
    /// # Errors
    ///
    /// Text that is not JSON, an unknown key or a value of the wrong type, named by its path
    /// (validation is separate: [`validate`](Self::validate)).
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
            .map_err(|e| ConfigError::new("document", e.to_string()))?;
        Self::over_defaults(value)
    }
}

/// The document form: the keys of [`PgClientConfig`] (read over a complete set of them).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    name: String,
    base_url: String,
    currency: Currency,
    cancel_supported: bool,
    pre_create_messages: Vec<String>,
    charge: PathConfig,
    query: PathConfig,
}

impl From<PgClientConfig> for Keys {
    fn from(config: PgClientConfig) -> Self {
        Self {
            name: config.name,
            base_url: config.base_url,
            currency: config.currency,
            cancel_supported: config.cancel_supported,
            pre_create_messages: config.pre_create_messages,
            charge: config.charge,
            query: config.query,
        }
    }
}

impl From<Keys> for PgClientConfig {
    fn from(keys: Keys) -> Self {
        Self {
            name: keys.name,
            base_url: keys.base_url,
            currency: keys.currency,
            cancel_supported: keys.cancel_supported,
            pre_create_messages: keys.pre_create_messages,
            charge: keys.charge,
            query: keys.query,
        }
    }
}

impl PgClientConfig {
    /// The keys `written` over the defaults, at every depth.
    fn over_defaults(written: serde_json::Value) -> Result<Self, ConfigError> {
        Self::default().overlay(written)
    }

    /// The keys `written` (a document's map) over this configuration, at every depth: what a
    /// service with defaults of its own uses to read a partial `client` table, so that keys it
    /// leaves out keep the service's values rather than the client's.
    ///
    /// # Errors
    ///
    /// An unknown key or a value of the wrong type, named by its path (validation is
    /// separate: [`validate`](Self::validate)).
    pub fn overlay(&self, written: serde_json::Value) -> Result<Self, ConfigError> {
        let base = Keys::from(self.clone());
        seawall::config::overlay(&base, written).map(Self::from)
    }
}

impl<'de> Deserialize<'de> for PgClientConfig {
    /// Reads the keys written over the defaults, at every depth (see the type's docs). An
    /// error names the key path in its message.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = serde_json::Value::deserialize(deserializer)?;
        Self::over_defaults(written).map_err(serde::de::Error::custom)
    }
}

/// One path's timeouts and decorators. Both paths default to the same values; only what they
/// retry differs (fixed by the client: a charge is retried only when nothing can have
/// happened, a query on any system failure).
///
/// The decorators' settings are seawall's own configuration types, written with seawall's
/// document keys (`max_attempts`, `wait_duration`, `failure_rate_threshold`,
/// `wait_duration_in_open_state`, `max_concurrent_calls`, …); a key left out keeps this
/// client's default, not seawall's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathConfig {
    /// Bound on establishing the TCP (and TLS) connection. A connect failure proves the request
    /// was not sent. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Bound on one attempt, from start to the last byte of the answer (connect included, so
    /// keep it above `connect_timeout`). When it fires after sending, the outcome is
    /// uncertain. Default 3 s.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// The longest `Retry-After` the client waits for; a throttled answer asking for more is
    /// returned to the caller instead. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Retries of this path. Default: 3 attempts, exponential backoff from 100 ms, ×2, capped
    /// at 1 s, full jitter.
    pub retry: RetryConfig,
    /// The circuit breaker of this path. Default: a count window of 10, minimum 10, failure
    /// rate 50 %, calls over 2 s slow at 50 %, 10 s open, 3 probes.
    pub circuit_breaker: CircuitBreakerConfig,
    /// The bulkhead of this path. Default: 20 attempts in flight, no waiting.
    pub bulkhead: BulkheadConfig,
    /// An adaptive concurrency limit inside the bulkhead (seawall's keys: `algorithm`,
    /// `initial_limit`, `max_limit`, …): the attempts in flight follow the gateway's latency
    /// and failures instead of a guess, so a hanging gateway gets few calls. Uncertain, not
    /// reached and throttled attempts are drops; business answers are not counted. Default:
    /// none (only the bulkhead limits).
    pub adaptive_limiter: Option<AdaptiveLimiterConfig>,
    /// Hedging of this path's attempts, **queries only**: a charge is never hedged, and a
    /// `charge.hedge` that turns it on is refused. Default: off (`max_hedged_attempts: 0`);
    /// turned on (`max_hedged_attempts: 1`), a status query still unanswered after 500 ms is
    /// sent again beside the first and the first answer wins, within a budget of 10 % more
    /// queries plus 5 a second. Each hedged attempt goes through the path's breaker and
    /// bulkhead like any attempt.
    pub hedge: HedgeConfig,
}

impl Default for PathConfig {
    fn default() -> Self {
        let mut retry = RetryConfig::default();
        retry.max_attempts = 3;
        retry.backoff = Backoff::exponential(Duration::from_millis(100))
            .max(Duration::from_secs(1))
            .full_jitter();
        let mut circuit_breaker = CircuitBreakerConfig::default();
        circuit_breaker.sliding_window = SlidingWindow::count(10);
        circuit_breaker.minimum_number_of_calls = 10;
        circuit_breaker.failure_rate_threshold = 50.0;
        circuit_breaker.slow_call_duration_threshold = Some(Duration::from_secs(2));
        circuit_breaker.slow_call_rate_threshold = 50.0;
        circuit_breaker.open_wait = OpenWait::Fixed(Duration::from_secs(10));
        circuit_breaker.permitted_calls_in_half_open = 3;
        Self {
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(3),
            max_retry_after: Duration::from_secs(10),
            retry,
            circuit_breaker,
            bulkhead: BulkheadConfig::new(20),
            adaptive_limiter: None,
            hedge: default_hedge(),
        }
    }
}

/// Hedging off, with the delay and budget it uses once `max_hedged_attempts` turns it on.
fn default_hedge() -> HedgeConfig {
    let mut hedge = HedgeConfig::fixed(Duration::from_millis(500));
    hedge.max_hedged_attempts = 0;
    hedge.budget = Some(HedgeBudgetConfig::new(0.1, 5.0));
    hedge
}

impl PathConfig {
    /// Checks every value, naming its key as the document writes it.
    ///
    /// # Errors
    ///
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_positive("connect_timeout", self.connect_timeout)?;
        check_positive("read_timeout", self.read_timeout)?;
        check_positive("max_retry_after", self.max_retry_after)?;
        self.retry.validate().map_err(|e| e.under("retry"))?;
        self.circuit_breaker
            .validate()
            .map_err(|e| e.under("circuit_breaker"))?;
        self.bulkhead.validate().map_err(|e| e.under("bulkhead"))?;
        if let Some(limiter) = &self.adaptive_limiter {
            limiter
                .validate()
                .map_err(|e| e.under("adaptive_limiter"))?;
        }
        self.hedge.validate().map_err(|e| e.under("hedge"))
    }
}

fn check_positive(key: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::new(key, "must be > 0"));
    }
    if value > seawall::config::MAX_DURATION {
        return Err(ConfigError::new(
            key,
            format!("must be <= 365 days, got {value:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_document_is_the_defaults() {
        let config: PgClientConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, PgClientConfig::default());
        config.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported_with_their_path() {
        assert!(serde_json::from_str::<PgClientConfig>(r#"{"charge":{"retries":3}}"#).is_err());
        let mut config = PgClientConfig::default();
        config.charge.retry.max_attempts = 0;
        assert_eq!(
            config.validate().unwrap_err().key(),
            "charge.retry.max_attempts"
        );
        let mut config = PgClientConfig::default();
        config.query.circuit_breaker.failure_rate_threshold = 0.0;
        assert!(config.validate().unwrap_err().key().starts_with("query."));
        let config = PgClientConfig::with_base_url("ftp://example.com");
        assert_eq!(config.validate().unwrap_err().key(), "base_url");
    }

    #[test]
    fn a_toml_document_configures_each_path_separately() {
        let config: PgClientConfig = toml::from_str(
            r#"
            name = "toss"
            base_url = "http://127.0.0.1:9000"
            cancel_supported = true

            [charge.retry]
            max_attempts = 1

            [query]
            read_timeout = "10s"
            [query.circuit_breaker]
            sliding_window_size = 20
            failure_rate_threshold = 70.0
            "#,
        )
        .unwrap();
        assert_eq!(config.charge.retry.max_attempts, 1);
        assert_eq!(config.query.retry.max_attempts, 3);
        assert_eq!(config.query.read_timeout, Duration::from_secs(10));
        assert_eq!(config.charge.read_timeout, Duration::from_secs(3));
        assert_eq!(
            config.query.circuit_breaker.sliding_window,
            SlidingWindow::count(20)
        );
        assert_eq!(
            config.charge.circuit_breaker.sliding_window,
            SlidingWindow::count(10)
        );
        config.validate().unwrap();
    }

    #[test]
    fn a_partial_breaker_table_keeps_the_clients_other_breaker_defaults() {
        let config = PgClientConfig::from_json(
            r#"{"charge":{"circuit_breaker":{"failure_rate_threshold":70}}}"#,
        )
        .unwrap();
        let breaker = &config.charge.circuit_breaker;
        assert_eq!(breaker.failure_rate_threshold, 70.0);
        assert_eq!(
            breaker.sliding_window,
            SlidingWindow::count(10),
            "not seawall's 100"
        );
        assert_eq!(breaker.minimum_number_of_calls, 10);
        assert_eq!(breaker.open_wait, OpenWait::Fixed(Duration::from_secs(10)));
    }

    #[test]
    fn document_errors_name_the_key_as_written() {
        let err = PgClientConfig::from_json(r#"{"charge":{"retry":{"max_attempts":"three"}}}"#)
            .unwrap_err();
        assert_eq!(err.key(), "charge.retry.max_attempts");
        let err =
            PgClientConfig::from_json(r#"{"query":{"circuit_breaker":[1,2,3]}}"#).unwrap_err();
        assert_eq!(err.key(), "query.circuit_breaker");
        assert!(err.rule().contains("must be a map"), "{err}");
        let mut config = PgClientConfig::default();
        config.charge.circuit_breaker.open_wait = OpenWait::Fixed(Duration::ZERO);
        assert_eq!(
            config.validate().unwrap_err().key(),
            "charge.circuit_breaker.wait_duration_in_open_state",
            "seawall's document key, which is this document's key too"
        );
    }

    #[test]
    fn hedging_is_off_by_default_may_be_turned_on_for_queries_and_never_for_charges() {
        let config = PgClientConfig::default();
        assert_eq!(config.query.hedge.max_hedged_attempts, 0);
        let config = PgClientConfig::from_json(
            r#"{"query":{"hedge":{"max_hedged_attempts":1,"delay":"80ms"}}}"#,
        )
        .unwrap();
        assert_eq!(config.query.hedge.max_hedged_attempts, 1);
        assert_eq!(config.query.hedge.delay, Duration::from_millis(80));
        assert!(
            config.query.hedge.budget.is_some(),
            "the client's budget is kept"
        );
        config.validate().unwrap();
        let config =
            PgClientConfig::from_json(r#"{"charge":{"hedge":{"max_hedged_attempts":1}}}"#).unwrap();
        let err = config.validate().unwrap_err();
        assert_eq!(err.key(), "charge.hedge.max_hedged_attempts");
        assert!(err.rule().contains("never hedged"), "{err}");
        let err = PgClientConfig::from_json(r#"{"query":{"hedge":{"delay_percentile":2}}}"#)
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.key(), "query.hedge.delay_percentile");
    }

    #[test]
    fn durations_read_as_humantime() {
        let config: PgClientConfig = serde_json::from_str(
            r#"{"charge":{"connect_timeout":"250ms","retry":{"max_elapsed":"5s"}}}"#,
        )
        .unwrap();
        assert_eq!(config.charge.connect_timeout, Duration::from_millis(250));
        assert_eq!(
            config.charge.retry.max_elapsed,
            Some(Duration::from_secs(5))
        );
    }
}

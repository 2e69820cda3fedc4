//! Typed, serde-readable configuration of the client and of its two policies.
//!
//! Every field has a default (drawn from the seed write-ups: connect 1 s, read 3 s, breaker
//! count window 10 / minimum 10 / 50 % / slow 2 s at 50 % / open 10 s / 3 probes, bulkhead 20,
//! 3 attempts with exponential ×2 backoff and full jitter), so a config file names only what it
//! changes. Durations are humantime strings (`"1s"`, `"250ms"`).
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

use crate::model::Currency;

/// The canonical simulator's message for its injected 500, which it answers *before* creating
/// anything ("the server is unstable, try again later").
pub const CANONICAL_PRE_CREATE_MESSAGE: &str =
    "현재 서버가 불안정합니다. 잠시 후 다시 시도해주세요.";

/// The whole client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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

    /// Checks every value, building (and discarding) each decorator, so a bad value is
    /// reported at start-up with its dotted key.
    ///
    /// # Errors
    ///
    /// The first rule broken, e.g. `charge.retry.max_attempts: must be >= 1 ...`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() {
            return Err(ConfigError::new("name", "must not be blank"));
        }
        crate::client::parse_base_url(&self.base_url)?;
        crate::policy::validate_path(&self.charge).map_err(|e| e.under("charge"))?;
        crate::policy::validate_path(&self.query).map_err(|e| e.under("query"))?;
        Ok(())
    }
}

/// One path's timeouts and decorators. Both paths default to the same values; only what they
/// retry differs (fixed by the client: a charge is retried only when nothing can have
/// happened, a query on any system failure).
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
    /// Retries of this path.
    pub retry: RetryConfig,
    /// The circuit breaker of this path.
    pub circuit_breaker: BreakerConfig,
    /// The bulkhead of this path.
    pub bulkhead: BulkheadConfig,
}

impl Default for PathConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(3),
            retry: RetryConfig::default(),
            circuit_breaker: BreakerConfig::default(),
            bulkhead: BulkheadConfig::default(),
        }
    }
}

/// Jitter applied to a backoff.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JitterConfig {
    /// Exactly the computed wait.
    None,
    /// A uniform wait between zero and the computed wait (AWS "full jitter").
    #[default]
    Full,
    /// Half the computed wait plus a uniform share of the other half.
    Equal,
}

/// A path's retry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts, counting the first (1 disables retrying). Default 3: at most 2 extra attempts.
    pub max_attempts: u32,
    /// The first backoff. Default 100 ms.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Growth per retry. Default 2.
    pub multiplier: f64,
    /// Cap of one backoff. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Jitter. Default full.
    pub jitter: JitterConfig,
    /// No retry starts later than this after the first attempt started (an attempt in flight is
    /// never cut). Default none.
    #[serde(with = "humantime_serde")]
    pub max_elapsed: Option<Duration>,
    /// The longest `Retry-After` the client waits for; a throttled answer asking for more is
    /// returned to the caller instead. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Seed of the jitter's random source, for reproducible schedules (default: from entropy).
    pub seed: Option<u64>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(1),
            jitter: JitterConfig::Full,
            max_elapsed: None,
            max_retry_after: Duration::from_secs(10),
            seed: None,
        }
    }
}

/// A path's circuit breaker (a count window; business errors are never counted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// The last *n* calls are judged. Default 10.
    pub sliding_window_size: u32,
    /// Calls needed before rates are computed. Default 10.
    pub minimum_number_of_calls: u32,
    /// Opens at or above this failure rate, percent. Default 50.
    pub failure_rate_threshold: f64,
    /// A call slower than this is slow. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub slow_call_duration_threshold: Duration,
    /// Opens at or above this slow-call rate, percent. Default 50.
    pub slow_call_rate_threshold: f64,
    /// How long it stays open. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub wait_in_open: Duration,
    /// Probes let through when half-open. Default 3.
    pub permitted_calls_in_half_open: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            sliding_window_size: 10,
            minimum_number_of_calls: 10,
            failure_rate_threshold: 50.0,
            slow_call_duration_threshold: Duration::from_secs(2),
            slow_call_rate_threshold: 50.0,
            wait_in_open: Duration::from_secs(10),
            permitted_calls_in_half_open: 3,
        }
    }
}

impl BreakerConfig {
    /// The seawall breaker configuration this describes (for a breaker built elsewhere, such
    /// as a service's registry).
    ///
    /// # Errors
    ///
    /// A value seawall refuses, naming the key.
    pub fn to_seawall(
        &self,
    ) -> Result<seawall::circuit_breaker::CircuitBreakerConfig, ConfigError> {
        seawall::circuit_breaker::CircuitBreakerConfig::builder()
            .sliding_window(seawall::circuit_breaker::SlidingWindow::count(
                self.sliding_window_size,
            ))
            .minimum_number_of_calls(self.minimum_number_of_calls)
            .failure_rate_threshold(self.failure_rate_threshold)
            .slow_call_duration_threshold(self.slow_call_duration_threshold)
            .slow_call_rate_threshold(self.slow_call_rate_threshold)
            .wait_in_open(self.wait_in_open)
            .permitted_calls_in_half_open(self.permitted_calls_in_half_open)
            .build()
    }
}

/// A path's bulkhead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkheadConfig {
    /// Attempts in flight at once. Default 20.
    pub max_concurrent_calls: usize,
    /// How long an attempt waits for a permit before it is rejected. Default 0 (reject at
    /// once).
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 20,
            max_wait: Duration::ZERO,
        }
    }
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
        assert_eq!(config.query.circuit_breaker.sliding_window_size, 20);
        assert_eq!(config.charge.circuit_breaker.sliding_window_size, 10);
        config.validate().unwrap();
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

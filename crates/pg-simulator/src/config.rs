//! Every knob of the simulator. [`SimConfig::default`] (= [`SimConfig::canonical`]) reproduces
//! the canonical gateway exactly; [`SimConfig::instant`] is the preset for fast tests.
//!
//! The config is plain data with serde support (TOML files use humantime durations such as
//! `"250ms"`), validated once by [`SimConfig::validate`].

mod latency;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::latency::Latency;
use crate::fault::Fault;
use crate::model::CardType;

/// The whole configuration of one simulator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Where the payment API listens.
    pub server: ServerConfig,
    /// The optional control plane (its own port, off by default).
    pub control: ControlConfig,
    /// Seed of every random decision; `None` picks one from the clock at start.
    pub seed: Option<u64>,
    /// Behaviour of `POST /api/v1/payments`.
    pub request: RequestConfig,
    /// Behaviour of the two `GET` endpoints.
    pub query: QueryConfig,
    /// Asynchronous processing of PENDING transactions.
    pub processing: ProcessingConfig,
    /// The result callback.
    pub callback: CallbackConfig,
    /// The opt-in `Idempotency-Key` support.
    pub idempotency: IdempotencyConfig,
    /// Other opt-in extensions.
    pub extensions: ExtensionsConfig,
    /// Mask the card number (BIN + last 4) in query responses and callbacks. Off canonically:
    /// the canonical gateway echoes the full number.
    pub mask_pan_in_responses: bool,
    /// Memory bounds of the ledger.
    pub ledger: LedgerConfig,
    /// Transaction key generation.
    pub keys: KeyConfig,
    /// Which per-request fault triggers are honoured.
    pub triggers: TriggerConfig,
    /// Fault probabilities and fault parameters (changeable at run time).
    pub faults: FaultConfig,
}

/// Listening address of the payment API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Interface to bind; the canonical server listens on every interface, we default to
    /// loopback.
    pub host: String,
    /// Port; 0 picks a free one (the handle reports it). Canonical: 8082.
    pub port: u16,
}

/// The control plane: a separate listener with `/__sim/...` endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// Off unless enabled: it can change faults and force outcomes.
    pub enabled: bool,
    /// Interface to bind.
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
}

/// Behaviour of payment requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestConfig {
    /// Latency added after validation (canonical: uniform 100–500 ms).
    pub latency: Latency,
    /// Probability of the canonical pre-create 500 (canonical: 0.4).
    pub fail_rate: f64,
}

/// Behaviour of queries (canonically instant and fault-free).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Latency added to every query.
    pub latency: Latency,
}

/// Asynchronous processing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessingConfig {
    /// Time from creation to the outcome (canonical: uniform 1–5 s).
    pub delay: Latency,
    /// Transactions processed (and callbacks sent) at once; the rest queue without bound
    /// (canonical: 8, Spring's default pool). Read at start only.
    pub concurrency: usize,
    /// Relative weights of the outcomes (canonical: 70 / 20 / 10).
    pub outcomes: OutcomeWeights,
}

/// Relative weights of the three outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutcomeWeights {
    /// SUCCESS.
    pub success: u32,
    /// FAILED, limit exceeded.
    pub limit_exceeded: u32,
    /// FAILED, invalid card.
    pub invalid_card: u32,
}

/// The callback.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackConfig {
    /// The allowed callback target (canonical: `http://localhost:8080`): a `callbackUrl` must
    /// have its scheme, host and port, a path under its path, and no `user:password@`.
    pub url_prefix: String,
    /// Also accept any `http://` URL on a loopback host (for tests on random ports).
    pub allow_any_loopback: bool,
    /// Whole-request timeout of one callback attempt; `None` waits for ever (canonical).
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// HMAC secrets; when not empty every callback carries `X-PG-Signature` with one `v1=` per
    /// secret (several during rotation). Empty canonically (unsigned).
    pub secrets: Vec<String>,
    /// Redelivery of failed callbacks (canonical: none).
    pub retry: CallbackRetry,
}

impl fmt::Debug for CallbackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackConfig")
            .field("url_prefix", &self.url_prefix)
            .field("allow_any_loopback", &self.allow_any_loopback)
            .field("timeout", &self.timeout)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("retry", &self.retry)
            .finish()
    }
}

/// How failed callbacks (transport error or non-2xx) are redelivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CallbackRetry {
    /// One attempt only (canonical).
    None,
    /// Up to `retries` more attempts, `interval` apart.
    Fixed {
        /// Extra attempts after the first.
        retries: u32,
        /// Wait between attempts.
        #[serde(with = "humantime_serde")]
        interval: Duration,
    },
    /// Toss's schedule 1, 4, 16, 64, ... "minutes" where one minute is `unit` (scale it down
    /// for tests, e.g. `unit = "10ms"`).
    TossLike {
        /// Length of the schedule's "minute".
        #[serde(with = "humantime_serde")]
        unit: Duration,
        /// Extra attempts after the first (Toss: 7).
        retries: u32,
    },
}

impl CallbackRetry {
    /// The wait before retry number `retry` (0-based), or `None` when no retry is left.
    pub fn delay_before(&self, retry: u32) -> Option<Duration> {
        match self {
            Self::None => None,
            Self::Fixed { retries, interval } => (retry < *retries).then_some(*interval),
            Self::TossLike { unit, retries } => {
                (retry < *retries).then(|| unit.saturating_mul(4u32.saturating_pow(retry.min(15))))
            }
        }
    }
}

/// The `Idempotency-Key` extension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// Honour the header (off canonically: the canonical gateway ignores it).
    pub enabled: bool,
    /// How long a stored response is replayed.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Most keys remembered (oldest dropped first).
    pub max_keys: usize,
}

/// Other opt-in extensions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtensionsConfig {
    /// `POST /api/v1/payments/{key}/cancel`: SUCCESS → CANCELED, idempotent.
    pub cancel: bool,
    /// A second POST for an order that already has a transaction returns that transaction
    /// (student variant "one transaction per order").
    pub one_tx_per_order: bool,
}

/// Memory bound and persistence of the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// Most transactions kept; past it the oldest terminal ones are evicted first.
    pub retention: usize,
    /// Keep the ledger in this file too (JSON Lines, compacted at start) and load it at start,
    /// so a restarted simulator still knows its transactions. `None` (canonical): memory only.
    /// The file holds full card numbers, like the PG's own table.
    pub file: Option<std::path::PathBuf>,
}

/// Transaction key generation (`yyyyMMdd:TR:xxxxxx`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyConfig {
    /// Offset from UTC of the key's date, in minutes (canonical: Asia/Seoul, +540).
    pub utc_offset_minutes: i32,
    /// Hex characters after `TR:` (canonical: 6).
    pub suffix_len: usize,
}

/// Which per-request triggers are honoured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriggerConfig {
    /// The `X-Sim-Fault` header.
    pub header: bool,
    /// Magic card numbers `4000-0000-0000-NNNN`. Off by default: where they are on, whoever
    /// picks the card number picks the outcome (`…-0001` is always approved).
    pub magic_cards: bool,
}

/// Fault probabilities and parameters. Changeable at run time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Probability of each fault per payment request, e.g. `{ "error-after-create" = 0.1 }`.
    pub rates: BTreeMap<Fault, f64>,
    /// Probability of each fault per query.
    pub query_rates: BTreeMap<Fault, f64>,
    /// Probability of a pre-create 500 per card type (F19), e.g. `{ SAMSUNG = 1.0 }`.
    pub card_outages: BTreeMap<CardType, f64>,
    /// Latency used by `slow` (replaces the normal latency).
    pub slow_latency: Latency,
    /// How long `charge-but-timeout` holds the answer.
    #[serde(with = "humantime_serde")]
    pub charge_but_timeout_delay: Duration,
    /// `Retry-After` of `throttle` and `unavailable` (whole seconds, rounded up).
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Extra wait of `delay-callback`.
    #[serde(with = "humantime_serde")]
    pub callback_delay: Duration,
    /// Callbacks sent by `duplicate-callback`.
    pub duplicate_callback_copies: u32,
    /// Longest hold of `reorder-callback`.
    #[serde(with = "humantime_serde")]
    pub reorder_hold: Duration,
    /// How long `query-lag` hides a new transaction from queries.
    #[serde(with = "humantime_serde")]
    pub query_lag: Duration,
    /// How long `stale-pending` keeps reporting PENDING after completion.
    #[serde(with = "humantime_serde")]
    pub stale_pending: Duration,
    /// Offset of the signature timestamp under `signature-skew` (may be negative).
    pub signature_skew_secs: i64,
    /// Records kept by the fault log. Read at start only.
    pub log_capacity: usize,
}

/// A config value that cannot work, with the field it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config `{field}`: {reason}")]
pub struct ConfigError {
    field: String,
    reason: String,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The offending field, dotted (e.g. `request.fail_rate`).
    pub fn field(&self) -> &str {
        &self.field
    }
}

// ===== defaults =====

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8082,
        }
    }
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".to_owned(),
            port: 8083,
        }
    }
}

impl Default for RequestConfig {
    fn default() -> Self {
        Self {
            latency: Latency::uniform(Duration::from_millis(100)..=Duration::from_millis(500)),
            fail_rate: 0.4,
        }
    }
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            latency: Latency::None,
        }
    }
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            delay: Latency::uniform(Duration::from_secs(1)..=Duration::from_secs(5)),
            concurrency: 8,
            outcomes: OutcomeWeights::default(),
        }
    }
}

impl Default for OutcomeWeights {
    fn default() -> Self {
        Self {
            success: 70,
            limit_exceeded: 20,
            invalid_card: 10,
        }
    }
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            url_prefix: "http://localhost:8080".to_owned(),
            allow_any_loopback: false,
            timeout: None,
            secrets: Vec::new(),
            retry: CallbackRetry::None,
        }
    }
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            retention: Duration::from_secs(24 * 60 * 60),
            max_keys: 100_000,
        }
    }
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            retention: 100_000,
            file: None,
        }
    }
}

impl Default for KeyConfig {
    fn default() -> Self {
        Self {
            utc_offset_minutes: 9 * 60,
            suffix_len: 6,
        }
    }
}

impl Default for TriggerConfig {
    fn default() -> Self {
        Self {
            header: true,
            magic_cards: false,
        }
    }
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            rates: BTreeMap::new(),
            query_rates: BTreeMap::new(),
            card_outages: BTreeMap::new(),
            slow_latency: Latency::long_tail(
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
            ),
            charge_but_timeout_delay: Duration::from_secs(30),
            retry_after: Duration::from_secs(1),
            callback_delay: Duration::from_secs(10),
            duplicate_callback_copies: 2,
            reorder_hold: Duration::from_secs(10),
            query_lag: Duration::from_secs(3),
            stale_pending: Duration::from_secs(5),
            signature_skew_secs: 600,
            log_capacity: 10_000,
        }
    }
}

// ===== impl SimConfig =====

impl SimConfig {
    /// The canonical gateway: 100–500 ms latency, 40 % pre-create 500, 1–5 s processing,
    /// 70/20/10 outcomes, one unsigned callback, port 8082. Same as `Default`.
    pub fn canonical() -> Self {
        Self::default()
    }

    /// For tests: port 0, no latency, no random failure, instant processing, and callbacks to
    /// any loopback URL allowed. Everything else canonical.
    pub fn instant() -> Self {
        let mut c = Self::default();
        c.server.port = 0;
        c.control.port = 0;
        c.request.latency = Latency::None;
        c.request.fail_rate = 0.0;
        c.processing.delay = Latency::None;
        c.callback.allow_any_loopback = true;
        c
    }

    /// Reads a TOML file; missing fields keep their canonical defaults.
    ///
    /// # Errors
    ///
    /// An unreadable file, invalid TOML, an unknown field or an invalid value.
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))?;
        Self::from_toml_str(&text)
    }

    /// Parses TOML text; missing fields keep their canonical defaults.
    ///
    /// # Errors
    ///
    /// Invalid TOML, an unknown field or an invalid value.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: Self =
            toml::from_str(text).map_err(|e| ConfigError::new("toml", e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value; the simulator refuses to start on an invalid config.
    ///
    /// # Errors
    ///
    /// The first invalid field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let prob = |field: &'static str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(ConfigError::new(field, "probability must be within [0, 1]"))
            }
        };
        prob("request.fail_rate", self.request.fail_rate)?;
        self.request.latency.validate("request.latency")?;
        self.query.latency.validate("query.latency")?;
        self.processing.delay.validate("processing.delay")?;
        if self.processing.concurrency == 0 {
            return Err(ConfigError::new(
                "processing.concurrency",
                "must be at least 1",
            ));
        }
        let w = self.processing.outcomes;
        if u64::from(w.success) + u64::from(w.limit_exceeded) + u64::from(w.invalid_card) == 0 {
            return Err(ConfigError::new("processing.outcomes", "weights sum to 0"));
        }
        if self.ledger.retention == 0 {
            return Err(ConfigError::new("ledger.retention", "must be at least 1"));
        }
        if self.idempotency.max_keys == 0 {
            return Err(ConfigError::new(
                "idempotency.max_keys",
                "must be at least 1",
            ));
        }
        if !(1..=32).contains(&self.keys.suffix_len) {
            return Err(ConfigError::new("keys.suffix_len", "must be within 1..=32"));
        }
        if self.keys.utc_offset_minutes.abs() > 18 * 60 {
            return Err(ConfigError::new("keys.utc_offset_minutes", "beyond ±18 h"));
        }
        if let CallbackRetry::Fixed { retries, .. } | CallbackRetry::TossLike { retries, .. } =
            self.callback.retry
            && retries > 20
        {
            return Err(ConfigError::new("callback.retry.retries", "at most 20"));
        }
        // Callback URLs are matched by the prefix's scheme, host and port: it must have them.
        match reqwest::Url::parse(&self.callback.url_prefix) {
            Ok(prefix) if prefix.has_host() && prefix.username().is_empty() => {}
            _ => {
                return Err(ConfigError::new(
                    "callback.url_prefix",
                    "must be an absolute URL with a host and no user:password@, e.g. \
                     http://localhost:8080",
                ));
            }
        }
        if self.callback.secrets.iter().any(String::is_empty) {
            return Err(ConfigError::new("callback.secrets", "empty secret"));
        }
        self.faults.validate()
    }
}

impl FaultConfig {
    /// Checks probabilities and parameters.
    ///
    /// # Errors
    ///
    /// The first invalid field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (fault, p) in &self.rates {
            if !fault.applies_to_payments() {
                return Err(ConfigError::new(
                    format!("faults.rates.{fault}"),
                    "fault does not apply to payment requests",
                ));
            }
            if !(0.0..=1.0).contains(p) {
                return Err(ConfigError::new(
                    format!("faults.rates.{fault}"),
                    "not in [0, 1]",
                ));
            }
        }
        for (fault, p) in &self.query_rates {
            if !fault.applies_to_queries() {
                return Err(ConfigError::new(
                    format!("faults.query_rates.{fault}"),
                    "fault does not apply to queries",
                ));
            }
            if !(0.0..=1.0).contains(p) {
                return Err(ConfigError::new(
                    format!("faults.query_rates.{fault}"),
                    "not in [0, 1]",
                ));
            }
        }
        for (card, p) in &self.card_outages {
            if !(0.0..=1.0).contains(p) {
                return Err(ConfigError::new(
                    format!("faults.card_outages.{card}"),
                    "not in [0, 1]",
                ));
            }
        }
        self.slow_latency.validate("faults.slow_latency")?;
        if self.duplicate_callback_copies < 2 {
            return Err(ConfigError::new(
                "faults.duplicate_callback_copies",
                "must be at least 2",
            ));
        }
        if self.log_capacity == 0 {
            return Err(ConfigError::new(
                "faults.log_capacity",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_canonical_gateway() {
        let c = SimConfig::canonical();
        assert_eq!(c.server.port, 8082);
        assert_eq!(
            c.request.latency,
            Latency::uniform(Duration::from_millis(100)..=Duration::from_millis(500))
        );
        assert!((c.request.fail_rate - 0.4).abs() < f64::EPSILON);
        assert_eq!(c.processing.concurrency, 8);
        assert_eq!(c.callback.url_prefix, "http://localhost:8080");
        assert_eq!(c.callback.retry, CallbackRetry::None);
        assert!(c.callback.timeout.is_none());
        assert!(!c.idempotency.enabled && !c.mask_pan_in_responses && !c.control.enabled);
        c.validate().unwrap();
        SimConfig::instant().validate().unwrap();
    }

    #[test]
    fn a_toml_file_overrides_only_what_it_names() {
        let c = SimConfig::from_toml_str(
            r#"
            seed = 7
            [request]
            latency = { kind = "fixed", value = "20ms" }
            [callback]
            secrets = ["a", "b"]
            retry = { kind = "toss-like", unit = "10ms", retries = 3 }
            [faults]
            rates = { "drop-callback" = 0.5 }
            card_outages = { SAMSUNG = 1.0 }
            "#,
        )
        .unwrap();
        assert_eq!(c.seed, Some(7));
        assert_eq!(c.request.latency, Latency::fixed(Duration::from_millis(20)));
        assert!((c.request.fail_rate - 0.4).abs() < f64::EPSILON);
        assert_eq!(c.faults.rates.get(&Fault::DropCallback), Some(&0.5));
        assert_eq!(c.faults.card_outages.get(&CardType::Samsung), Some(&1.0));
        assert!(!format!("{:?}", c.callback).contains("\"a\""));
    }

    #[test]
    fn the_example_file_lists_the_canonical_defaults() {
        let c = SimConfig::from_toml_str(include_str!("../sim.example.toml")).unwrap();
        assert_eq!(c, SimConfig::canonical());
    }

    #[test]
    fn invalid_values_are_rejected_with_their_field() {
        let err = SimConfig::from_toml_str("[request]\nfail_rate = 1.5").unwrap_err();
        assert_eq!(err.field(), "request.fail_rate");
        let err =
            SimConfig::from_toml_str("[faults]\nrates = { \"query-error\" = 0.5 }").unwrap_err();
        assert_eq!(err.field(), "faults.rates.query-error");
        assert!(SimConfig::from_toml_str("bogus = 1").is_err());
        for prefix in ["localhost:8080", "/callback", "http://user@localhost:8080"] {
            let err = SimConfig::from_toml_str(&format!("[callback]\nurl_prefix = \"{prefix}\""))
                .unwrap_err();
            assert_eq!(err.field(), "callback.url_prefix", "{prefix}");
        }
    }

    #[test]
    fn the_toss_like_schedule_grows_by_four() {
        let r = CallbackRetry::TossLike {
            unit: Duration::from_millis(10),
            retries: 3,
        };
        let delays: Vec<_> = (0..4).map(|i| r.delay_before(i)).collect();
        assert_eq!(
            delays,
            vec![
                Some(Duration::from_millis(10)),
                Some(Duration::from_millis(40)),
                Some(Duration::from_millis(160)),
                None
            ]
        );
    }
}

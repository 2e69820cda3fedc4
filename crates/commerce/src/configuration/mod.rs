//! Typed, layered configuration: built-in defaults, then an optional TOML file, then
//! `APP_`-prefixed environment variables with `__` between levels
//! (`APP_DATABASE__URL=sqlite://orders.db`,
//! `APP_GATEWAY__CLIENT__CHARGE__CIRCUIT_BREAKER__FAILURE_RATE_THRESHOLD=60`); see
//! [`Settings::load_from`] for which `APP_` variables are read.
//!
//! Durations are integers in milliseconds (`*_ms`, at most [`MAX_MS`], 365 days). Everything
//! is validated once at start-up ([`Settings::validate`]); a bad value stops the program with
//! the key named, and the variable or file that wrote it.

mod gateway;
mod load;

use std::time::Duration;

use seawall::ConfigError;
use seawall::config::MAX_DURATION;
use serde::{Deserialize, Serialize};

use crate::persistence::DbOptions;

pub use self::gateway::{GatewayFaultSettings, GatewaySettings, PgRouteSettings, valid_pg_name};
pub use self::load::{Loaded, Origin, SettingsError};

/// The top-level sections of [`Settings`], as keys. An `APP_` environment variable is read
/// only when its first level is one of them.
pub const SECTIONS: [&str; 10] = [
    "application",
    "database",
    "gateway",
    "callback",
    "idempotency",
    "recovery",
    "outbox",
    "retention",
    "admin",
    "subscriptions",
];

/// Every setting of the service.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// HTTP server.
    pub application: ApplicationSettings,
    /// Database.
    pub database: DatabaseSettings,
    /// The payment gateway client.
    pub gateway: GatewaySettings,
    /// PG callbacks.
    pub callback: CallbackSettings,
    /// Idempotency keys of order requests.
    pub idempotency: IdempotencySettings,
    /// The recovery (reconciliation) job.
    pub recovery: RecoverySettings,
    /// The outbox relay.
    pub outbox: OutboxSettings,
    /// The retention job.
    pub retention: RetentionSettings,
    /// The admin API.
    pub admin: AdminSettings,
    /// Subscriptions: the billing job and its batch-path PG client.
    pub subscriptions: crate::subscriptions::SubscriptionSettings,
}

/// HTTP server settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApplicationSettings {
    /// Interface to bind (default `127.0.0.1`).
    pub host: String,
    /// Port; 0 picks a free one (default 8080).
    pub port: u16,
    /// Base URL the PG uses to reach us (default `http://{host}:{actual port}`).
    pub public_base_url: Option<String>,
    /// Longest time a request may take before the server answers 408 (default 30 s).
    pub request_timeout_ms: u64,
    /// Seed demo users and products at first start (default true).
    pub seed_demo_data: bool,
    /// This instance's name in the recovery lease (unique per instance, stable across its
    /// restarts). Unset: a random id kept in `instance_id_file`.
    pub instance_id: Option<String>,
    /// Where the random instance id is kept when `instance_id` is unset (default: next to the
    /// SQLite database, `<file>.instance-id`; on Postgres `commerce.instance-id` in the
    /// working directory).
    pub instance_id_file: Option<std::path::PathBuf>,
}

impl Default for ApplicationSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            public_base_url: None,
            request_timeout_ms: 30_000,
            seed_demo_data: true,
            instance_id: None,
            instance_id_file: None,
        }
    }
}

/// Database settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path.db` (default `sqlite://commerce.db`, created when missing) or
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Connections for writes on Postgres (default 4); on SQLite the write pool is one
    /// connection ([`crate::persistence::SQLITE_WRITE_CONNECTIONS`]).
    pub write_connections: u32,
    /// Read-only connections for catalogue and order reads (default 8).
    pub read_connections: u32,
    /// Longest wait for a pooled connection (default 3 s).
    pub acquire_timeout_ms: u64,
    /// Longest wait for a lock another connection holds (SQLite's `busy_timeout`, Postgres's
    /// `lock_timeout`; default 10 s); then the request answers 503 with `Retry-After`.
    pub lock_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://commerce.db".to_owned(),
            write_connections: 4,
            read_connections: 8,
            acquire_timeout_ms: 3_000,
            lock_timeout_ms: 10_000,
        }
    }
}

impl DatabaseSettings {
    /// The pool options.
    pub fn options(&self) -> DbOptions {
        DbOptions {
            url: self.url.clone(),
            write_connections: self.write_connections,
            read_connections: self.read_connections,
            acquire_timeout: Duration::from_millis(self.acquire_timeout_ms),
            lock_timeout: Duration::from_millis(self.lock_timeout_ms),
        }
    }
}

/// PG callback settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackSettings {
    /// Shared secret of `X-PG-Signature` (HMAC-SHA256), at least [`MIN_SECRET_BYTES`] bytes.
    /// Unset: callbacks are not signed and are trusted only after re-querying the PG (which
    /// happens either way).
    pub secret: Option<String>,
    /// Accepted clock difference of a signature's timestamp (default 300 s).
    pub tolerance_secs: i64,
    /// Accept unsigned callbacks when no `secret` is set, trusting only the re-query of the PG
    /// (default false: an external PG without a secret refuses to start).
    pub allow_unsigned: bool,
    /// Callbacks admitted per `rate_limit_period_ms`, all callers together (default 100).
    pub rate_limit: u32,
    /// The rate limit's period (default 1 s).
    pub rate_limit_period_ms: u64,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            secret: None,
            tolerance_secs: 300,
            allow_unsigned: false,
            rate_limit: 100,
            rate_limit_period_ms: 1_000,
        }
    }
}

impl CallbackSettings {
    /// Callbacks are authenticated (a `secret`), or accepted unsigned by choice
    /// (`allow_unsigned`).
    ///
    /// # Errors
    ///
    /// Neither, naming both settings.
    pub fn check_authentication(&self) -> Result<(), ConfigError> {
        if self.secret.is_none() && !self.allow_unsigned {
            return Err(ConfigError::new(
                "callback.secret",
                "must be set to verify the PG's callbacks (X-PG-Signature); to accept unsigned \
                 callbacks, trusted only after re-querying the PG, set \
                 callback.allow_unsigned = true",
            ));
        }
        Ok(())
    }
}

/// Idempotency key settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencySettings {
    /// The HMAC key of request fingerprints (which cover the full card number), at least
    /// [`MIN_SECRET_BYTES`] bytes, the same on every instance. Unset: a random key made at
    /// first start and kept in the database (so a copy of the database holds both the key and
    /// the fingerprints: set this in production). Changing it makes earlier keys conflict
    /// rather than replay.
    pub fingerprint_key: Option<String>,
}

/// Recovery job settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RecoverySettings {
    /// Run the job periodically (default true; the admin endpoint works either way).
    pub enabled: bool,
    /// Time between rounds (default 10 s).
    pub interval_ms: u64,
    /// Only payments unchanged for this long are examined (default 10 s, above the PG's
    /// normal callback latency).
    pub older_than_ms: u64,
    /// "Not found at the PG" counts only for payments older than this (default 30 s, above
    /// the PG's longest in-flight time).
    pub not_found_grace_ms: u64,
    /// Still unresolved after this long → NEEDS_REVIEW (default 10 min).
    pub deadline_ms: u64,
    /// Payments per page (default 100).
    pub page_size: i64,
    /// The single-runner lease's lifetime (default 60 s).
    pub lease_ttl_ms: u64,
    /// A card payment still REQUESTED with no charge attempt this long after it was placed
    /// (its instance died before calling the PG) is sent by recovery, with its original
    /// idempotency key (default 10 s).
    pub send_grace_ms: u64,
    /// The key the card of a payment not yet sent is sealed with until its first attempt (at
    /// least 16 bytes, the same on every instance; unset: a random key made at first start
    /// and kept in the database, in `service_secrets`).
    pub card_key: Option<String>,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_ms: 10_000,
            older_than_ms: 10_000,
            not_found_grace_ms: 30_000,
            deadline_ms: 600_000,
            page_size: 100,
            lease_ttl_ms: 60_000,
            send_grace_ms: 10_000,
            card_key: None,
        }
    }
}

/// Outbox relay settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxSettings {
    /// Poll interval (default 500 ms; a commit also wakes the relay).
    pub interval_ms: u64,
    /// Events per poll (default 500: one marking statement a pass; a pass that fills its
    /// batch is followed by the next at once). Measured under 900–1,000 POINT orders/s on
    /// SQLite (`docs/service-load.md`): batches of 100 left the oldest event up to 2.9–3.4 s
    /// behind, batches of 300 and 1,000 under 0.7 s.
    pub batch_size: i64,
    /// Failed deliveries before an event is parked as dead (default 10).
    pub max_attempts: i64,
    /// First redelivery delay, doubled per failure up to 1 min (default 200 ms).
    pub backoff_ms: u64,
    /// On Postgres, how long a relay's claim on a batch keeps other instances' relays off it
    /// (default 30 s); a dead instance's batch is taken over after this.
    pub claim_ttl_ms: u64,
    /// Where events go beyond the in-process subscribers (default `in_process`: nowhere).
    pub sink: SinkKind,
    /// The NATS JetStream sink's settings (used when `sink = "nats"`).
    pub nats: NatsSettings,
}

/// The outbox's sink (`outbox.sink`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// In-process subscribers only.
    #[default]
    InProcess,
    /// A NATS JetStream stream as well ([`crate::sink::NatsSink`]).
    Nats,
}

/// NATS JetStream sink settings (`outbox.nats.*`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSettings {
    /// Server URL (default `nats://127.0.0.1:4222`).
    pub url: String,
    /// Stream taking `commerce.events.>`, made if missing (default `COMMERCE_EVENTS`).
    pub stream: String,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            stream: "COMMERCE_EVENTS".to_owned(),
        }
    }
}

impl NatsSettings {
    /// Checks the URL's scheme and the stream's name (only when the sink is NATS).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `outbox.nats.url` or `outbox.nats.stream`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !["nats://", "tls://"]
            .iter()
            .any(|scheme| self.url.starts_with(scheme))
        {
            return Err(ConfigError::new(
                "outbox.nats.url",
                "must be a nats:// or tls:// URL",
            ));
        }
        if !crate::sink::valid_stream_name(&self.stream) {
            return Err(ConfigError::new(
                "outbox.nats.stream",
                "must be a non-empty name without whitespace, '.', '*', '>', '/' or '\\'",
            ));
        }
        Ok(())
    }
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            interval_ms: 500,
            batch_size: 500,
            max_attempts: 10,
            backoff_ms: 200,
            claim_ttl_ms: 30_000,
            sink: SinkKind::InProcess,
            nats: NatsSettings::default(),
        }
    }
}

/// Retention job settings: what is deleted, and when.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Time between prunes (default 1 h).
    pub interval_ms: u64,
    /// Idempotency keys older than this are deleted (default 7 days); a request repeated
    /// later with the same key is a new request.
    pub idempotency_keys_ms: u64,
    /// Outbox events published longer ago than this are deleted (default 7 days);
    /// undelivered and dead events are kept.
    pub published_events_ms: u64,
    /// PG call log rows sent longer ago than this are deleted (default 90 days: a PG's
    /// dispute of a charge comes within weeks).
    pub pg_calls_ms: u64,
    /// Rows per delete statement (default 1000), so no prune holds a lock for long.
    pub batch_size: i64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            interval_ms: 3_600_000,
            idempotency_keys_ms: 7 * 86_400_000,
            published_events_ms: 7 * 86_400_000,
            pg_calls_ms: 90 * 86_400_000,
            batch_size: 1_000,
        }
    }
}

/// Admin API settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Bearer token of the admin API, at least [`MIN_SECRET_BYTES`] bytes. Unset: the admin
    /// API answers 401 to everyone (`serve` generates one and prints it).
    pub token: Option<String>,
}

impl Settings {
    /// The PGs' names: valid and distinct.
    fn validate_pgs(&self) -> Result<(), ConfigError> {
        let rule = "1 to 32 letters, digits, '-' or '_', distinct across the PGs";
        if !valid_pg_name(&self.gateway.name) {
            return Err(ConfigError::new("gateway.name", rule));
        }
        let mut seen = vec![self.gateway.name.as_str()];
        for (i, other) in self.gateway.others.iter().enumerate() {
            if !valid_pg_name(&other.name) || seen.contains(&other.name.as_str()) {
                return Err(ConfigError::new(format!("gateway.others[{i}].name"), rule));
            }
            seen.push(&other.name);
        }
        Ok(())
    }

    /// Checks every rule once, naming the key of the first one broken.
    ///
    /// # Errors
    ///
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_pgs()?;
        for (key, value) in [
            ("application.host", Some(&self.application.host)),
            (
                "application.public_base_url",
                self.application.public_base_url.as_ref(),
            ),
            (
                "application.instance_id",
                self.application.instance_id.as_ref(),
            ),
            ("database.url", Some(&self.database.url)),
            ("gateway.base_url", self.gateway.base_url.as_ref()),
            (
                "gateway.simulator_config",
                self.gateway.simulator_config.as_ref(),
            ),
            ("callback.secret", self.callback.secret.as_ref()),
            (
                "idempotency.fingerprint_key",
                self.idempotency.fingerprint_key.as_ref(),
            ),
            ("admin.token", self.admin.token.as_ref()),
            ("recovery.card_key", self.recovery.card_key.as_ref()),
        ] {
            // A blank token would match a request without one; a blank URL fails far from here.
            if value.is_some_and(|text| text.trim().is_empty()) {
                return Err(ConfigError::new(
                    key,
                    "must not be blank (leave it out to keep the default)",
                ));
            }
        }
        if self.outbox.sink == SinkKind::Nats {
            self.outbox.nats.validate()?;
        }
        for (key, value) in [
            ("callback.secret", self.callback.secret.as_ref()),
            (
                "idempotency.fingerprint_key",
                self.idempotency.fingerprint_key.as_ref(),
            ),
            ("admin.token", self.admin.token.as_ref()),
            ("recovery.card_key", self.recovery.card_key.as_ref()),
        ] {
            // A short secret can be guessed; the rule says the length, never the value.
            if let Some(secret) = value
                && secret.len() < MIN_SECRET_BYTES
            {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "must be at least {MIN_SECRET_BYTES} bytes, got {}",
                        secret.len()
                    ),
                ));
            }
        }
        for (key, value, min) in [
            (
                "application.request_timeout_ms",
                self.application.request_timeout_ms,
                1,
            ),
            (
                "database.acquire_timeout_ms",
                self.database.acquire_timeout_ms,
                1,
            ),
            ("recovery.interval_ms", self.recovery.interval_ms, 1),
            ("recovery.older_than_ms", self.recovery.older_than_ms, 0),
            (
                "recovery.not_found_grace_ms",
                self.recovery.not_found_grace_ms,
                0,
            ),
            ("recovery.deadline_ms", self.recovery.deadline_ms, 0),
            ("recovery.lease_ttl_ms", self.recovery.lease_ttl_ms, 1),
            ("recovery.send_grace_ms", self.recovery.send_grace_ms, 0),
            ("outbox.interval_ms", self.outbox.interval_ms, 1),
            (
                "callback.rate_limit_period_ms",
                self.callback.rate_limit_period_ms,
                1,
            ),
            ("outbox.backoff_ms", self.outbox.backoff_ms, 0),
            ("outbox.claim_ttl_ms", self.outbox.claim_ttl_ms, 1),
            ("retention.interval_ms", self.retention.interval_ms, 1),
            (
                "retention.idempotency_keys_ms",
                self.retention.idempotency_keys_ms,
                1,
            ),
            (
                "retention.published_events_ms",
                self.retention.published_events_ms,
                1,
            ),
            ("retention.pg_calls_ms", self.retention.pg_calls_ms, 1),
        ] {
            check_range(key, value, min, MAX_MS, " (365 days)")?;
        }
        let tolerance = u64::try_from(self.callback.tolerance_secs).map_err(|_| {
            ConfigError::new(
                "callback.tolerance_secs",
                format!("must be >= 0, got {}", self.callback.tolerance_secs),
            )
        })?;
        check_range(
            "callback.tolerance_secs",
            tolerance,
            0,
            MAX_DURATION.as_secs(),
            " (365 days)",
        )?;
        if let Some(id) = &self.application.instance_id
            && (id.len() > 200 || id.chars().any(char::is_control))
        {
            return Err(ConfigError::new(
                "application.instance_id",
                "must be at most 200 visible characters",
            ));
        }
        check_range(
            "database.lock_timeout_ms",
            self.database.lock_timeout_ms,
            1,
            crate::persistence::MAX_LOCK_TIMEOUT_MS,
            " (about 24.8 days, the engines' limit)",
        )?;
        for (key, fault) in [
            ("gateway.fault.charge", &self.gateway.fault.charge),
            ("gateway.fault.query", &self.gateway.fault.query),
        ] {
            fault.validate().map_err(|e| e.under(key))?;
        }
        if self.callback.rate_limit == 0 {
            return Err(ConfigError::new(
                "callback.rate_limit",
                "must be > 0, got 0",
            ));
        }
        for (key, value) in [
            (
                "database.write_connections",
                u64::from(self.database.write_connections),
            ),
            (
                "database.read_connections",
                u64::from(self.database.read_connections),
            ),
        ] {
            check_range(key, value, 1, u64::from(u32::MAX), "")?;
        }
        for (key, value) in [
            ("recovery.page_size", self.recovery.page_size),
            ("outbox.batch_size", self.outbox.batch_size),
            ("outbox.max_attempts", self.outbox.max_attempts),
            ("retention.batch_size", self.retention.batch_size),
        ] {
            if value <= 0 {
                return Err(ConfigError::new(key, format!("must be > 0, got {value}")));
            }
        }
        if self.recovery.deadline_ms < self.recovery.not_found_grace_ms {
            return Err(ConfigError::new(
                "recovery.deadline_ms",
                format!(
                    "must be >= recovery.not_found_grace_ms ({}), got {}",
                    self.recovery.not_found_grace_ms, self.recovery.deadline_ms
                ),
            ));
        }
        if crate::persistence::Engine::of(&self.database.url).is_none() {
            return Err(ConfigError::new(
                "database.url",
                "must start with sqlite: or postgres:",
            ));
        }
        let base_url = self.gateway.base_url.as_deref();
        self.gateway
            .client_config(base_url.unwrap_or("http://localhost:8082"))
            .validate()
            .map_err(|e| match base_url {
                // gateway.base_url stands in for the client's: name the key that was written.
                Some(_) if e.key() == "base_url" => {
                    ConfigError::new("gateway.base_url", e.rule().to_owned())
                }
                _ => e.under("gateway.client"),
            })?;
        if self.gateway.charge_tuning.enabled {
            self.gateway
                .charge_tuning
                .validate(&self.gateway.client)
                .map_err(|e| e.under("gateway.charge_tuning"))?;
        }
        // An external PG without a secret: forged callbacks would be accepted (and cost a PG
        // query each); only an explicit choice allows that. `serve` signs the in-process
        // simulator's callbacks with a secret of its own.
        if self.gateway.base_url.is_some() {
            self.callback.check_authentication()?;
        }
        self.subscriptions.validate()?;
        Ok(())
    }
}

/// The shortest accepted admin token or callback secret, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// The longest `*_ms` duration: seawall's [`MAX_DURATION`] (365 days), so time arithmetic on
/// any of them cannot overflow.
pub const MAX_MS: u64 = MAX_DURATION.as_secs() * 1_000;

/// Checks `value` is in `[min, max]`; `unit` follows `max` in the rule.
fn check_range(
    key: &'static str,
    value: u64,
    min: u64,
    max: u64,
    unit: &str,
) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::new(
            key,
            format!("must be >= {min}, got {value}"),
        ));
    }
    if value > max {
        return Err(ConfigError::new(
            key,
            format!("must be <= {max}{unit}, got {value}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

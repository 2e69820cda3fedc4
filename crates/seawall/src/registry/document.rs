//! Configuration documents: one document, in TOML, YAML or JSON, describing every instance.
//!
//! The shape follows Resilience4j's Spring Boot YAML so teams can port theirs: a section per
//! kind (`circuitbreaker`, `retry`, `bulkhead`, `timelimiter`), each with shared `configs`
//! (`default` is the implicit base of everything), `instances` (alias `backends`) and `tags`.
//! Rate limiters are in `ratelimiter`. An instance inherits from its `base_config`, else from the config of its own name, else
//! from `default`, else from the library's defaults; its own keys win.
//!
//! ```yaml
//! circuitbreaker:
//!   configs:
//!     default:
//!       sliding_window_size: 20
//!       minimum_number_of_calls: 5
//!       wait_duration_in_open_state: 10s
//!   instances:
//!     pg:
//!       base_config: default
//!       failure_rate_threshold: 50
//!       slow_call_duration_threshold: 2s
//! retry:
//!   instances:
//!     pg-query: { max_attempts: 3, wait_duration: 200ms, enable_exponential_backoff: true, jitter: full }
//! ```
//!
//! - Keys may be written `snake_case`, `camelCase` or `kebab-case`; a root key `resilience4j`
//!   or `seawall` wrapping everything is accepted.
//! - Durations are humantime strings (`"500ms"`, `"10s"`, `"1m 30s"`) or integers, read as
//!   milliseconds (Spring's rule).
//! - Unknown keys are errors. Every error names the full key path and the rule, e.g.
//!   `circuitbreaker.instances.pg.failure_rate_threshold: must be in (0, 100], got 120`.
//!
//! Keys that are seawall's own (not Resilience4j's): `slow_call_tracking` (false turns it
//! off), `sliding_window_bucket` (a time window's resolution, default 1s),
//! `wait_duration_in_open_state_jitter` and retry's `jitter` (`none`, `full`, `equal`,
//! `decorrelated`), retry's `max_elapsed`, `enable_linear_backoff` / `linear_backoff_step`,
//! and `budget: { max_tokens, token_ratio }`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{
    BuildContext, Bulkheads, CircuitBreakers, DEFAULT_CONFIG, Kind, RateLimiters, Registries,
    Registry, RegistryError, Retries, RetrySettings, Tags, Timeouts,
};
use crate::bulkhead::BulkheadConfig;
use crate::circuit_breaker::{CircuitBreakerConfig, OpenWait, SlidingWindow, State};
use crate::config::ConfigError;
use crate::rate_limiter::RateLimiterConfig;
use crate::retry::{Backoff, Jitter, Progression, RetryConfig};
use crate::timeout::TimeoutConfig;

/// A duration in a document: a humantime string (`"250ms"`, `"10s"`) or an integer number of
/// milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = DurationValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"500ms\" or \"10s\", or a number of milliseconds")
            }

            fn visit_u64<E: serde::de::Error>(self, millis: u64) -> Result<DurationValue, E> {
                Ok(DurationValue(Duration::from_millis(millis)))
            }

            fn visit_i64<E: serde::de::Error>(self, millis: i64) -> Result<DurationValue, E> {
                u64::try_from(millis)
                    .map(|millis| DurationValue(Duration::from_millis(millis)))
                    .map_err(|_| E::custom(format!("must not be negative, got {millis}")))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DurationValue, E> {
                humantime::parse_duration(text.trim())
                    .map(DurationValue)
                    .map_err(|err| E::custom(format!("invalid duration {text:?}: {err}")))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

fn state_from(name: &str) -> Option<State> {
    let normal = name.to_ascii_uppercase().replace('-', "_");
    State::ALL
        .into_iter()
        .find(|state| state.as_str() == normal)
}

/// A state name in a document (`OPEN`, `closed`, `half-open`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateValue(pub State);

impl<'de> Deserialize<'de> for StateValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        state_from(&text).map(StateValue).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown state {text:?}, expected one of CLOSED, OPEN, HALF_OPEN, DISABLED, FORCED_OPEN, METRICS_ONLY"
            ))
        })
    }
}

/// A sliding-window type (`COUNT_BASED` or `TIME_BASED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowType {
    /// The last n calls.
    CountBased,
    /// The last n seconds.
    TimeBased,
}

impl<'de> Deserialize<'de> for WindowType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.to_ascii_uppercase().replace('-', "_").as_str() {
            "COUNT_BASED" => Ok(Self::CountBased),
            "TIME_BASED" => Ok(Self::TimeBased),
            _ => Err(serde::de::Error::custom(format!(
                "unknown sliding window type {text:?}, expected COUNT_BASED or TIME_BASED"
            ))),
        }
    }
}

/// A jitter mode in a document (`none`, `full`, `equal`, `decorrelated`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitterValue(pub Jitter);

impl<'de> Deserialize<'de> for JitterValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let jitter = match text.to_ascii_lowercase().as_str() {
            "none" => Jitter::None,
            "full" => Jitter::Full,
            "equal" => Jitter::Equal,
            "decorrelated" => Jitter::Decorrelated,
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "unknown jitter {text:?}, expected none, full, equal or decorrelated"
                )));
            }
        };
        Ok(Self(jitter))
    }
}

macro_rules! properties {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$field_meta:meta])* $field:ident: $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The configuration this one inherits from.
            pub base_config: Option<String>,
            /// Labels for this instance (metrics, listings).
            pub tags: Option<Tags>,
            $( $(#[$field_meta])* pub $field: Option<$ty>, )*
        }

        impl Overlaid for $name {
            fn base(&self) -> Option<&str> {
                self.base_config.as_deref()
            }

            fn inherit(&mut self, base: &Self) {
                if self.tags.is_none() {
                    self.tags.clone_from(&base.tags);
                }
                $( if self.$field.is_none() { self.$field.clone_from(&base.$field); } )*
            }

            fn instance_tags(&self) -> Tags {
                self.tags.clone().unwrap_or_default()
            }
        }
    };
}

properties! {
    /// A circuit breaker's keys (Resilience4j's names, plus seawall's own).
    CircuitBreakerProperties {
        /// Opens when the failure rate (%) is at or above this.
        failure_rate_threshold: f64,
        /// Opens when the slow-call rate (%) is at or above this.
        slow_call_rate_threshold: f64,
        /// A call is slow when it takes strictly longer than this.
        slow_call_duration_threshold: DurationValue,
        /// `false` turns slow-call tracking off (seawall).
        slow_call_tracking: bool,
        /// Probes let through in half-open.
        permitted_number_of_calls_in_half_open_state: u32,
        /// The longest half-open may last (0: no limit).
        max_wait_duration_in_half_open_state: DurationValue,
        /// Where half-open goes when its maximum wait expires (OPEN or CLOSED).
        transition_to_state_after_wait_duration: StateValue,
        /// COUNT_BASED or TIME_BASED.
        sliding_window_type: WindowType,
        /// Calls (count-based) or seconds (time-based).
        sliding_window_size: u32,
        /// A time window's bucket width (seawall; default 1s).
        sliding_window_bucket: DurationValue,
        /// Calls needed before rates are computed.
        minimum_number_of_calls: u32,
        /// How long the breaker stays open (the first opening's wait with backoff).
        wait_duration_in_open_state: DurationValue,
        /// Grow the open wait exponentially with consecutive openings.
        enable_exponential_backoff: bool,
        /// The open wait's growth factor.
        exponential_backoff_multiplier: f64,
        /// The largest open wait.
        exponential_max_wait_duration_in_open_state: DurationValue,
        /// Jitter on the open wait (seawall).
        wait_duration_in_open_state_jitter: JitterValue,
        /// Move open → half-open on a timer.
        automatic_transition_from_open_to_half_open_enabled: bool,
        /// The state a new breaker starts in.
        initial_state: StateValue,
    }
}

properties! {
    /// A retry's keys (Resilience4j's names, plus seawall's own).
    RetryProperties {
        /// Attempts, counting the first call.
        max_attempts: u32,
        /// The wait before the first retry (and every retry, without backoff).
        wait_duration: DurationValue,
        /// Grow the wait exponentially.
        enable_exponential_backoff: bool,
        /// The growth factor.
        exponential_backoff_multiplier: f64,
        /// The largest wait.
        exponential_max_wait_duration: DurationValue,
        /// Grow the wait linearly by `linear_backoff_step` (seawall).
        enable_linear_backoff: bool,
        /// The linear step (seawall).
        linear_backoff_step: DurationValue,
        /// Jitter on every wait (seawall): none, full, equal, decorrelated.
        jitter: JitterValue,
        /// Stop when the next wait would end this long after the first attempt (seawall).
        max_elapsed: DurationValue,
        /// Fail when every result was rejected.
        fail_after_max_attempts: bool,
        /// A retry budget (seawall).
        budget: BudgetProperties,
    }
}

/// A retry budget's keys.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetProperties {
    /// The capacity, in (0, 1000].
    pub max_tokens: f64,
    /// Tokens refunded per success, in (0, 1000].
    pub token_ratio: f64,
}

properties! {
    /// A bulkhead's keys.
    BulkheadProperties {
        /// Calls allowed at once.
        max_concurrent_calls: usize,
        /// How long a call may wait for a permit.
        max_wait_duration: DurationValue,
    }
}

properties! {
    /// A time limiter's (timeout's) keys.
    TimeoutProperties {
        /// How long a call may take.
        timeout_duration: DurationValue,
        /// Must be true if present: seawall always cancels a timed-out call.
        cancel_running_future: bool,
    }
}

properties! {
    /// A rate limiter's keys.
    RateLimiterProperties {
        /// Calls per period (and burst).
        limit_for_period: u32,
        /// The period.
        limit_refresh_period: DurationValue,
        /// How long a call may wait for its slot.
        timeout_duration: DurationValue,
    }
}

/// One kind's section: shared configurations, instances and registry tags.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section<P> {
    /// Shared configurations; `default` is the implicit base of everything.
    #[serde(default = "BTreeMap::new")]
    pub configs: BTreeMap<String, P>,
    /// Instances by name.
    #[serde(default = "BTreeMap::new", alias = "backends")]
    pub instances: BTreeMap<String, P>,
    /// Labels for every instance of this kind.
    #[serde(default)]
    pub tags: Tags,
}

impl<P> Default for Section<P> {
    fn default() -> Self {
        Self {
            configs: BTreeMap::new(),
            instances: BTreeMap::new(),
            tags: Tags::new(),
        }
    }
}

/// A whole configuration document.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Circuit breakers.
    #[serde(default)]
    pub circuitbreaker: Section<CircuitBreakerProperties>,
    /// Retries.
    #[serde(default)]
    pub retry: Section<RetryProperties>,
    /// Bulkheads.
    #[serde(default)]
    pub bulkhead: Section<BulkheadProperties>,
    /// Timeouts (Resilience4j's time limiters).
    #[serde(default)]
    pub timelimiter: Section<TimeoutProperties>,
    /// Rate limiters.
    #[serde(default)]
    pub ratelimiter: Section<RateLimiterProperties>,
}

/// A document's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// TOML.
    Toml,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// The format of a file, by its extension (`.toml`, `.yaml`/`.yml`, `.json`).
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "toml" => Some(Self::Toml),
            "yaml" | "yml" => Some(Self::Yaml),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

impl Document {
    /// Parses a document.
    ///
    /// # Errors
    ///
    /// A syntax error (key `document`), a type error or an unknown key, named by its full
    /// path.
    pub fn parse(text: &str, format: Format) -> Result<Self, ConfigError> {
        let syntax = |err: String| ConfigError::new("document", err);
        let value: Value = match format {
            Format::Toml => toml::from_str(text).map_err(|err| syntax(err.to_string()))?,
            Format::Yaml => serde_norway::from_str(text).map_err(|err| syntax(err.to_string()))?,
            Format::Json => serde_json::from_str(text).map_err(|err| syntax(err.to_string()))?,
        };
        let value = match value {
            Value::Null => Value::Object(Map::new()),
            other => other,
        };
        deserialize_at(normalize_document(unwrap_root(value)), "")
    }

    /// Reads and parses a file; the format comes from the extension.
    ///
    /// # Errors
    ///
    /// An unreadable file or unknown extension (key `document`), or a parse error.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let format = Format::from_path(path).ok_or_else(|| {
            ConfigError::new(
                "document",
                format!(
                    "unknown format for {}: use .toml, .yaml, .yml or .json",
                    path.display()
                ),
            )
        })?;
        let text = std::fs::read_to_string(path).map_err(|err| {
            ConfigError::new("document", format!("cannot read {}: {err}", path.display()))
        })?;
        Self::parse(&text, format)
    }
}

/// Deserializes `value`, naming the full key path of any error (under `prefix`).
fn deserialize_at<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let key = match (prefix.is_empty(), path == ".") {
            (true, _) => path,
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{path}"),
        };
        ConfigError::new(key, err.into_inner().to_string())
    })
}

/// Spring documents often wrap everything in `resilience4j:`; accept that and `seawall:`.
fn unwrap_root(value: Value) -> Value {
    match value {
        Value::Object(map)
            if map.len() == 1
                && (map.contains_key("resilience4j") || map.contains_key("seawall")) =>
        {
            map.into_iter()
                .next()
                .map_or(Value::Null, |(_, inner)| inner)
        }
        other => other,
    }
}

/// `failureRateThreshold` and `failure-rate-threshold` → `failure_rate_threshold`.
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for (i, ch) in key.chars().enumerate() {
        if ch == '-' {
            out.push('_');
        } else if ch.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

fn section_name(key: &str) -> String {
    match snake_case(key).replace('_', "").as_str() {
        "circuitbreaker" | "circuitbreakers" => "circuitbreaker".to_owned(),
        "timelimiter" | "timeout" | "timeouts" => "timelimiter".to_owned(),
        "retry" | "retries" => "retry".to_owned(),
        "bulkhead" | "bulkheads" => "bulkhead".to_owned(),
        "ratelimiter" | "ratelimiters" => "ratelimiter".to_owned(),
        _ => key.to_owned(),
    }
}

fn map_keys(
    value: Value,
    rename: impl Fn(&str) -> String,
    inner: impl Fn(Value) -> Value,
) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (rename(&key), inner(value)))
                .collect(),
        ),
        other => other,
    }
}

/// Normalises the keys a user may spell several ways, leaving names (instances, configs,
/// tags) untouched.
fn normalize_document(value: Value) -> Value {
    map_keys(value, section_name, normalize_section)
}

fn normalize_section(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let key = snake_case(&key);
                    let value = if key == "tags" {
                        value
                    } else {
                        // configs / instances: names kept, their properties normalised.
                        map_keys(value, str::to_owned, normalize_properties)
                    };
                    (key, value)
                })
                .collect(),
        ),
        other => other,
    }
}

fn normalize_properties(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let key = snake_case(&key);
                    let value = match key.as_str() {
                        "tags" => value,
                        _ => map_keys(value, snake_case, |v| v),
                    };
                    (key, value)
                })
                .collect(),
        ),
        other => other,
    }
}

/// A kind whose configuration can be written in a document.
pub trait Configurable: Kind {
    /// The document's keys for this kind.
    type Properties: Clone + fmt::Debug + Default + DeserializeOwned + Overlaid;

    /// Applies the keys that are set onto `base` (unset keys keep `base`'s values), checking
    /// every rule. Error keys are the document's key names.
    ///
    /// # Errors
    ///
    /// The first rule broken.
    fn to_config(
        properties: &Self::Properties,
        base: &Self::Config,
    ) -> Result<Self::Config, ConfigError>;
}

/// Property sets that support inheritance: the document's own property types.
pub trait Overlaid {
    /// The configuration this one inherits from, if named.
    fn base(&self) -> Option<&str>;
    /// Fills unset keys from `base`.
    fn inherit(&mut self, base: &Self);
    /// The instance's tags.
    fn instance_tags(&self) -> Tags;
}

/// Renames the keys of seawall's validation errors to the document's key names.
fn document_key(err: ConfigError, renames: &[(&str, &str)]) -> ConfigError {
    for (from, to) in renames {
        if err.key() == *from {
            return ConfigError::new(to.to_string(), err.rule().to_owned());
        }
    }
    err
}

impl Configurable for CircuitBreakers {
    type Properties = CircuitBreakerProperties;

    fn to_config(
        p: &CircuitBreakerProperties,
        base: &CircuitBreakerConfig,
    ) -> Result<CircuitBreakerConfig, ConfigError> {
        let mut builder = base.to_builder();
        if let Some(rate) = p.failure_rate_threshold {
            builder = builder.failure_rate_threshold(rate);
        }
        if let Some(rate) = p.slow_call_rate_threshold {
            builder = builder.slow_call_rate_threshold(rate);
        }
        match (p.slow_call_tracking, p.slow_call_duration_threshold) {
            (Some(false), _) => builder = builder.disable_slow_call_tracking(),
            (_, Some(threshold)) => builder = builder.slow_call_duration_threshold(threshold.0),
            (Some(true), None) if base.slow_call_duration_threshold().is_none() => {
                builder = builder.slow_call_duration_threshold(Duration::from_secs(60));
            }
            _ => {}
        }
        if let Some(calls) = p.permitted_number_of_calls_in_half_open_state {
            builder = builder.permitted_calls_in_half_open(calls);
        }
        if p.max_wait_duration_in_half_open_state.is_some()
            || p.transition_to_state_after_wait_duration.is_some()
        {
            let wait = p
                .max_wait_duration_in_half_open_state
                .map_or(base.max_wait_in_half_open(), |d| d.0);
            let then = p
                .transition_to_state_after_wait_duration
                .map_or(base.state_after_half_open_wait(), |s| s.0);
            builder = builder.max_wait_in_half_open(wait, then);
        }
        if p.sliding_window_type.is_some()
            || p.sliding_window_size.is_some()
            || p.sliding_window_bucket.is_some()
        {
            builder = builder.sliding_window(window_from(p, base.sliding_window()));
        }
        if let Some(calls) = p.minimum_number_of_calls {
            builder = builder.minimum_number_of_calls(calls);
        }
        builder = match open_wait_from(p, base.open_wait())? {
            OpenWait::Fixed(wait) => builder.wait_in_open(wait),
            OpenWait::Backoff(backoff) => builder.wait_in_open_backoff(backoff),
        };
        if let Some(automatic) = p.automatic_transition_from_open_to_half_open_enabled {
            builder = builder.automatic_half_open(automatic);
        }
        if let Some(state) = p.initial_state {
            builder = builder.initial_state(state.0);
        }
        builder.build().map_err(|err| {
            document_key(
                err,
                &[
                    (
                        "wait_duration_in_open_state.backoff.multiplier",
                        "exponential_backoff_multiplier",
                    ),
                    (
                        "wait_duration_in_open_state.backoff.jitter",
                        "wait_duration_in_open_state_jitter",
                    ),
                    ("sliding_window_bucket", "sliding_window_bucket"),
                ],
            )
        })
    }
}

fn window_from(p: &CircuitBreakerProperties, base: SlidingWindow) -> SlidingWindow {
    let (base_type, base_size, base_bucket) = match base {
        SlidingWindow::Count(size) => (WindowType::CountBased, size, Duration::from_secs(1)),
        SlidingWindow::Time { size, bucket } => (
            WindowType::TimeBased,
            u32::try_from(size.as_secs()).unwrap_or(u32::MAX),
            bucket,
        ),
    };
    let window_type = p.sliding_window_type.unwrap_or(base_type);
    // Resilience4j's default size (100) when the type changes without a size.
    let size = p
        .sliding_window_size
        .unwrap_or(if window_type == base_type {
            base_size
        } else {
            100
        });
    match window_type {
        WindowType::CountBased => SlidingWindow::count(size),
        WindowType::TimeBased => SlidingWindow::time_with_buckets(
            Duration::from_secs(u64::from(size)),
            p.sliding_window_bucket.map_or(base_bucket, |d| d.0),
        ),
    }
}

fn open_wait_from(p: &CircuitBreakerProperties, base: OpenWait) -> Result<OpenWait, ConfigError> {
    let (base_wait, base_exponential, base_multiplier, base_max, base_jitter) = match base {
        OpenWait::Fixed(wait) => (wait, false, 2.0, None, Jitter::None),
        OpenWait::Backoff(backoff) => match backoff.progression() {
            Progression::Exponential {
                initial,
                multiplier,
            } => (
                initial,
                true,
                multiplier,
                backoff.cap(),
                backoff.jitter_mode(),
            ),
            Progression::Constant(wait) => (wait, false, 2.0, backoff.cap(), backoff.jitter_mode()),
            _ => (
                Duration::from_secs(60),
                false,
                2.0,
                None,
                backoff.jitter_mode(),
            ),
        },
    };
    let wait = p.wait_duration_in_open_state.map_or(base_wait, |d| d.0);
    let exponential = p.enable_exponential_backoff.unwrap_or(base_exponential);
    let multiplier = p.exponential_backoff_multiplier.unwrap_or(base_multiplier);
    let max = p
        .exponential_max_wait_duration_in_open_state
        .map(|d| d.0)
        .or(base_max);
    let jitter = p
        .wait_duration_in_open_state_jitter
        .map_or(base_jitter, |j| j.0);
    if wait < Duration::from_millis(1) {
        return Err(ConfigError::new(
            "wait_duration_in_open_state",
            format!("must be >= 1ms, got {wait:?}"),
        ));
    }
    if !exponential && jitter == Jitter::None {
        return Ok(OpenWait::Fixed(wait));
    }
    let mut backoff = if exponential {
        Backoff::exponential(wait).multiplier(multiplier)
    } else {
        Backoff::constant(wait)
    };
    if let Some(max) = max {
        backoff = backoff.max(max);
    }
    Ok(OpenWait::Backoff(backoff.jitter(jitter)))
}

impl Configurable for Retries {
    type Properties = RetryProperties;

    fn to_config(p: &RetryProperties, base: &RetrySettings) -> Result<RetrySettings, ConfigError> {
        let mut retry: RetryConfig = base.retry.clone();
        if let Some(attempts) = p.max_attempts {
            retry.max_attempts = attempts;
        }
        retry.backoff = backoff_from(p, retry.backoff);
        if let Some(max_elapsed) = p.max_elapsed {
            retry.max_elapsed = Some(max_elapsed.0);
        }
        if let Some(fail) = p.fail_after_max_attempts {
            retry.fail_after_max_attempts = fail;
        }
        let settings = RetrySettings {
            retry,
            budget: p
                .budget
                .map(|b| (b.max_tokens, b.token_ratio))
                .or(base.budget),
        };
        Self::validate(&settings).map_err(|err| {
            document_key(
                err,
                &[
                    ("backoff.multiplier", "exponential_backoff_multiplier"),
                    ("backoff.jitter", "jitter"),
                ],
            )
        })?;
        Ok(settings)
    }
}

fn backoff_from(p: &RetryProperties, base: Backoff) -> Backoff {
    let touched = p.wait_duration.is_some()
        || p.enable_exponential_backoff.is_some()
        || p.exponential_backoff_multiplier.is_some()
        || p.exponential_max_wait_duration.is_some()
        || p.enable_linear_backoff.is_some()
        || p.linear_backoff_step.is_some()
        || p.jitter.is_some();
    if !touched {
        return base;
    }
    let (base_wait, base_kind, base_multiplier, base_step) = match base.progression() {
        Progression::Zero => (Duration::ZERO, "constant", 2.0, Duration::ZERO),
        Progression::Constant(wait) => (wait, "constant", 2.0, Duration::ZERO),
        Progression::Linear { initial, step } => (initial, "linear", 2.0, step),
        Progression::Exponential {
            initial,
            multiplier,
        } => (initial, "exponential", multiplier, Duration::ZERO),
    };
    let wait = p.wait_duration.map_or(base_wait, |d| d.0);
    let kind = if p.enable_exponential_backoff == Some(true) {
        "exponential"
    } else if p.enable_linear_backoff == Some(true) {
        "linear"
    } else if p.enable_exponential_backoff == Some(false) && base_kind == "exponential"
        || p.enable_linear_backoff == Some(false) && base_kind == "linear"
    {
        "constant"
    } else {
        base_kind
    };
    let mut backoff = match kind {
        "exponential" => Backoff::exponential(wait)
            .multiplier(p.exponential_backoff_multiplier.unwrap_or(base_multiplier)),
        "linear" => Backoff::linear(wait, p.linear_backoff_step.map_or(base_step, |d| d.0)),
        _ => Backoff::constant(wait),
    };
    if let Some(max) = p.exponential_max_wait_duration.map(|d| d.0).or(base.cap()) {
        backoff = backoff.max(max);
    }
    backoff.jitter(p.jitter.map_or(base.jitter_mode(), |j| j.0))
}

impl Configurable for Bulkheads {
    type Properties = BulkheadProperties;

    fn to_config(
        p: &BulkheadProperties,
        base: &BulkheadConfig,
    ) -> Result<BulkheadConfig, ConfigError> {
        let config = BulkheadConfig {
            max_concurrent_calls: p.max_concurrent_calls.unwrap_or(base.max_concurrent_calls),
            max_wait: p.max_wait_duration.map_or(base.max_wait, |d| d.0),
        };
        config.validate().map_err(|err| document_key(err, &[]))?;
        Ok(config)
    }
}

impl Configurable for Timeouts {
    type Properties = TimeoutProperties;

    fn to_config(
        p: &TimeoutProperties,
        base: &TimeoutConfig,
    ) -> Result<TimeoutConfig, ConfigError> {
        if p.cancel_running_future == Some(false) {
            return Err(ConfigError::new(
                "cancel_running_future",
                "must be true: seawall always cancels a call that times out",
            ));
        }
        Ok(TimeoutConfig {
            duration: p.timeout_duration.map_or(base.duration, |d| d.0),
        })
    }
}

impl Configurable for RateLimiters {
    type Properties = RateLimiterProperties;

    fn to_config(
        p: &RateLimiterProperties,
        base: &RateLimiterConfig,
    ) -> Result<RateLimiterConfig, ConfigError> {
        let config = RateLimiterConfig {
            limit_for_period: p.limit_for_period.unwrap_or(base.limit_for_period),
            limit_refresh_period: p
                .limit_refresh_period
                .map_or(base.limit_refresh_period, |d| d.0),
            timeout: p.timeout_duration.map_or(base.timeout, |d| d.0),
        };
        config.validate()?;
        Ok(config)
    }
}

/// A section with every configuration and instance resolved through its inheritance chain.
struct Resolved<K: Kind> {
    configs: BTreeMap<String, K::Config>,
    instances: BTreeMap<String, (K::Config, Tags)>,
    tags: Tags,
}

fn resolve<K: Configurable>(section: &Section<K::Properties>) -> Result<Resolved<K>, ConfigError> {
    let mut configs = BTreeMap::new();
    for name in section.configs.keys() {
        let props = resolve_chain::<K>(section, "configs", name)?;
        let path = format!("{}.configs.{name}", K::SECTION);
        configs.insert(
            name.clone(),
            K::to_config(&props, &K::default_config()).map_err(|err| err.under(&path))?,
        );
    }
    let mut instances = BTreeMap::new();
    for name in section.instances.keys() {
        let props = resolve_chain::<K>(section, "instances", name)?;
        let path = format!("{}.instances.{name}", K::SECTION);
        let config = K::to_config(&props, &K::default_config()).map_err(|err| err.under(&path))?;
        instances.insert(name.clone(), (config, props.instance_tags()));
    }
    Ok(Resolved {
        configs,
        instances,
        tags: section.tags.clone(),
    })
}

/// The properties of `configs.<name>` or `instances.<name>` with everything it inherits.
fn resolve_chain<K: Configurable>(
    section: &Section<K::Properties>,
    group: &str,
    name: &str,
) -> Result<K::Properties, ConfigError> {
    let own = match group {
        "configs" => &section.configs[name],
        _ => &section.instances[name],
    };
    let path = format!("{}.{group}.{name}.base_config", K::SECTION);
    let mut merged = own.clone();
    let mut seen = vec![format!("{group}.{name}")];
    let mut parent = match own.base() {
        Some(base) => Some(base.to_owned()),
        None if group == "instances" && section.configs.contains_key(name) => Some(name.to_owned()),
        None if !(group == "configs" && name == DEFAULT_CONFIG)
            && section.configs.contains_key(DEFAULT_CONFIG) =>
        {
            Some(DEFAULT_CONFIG.to_owned())
        }
        None => None,
    };
    while let Some(parent_name) = parent {
        let Some(base) = section.configs.get(&parent_name) else {
            return Err(ConfigError::new(
                path,
                format!(
                    "no configuration named '{parent_name}' in {}.configs",
                    K::SECTION
                ),
            ));
        };
        let step = format!("configs.{parent_name}");
        if seen.contains(&step) {
            seen.push(step);
            return Err(ConfigError::new(
                path,
                format!("circular reference: {}", seen.join(" -> ")),
            ));
        }
        seen.push(step);
        merged.inherit(base);
        parent = match base.base() {
            Some(next) => Some(next.to_owned()),
            None if parent_name != DEFAULT_CONFIG
                && section.configs.contains_key(DEFAULT_CONFIG) =>
            {
                Some(DEFAULT_CONFIG.to_owned())
            }
            None => None,
        };
    }
    Ok(merged)
}

fn install<K: Configurable>(registry: &Registry<K>, resolved: Resolved<K>) {
    for (name, config) in resolved.configs {
        registry
            .add_config(&name, config)
            .expect("resolved configurations are valid");
    }
    for (name, (config, tags)) in resolved.instances {
        registry
            .get_or_create_with(&name, &config, tags)
            .expect("resolved configurations are valid");
    }
}

/// Applies a resolved section to a running registry: configurations replaced, existing
/// instances reconfigured (state kept), new instances created.
fn reload_into<K: Configurable>(
    registry: &Registry<K>,
    resolved: Resolved<K>,
) -> Result<(), RegistryError> {
    for (name, config) in resolved.configs {
        registry
            .add_config(&name, config)
            .map_err(RegistryError::Invalid)?;
    }
    for (name, (config, tags)) in resolved.instances {
        if registry.find(&name).is_some() {
            registry.reconfigure(&name, config)?;
        } else {
            registry
                .get_or_create_with(&name, &config, tags)
                .map_err(RegistryError::Invalid)?;
        }
    }
    Ok(())
}

impl Registries {
    /// Registries holding every configuration and instance of `document` (instances are
    /// created at once, so they are listed and measured before their first call).
    ///
    /// # Errors
    ///
    /// The first invalid value, named by its full key path.
    pub fn from_document(document: &Document, context: BuildContext) -> Result<Self, ConfigError> {
        let breakers = resolve::<CircuitBreakers>(&document.circuitbreaker)?;
        let retries = resolve::<Retries>(&document.retry)?;
        let bulkheads = resolve::<Bulkheads>(&document.bulkhead)?;
        let timeouts = resolve::<Timeouts>(&document.timelimiter)?;
        let limiters = resolve::<RateLimiters>(&document.ratelimiter)?;
        let registries = Self {
            circuit_breakers: Registry::with_context(context.clone(), breakers.tags.clone()),
            retries: Registry::with_context(context.clone(), retries.tags.clone()),
            bulkheads: Registry::with_context(context.clone(), bulkheads.tags.clone()),
            timeouts: Registry::with_context(context.clone(), timeouts.tags.clone()),
            rate_limiters: Registry::with_context(context, limiters.tags.clone()),
        };
        install(&registries.circuit_breakers, breakers);
        install(&registries.retries, retries);
        install(&registries.bulkheads, bulkheads);
        install(&registries.timeouts, timeouts);
        install(&registries.rate_limiters, limiters);
        Ok(registries)
    }

    /// Parses `text` and builds registries from it.
    ///
    /// # Errors
    ///
    /// A parse error or the first invalid value, named by its full key path.
    pub fn from_str(
        text: &str,
        format: Format,
        context: BuildContext,
    ) -> Result<Self, ConfigError> {
        Self::from_document(&Document::parse(text, format)?, context)
    }

    /// Reads a TOML, YAML or JSON file and builds registries from it.
    ///
    /// # Errors
    ///
    /// An unreadable file, a parse error, or the first invalid value.
    pub fn from_path(path: &Path, context: BuildContext) -> Result<Self, ConfigError> {
        Self::from_document(&Document::read(path)?, context)
    }

    /// Applies a changed document to running registries: every value is checked first and
    /// nothing changes if one is invalid; then configurations are replaced, existing
    /// instances reconfigured **keeping their state**, and new instances created. Instances
    /// missing from the document keep running unchanged.
    ///
    /// # Errors
    ///
    /// The first invalid value (nothing applied), or a change an instance cannot make at run
    /// time (a retry's budget).
    pub fn reload(&self, document: &Document) -> Result<(), RegistryError> {
        let breakers =
            resolve::<CircuitBreakers>(&document.circuitbreaker).map_err(RegistryError::Invalid)?;
        let retries = resolve::<Retries>(&document.retry).map_err(RegistryError::Invalid)?;
        let bulkheads = resolve::<Bulkheads>(&document.bulkhead).map_err(RegistryError::Invalid)?;
        let timeouts =
            resolve::<Timeouts>(&document.timelimiter).map_err(RegistryError::Invalid)?;
        let limiters =
            resolve::<RateLimiters>(&document.ratelimiter).map_err(RegistryError::Invalid)?;
        for (name, (settings, _)) in &retries.instances {
            if let Some(existing) = self.retries.find(name)
                && Retries::current(&existing).budget != settings.budget
            {
                return Err(RegistryError::Invalid(ConfigError::new(
                    format!("retry.instances.{name}.budget"),
                    "cannot change while the retry runs (the budget is state)",
                )));
            }
        }
        reload_into(&self.circuit_breakers, breakers)?;
        reload_into(&self.retries, retries)?;
        reload_into(&self.bulkheads, bulkheads)?;
        reload_into(&self.timeouts, timeouts)?;
        reload_into(&self.rate_limiters, limiters)?;
        Ok(())
    }
}

impl<K: Configurable> Registry<K> {
    /// Changes instance `name` from document-style keys (e.g. an admin endpoint's JSON body
    /// `{"slow_call_duration_threshold": "2s"}`): keys may be snake, camel or kebab case;
    /// unset keys keep their current values; the change is validated whole, applied to the
    /// next calls, and the instance keeps its state.
    ///
    /// # Errors
    ///
    /// An unknown instance, an unknown key or an invalid value, named by its full path
    /// (`circuitbreaker.instances.pg.slow_call_duration_threshold: …`); nothing changes.
    pub fn patch(&self, name: &str, changes: Value) -> Result<K::Config, RegistryError> {
        let path = format!("{}.instances.{name}", K::SECTION);
        let properties: K::Properties =
            deserialize_at(normalize_properties(changes), &path).map_err(RegistryError::Invalid)?;
        if properties.base().is_some() {
            return Err(RegistryError::Invalid(ConfigError::new(
                format!("{path}.base_config"),
                "cannot be changed at run time",
            )));
        }
        self.update(name, |current| K::to_config(&properties, &current))?;
        self.current_config(name)
    }
}

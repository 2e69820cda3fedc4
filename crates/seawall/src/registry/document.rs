//! Configuration documents: one document, in TOML, YAML or JSON, describing every instance.
//!
//! The shape follows Resilience4j's Spring Boot YAML so teams can port theirs: a section per
//! kind (`circuitbreaker`, `retry`, `bulkhead`, `timelimiter`, `ratelimiter`), each with shared
//! `configs` (`default` is the implicit base of everything), `instances` (alias `backends`)
//! and `tags`. An instance inherits from its `base_config`, else from the config of its own
//! name, else from `default`, else from the library's defaults; its own keys win. A config
//! inherits from its `base_config`, else from `default`.
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
//! - The keys of an instance are those of its kind's configuration type
//!   ([`CircuitBreakerConfig`](crate::circuit_breaker::CircuitBreakerConfig),
//!   [`RetryConfig`](crate::retry::RetryConfig),
//!   [`BulkheadConfig`](crate::bulkhead::BulkheadConfig),
//!   [`TimeoutConfig`](crate::timeout::TimeoutConfig),
//!   [`RateLimiterConfig`](crate::rate_limiter::RateLimiterConfig)), plus `base_config` and
//!   `tags`.
//! - Keys may be written `snake_case`, `camelCase` or `kebab-case`, but one key (or section)
//!   written two ways in one map is an error naming both; a root key `resilience4j` or
//!   `seawall` wrapping everything is accepted.
//! - Durations are humantime strings (`"500ms"`, `"10s"`, `"1m 30s"`) or integers, read as
//!   milliseconds (Spring's rule).
//! - Unknown keys, duplicate keys, lists where maps belong and non-finite numbers (`.nan`,
//!   `inf`) are errors. Every error names the full key path where the bad value was written
//!   and the rule, e.g. `circuitbreaker.instances.pg.failure_rate_threshold: must be in
//!   (0, 100], got 120`; a bad value inherited from a shared configuration is reported where
//!   that configuration wrote it.
//! - Limits, checked before or while parsing: at most [`MAX_DOCUMENT_BYTES`] of text, maps and
//!   lists nested at most [`MAX_NESTING`] deep, inheritance chains at most
//!   [`MAX_INHERITANCE_DEPTH`] long, and YAML aliases expanding the document at most four
//!   times over (or to [`MAX_DOCUMENT_BYTES`] for a small one). Resolving inheritance takes
//!   time linear in the document, and instances inheriting tags share them.
//!
//! Keys that are seawall's own (not Resilience4j's): `slow_call_tracking` (false turns it
//! off), `sliding_window_bucket` (a time window's resolution, default 1s),
//! `wait_duration_in_open_state_jitter` and retry's `jitter` (`none`, `full`, `equal`,
//! `decorrelated`), retry's `max_elapsed`, `enable_linear_backoff` / `linear_backoff_step`,
//! and `budget: { max_tokens, token_ratio }`. With the `fault` feature, a section `fault`
//! (alias `chaos`) configures [`FaultInjector`](crate::FaultInjector)s with the keys of
//! [`FaultConfig`](crate::fault::FaultConfig).

mod parse;
mod resolve;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_json::Value;

use self::resolve::{Resolved, resolve};
use super::{
    AdaptiveLimiters, Budget, BuildContext, Bulkheads, CircuitBreakers, Hedges, Kind, RateLimiters,
    Registries, Registry, RegistryError, Retries, Tags, Timeouts, over_budget,
};
use crate::config::{ConfigError, entry_path};

/// The largest document read: 1 MiB of text.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// How deep maps and lists may be nested in a document (a registry document needs 5).
pub const MAX_NESTING: usize = 32;
/// How many configurations an inheritance chain may pass through.
pub const MAX_INHERITANCE_DEPTH: usize = 32;

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

/// A parsed and checked configuration document: every configuration and instance of every
/// section, resolved through its inheritance and validated.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Document {
    circuit_breakers: Resolved<CircuitBreakers>,
    retries: Resolved<Retries>,
    bulkheads: Resolved<Bulkheads>,
    timeouts: Resolved<Timeouts>,
    rate_limiters: Resolved<RateLimiters>,
    #[cfg(feature = "fault")]
    fault_injectors: Resolved<super::FaultInjectors>,
    hedges: Resolved<Hedges>,
    adaptive_limiters: Resolved<AdaptiveLimiters>,
}

impl Document {
    /// Parses and checks a document.
    ///
    /// # Errors
    ///
    /// A document over the limits or with a syntax error (key `document`), or a key or value
    /// that breaks a rule, named by its full path.
    pub fn parse(text: &str, format: Format) -> Result<Self, ConfigError> {
        let root = parse::sections(text, format)?;
        let section = |name: &str| root.get(name).cloned().unwrap_or(Value::Null);
        Ok(Self {
            circuit_breakers: resolve(section(CircuitBreakers::SECTION))?,
            retries: resolve(section(Retries::SECTION))?,
            bulkheads: resolve(section(Bulkheads::SECTION))?,
            timeouts: resolve(section(Timeouts::SECTION))?,
            rate_limiters: resolve(section(RateLimiters::SECTION))?,
            #[cfg(feature = "fault")]
            fault_injectors: resolve(section(<super::FaultInjectors as Kind>::SECTION))?,
            hedges: resolve(section(Hedges::SECTION))?,
            adaptive_limiters: resolve(section(AdaptiveLimiters::SECTION))?,
        })
    }

    /// Reads, parses and checks a file; the format comes from the extension.
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
        let text = parse::read_limited(path)?;
        Self::parse(&text, format)
    }
}

fn install<K: Kind>(registry: &Registry<K>, resolved: &Resolved<K>) -> Result<(), ConfigError> {
    for (name, config) in &resolved.configs {
        registry.add_config(name, config.clone())?;
    }
    for (name, (config, tags)) in &resolved.instances {
        registry.get_or_create_shared(name, config, tags.clone())?;
    }
    Ok(())
}

/// Applies a resolved section to a running registry: configurations replaced, existing
/// instances reconfigured (state kept), new instances created.
fn reload_into<K: Kind>(
    registry: &Registry<K>,
    resolved: &Resolved<K>,
) -> Result<(), RegistryError> {
    for (name, config) in &resolved.configs {
        registry
            .add_config(name, config.clone())
            .map_err(RegistryError::Invalid)?;
    }
    for (name, (config, tags)) in &resolved.instances {
        if registry.find(name).is_some() {
            // The whole document's windows were checked against the budget first.
            registry.change(name, |_| Ok(config.clone()), Budget::CheckedByCaller)?;
        } else {
            registry
                .get_or_create_shared(name, config, tags.clone())
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
        check_memory(document, 0, context.memory_budget_or_default())?;
        let registries = Self {
            circuit_breakers: Registry::with_context(
                context.clone(),
                document.circuit_breakers.tags.clone(),
            ),
            retries: Registry::with_context(context.clone(), document.retries.tags.clone()),
            bulkheads: Registry::with_context(context.clone(), document.bulkheads.tags.clone()),
            timeouts: Registry::with_context(context.clone(), document.timeouts.tags.clone()),
            #[cfg(feature = "fault")]
            fault_injectors: Registry::with_context(
                context.clone(),
                document.fault_injectors.tags.clone(),
            ),
            rate_limiters: Registry::with_context(
                context.clone(),
                document.rate_limiters.tags.clone(),
            ),
            hedges: Registry::with_context(context.clone(), document.hedges.tags.clone()),
            adaptive_limiters: Registry::with_context(
                context,
                document.adaptive_limiters.tags.clone(),
            ),
        };
        install(&registries.circuit_breakers, &document.circuit_breakers)?;
        install(&registries.retries, &document.retries)?;
        install(&registries.bulkheads, &document.bulkheads)?;
        install(&registries.timeouts, &document.timeouts)?;
        install(&registries.rate_limiters, &document.rate_limiters)?;
        #[cfg(feature = "fault")]
        install(&registries.fault_injectors, &document.fault_injectors)?;
        install(&registries.hedges, &document.hedges)?;
        install(&registries.adaptive_limiters, &document.adaptive_limiters)?;
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

    /// Applies a changed document to running registries: nothing changes if an instance
    /// cannot take its new configuration; then configurations are replaced, existing
    /// instances reconfigured **keeping their state**, and new instances created. Instances
    /// missing from the document keep running unchanged. Reloading an unchanged document
    /// changes nothing.
    ///
    /// # Errors
    ///
    /// A change an instance cannot make at run time (a retry's budget), or windows over the
    /// memory budget; nothing is applied.
    pub fn reload(&self, document: &Document) -> Result<(), RegistryError> {
        // Running breakers the document leaves alone keep their windows.
        let outside = self
            .circuit_breakers
            .all()
            .iter()
            .filter(|(name, _)| !document.circuit_breakers.instances.contains_key(name))
            .map(|(_, breaker)| breaker.config().window_memory_bound())
            .fold(0, usize::saturating_add);
        let budget = self
            .circuit_breakers
            .inner
            .context
            .memory_budget_or_default();
        check_memory(document, outside, budget).map_err(RegistryError::Invalid)?;
        for (name, (config, _)) in &document.retries.instances {
            if let Some(existing) = self.retries.find(name)
                && existing.config().budget != config.budget
            {
                return Err(RegistryError::Invalid(ConfigError::new(
                    format!("{}.budget", entry_path("retry", "instances", name)),
                    "cannot change while the retry runs (the budget is state)",
                )));
            }
        }
        reload_into(&self.circuit_breakers, &document.circuit_breakers)?;
        reload_into(&self.retries, &document.retries)?;
        reload_into(&self.bulkheads, &document.bulkheads)?;
        reload_into(&self.timeouts, &document.timeouts)?;
        reload_into(&self.rate_limiters, &document.rate_limiters)?;
        #[cfg(feature = "fault")]
        reload_into(&self.fault_injectors, &document.fault_injectors)?;
        reload_into(&self.hedges, &document.hedges)?;
        reload_into(&self.adaptive_limiters, &document.adaptive_limiters)?;
        Ok(())
    }
}

impl<K: Kind> Registry<K>
where
    K::Config: serde::Serialize + serde::de::DeserializeOwned,
{
    /// Changes instance `name` from document-style keys (e.g. an admin endpoint's JSON body
    /// `{"slow_call_duration_threshold": "2s"}`): keys may be snake, camel or kebab case;
    /// unset keys keep their current values; the change is validated whole, applied to the
    /// next calls, and the instance keeps its state.
    ///
    /// # Errors
    ///
    /// An unknown instance, an unknown key or an invalid value, named by its full path
    /// (`circuitbreaker.instances.pg.slow_call_duration_threshold: …`), or a breaker's window
    /// grown past the registry's memory budget; nothing changes.
    pub fn patch(&self, name: &str, changes: Value) -> Result<K::Config, RegistryError> {
        let path = entry_path(K::SECTION, "instances", name);
        let changes =
            parse::normalize_properties(changes, &path).map_err(RegistryError::Invalid)?;
        if changes.contains_key("base_config") || changes.contains_key("tags") {
            return Err(RegistryError::Invalid(ConfigError::new(
                format!("{path}.base_config"),
                "cannot be changed at run time",
            )));
        }
        self.update(name, |current| {
            crate::config::overlay(&current, Value::Object(changes))
        })?;
        self.current_config(name)
    }
}

/// Refuses a document whose breakers' windows could outgrow `budget` bytes in all: its own
/// instances, plus `outside` bytes of running ones it leaves alone.
fn check_memory(document: &Document, outside: usize, budget: usize) -> Result<(), ConfigError> {
    let mut total = outside;
    for (name, (config, _)) in &document.circuit_breakers.instances {
        total = total.saturating_add(config.window_memory_bound());
        if total > budget {
            return Err(over_budget(
                format!(
                    "{}.sliding_window_size",
                    entry_path("circuitbreaker", "instances", name)
                ),
                total,
                budget,
            ));
        }
    }
    Ok(())
}

/// The tags of a document map (`tags: { team: payments }`).
fn tags_from(value: Value, path: &str) -> Result<Tags, ConfigError> {
    match value {
        Value::Null => Ok(Tags::new()),
        Value::Object(map) => map
            .into_iter()
            .map(|(key, value)| match value {
                Value::String(text) => Ok((key, text)),
                Value::Number(number) => Ok((key, number.to_string())),
                Value::Bool(flag) => Ok((key, flag.to_string())),
                _ => Err(ConfigError::new(
                    parse::join(path, &key),
                    "a tag's value must be a string",
                )),
            })
            .collect(),
        _ => Err(ConfigError::new(path.to_owned(), "must be a map of tags")),
    }
}

impl<K: Kind> fmt::Debug for Resolved<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("configs", &self.configs)
            .field("instances", &self.instances)
            .field("tags", &self.tags)
            .finish()
    }
}

impl<K: Kind> PartialEq for Resolved<K> {
    fn eq(&self, other: &Self) -> bool {
        self.configs == other.configs
            && self.instances == other.instances
            && self.tags == other.tags
    }
}

impl<K: Kind> Clone for Resolved<K> {
    fn clone(&self) -> Self {
        Self {
            configs: self.configs.clone(),
            instances: self.instances.clone(),
            tags: self.tags.clone(),
        }
    }
}

impl<K: Kind> Default for Resolved<K> {
    fn default() -> Self {
        Self {
            configs: BTreeMap::new(),
            instances: BTreeMap::new(),
            tags: Tags::new(),
        }
    }
}

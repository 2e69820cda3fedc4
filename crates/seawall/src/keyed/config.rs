//! The settings of a keyed set of instances, and its builder.

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::Duration;

use super::Keyed;
use crate::clock::Clock;
use crate::config::{ConfigError, check_duration};
use crate::registry::{BuildContext, Kind};

/// How many keys a [`Keyed`] holds and for how long: plain data, checked by
/// [`validate`](Self::validate).
///
/// With the `serde` feature it reads and writes `max_keys`, `idle_ttl` (`"10m"`, or `null`
/// for none) and `max_labelled_keys`; missing keys take the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyedConfig {
    /// The most keys with an instance of their own (default 10 000; 1 to
    /// [`MAX_KEYS`](Self::MAX_KEYS)). See [`Keyed`] for what happens at the bound.
    pub max_keys: usize,
    /// A key unused for this long is evicted (if its instance may be); `None`: only the bound
    /// evicts (default 10 minutes; at least 1 ms, at most
    /// [`MAX_DURATION`](crate::config::MAX_DURATION)).
    pub idle_ttl: Option<Duration>,
    /// The most keys labelled with their own name in metrics; later keys share the
    /// [`OTHER_LABEL`](super::OTHER_LABEL) bucket (default 100; at most `max_keys`).
    pub max_labelled_keys: usize,
}

#[cfg(feature = "serde")]
crate::config::serde::document_form! {
    KeyedConfig {
        max_keys: usize = max_keys,
        #[serde(with = "crate::config::serde::duration::option")]
        idle_ttl: Option<Duration> = idle_ttl,
        max_labelled_keys: usize = max_labelled_keys,
    }
}

impl KeyedConfig {
    /// The largest `max_keys`: 16 Mi.
    pub const MAX_KEYS: usize = 1 << 24;

    /// The defaults with `max_keys`.
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self {
            max_keys,
            max_labelled_keys: Self::default().max_labelled_keys.min(max_keys),
            ..Self::default()
        }
    }

    /// Checks every rule.
    ///
    /// # Errors
    ///
    /// The first broken rule, naming its key (`max_keys`, `idle_ttl`, `max_labelled_keys`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_keys == 0 || self.max_keys > Self::MAX_KEYS {
            return Err(ConfigError::new(
                "max_keys",
                format!(
                    "must be between 1 and {}, got {}",
                    Self::MAX_KEYS,
                    self.max_keys
                ),
            ));
        }
        if let Some(ttl) = self.idle_ttl {
            check_duration("idle_ttl", ttl, Duration::from_millis(1))?;
        }
        if self.max_labelled_keys > self.max_keys {
            return Err(ConfigError::new(
                "max_labelled_keys",
                format!(
                    "must be <= max_keys ({}), got {}",
                    self.max_keys, self.max_labelled_keys
                ),
            ));
        }
        Ok(())
    }
}

impl Default for KeyedConfig {
    fn default() -> Self {
        Self {
            max_keys: 10_000,
            idle_ttl: Some(Duration::from_secs(600)),
            max_labelled_keys: 100,
        }
    }
}

/// Builds a [`Keyed`]; see [`Keyed::builder`].
pub struct KeyedBuilder<K: Kind, Q> {
    pub(super) template: K::Config,
    pub(super) name: String,
    pub(super) settings: KeyedConfig,
    pub(super) context: BuildContext,
    pub(super) key: PhantomData<fn() -> Q>,
}

impl<K: Kind, Q> fmt::Debug for KeyedBuilder<K, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedBuilder")
            .field("name", &self.name)
            .field("template", &self.template)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<K: Kind, Q> KeyedBuilder<K, Q>
where
    Q: Hash + Eq + Clone + fmt::Display + fmt::Debug + Send + Sync + 'static,
{
    /// The name instances are called after: `name[key]` (default `keyed`).
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// All the settings at once.
    #[must_use]
    pub fn config(mut self, settings: KeyedConfig) -> Self {
        self.settings = settings;
        self
    }

    /// The most keys with an instance of their own.
    #[must_use]
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.settings.max_keys = max_keys;
        self
    }

    /// Keys unused for this long are evicted; `None`: only the bound evicts.
    #[must_use]
    pub fn idle_ttl(mut self, idle_ttl: Option<Duration>) -> Self {
        self.settings.idle_ttl = idle_ttl;
        self
    }

    /// The most keys labelled with their own name in metrics.
    #[must_use]
    pub fn max_labelled_keys(mut self, max_labelled_keys: usize) -> Self {
        self.settings.max_labelled_keys = max_labelled_keys;
        self
    }

    /// The clock idle time is measured on, and instances are built with (default tokio's).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.context = self.context.clock(clock);
        self
    }

    /// What instances are built with (clock, seed); replaces [`clock`](Self::clock).
    #[must_use]
    pub fn context(mut self, context: BuildContext) -> Self {
        self.context = context;
        self
    }

    /// The keyed set, empty.
    ///
    /// # Errors
    ///
    /// An invalid template (its key under `template`) or setting.
    pub fn build(self) -> Result<Keyed<K, Q>, ConfigError> {
        Keyed::from_builder(self)
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    #[test]
    fn settings_read_humantime_durations_and_default_missing_keys() {
        let settings: KeyedConfig =
            serde_json::from_str(r#"{"max_keys": 64, "idle_ttl": "90s"}"#).unwrap();
        assert_eq!(settings.max_keys, 64);
        assert_eq!(settings.idle_ttl, Some(Duration::from_secs(90)));
        assert_eq!(settings.max_labelled_keys, 100);
        let round_trip: KeyedConfig =
            serde_json::from_value(serde_json::to_value(settings).unwrap()).unwrap();
        assert_eq!(round_trip, settings);
        assert!(serde_json::from_str::<KeyedConfig>(r#"{"max_key": 1}"#).is_err());
    }
}

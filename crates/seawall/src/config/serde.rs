//! How configurations read and write their document form: durations, state and jitter names,
//! and [`overlay`] for reading keys over a starting point.

use std::fmt;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ConfigError, segment};
use crate::circuit_breaker::State;
use crate::retry::Jitter;

/// Reads `changes` over `base`: every key written in `changes` replaces the same key of
/// `base` (maps are merged key by key, at every depth); keys left out keep `base`'s values.
/// The result is checked for its shape (unknown keys, wrong types), not validated: build a
/// decorator from it, or call its `validate`.
///
/// This is how a registry applies an inherited configuration, how an admin endpoint changes
/// one field of a running instance, and how a client embedding seawall's configurations reads
/// a partial document over defaults of its own.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use seawall::circuit_breaker::{CircuitBreakerConfig, SlidingWindow};
///
/// let mut base = CircuitBreakerConfig::default();
/// base.sliding_window = SlidingWindow::count(10);
/// let changed = seawall::config::overlay(
///     &base,
///     serde_json::json!({ "failure_rate_threshold": 60, "slow_call_duration_threshold": "2s" }),
/// )
/// .unwrap();
/// assert_eq!(changed.sliding_window, SlidingWindow::count(10)); // kept
/// assert_eq!(changed.failure_rate_threshold, 60.0);
/// assert_eq!(changed.slow_call_duration_threshold, Some(Duration::from_secs(2)));
///
/// let err = seawall::config::overlay(&base, serde_json::json!({ "sliding_window_size": "ten" }))
///     .unwrap_err();
/// assert_eq!(err.key(), "sliding_window_size");
/// ```
///
/// # Errors
///
/// A key `T` does not have, or a value of the wrong type, named by its path.
pub fn overlay<T: Serialize + DeserializeOwned>(
    base: &T,
    changes: Value,
) -> Result<T, ConfigError> {
    let mut merged = serde_json::to_value(base)
        .map_err(|err| ConfigError::new(ROOT, format!("cannot be written as a document: {err}")))?;
    // Nothing written changes nothing, as an empty map would.
    if !changes.is_null() {
        merge(&mut merged, changes, "")?;
    }
    from_value(merged)
}

/// The key of an error about the whole of what was read rather than one key in it.
pub(crate) const ROOT: &str = "document";

/// Switches of which at most one may be on. Turning one on turns the others off where they
/// were only inherited (a linear backoff written over the library's exponential default);
/// writing two of them on in one place is still an error.
const EXCLUSIVE_SWITCHES: [&str; 2] = ["enable_exponential_backoff", "enable_linear_backoff"];

/// The switches that `written` turns off by turning another on.
pub(crate) fn switched_off(written: &serde_json::Map<String, Value>) -> Vec<&'static str> {
    let on = |key: &str| written.get(key) == Some(&Value::Bool(true));
    if !EXCLUSIVE_SWITCHES.iter().any(|key| on(key)) {
        return Vec::new();
    }
    EXCLUSIVE_SWITCHES
        .into_iter()
        .filter(|key| !written.contains_key(*key))
        .collect()
}

/// A serde path as a dotted key (`retry.budget.max_tokens`, `tags[2]`); empty for the root.
/// It ends where the parser could not say which key it was in.
pub(crate) fn dotted(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for part in path {
        let text = match part {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } => segment(key),
            Segment::Enum { variant } => segment(variant),
            Segment::Unknown => break,
        };
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&text);
    }
    out
}

/// Deep-merges `changes` into `target`: maps key by key, anything else replaced. A map is
/// never replaced by a list or a scalar (a list would otherwise fill a struct positionally).
fn merge(target: &mut Value, changes: Value, path: &str) -> Result<(), ConfigError> {
    match (target, changes) {
        (Value::Object(target), Value::Object(changes)) => {
            for key in switched_off(&changes) {
                if let Some(switch) = target.get_mut(key) {
                    *switch = Value::Bool(false);
                }
            }
            for (key, value) in changes {
                let at = if path.is_empty() {
                    segment(&key).into_owned()
                } else {
                    format!("{path}.{}", segment(&key))
                };
                match target.get_mut(&key) {
                    Some(existing) => merge(existing, value, &at)?,
                    None => {
                        target.insert(key, value);
                    }
                }
            }
            Ok(())
        }
        (
            Value::Object(_),
            changes @ (Value::Array(_) | Value::String(_) | Value::Number(_) | Value::Bool(_)),
        ) => {
            let found = match changes {
                Value::Array(_) => "a list",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            };
            Err(ConfigError::new(
                if path.is_empty() { ROOT } else { path }.to_owned(),
                format!("must be a map of keys, got {found}"),
            ))
        }
        (target, changes) => {
            *target = changes;
            Ok(())
        }
    }
}

/// Deserializes `value`, naming the path of any error ([`ROOT`] for the whole value).
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = dotted(err.path());
        let message = err.into_inner().to_string();
        // A configuration's own check of one key, raised while reading it, reads
        // "key: rule"; serde's messages never start with a bare key and a colon.
        match message.split_once(": ") {
            Some((key, rule)) if is_key(key) => {
                let key = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                };
                ConfigError::new(key, rule.to_owned())
            }
            _ if path.is_empty() => ConfigError::new(ROOT, message),
            _ => ConfigError::new(path, message),
        }
    })
}

fn is_key(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Gives a plain configuration struct its document form: a private mirror with the document's
/// key names (missing keys keep the defaults, unknown keys are errors, a list is not read as
/// a map), converted field by field.
macro_rules! document_form {
    ($config:ident { $( $(#[$meta:meta])* $key:ident: $ty:ty = $field:ident, )* }) => {
        const _: () = {
            #[derive(::serde::Deserialize, ::serde::Serialize)]
            #[serde(default, deny_unknown_fields)]
            struct Keys {
                $( $(#[$meta])* $key: $ty, )*
            }

            impl Default for Keys {
                fn default() -> Self {
                    let config = <$config>::default();
                    Self { $( $key: config.$field, )* }
                }
            }

            impl ::serde::Serialize for $config {
                fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    Keys { $( $key: self.$field, )* }.serialize(serializer)
                }
            }

            impl<'de> ::serde::Deserialize<'de> for $config {
                fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    let keys = <Keys as ::serde::Deserialize>::deserialize(
                        $crate::config::serde::MapOnly(deserializer),
                    )?;
                    let mut config = <$config>::default();
                    $( config.$field = keys.$key; )*
                    Ok(config)
                }
            }
        };
    };
}
pub(crate) use document_form;

/// Reads a struct only from a map: serde's derived structs also accept a list, filled by
/// position, which turns a mistyped document into a silently wrong configuration.
pub(crate) struct MapOnly<D>(pub(crate) D);

macro_rules! forward {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    forward!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// A duration: a humantime string (`"250ms"`, `"10s"`, `"1m 30s"`) or an integer number of
/// milliseconds (Spring's rule); written as a humantime string.
pub(crate) mod duration {
    use super::{Deserializer, Duration, Serializer, Visitor, de, fmt};

    pub(crate) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*value))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }

    pub(crate) struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"500ms\" or \"10s\", or a number of milliseconds")
        }

        fn visit_u64<E: de::Error>(self, millis: u64) -> Result<Duration, E> {
            Ok(Duration::from_millis(millis))
        }

        fn visit_i64<E: de::Error>(self, millis: i64) -> Result<Duration, E> {
            u64::try_from(millis)
                .map(Duration::from_millis)
                .map_err(|_| E::custom(format!("must not be negative, got {millis}")))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            humantime::parse_duration(text.trim())
                .map_err(|err| E::custom(format!("invalid duration {text:?}: {err}")))
        }
    }

    /// An optional duration; `None` is written as nothing.
    pub(crate) mod option {
        use super::{Deserializer, Duration, DurationVisitor, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            value: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(value) => super::serialize(value, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            deserializer.deserialize_option(OptionVisitor)
        }

        struct OptionVisitor;

        impl<'de> serde::de::Visitor<'de> for OptionVisitor {
            type Value = Option<Duration>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as \"500ms\" or \"10s\", or a number of milliseconds")
            }

            fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Self::Value, D::Error> {
                deserializer.deserialize_any(DurationVisitor).map(Some)
            }
        }
    }
}

/// A sliding window's size: an integer (calls for a count window, seconds for a time window,
/// as in Resilience4j) or a duration string for a time window (`"800ms"`).
pub(crate) mod window_size {
    use super::{Deserializer, Duration, Serializer, Visitor, de, fmt};

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Size {
        Calls(u32),
        Time(Duration),
        /// An integer read from a document, before the window type says what it counts.
        Number(u64),
    }

    impl Size {
        /// The number of calls of a count window (a duration is refused by the caller,
        /// through [`Size::is_time`]).
        pub(crate) fn calls(self) -> u32 {
            match self {
                Self::Calls(calls) => calls,
                Self::Number(number) => u32::try_from(number).unwrap_or(u32::MAX),
                Self::Time(_) => 0,
            }
        }

        pub(crate) fn is_time(self) -> bool {
            matches!(self, Self::Time(_))
        }

        pub(crate) fn time(self) -> Duration {
            match self {
                Self::Time(size) => size,
                Self::Calls(seconds) => Duration::from_secs(u64::from(seconds)),
                Self::Number(seconds) => Duration::from_secs(seconds),
            }
        }
    }

    pub(crate) fn serialize<S: Serializer>(value: &Size, serializer: S) -> Result<S::Ok, S::Error> {
        match *value {
            Size::Calls(calls) => serializer.serialize_u32(calls),
            Size::Number(number) => serializer.serialize_u64(number),
            Size::Time(size) if size.subsec_nanos() == 0 => {
                serializer.serialize_u64(size.as_secs())
            }
            Size::Time(size) => super::duration::serialize(&size, serializer),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Size, D::Error> {
        deserializer.deserialize_any(SizeVisitor)
    }

    struct SizeVisitor;

    impl Visitor<'_> for SizeVisitor {
        type Value = Size;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of calls or seconds, or a duration such as \"800ms\"")
        }

        fn visit_u64<E: de::Error>(self, number: u64) -> Result<Size, E> {
            Ok(Size::Number(number))
        }

        fn visit_i64<E: de::Error>(self, number: i64) -> Result<Size, E> {
            u64::try_from(number)
                .map(Size::Number)
                .map_err(|_| E::custom(format!("must not be negative, got {number}")))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Size, E> {
            humantime::parse_duration(text.trim())
                .map(Size::Time)
                .map_err(|err| E::custom(format!("invalid duration {text:?}: {err}")))
        }
    }
}

/// Reads a name case-insensitively, with `-` or `_` between words (`HALF_OPEN`,
/// `half-open`, `halfOpen` is not accepted).
fn normalized(text: &str) -> String {
    text.trim().to_ascii_uppercase().replace('-', "_")
}

impl Serialize for State {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let wanted = normalized(&text);
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == wanted)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "unknown state {text:?}, expected one of CLOSED, OPEN, HALF_OPEN, DISABLED, FORCED_OPEN, METRICS_ONLY"
                ))
            })
    }
}

impl Serialize for Jitter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Jitter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match normalized(&text).as_str() {
            "NONE" => Ok(Self::None),
            "FULL" => Ok(Self::Full),
            "EQUAL" => Ok(Self::Equal),
            "DECORRELATED" => Ok(Self::Decorrelated),
            _ => Err(de::Error::custom(format!(
                "unknown jitter {text:?}, expected none, full, equal or decorrelated"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::overlay;
    use crate::circuit_breaker::{CircuitBreakerConfig, SlidingWindow};
    use crate::retry::RetryConfig;

    #[test]
    fn a_sub_second_time_window_survives_a_round_trip_through_its_document_form() {
        let config = CircuitBreakerConfig {
            sliding_window: SlidingWindow::time_with_buckets(
                Duration::from_millis(800),
                Duration::from_millis(100),
            ),
            ..CircuitBreakerConfig::default()
        };
        let written = serde_json::to_value(&config).unwrap();
        assert_eq!(written["sliding_window_size"], json!("800ms"));
        let read: CircuitBreakerConfig = serde_json::from_value(written).unwrap();
        assert_eq!(read, config);
        let whole = CircuitBreakerConfig {
            sliding_window: SlidingWindow::time(Duration::from_secs(30)),
            ..CircuitBreakerConfig::default()
        };
        assert_eq!(
            serde_json::to_value(&whole).unwrap()["sliding_window_size"],
            json!(30)
        );
    }

    #[test]
    fn a_count_window_sized_by_a_duration_is_refused_with_its_key() {
        let err = overlay(
            &CircuitBreakerConfig::default(),
            json!({ "sliding_window_type": "COUNT_BASED", "sliding_window_size": "10s" }),
        )
        .unwrap_err();
        assert_eq!(err.key(), "sliding_window_size");
        assert!(err.rule().contains("number of calls"), "{err}");
    }

    #[test]
    fn durations_read_humantime_or_milliseconds_and_an_absent_cap_stays_absent() {
        let read = overlay(
            &RetryConfig::default(),
            json!({ "wait_duration": 250, "max_elapsed": "1m 30s", "exponential_max_wait_duration": null }),
        )
        .unwrap();
        assert_eq!(read.max_elapsed, Some(Duration::from_secs(90)));
        assert_eq!(read.backoff.base_delay(1), Duration::from_millis(250));
        assert_eq!(read.backoff.cap(), None);
        let err = overlay(&RetryConfig::default(), json!({ "wait_duration": -5 })).unwrap_err();
        assert_eq!(err.key(), "wait_duration");
        assert!(err.rule().contains("negative"), "{err}");
    }
}

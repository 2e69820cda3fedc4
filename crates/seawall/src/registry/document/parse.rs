//! From text to checked, normalised maps: limits, strict parsing (no duplicate keys, no
//! non-finite numbers), the optional root wrapper, and key spellings.

use std::cell::Cell;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::{Format, MAX_DOCUMENT_BYTES, MAX_NESTING};
use crate::config::ConfigError;
use crate::config::segment;
use crate::config::serde::{ROOT, dotted};

/// Reads a file of at most [`MAX_DOCUMENT_BYTES`].
pub(super) fn read_limited(path: &Path) -> Result<String, ConfigError> {
    let cannot_read = |err: std::io::Error| {
        ConfigError::new("document", format!("cannot read {}: {err}", path.display()))
    };
    let size = std::fs::metadata(path).map_err(cannot_read)?.len();
    if size > MAX_DOCUMENT_BYTES as u64 {
        return Err(too_large(size));
    }
    std::fs::read_to_string(path).map_err(cannot_read)
}

fn too_large(size: u64) -> ConfigError {
    ConfigError::new(
        "document",
        format!("is {size} bytes; at most {MAX_DOCUMENT_BYTES} are read"),
    )
}

/// The document's sections by their canonical names, each a map or null.
pub(super) fn sections(text: &str, format: Format) -> Result<Map<String, Value>, ConfigError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large(text.len() as u64));
    }
    // A byte-order mark is not part of the document (editors on Windows add one).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_nesting(text, format)?;
    let root = match strict_parse(text, format)? {
        Value::Null => return Ok(Map::new()),
        Value::Object(map) => map,
        other => {
            return Err(ConfigError::new(
                "document",
                format!("must be a map of sections, got {}", kind_of(&other)),
            ));
        }
    };
    let root = unwrap_root(root)?;
    let mut sections = Map::new();
    let mut spelled: Map<String, Value> = Map::new();
    for (key, value) in root {
        let Some(name) = section_name(&key) else {
            return Err(ConfigError::new(
                join("", &key),
                "unknown section; expected circuitbreaker, retry, bulkhead, timelimiter, ratelimiter or hedge",
            ));
        };
        if let Some(Value::String(first)) = spelled.get(name) {
            return Err(ConfigError::new(
                key.clone(),
                format!("is the same section as `{first}`; write it once"),
            ));
        }
        spelled.insert(name.to_owned(), Value::String(key));
        sections.insert(name.to_owned(), value);
    }
    Ok(sections)
}

/// Spring documents often wrap everything in `resilience4j:`; accept that and `seawall:`.
fn unwrap_root(root: Map<String, Value>) -> Result<Map<String, Value>, ConfigError> {
    if root.len() != 1 {
        return Ok(root);
    }
    let Some((key, _)) = root.iter().next() else {
        return Ok(root);
    };
    if key != "resilience4j" && key != "seawall" {
        return Ok(root);
    }
    let key = key.clone();
    match root.into_iter().next().map(|(_, inner)| inner) {
        Some(Value::Object(inner)) => Ok(inner),
        Some(Value::Null) | None => Ok(Map::new()),
        Some(other) => Err(ConfigError::new(
            key,
            format!("must be a map of sections, got {}", kind_of(&other)),
        )),
    }
}

fn section_name(key: &str) -> Option<&'static str> {
    match snake_case(key).replace('_', "").as_str() {
        "circuitbreaker" | "circuitbreakers" => Some("circuitbreaker"),
        "timelimiter" | "timelimiters" | "timeout" | "timeouts" => Some("timelimiter"),
        "retry" | "retries" => Some("retry"),
        "bulkhead" | "bulkheads" => Some("bulkhead"),
        "ratelimiter" | "ratelimiters" => Some("ratelimiter"),
        #[cfg(feature = "fault")]
        "fault" | "faults" | "faultinjector" | "faultinjectors" | "chaos" => Some("fault"),
        "hedge" | "hedges" => Some("hedge"),
        "adaptivelimiter" | "adaptivelimiters" => Some("adaptivelimiter"),
        _ => None,
    }
}

/// `failureRateThreshold` and `failure-rate-threshold` → `failure_rate_threshold`.
pub(super) fn snake_case(key: &str) -> String {
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

/// The keys of `map` in `snake_case`; two spellings of one key are an error naming both.
/// Values under `keep` are left as written (names chosen by the user, such as tags).
pub(super) fn normalize_keys(
    map: Map<String, Value>,
    path: &str,
    keep: &[&str],
) -> Result<Map<String, Value>, ConfigError> {
    let mut out = Map::new();
    let mut written: Map<String, Value> = Map::new();
    for (key, value) in map {
        let normal = snake_case(&key);
        if let Some(Value::String(first)) = written.get(&normal) {
            return Err(ConfigError::new(
                join(path, &key),
                format!("is the same key as `{first}`; write it once"),
            ));
        }
        let value = match value {
            Value::Object(inner) if !keep.contains(&normal.as_str()) => {
                Value::Object(normalize_keys(inner, &join(path, &key), keep)?)
            }
            other => other,
        };
        written.insert(normal.clone(), Value::String(key));
        out.insert(normal, value);
    }
    Ok(out)
}

/// A configuration's or instance's keys, normalised; it must be a map (or empty).
pub(crate) fn normalize_properties(
    value: Value,
    path: &str,
) -> Result<Map<String, Value>, ConfigError> {
    match value {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => normalize_keys(map, path, &["tags"]),
        other => Err(ConfigError::new(
            path.to_owned(),
            format!("must be a map of keys, got {}", kind_of(&other)),
        )),
    }
}

/// `path.key`, the key quoted if it is empty or has a dot (see `config::segment`).
pub(super) fn join(path: &str, key: &str) -> String {
    let key = segment(key);
    if path.is_empty() {
        key.into_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Rejects nesting deeper than [`MAX_NESTING`] before any parser sees it (a YAML scanner
/// spends quadratic time on deep flow mappings). Brackets inside quoted strings and comments
/// do not count.
fn check_nesting(text: &str, format: Format) -> Result<(), ConfigError> {
    let comment = match format {
        Format::Json => None,
        Format::Toml | Format::Yaml => Some('#'),
    };
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut in_comment = false;
    let mut previous = '\n';
    for (line, ch) in lines_and_chars(text) {
        if in_comment {
            in_comment = ch != '\n';
        } else if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if ch == '\\' && open == '"' {
                escaped = true;
            } else if ch == open || ch == '\n' && open == '\'' && format == Format::Toml {
                quote = None;
            }
        } else if Some(ch) == comment && (previous.is_whitespace() || previous == '\n') {
            in_comment = true;
        } else {
            match ch {
                '"' | '\'' => quote = Some(ch),
                '{' | '[' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(ConfigError::new(
                            "document",
                            format!(
                                "nests maps or lists more than {MAX_NESTING} deep (line {line})"
                            ),
                        ));
                    }
                }
                '}' | ']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        previous = ch;
    }
    Ok(())
}

fn lines_and_chars(text: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut line = 1;
    text.chars().map(move |ch| {
        let at = line;
        if ch == '\n' {
            line += 1;
        }
        (at, ch)
    })
}

/// Parses `text` into a value, refusing duplicate keys, non-finite numbers, nesting past
/// [`MAX_NESTING`] and a value larger than the text; errors name the path.
fn strict_parse(text: &str, format: Format) -> Result<Value, ConfigError> {
    let room = Room(Cell::new(
        text.len()
            .saturating_mul(ROOM_PER_BYTE)
            .max(MAX_DOCUMENT_BYTES),
    ));
    let seed = Strict {
        depth: 0,
        room: &room,
    };
    match format {
        Format::Json => {
            let mut deserializer = serde_json::Deserializer::from_str(text);
            let value = tracked(seed, &mut deserializer)?;
            deserializer
                .end()
                .map_err(|err| ConfigError::new("document", err.to_string()))?;
            Ok(value)
        }
        Format::Yaml => tracked(seed, serde_norway::Deserializer::from_str(text)),
        Format::Toml => {
            let deserializer = toml::Deserializer::parse(text)
                .map_err(|err| ConfigError::new("document", err.to_string()))?;
            tracked(seed, deserializer)
        }
    }
}

fn tracked<'de, D>(seed: Strict<'_>, deserializer: D) -> Result<Value, ConfigError>
where
    D: Deserializer<'de>,
    D::Error: fmt::Display,
{
    let mut track = serde_path_to_error::Track::new();
    let wrapped = serde_path_to_error::Deserializer::new(deserializer, &mut track);
    seed.deserialize(wrapped).map_err(|err| {
        let path = dotted(&track.path());
        let key = if path.is_empty() {
            ROOT.to_owned()
        } else {
            path
        };
        // YAML's messages start with the path themselves; the key is said once.
        let message = err.to_string();
        let rule = message
            .strip_prefix(key.as_str())
            .and_then(|rest| rest.strip_prefix(": "))
            .map_or_else(|| message.clone(), str::to_owned);
        ConfigError::new(key, rule)
    })
}

/// Deserializes any value into a [`Value`], strictly.
#[derive(Clone, Copy)]
struct Strict<'r> {
    depth: usize,
    room: &'r Room,
}

/// How much more the value read may hold: each value costs one, and each string or key one
/// more than its length. The whole may cost four times the text's length, or as much as the
/// largest document, whichever is more. Written out, no document comes near that (the
/// densest, TOML's one-letter dotted keys, cost 1.5 per byte); YAML aliases sharing settings
/// between instances stay well within it; but a few aliases of a large anchor would otherwise
/// grow a megabyte of text into gigabytes (the parser bounds how many aliases are followed,
/// not how much each one repeats).
struct Room(Cell<usize>);

const ROOM_PER_BYTE: usize = 4;

impl Strict<'_> {
    fn deeper<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= MAX_NESTING {
            return Err(E::custom(format!(
                "nests maps or lists more than {MAX_NESTING} deep"
            )));
        }
        Ok(Self {
            depth: self.depth + 1,
            room: self.room,
        })
    }

    /// Takes room for one value of `len` bytes of text.
    fn take<E: de::Error>(self, len: usize) -> Result<Self, E> {
        let left = self.room.0.get();
        match left.checked_sub(len.saturating_add(1)) {
            Some(left) => {
                self.room.0.set(left);
                Ok(self)
            }
            None => Err(E::custom(
                "expands to more than four times the document's own size (aliases repeating a large anchor?)",
            )),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a configuration value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        self.take(0)?;
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        self.take(0)?;
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        self.take(0)?;
        Ok(Value::Number(value.into()))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Value, E> {
        self.take(0)?;
        i64::try_from(value)
            .map(|value| Value::Number(value.into()))
            .or_else(|_| u64::try_from(value).map(|value| Value::Number(value.into())))
            .map_err(|_| E::custom(format!("{value} is out of range")))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Value, E> {
        self.take(0)?;
        u64::try_from(value)
            .map(|value| Value::Number(value.into()))
            .map_err(|_| E::custom(format!("{value} is out of range")))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        self.take(0)?;
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("must be a finite number, got {value}")))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        self.take(value.len())?;
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        self.take(value.len())?;
        Ok(Value::String(value))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.take(0)?;
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.take(0)?;
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.take(0)?.deeper()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.take(0)?.deeper()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.take(key.len())?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key `{key}`: each key may be written once"
                )));
            }
            let value = map.next_value_seed(inner)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

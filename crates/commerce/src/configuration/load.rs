//! Loading the layers: built-in defaults, then an optional TOML file, then `APP_` environment
//! variables. The environment is a parameter ([`Settings::load_from`]), so tests pass their
//! own instead of changing the process's (tests run in parallel threads).
//!
//! The `config` crate stacks the layers; the merged document is then read strictly (a float is
//! not an integer, `70000` is not a port) with the path of every error recorded, and an error
//! is traced back to the variable or the file that wrote the key.
//!
//! Which `APP_` variables are ours: the first level after `APP_` (levels are separated by
//! `__`, case does not matter) is one of the sections of [`Settings`]. Others belong to
//! someone else (`APP_ENV`, `APP_NAME`) and are skipped, reported in [`Loaded::ignored`]. Ours
//! must name a key exactly and hold a non-blank value.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use seawall::ConfigError;
use serde_json::Value;

use super::{SECTIONS, Settings};

const PREFIX: &str = "APP_";
const SEPARATOR: &str = "__";

/// Settings as loaded, with what the loader chose to skip.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// The settings, validated.
    pub settings: Settings,
    /// `APP_` environment variables that name no section of the settings (sorted), e.g.
    /// `APP_ENV`: they belong to something else and were not read.
    pub ignored: Vec<String>,
}

impl Loaded {
    /// Logs one WARN per ignored variable: its name, never its value (it may be a secret).
    /// Call it once a subscriber is installed.
    pub fn warn_ignored(&self) {
        for name in &self.ignored {
            tracing::warn!(variable = %name, "{}", ignored_warning(name));
        }
    }
}

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An environment variable, by name.
    Environment(String),
    /// The configuration file.
    File(PathBuf),
}

/// A configuration that could not be loaded or is invalid: the key (a dotted path, `.` for
/// the whole file), the rule it broke and, when known, where the value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsError {
    error: ConfigError,
    origin: Option<Origin>,
}

impl SettingsError {
    fn new(key: impl Into<String>, rule: impl Into<String>, origin: Option<Origin>) -> Self {
        Self {
            error: ConfigError::new(key.into(), rule.into()),
            origin,
        }
    }

    /// The dotted path of the offending key, as the file writes it (`application.port`).
    pub fn key(&self) -> &str {
        self.error.key()
    }

    /// The rule broken, with the offending value.
    pub fn rule(&self) -> &str {
        self.error.rule()
    }

    /// The variable or file that wrote the value, when it was one of them.
    pub fn origin(&self) -> Option<&Origin> {
        self.origin.as_ref()
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (key, rule) = (self.key(), self.rule());
        match &self.origin {
            Some(Origin::Environment(name)) => write!(
                f,
                "configuration: {key}: {rule} (from the environment variable {name})"
            ),
            Some(Origin::File(path)) if key == "." => {
                write!(f, "configuration: {}: {rule}", path.display())
            }
            Some(Origin::File(path)) => {
                write!(f, "configuration: {key}: {rule} (in {})", path.display())
            }
            None => write!(f, "configuration: {key}: {rule}"),
        }
    }
}

impl std::error::Error for SettingsError {}

impl Settings {
    /// Defaults, then `file` (if given; TOML), then the process's `APP_*` environment
    /// variables.
    ///
    /// # Errors
    ///
    /// See [`load_from`](Self::load_from).
    pub fn load(file: Option<&Path>) -> Result<Loaded, SettingsError> {
        Self::load_from(file, std::env::vars_os())
    }

    /// Defaults, then `file` (if given; TOML), then the `APP_*` variables of `vars` (an
    /// environment: name and value pairs). Variables that name no section are skipped and
    /// listed in [`Loaded::ignored`].
    ///
    /// # Errors
    ///
    /// An unreadable or malformed file, an unknown key (in the file, or in an `APP_` variable
    /// that names a section), an empty variable, a value of the wrong type or out of range, or
    /// a rule broken (see [`validate`](Self::validate)); the error names the key and the
    /// variable or file that wrote it.
    pub fn load_from<K, V>(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Loaded, SettingsError>
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let shape = serde_json::to_value(Self::default())
            .map_err(|e| SettingsError::new(".", format!("defaults: {e}"), None))?;
        let environment = EnvironmentLayer::scan(vars, &shape)?;
        let file = file.map(FileLayer::read).transpose()?;
        let origins = Origins {
            environment: &environment,
            file: file.as_ref(),
        };

        let mut builder = config::Config::builder();
        if let Some(file) = &file {
            builder =
                builder.add_source(config::File::from_str(&file.text, config::FileFormat::Toml));
        }
        let merged: Value = builder
            .add_source(environment.clone())
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| origins.error(&ConfigError::new(".", e.to_string())))?;
        let settings: Self = serde_path_to_error::deserialize(merged).map_err(|e| {
            let path = e.path().to_string();
            origins.error(&read_error(&path, &e.into_inner().to_string()))
        })?;
        settings.validate().map_err(|e| origins.error(&e))?;
        Ok(Loaded {
            settings,
            ignored: environment.ignored,
        })
    }
}

/// Our `APP_` variables, typed, by key path; the layer over the file.
#[derive(Clone, Debug, Default)]
struct EnvironmentLayer {
    /// Key path → (variable, value).
    values: BTreeMap<String, (String, config::ValueKind)>,
    ignored: Vec<String>,
}

impl EnvironmentLayer {
    fn scan<K, V>(
        vars: impl IntoIterator<Item = (K, V)>,
        shape: &Value,
    ) -> Result<Self, SettingsError>
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let mut layer = Self::default();
        for (name, value) in vars {
            let name = match name.into().into_string() {
                Ok(name) => name,
                // Not Unicode, so not a key of ours; still worth a warning if it looks like one.
                Err(name) => {
                    let name = name.to_string_lossy().into_owned();
                    if strip_prefix(&name).is_some() {
                        layer.ignored.push(name);
                    }
                    continue;
                }
            };
            let Some(rest) = strip_prefix(&name) else {
                continue;
            };
            let segments: Vec<String> = rest.split(SEPARATOR).map(str::to_lowercase).collect();
            if !SECTIONS.contains(&segments[0].as_str()) {
                layer.ignored.push(name);
                continue;
            }
            let key = segments.join(".");
            let fail = |rule: String| {
                SettingsError::new(key.clone(), rule, Some(Origin::Environment(name.clone())))
            };
            if !segments.iter().all(|s| is_segment(s)) {
                return Err(fail(
                    "is not a key: levels are separated by `__`, and each is letters, digits \
                     and `_`"
                        .to_owned(),
                ));
            }
            let Ok(value) = value.into().into_string() else {
                return Err(fail("must be valid UTF-8".to_owned()));
            };
            if value.trim().is_empty() {
                return Err(fail(
                    "must not be empty (unset the variable to keep the default)".to_owned(),
                ));
            }
            let value = typed(shape, &segments, &name, &value).map_err(fail)?;
            if let Some((other, _)) = layer.values.insert(key.clone(), (name.clone(), value)) {
                return Err(fail(format!("is also set by {other}")));
            }
        }
        layer.ignored.sort();
        Ok(layer)
    }

    /// The variable that wrote `key`, or a key below it, or a section above it.
    fn variable_of(&self, key: &str) -> Option<&str> {
        if let Some((name, _)) = self.values.get(key) {
            return Some(name);
        }
        let below = format!("{key}.");
        if let Some((_, (name, _))) = self
            .values
            .range(below.clone()..)
            .next()
            .filter(|(path, _)| path.starts_with(&below))
        {
            return Some(name);
        }
        let mut above = key;
        while let Some((parent, _)) = above.rsplit_once('.') {
            if let Some((name, _)) = self.values.get(parent) {
                return Some(name);
            }
            above = parent;
        }
        None
    }
}

impl config::Source for EnvironmentLayer {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<config::Map<String, config::Value>, config::ConfigError> {
        Ok(self
            .values
            .iter()
            .map(|(key, (name, value))| {
                (key.clone(), config::Value::new(Some(name), value.clone()))
            })
            .collect())
    }
}

/// `name` without `APP_` (in any case), if it has it.
fn strip_prefix(name: &str) -> Option<&str> {
    name.get(..PREFIX.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(PREFIX))
        .map(|_| &name[PREFIX.len()..])
}

fn is_segment(segment: &str) -> bool {
    segment.starts_with(|c: char| c.is_ascii_lowercase())
        && segment
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A variable's text as the value its key takes. The service's own keys are read by the type
/// of their default (its optional keys are all strings), so a token `0042` stays a string; the
/// client's document accepts several forms (a duration is `"2s"` or a number of
/// milliseconds), so there a value is what it looks like, as the `config` crate would read it.
fn typed(
    shape: &Value,
    segments: &[String],
    name: &str,
    text: &str,
) -> Result<config::ValueKind, String> {
    let default = segments
        .iter()
        .try_fold(shape, |at, segment| at.get(segment));
    let in_client = segments.len() > 2 && segments[0] == "gateway" && segments[1] == "client";
    match default {
        Some(Value::Object(keys)) => Err(match keys.keys().next() {
            Some(first) => format!(
                "is a section, not a value: set its keys, e.g. {name}__{}",
                first.to_uppercase()
            ),
            None => "is a section, not a value".to_owned(),
        }),
        Some(Value::Bool(_)) => match text.to_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(config::ValueKind::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(config::ValueKind::Boolean(false)),
            _ => Err(format!("must be true or false, got {text:?}")),
        },
        _ if in_client => {
            if let Ok(flag) = text.to_lowercase().parse::<bool>() {
                return Ok(config::ValueKind::Boolean(flag));
            }
            Ok(number(text)?.unwrap_or_else(|| config::ValueKind::String(text.to_owned())))
        }
        Some(Value::Number(_)) => {
            number(text)?.ok_or_else(|| format!("must be a number, got {text:?}"))
        }
        // Strings, optional strings, lists, and keys that do not exist (refused when read).
        _ => Ok(config::ValueKind::String(text.to_owned())),
    }
}

/// `text` as a number, `None` if it is not one; an integer too large for 64 bits is an error
/// rather than a float.
fn number(text: &str) -> Result<Option<config::ValueKind>, String> {
    if let Ok(integer) = text.parse::<i64>() {
        return Ok(Some(config::ValueKind::I64(integer)));
    }
    if let Ok(integer) = text.parse::<u64>() {
        return Ok(Some(config::ValueKind::U64(integer)));
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("is out of range (integers are 64-bit), got {text}"));
    }
    Ok(text
        .parse::<f64>()
        .ok()
        .filter(|float| float.is_finite())
        .map(config::ValueKind::Float))
}

/// The file's text and the keys it sets.
#[derive(Debug)]
struct FileLayer {
    path: PathBuf,
    text: String,
    keys: Value,
}

impl FileLayer {
    fn read(path: &Path) -> Result<Self, SettingsError> {
        let origin = || Some(Origin::File(path.to_owned()));
        let text = std::fs::read_to_string(path)
            .map_err(|e| SettingsError::new(".", format!("cannot be read: {e}"), origin()))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned();
        let table = toml::de::DeTable::parse(&text)
            .map_err(|e| SettingsError::new(".", format!("is not valid TOML: {e}"), origin()))?;
        let keys = toml_table(table.into_inner(), "")
            .map_err(|(key, rule)| SettingsError::new(key, rule, origin()))?;
        Ok(Self {
            path: path.to_owned(),
            text,
            keys,
        })
    }

    /// Whether the file writes `key`, a key below it, or a value where a section above it
    /// should be.
    fn writes(&self, key: &str) -> bool {
        if key == "." {
            return true;
        }
        let mut at = &self.keys;
        for segment in key.split('.') {
            match at {
                Value::Object(map) => match map.get(segment) {
                    Some(next) => at = next,
                    None => return false,
                },
                _ => return true,
            }
        }
        true
    }
}

/// A TOML table as a JSON one, refusing numbers that the layers below would silently bend: an
/// integer beyond 64 bits, a float that is not finite.
fn toml_table(table: toml::de::DeTable<'_>, path: &str) -> Result<Value, (String, String)> {
    let mut map = serde_json::Map::new();
    for (key, value) in table {
        let key = key.into_inner().into_owned();
        let at = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let value = toml_value(value.into_inner(), &at)?;
        map.insert(key, value);
    }
    Ok(Value::Object(map))
}

fn toml_value(value: toml::de::DeValue<'_>, at: &str) -> Result<Value, (String, String)> {
    use toml::de::DeValue;
    Ok(match value {
        DeValue::String(text) => Value::String(text.into_owned()),
        DeValue::Integer(integer) => i64::from_str_radix(integer.as_str(), integer.radix())
            .map(Value::from)
            .map_err(|_| {
                (
                    at.to_owned(),
                    format!("is out of range (integers are 64-bit), got {integer}"),
                )
            })?,
        DeValue::Float(float) => float
            .as_str()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| {
                (
                    at.to_owned(),
                    format!("must be a finite number, got {float}"),
                )
            })?,
        DeValue::Boolean(flag) => Value::Bool(flag),
        DeValue::Datetime(datetime) => Value::String(datetime.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| toml_value(item.into_inner(), &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        DeValue::Table(table) => toml_table(table, at)?,
    })
}

/// Traces an error's key back to what wrote it: a variable first (it is the upper layer),
/// then the file.
struct Origins<'a> {
    environment: &'a EnvironmentLayer,
    file: Option<&'a FileLayer>,
}

impl Origins<'_> {
    fn error(&self, error: &ConfigError) -> SettingsError {
        let key = error.key();
        let origin = match self.environment.variable_of(key) {
            Some(name) => Some(Origin::Environment(name.to_owned())),
            None => self
                .file
                .filter(|file| file.writes(key))
                .map(|file| Origin::File(file.path.clone())),
        };
        SettingsError::new(key, error.rule(), origin)
    }
}

/// An error from reading the merged document at `path`, with the key completed from the
/// message where only the message has it.
fn read_error(path: &str, message: &str) -> ConfigError {
    let mut key = if path == "." {
        String::new()
    } else {
        path.to_owned()
    };
    let mut rule = message;
    // A document read by its own reader (`gateway.client`) names the key inside it:
    // "charge.retry.max_attempts: invalid type: ...".
    if let Some((inner, rest)) = message.split_once(": ")
        && is_key_path(inner)
    {
        key = join(&key, inner);
        rule = rest;
    }
    // The path of an unknown key ends with it; the message says what is allowed.
    let rule = if let Some(after) = rule.strip_prefix("unknown field `")
        && let Some((field, expected)) = after.split_once('`')
    {
        if key.rsplit('.').next() != Some(field) {
            key = join(&key, field);
        }
        format!("unknown key{expected}")
    } else {
        plain_rule(rule)
    };
    ConfigError::new(if key.is_empty() { ".".to_owned() } else { key }, rule)
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

fn is_key_path(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// serde's "invalid value: integer `70000`, expected u16" as "must be an integer from 0 to
/// 65535, got integer `70000`".
fn plain_rule(message: &str) -> String {
    let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.rsplit_once(", expected "))
    else {
        return message.to_owned();
    };
    let expected = match expected {
        "u8" => "an integer from 0 to 255",
        "u16" => "an integer from 0 to 65535",
        "u32" => "an integer from 0 to 4294967295",
        "u64" => "an integer >= 0",
        "i64" => "an integer",
        "f64" => "a number",
        "a string" | "a boolean" => expected,
        other if other.starts_with("struct ") => "a table of keys",
        other => other,
    };
    format!("must be {expected}, got {found}")
}

/// The WARN for an ignored variable, with the likely fix when it looks like a key of ours
/// written with one `_` where `__` separates levels (`APP_DATABASE_URL`).
pub(super) fn ignored_warning(name: &str) -> String {
    let rule = format!(
        "ignoring the environment variable {name}: the level after APP_ is not a \
         configuration section ({})",
        SECTIONS.join(", ")
    );
    let Some(rest) = strip_prefix(name) else {
        return rule;
    };
    let prefix = &name[..name.len() - rest.len()];
    let near = SECTIONS.iter().find_map(|section| {
        let head = rest.get(..section.len())?;
        let tail = rest[section.len()..].strip_prefix('_')?;
        (head.eq_ignore_ascii_case(section) && !tail.is_empty() && !tail.starts_with('_'))
            .then(|| format!("{prefix}{head}{SEPARATOR}{tail}"))
    });
    match near {
        Some(fix) => format!("{rule}; did you mean {fix}?"),
        None => rule,
    }
}

//! Inheritance: each configuration and instance of a section resolved through its chain of
//! base configurations, once each (memoised, so linear in the document), with every key
//! remembered where it was written, so that an error is reported there.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::parse::{join, kind_of, normalize_properties, snake_case};
use super::{MAX_INHERITANCE_DEPTH, tags_from};
use crate::config::ConfigError;
use crate::config::serde::{ROOT, switched_off};
use crate::registry::{DEFAULT_CONFIG, Kind, Tags};

/// A section with every configuration and instance resolved and validated.
pub(crate) struct Resolved<K: Kind> {
    pub(crate) configs: BTreeMap<String, K::Config>,
    pub(crate) instances: BTreeMap<String, (K::Config, Arc<Tags>)>,
    pub(crate) tags: Tags,
}

/// One configuration or instance as written: its base, tags and own keys.
struct Entry {
    path: String,
    base: Option<String>,
    tags: Option<Arc<Tags>>,
    keys: Map<String, Value>,
}

/// Keys after inheritance, each with the path of the entry that wrote it.
type Merged = BTreeMap<String, (Value, String)>;

/// A section's entries and the memo of resolved configurations.
struct Section {
    name: &'static str,
    configs: BTreeMap<String, Entry>,
    merged: HashMap<String, Merged>,
}

pub(crate) fn resolve<K: Kind>(section: Value) -> Result<Resolved<K>, ConfigError>
where
    K::Config: Serialize + DeserializeOwned,
{
    let path = K::SECTION;
    let mut map = match section {
        Value::Null => Map::new(),
        Value::Object(map) => section_keys(map, path)?,
        other => {
            return Err(ConfigError::new(
                path,
                format!(
                    "must be a map with configs, instances and tags, got {}",
                    kind_of(&other)
                ),
            ));
        }
    };
    let tags = tags_from(
        map.remove("tags").unwrap_or(Value::Null),
        &join(path, "tags"),
    )?;
    let configs = entries(map.remove("configs"), &join(path, "configs"))?;
    let instances = entries(map.remove("instances"), &join(path, "instances"))?;
    let mut section = Section {
        name: path,
        configs,
        merged: HashMap::new(),
    };
    let mut resolved_configs = BTreeMap::new();
    let names: Vec<String> = section.configs.keys().cloned().collect();
    for name in names {
        let merged = section.merged_config(&name, 0)?;
        let path = section.configs[&name].path.clone();
        resolved_configs.insert(name, build::<K>(&merged, &path)?);
    }
    let mut resolved_instances = BTreeMap::new();
    for (name, entry) in instances {
        let parent = match &entry.base {
            Some(base) => Some(base.clone()),
            None if section.configs.contains_key(&name) => Some(name.clone()),
            None if section.configs.contains_key(DEFAULT_CONFIG) => Some(DEFAULT_CONFIG.to_owned()),
            None => None,
        };
        let mut merged = match &parent {
            Some(parent) => section.inherit(parent, &entry.path, 0)?,
            None => Merged::new(),
        };
        let tags = match entry.tags.clone() {
            Some(tags) => tags,
            None => parent
                .as_deref()
                .and_then(|parent| section.inherited_tags(parent))
                .unwrap_or_default(),
        };
        overlay_entry(&mut merged, &entry);
        resolved_instances.insert(name, (build::<K>(&merged, &entry.path)?, tags));
    }
    Ok(Resolved {
        configs: resolved_configs,
        instances: resolved_instances,
        tags,
    })
}

/// The section's own keys in `snake_case`: `configs`, `instances` (or `backends`), `tags`.
fn section_keys(map: Map<String, Value>, path: &str) -> Result<Map<String, Value>, ConfigError> {
    let mut out = Map::new();
    let mut written: BTreeMap<&'static str, String> = BTreeMap::new();
    for (key, value) in map {
        let canonical = match snake_case(&key).as_str() {
            "configs" => "configs",
            "instances" | "backends" => "instances",
            "tags" => "tags",
            _ => {
                return Err(ConfigError::new(
                    join(path, &key),
                    "unknown key; expected configs, instances (or backends) or tags",
                ));
            }
        };
        if let Some(first) = written.get(canonical) {
            return Err(ConfigError::new(
                join(path, &key),
                format!("is the same key as `{first}`; write it once"),
            ));
        }
        written.insert(canonical, key);
        out.insert(canonical.to_owned(), value);
    }
    Ok(out)
}

/// The entries of `configs` or `instances`, by name (names are kept as written).
fn entries(group: Option<Value>, path: &str) -> Result<BTreeMap<String, Entry>, ConfigError> {
    let map = match group {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(ConfigError::new(
                path.to_owned(),
                format!("must be a map of names, got {}", kind_of(&other)),
            ));
        }
    };
    let mut entries = BTreeMap::new();
    for (name, value) in map {
        let entry_path = join(path, &name);
        let mut keys = normalize_properties(value, &entry_path)?;
        let base = match keys.remove("base_config") {
            None | Some(Value::Null) => None,
            Some(Value::String(base)) => Some(base),
            Some(other) => {
                return Err(ConfigError::new(
                    join(&entry_path, "base_config"),
                    format!(
                        "must be the name of a configuration, got {}",
                        kind_of(&other)
                    ),
                ));
            }
        };
        let tags = match keys.remove("tags") {
            None => None,
            Some(tags) => Some(Arc::new(tags_from(tags, &join(&entry_path, "tags"))?)),
        };
        entries.insert(
            name,
            Entry {
                path: entry_path,
                base,
                tags,
                keys,
            },
        );
    }
    Ok(entries)
}

fn overlay_entry(merged: &mut Merged, entry: &Entry) {
    for key in switched_off(&entry.keys) {
        if let Some(inherited) = merged.get_mut(key) {
            *inherited = (Value::Bool(false), entry.path.clone());
        }
    }
    for (key, value) in &entry.keys {
        merged.insert(key.clone(), (value.clone(), entry.path.clone()));
    }
}

impl Section {
    /// The keys of `configs.<name>` with everything it inherits (memoised).
    fn merged_config(&mut self, name: &str, depth: usize) -> Result<Merged, ConfigError> {
        if let Some(merged) = self.merged.get(name) {
            return Ok(merged.clone());
        }
        if let Some(cycle) = self.cycle_from(name) {
            return Err(ConfigError::new(
                join(&self.configs[name].path, "base_config"),
                format!("circular reference: {}", cycle.join(" -> ")),
            ));
        }
        let entry = &self.configs[name];
        let parent = match &entry.base {
            Some(base) => Some(base.clone()),
            None if name != DEFAULT_CONFIG && self.configs.contains_key(DEFAULT_CONFIG) => {
                Some(DEFAULT_CONFIG.to_owned())
            }
            None => None,
        };
        let from = entry.path.clone();
        let mut merged = match parent {
            Some(parent) => self.inherit(&parent, &from, depth)?,
            None => Merged::new(),
        };
        overlay_entry(&mut merged, &self.configs[name]);
        self.merged.insert(name.to_owned(), merged.clone());
        Ok(merged)
    }

    /// The resolved keys of the configuration `parent`, named as the base of the entry at
    /// `from`; chains that are too long or circular are errors at `from`'s `base_config`.
    fn inherit(&mut self, parent: &str, from: &str, depth: usize) -> Result<Merged, ConfigError> {
        let key = join(from, "base_config");
        if !self.configs.contains_key(parent) {
            return Err(ConfigError::new(
                key,
                format!("no configuration named '{parent}' in {}.configs", self.name),
            ));
        }
        if depth >= MAX_INHERITANCE_DEPTH {
            return Err(ConfigError::new(
                key,
                format!(
                    "inherits through more than {MAX_INHERITANCE_DEPTH} configurations (or in a circle)"
                ),
            ));
        }
        self.merged_config(parent, depth + 1)
    }

    /// The circle of base configurations `start` is on, if any.
    fn cycle_from(&self, start: &str) -> Option<Vec<String>> {
        let mut seen: Vec<&str> = Vec::new();
        let mut current = start;
        loop {
            if let Some(at) = seen.iter().position(|name| *name == current) {
                let mut circle: Vec<String> = seen[at..]
                    .iter()
                    .map(|name| format!("configs.{name}"))
                    .collect();
                circle.push(format!("configs.{current}"));
                return Some(circle);
            }
            if seen.len() > MAX_INHERITANCE_DEPTH || self.merged.contains_key(current) {
                return None;
            }
            seen.push(current);
            let entry = self.configs.get(current)?;
            current = match &entry.base {
                Some(base) => base,
                None if current != DEFAULT_CONFIG && self.configs.contains_key(DEFAULT_CONFIG) => {
                    DEFAULT_CONFIG
                }
                None => return None,
            };
        }
    }

    /// The tags `configs.<name>` has or inherits (shared, not copied: many instances may
    /// inherit many tags).
    fn inherited_tags(&self, name: &str) -> Option<Arc<Tags>> {
        let mut current = name;
        for _ in 0..=MAX_INHERITANCE_DEPTH {
            let entry = self.configs.get(current)?;
            if let Some(tags) = &entry.tags {
                return Some(tags.clone());
            }
            current = match &entry.base {
                Some(base) => base,
                None if current != DEFAULT_CONFIG => DEFAULT_CONFIG,
                None => return None,
            };
        }
        None
    }
}

/// The configuration the merged keys describe, checked; an error is reported at the entry
/// that wrote the offending key.
fn build<K: Kind>(merged: &Merged, path: &str) -> Result<K::Config, ConfigError>
where
    K::Config: Serialize + DeserializeOwned,
{
    let keys: Map<String, Value> = merged
        .iter()
        .map(|(key, (value, _))| (key.clone(), value.clone()))
        .collect();
    let located = |err: ConfigError| locate(&err, merged, path);
    let config =
        crate::config::overlay(&K::default_config(), Value::Object(keys)).map_err(located)?;
    K::validate(&config).map_err(located)?;
    Ok(config)
}

/// Puts an error about a key at the entry that wrote it (`path` when it was not inherited).
fn locate(err: &ConfigError, merged: &Merged, path: &str) -> ConfigError {
    let key = err.key().to_owned();
    if key == ROOT || key.is_empty() {
        return ConfigError::new(path.to_owned(), err.rule().to_owned());
    }
    let first = key.split('.').next().unwrap_or(&key);
    match merged.get(first) {
        // `key` is already a path (`budget.max_tokens`), not one key to quote.
        Some((_, origin)) if origin != path => ConfigError::new(
            format!("{origin}.{key}"),
            format!("{} (inherited by {path})", err.rule()),
        ),
        _ => ConfigError::new(format!("{path}.{key}"), err.rule().to_owned()),
    }
}

//! Random configuration documents for the property tests of seawall and pg-client.
//!
//! [`grammar`] builds structured documents (real and unknown keys, values of every type,
//! inheritance chains); [`mutate`] damages real documents the way editors and templates do and
//! makes random and deeply nested text; [`text`] writes a tree out in any of the three
//! [`Syntax`]es, including what a `serde_json::Value` cannot hold (duplicate keys, `.nan`,
//! integers past `u64`).

pub mod grammar;
pub mod mutate;
pub mod text;

/// The text formats a document is written in (seawall's `Format`, which this crate does not
/// depend on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Syntax {
    /// YAML.
    Yaml,
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

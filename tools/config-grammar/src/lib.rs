//! Random configuration documents for the property tests of seawall and pg-client.
//!
//! [`grammar`] builds structured documents (real and unknown keys, values of every type,
//! inheritance chains); [`mutate`] damages real documents the way editors and templates do and
//! makes random and deeply nested text; [`text`] writes a tree out in any of the three
//! [`Syntax`]es, including what a `serde_json::Value` cannot hold (duplicate keys, `.nan`,
//! integers past `u64`).

use std::cell::Cell;
use std::fmt::Debug;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

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

/// Runs `check` over `strategy` with proptest's defaults (256 cases, `PROPTEST_CASES` to
/// change) and no regression files (what a run finds goes into a corpus instead); `check` says
/// whether the input was accepted. Prints the case and acceptance counts.
///
/// # Panics
///
/// When a case fails, with the minimal input proptest found.
pub fn run<S>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<bool, TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let (cases, accepted) = (Cell::new(0u64), Cell::new(0u64));
    let result = TestRunner::new(config).run(&strategy, |input| {
        let ok = check(input)?;
        cases.set(cases.get() + 1);
        accepted.set(accepted.get() + u64::from(ok));
        Ok(())
    });
    eprintln!("{name}: {} cases, {} accepted", cases.get(), accepted.get());
    if let Err(err) = result {
        panic!("{name}: {err}");
    }
}

/// An error names where and what: a key that is not empty or the root, and a rule.
///
/// # Errors
///
/// A failed case when either is missing.
pub fn names_a_key(key: &str, rule: &str, shown: &dyn Debug) -> Result<(), TestCaseError> {
    prop_assert!(
        !key.is_empty() && key != "." && !key.starts_with('.'),
        "unnamed key: {shown:?}"
    );
    prop_assert!(!rule.is_empty(), "no rule: {shown:?}");
    Ok(())
}

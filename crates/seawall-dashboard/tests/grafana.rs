//! `docs/grafana/seawall.json` queries only series the code emits.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `seawall_…` / `commerce_…` word in `text` (a metric name, quoted or in a query).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    for prefix in ["seawall_", "commerce_"] {
        let mut from = 0;
        while let Some(found) = text[from..].find(prefix) {
            let start = from + found;
            let before_is_word =
                start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
            let end = text[start..]
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .map_or(text.len(), |n| start + n);
            if !before_is_word && end > start + prefix.len() {
                names.insert(text[start..end].to_owned());
            }
            from = end.max(start + 1);
        }
    }
    names
}

/// The metric names the code passes to `counter!` / `gauge!` (quoted literals).
fn emitted() -> BTreeSet<String> {
    let mut files = vec![workspace().join("crates/seawall/src/metrics.rs")];
    let mut dirs = vec![workspace().join("crates/commerce/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for literal in text.split('"').skip(1).step_by(2) {
            if metric_names(literal).contains(literal) {
                names.insert(literal.to_owned());
            }
        }
    }
    names
}

fn exprs(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => into.push(expr.clone()),
                    _ => exprs(value, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| exprs(item, into)),
        _ => {}
    }
}

#[test]
fn every_series_the_grafana_dashboard_queries_is_emitted_by_the_code() {
    let text = std::fs::read_to_string(workspace().join("docs/grafana/seawall.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(queries.len() > 20, "{} queries", queries.len());
    let emitted = emitted();
    assert!(
        emitted.contains("seawall_circuitbreaker_state"),
        "{emitted:?}"
    );
    assert!(
        emitted.contains("commerce_orders_placed_total"),
        "{emitted:?}"
    );
    let queried: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    let unknown: Vec<_> = queried.difference(&emitted).collect();
    assert!(unknown.is_empty(), "queried but never emitted: {unknown:?}");
}

#[test]
fn the_grafana_dashboard_covers_every_breaker_series_and_both_prefixes() {
    let text = std::fs::read_to_string(workspace().join("docs/grafana/seawall.json")).unwrap();
    let queried = metric_names(&text);
    for name in emitted()
        .iter()
        .filter(|n| n.starts_with("seawall_circuitbreaker_"))
    {
        assert!(queried.contains(name), "{name} has no panel");
    }
    assert!(queried.iter().any(|n| n.starts_with("commerce_")));
}

#[test]
fn metric_names_are_found_as_whole_words() {
    let found = metric_names("rate(seawall_retry_calls{x=\"y\"}[1m]) + my_seawall_x");
    assert_eq!(found, BTreeSet::from(["seawall_retry_calls".to_owned()]));
}

//! The corpus of regressions (`corpus/`, described in its README): every file is read, built
//! and, when it builds, reloaded unchanged (and patched, if it says so); the outcome must be
//! the one `corpus/expected.txt` gives it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use seawall::ConfigError;
use seawall::registry::document::{Document, Format};
use seawall::registry::{BuildContext, Kind, Registries, Registry, RegistryError, RegistryEvent};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/registry/corpus")
}

/// One line of the manifest: a file, `ok` or the key of its error, and words of the rule.
struct Expected {
    file: String,
    outcome: String,
    rule: String,
}

fn manifest() -> Vec<Expected> {
    let text = std::fs::read_to_string(corpus().join("expected.txt")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let mut words = line.split_whitespace();
            let file = words.next().unwrap().to_owned();
            let outcome = words
                .next()
                .unwrap_or_else(|| panic!("no outcome for {file}"))
                .to_owned();
            let rule = words.collect::<Vec<_>>().join(" ");
            Expected {
                file,
                outcome,
                rule,
            }
        })
        .collect()
}

/// What a YAML or TOML document asks of the test in its leading comments: a memory budget
/// (`# budget: 1048576`) and a patch (`# patch: circuitbreaker pg {"sliding_window_size": 9}`).
#[derive(Default)]
struct Directives {
    budget: Option<usize>,
    patch: Option<(String, String, serde_json::Value)>,
}

fn directives(text: &str) -> Directives {
    let mut found = Directives::default();
    for line in text.lines().map_while(|line| line.strip_prefix("# ")) {
        if let Some(bytes) = line.strip_prefix("budget: ") {
            found.budget = Some(bytes.parse().unwrap());
        } else if let Some(patch) = line.strip_prefix("patch: ") {
            let mut parts = patch.splitn(3, ' ');
            let (section, name, changes) = (parts.next(), parts.next(), parts.next());
            let changes = serde_json::from_str(changes.unwrap()).unwrap();
            found.patch = Some((section.unwrap().into(), name.unwrap().into(), changes));
        }
    }
    found
}

/// Reads and builds a document; a built one is reloaded unchanged, which must change nothing,
/// then patched if it asks to be.
fn outcome(document: Result<Document, ConfigError>, asked: &Directives) -> Result<(), ConfigError> {
    let document = document?;
    let mut context = BuildContext::default();
    if let Some(budget) = asked.budget {
        context = context.memory_budget(budget);
    }
    let registries = Registries::from_document(&document, context)?;
    let changes = Arc::new(AtomicUsize::new(0));
    watch(registries.circuit_breakers(), &changes);
    watch(registries.retries(), &changes);
    watch(registries.bulkheads(), &changes);
    watch(registries.timeouts(), &changes);
    watch(registries.rate_limiters(), &changes);
    registries
        .reload(&document)
        .unwrap_or_else(|err| panic!("reloading it unchanged: {err}"));
    assert_eq!(changes.load(Ordering::Relaxed), 0, "the reload changed it");
    let Some((section, name, changes)) = asked.patch.clone() else {
        return Ok(());
    };
    let patched = match section.as_str() {
        "circuitbreaker" => registries
            .circuit_breakers()
            .patch(&name, changes)
            .map(drop),
        "retry" => registries.retries().patch(&name, changes).map(drop),
        "bulkhead" => registries.bulkheads().patch(&name, changes).map(drop),
        "timelimiter" => registries.timeouts().patch(&name, changes).map(drop),
        "ratelimiter" => registries.rate_limiters().patch(&name, changes).map(drop),
        other => panic!("no section {other}"),
    };
    match patched {
        Ok(()) => Ok(()),
        Err(RegistryError::Invalid(err)) => Err(err),
        Err(other) => panic!("patching {name}: {other}"),
    }
}

fn watch<K: Kind>(registry: &Registry<K>, changes: &Arc<AtomicUsize>) {
    let changes = changes.clone();
    registry.on_event(move |event| {
        if !matches!(event, RegistryEvent::Added { .. }) {
            changes.fetch_add(1, Ordering::Relaxed);
        }
    });
}

fn check(name: &str, result: &Result<(), ConfigError>, expected: &str, rule: &str) -> String {
    match result {
        Ok(()) if expected == "ok" => String::new(),
        Err(err) if err.key() == expected && err.rule().contains(rule) => String::new(),
        other => format!("{name}: expected {expected} ({rule}), got {other:?}\n"),
    }
}

#[test]
fn every_file_of_the_corpus_has_the_outcome_its_manifest_gives() {
    let expected = manifest();
    let listed: BTreeSet<&str> = expected.iter().map(|e| e.file.as_str()).collect();
    let present: BTreeSet<String> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| Format::from_path(Path::new(name)).is_some())
        .collect();
    let present: BTreeSet<&str> = present.iter().map(String::as_str).collect();
    assert_eq!(
        listed, present,
        "every document listed once, and only those"
    );

    let mut failures = String::new();
    for Expected {
        file,
        outcome: wanted,
        rule,
    } in &expected
    {
        let path = corpus().join(file);
        let asked = directives(&std::fs::read_to_string(&path).unwrap());
        let result = outcome(Document::read(&path), &asked);
        failures.push_str(&check(file, &result, wanted, rule));
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn forty_thousand_levels_of_yaml_flow_mappings_are_refused_at_once() {
    // Generated rather than committed (200 KB); see the corpus README.
    let depth = 40_000;
    let text = format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth));
    let result = outcome(Document::parse(&text, Format::Yaml), &Directives::default());
    let failure = check("40,000 levels", &result, "document", "more than 32 deep");
    assert!(failure.is_empty(), "{failure}");
}

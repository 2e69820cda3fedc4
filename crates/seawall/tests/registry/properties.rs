//! Hostile documents through every public parsing entry point: damaged real documents,
//! generated documents, random text and deep nesting through `Document::parse`,
//! `Document::read` and `Registries::from_str`; then every instance is called, read,
//! reloaded and patched. Random changes go through `Registry::patch`, `config::overlay` and
//! each configuration type's `Deserialize`.
//!
//! The outcome must be a success or an error naming a key and a rule; a panic, a hang, a
//! reload that changes something or windows over the memory budget are failures. Cases per
//! test: 256, or `PROPTEST_CASES`; run with `--nocapture` to see how many were accepted.

mod seeds;

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;
use seawall::bulkhead::BulkheadConfig;
use seawall::circuit_breaker::CircuitBreakerConfig;
use seawall::rate_limiter::RateLimiterConfig;
use seawall::registry::document::{Document, Format};
use seawall::registry::{BuildContext, DEFAULT_MEMORY_BUDGET, Registries, Registry, RegistryError};
use seawall::registry::{Kind, RegistryEvent};
use seawall::retry::{RetryBudgetConfig, RetryConfig};
use seawall::timeout::TimeoutConfig;
use seawall::{Bulkhead, CircuitBreaker, ConfigError, RateLimiter, Retry, RetryBudget, Timeout};
use serde::Serialize;
use serde::de::DeserializeOwned;

use config_grammar::text::{self, Node, Style};
use config_grammar::{Syntax, grammar, mutate, run};

fn named(err: &ConfigError) -> Result<(), TestCaseError> {
    config_grammar::names_a_key(err.key(), err.rule(), err)
}

fn formats() -> impl Strategy<Value = Syntax> {
    select(&[Syntax::Yaml, Syntax::Toml, Syntax::Json][..])
}

/// The library's name for a syntax of the document generator.
fn format_of(syntax: Syntax) -> Format {
    match syntax {
        Syntax::Yaml => Format::Yaml,
        Syntax::Toml => Format::Toml,
        Syntax::Json => Format::Json,
    }
}

/// What a build gets besides the text: a memory budget and a patch to apply afterwards.
#[derive(Clone, Debug)]
struct Setup {
    budget: Option<usize>,
    patch_kind: usize,
    patch_name: Index,
    patch: Node,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        select(
            &[
                None,
                None,
                Some(0),
                Some(100),
                Some(64 << 10),
                Some(1 << 20),
                Some(100 << 20),
            ][..],
        ),
        (0..grammar::KINDS.len()).prop_flat_map(|kind| (Just(kind), grammar::changes(kind))),
        any::<Index>(),
    )
        .prop_map(|(budget, (patch_kind, patch), patch_name)| Setup {
            budget,
            patch_kind,
            patch_name,
            patch,
        })
}

/// Each document entry point on one text: `parse`, `read` from a file, `from_str`; then,
/// if it built, the registries are exercised.
fn check_text(text: &str, syntax: Syntax, setup: &Setup) -> Result<bool, TestCaseError> {
    let format = format_of(syntax);
    let parsed = Document::parse(text, format);
    prop_assert_eq!(&parsed, &read_back(text, format), "read differs from parse");
    let document = match parsed {
        Ok(document) => document,
        Err(err) => {
            named(&err)?;
            return Ok(false);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut context = BuildContext::default().seed(7);
        if let Some(budget) = setup.budget {
            context = context.memory_budget(budget);
        }
        match Registries::from_str(text, format, context) {
            Ok(registries) => {
                exercise(&registries, &document, setup).await?;
                Ok(true)
            }
            Err(err) => {
                named(&err)?;
                Ok(false)
            }
        }
    })
}

fn read_back(text: &str, format: Format) -> Result<Document, ConfigError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let extension = match format {
        Format::Yaml => "yaml",
        Format::Toml => "toml",
        Format::Json => "json",
    };
    let path = std::env::temp_dir().join(format!(
        "seawall-properties-{}-{}.{extension}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).unwrap();
    let read = Document::read(&path);
    std::fs::remove_file(&path).unwrap();
    read
}

fn ready() -> std::future::Ready<Result<u32, std::io::Error>> {
    std::future::ready(Ok(1))
}

fn failing() -> std::future::Ready<Result<u32, std::io::Error>> {
    std::future::ready(Err(std::io::Error::other("boom")))
}

/// Longer than any one wait a valid configuration allows (365 days), on paused time.
const PATIENCE: Duration = Duration::from_secs(400 * 86_400);

/// Awaits a call that may wait up to `waits` times; one that outlasts them is a hang.
async fn finishes<F: Future>(what: &str, waits: u32, call: F) -> Result<F::Output, TestCaseError> {
    let mut call = std::pin::pin!(call);
    for _ in 0..waits.max(1) {
        if let Ok(output) = tokio::time::timeout(PATIENCE, call.as_mut()).await {
            return Ok(output);
        }
    }
    Err(TestCaseError::fail(format!("{what} did not finish")))
}

fn windows(registries: &Registries) -> usize {
    registries
        .circuit_breakers()
        .all()
        .iter()
        .map(|(_, breaker)| breaker.config().window_memory_bound())
        .fold(0, usize::saturating_add)
}

/// Calls every instance once, reads it, reloads the document, and applies a patch.
async fn exercise(
    registries: &Registries,
    document: &Document,
    setup: &Setup,
) -> Result<(), TestCaseError> {
    let budget = setup.budget.unwrap_or(DEFAULT_MEMORY_BUDGET);
    prop_assert!(windows(registries) <= budget, "windows over the budget");
    call_everything(registries).await?;

    let changes = Arc::new(AtomicUsize::new(0));
    let before = snapshot(registries);
    watch(registries.circuit_breakers(), &changes);
    watch(registries.retries(), &changes);
    watch(registries.bulkheads(), &changes);
    watch(registries.timeouts(), &changes);
    watch(registries.rate_limiters(), &changes);
    if let Err(err) = registries.reload(document) {
        return Err(TestCaseError::fail(format!(
            "reloading the same document: {err}"
        )));
    }
    prop_assert_eq!(
        changes.load(Ordering::Relaxed),
        0,
        "the reload changed something"
    );
    prop_assert_eq!(&before, &snapshot(registries));

    patch(registries, setup)?;
    prop_assert!(
        windows(registries) <= budget,
        "windows over the budget after a patch"
    );
    call_everything(registries).await
}

async fn call_everything(registries: &Registries) -> Result<(), TestCaseError> {
    for (name, breaker) in registries.circuit_breakers().all() {
        let _ = finishes("a breaker call", 1, breaker.call(ready)).await?;
        let _ = finishes("a failing breaker call", 1, breaker.call(failing)).await?;
        let _ = (breaker.state(), breaker.metrics(), breaker.retry_after());
        // The standard policy around this breaker, where the retry cannot run for long.
        if registries.retries().get_or_create(&name).max_attempts() <= 10 {
            let _ = finishes("a policy call", 1, registries.policy(&name).call(ready)).await?;
        }
    }
    for (_, retry) in registries.retries().all() {
        let _ = finishes("a retry call", 1, retry.call(ready)).await?;
        let attempts = retry.max_attempts();
        if attempts <= 10 {
            // Each wait between attempts may be up to 365 days.
            let _ = finishes("a failing retry call", attempts, retry.call(failing)).await?;
        }
        let _ = retry.metrics();
    }
    for (_, bulkhead) in registries.bulkheads().all() {
        let _ = finishes("a bulkhead call", 1, bulkhead.call(ready)).await?;
        let _ = bulkhead.available_permits();
    }
    for (_, timeout) in registries.timeouts().all() {
        let _ = finishes("a timeout call", 1, timeout.call(ready)).await?;
    }
    for (_, limiter) in registries.rate_limiters().all() {
        for _ in 0..2 {
            let _ = finishes("a rate-limiter call", 1, limiter.call(ready)).await?;
        }
        let _ = limiter.available_permits();
    }
    Ok(())
}

fn watch<K: Kind>(registry: &Registry<K>, changes: &Arc<AtomicUsize>) {
    let changes = changes.clone();
    registry.on_event(move |event| {
        if !matches!(event, RegistryEvent::Added { .. }) {
            changes.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// Every instance's configuration, as text (the five types have no common comparison).
fn snapshot(registries: &Registries) -> Vec<String> {
    fn configs<K: Kind>(registry: &Registry<K>, out: &mut Vec<String>) {
        for name in registry.names() {
            out.push(format!("{name}: {:?}", registry.current_config(&name)));
        }
    }
    let mut out = Vec::new();
    configs(registries.circuit_breakers(), &mut out);
    configs(registries.retries(), &mut out);
    configs(registries.bulkheads(), &mut out);
    configs(registries.timeouts(), &mut out);
    configs(registries.rate_limiters(), &mut out);
    out
}

/// Applies the setup's patch to an instance of its kind (or to a name nobody has).
fn patch(registries: &Registries, setup: &Setup) -> Result<bool, TestCaseError> {
    fn one<K: Kind>(
        registry: &Registry<K>,
        pick: Index,
        changes: serde_json::Value,
    ) -> Result<bool, TestCaseError>
    where
        K::Config: Serialize + DeserializeOwned,
    {
        let mut names = registry.names();
        names.push("nobody".to_owned());
        let name = pick.get(&names);
        match registry.patch(name, changes) {
            Ok(config) => {
                prop_assert_eq!(&config, &registry.current_config(name).unwrap());
                Ok(true)
            }
            Err(RegistryError::Invalid(err)) => {
                named(&err)?;
                // At the instance, or at one of its keys.
                let shown = if name.is_empty() || name.contains('.') {
                    format!("{name:?}")
                } else {
                    name.clone()
                };
                let path = format!("{}.instances.{shown}", K::SECTION);
                let rest = err.key().strip_prefix(&path);
                prop_assert!(
                    rest.is_some_and(|rest| rest.is_empty()
                        || rest.len() > 1 && rest.starts_with('.') && !rest.ends_with('.')),
                    "not at {path}: {err:?}"
                );
                Ok(false)
            }
            Err(RegistryError::InstanceNotFound { .. }) => Ok(false),
            Err(other) => Err(TestCaseError::fail(format!("unexpected: {other}"))),
        }
    }
    let changes = grammar::to_value(&setup.patch);
    let pick = setup.patch_name;
    match setup.patch_kind {
        0 => one(registries.circuit_breakers(), pick, changes),
        1 => one(registries.retries(), pick, changes),
        2 => one(registries.bulkheads(), pick, changes),
        3 => one(registries.timeouts(), pick, changes),
        _ => one(registries.rate_limiters(), pick, changes),
    }
}

#[test]
fn damaged_real_documents_build_and_run_or_fail_with_a_named_key() {
    run(
        "mutated documents",
        (mutate::mutated(seeds::all()), setup()),
        |((format, text), setup)| check_text(&text, format, &setup),
    );
}

#[test]
fn generated_documents_build_and_run_or_fail_with_a_named_key() {
    let style = (0usize..6).prop_map(|blocks| Style { blocks });
    run(
        "generated documents",
        (grammar::document(), formats(), style, setup()),
        |(tree, format, style, setup)| {
            check_text(&text::render(&tree, format, style), format, &setup)
        },
    );
}

#[test]
fn random_text_is_refused_with_a_named_key_or_read() {
    run(
        "random text",
        (mutate::random_text(), formats(), setup()),
        |(text, format, setup)| check_text(&text, format, &setup),
    );
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    run(
        "deep nesting",
        (mutate::deep_text(), formats(), setup()),
        |(text, format, setup)| check_text(&text, format, &setup),
    );
}

#[test]
fn patches_of_a_running_registry_apply_whole_or_fail_with_a_named_key() {
    let documents = seeds::all();
    run(
        "patches",
        (select(documents), setup()),
        |((format, text), setup)| {
            let budget = setup.budget.unwrap_or(DEFAULT_MEMORY_BUDGET);
            let context = BuildContext::default().memory_budget(budget);
            // A budget too small for the seed refuses it; the patch is what is tested here.
            let Ok(registries) = Registries::from_str(text, format_of(format), context) else {
                return Ok(false);
            };
            let accepted = patch(&registries, &setup)?;
            prop_assert!(
                windows(&registries) <= budget,
                "windows over the budget after a patch"
            );
            Ok(accepted)
        },
    );
}

/// A configuration type read from a document: checked, and buildable once it validates.
trait Checked: Serialize + DeserializeOwned + Default + PartialEq + Debug {
    fn validate(&self) -> Result<(), ConfigError>;
    fn build(&self) -> Result<(), ConfigError>;
}

macro_rules! checked {
    ($($config:ty => |$c:ident| $build:expr;)*) => {$(
        impl Checked for $config {
            fn validate(&self) -> Result<(), ConfigError> {
                <$config>::validate(self)
            }
            fn build(&self) -> Result<(), ConfigError> {
                let $c = self;
                $build.map(drop)
            }
        }
    )*};
}

checked! {
    CircuitBreakerConfig => |c| CircuitBreaker::builder().config(c.clone()).build();
    RetryConfig => |c| Retry::builder().config(c.clone()).build();
    BulkheadConfig => |c| Bulkhead::builder().config(*c).build();
    RateLimiterConfig => |c| RateLimiter::builder().config(*c).build();
    TimeoutConfig => |c| Ok::<_, ConfigError>(Timeout::builder(c.duration).build());
    RetryBudgetConfig => |c| RetryBudget::new(c.max_tokens, c.token_ratio);
}

/// A configuration that was read: a valid one builds, and survives a round trip through its
/// document form unchanged (a reload of the same text relies on that). An invalid one may
/// not (`Deserialize` leaves checks to `validate`, and JSON has no NaN).
fn check_read<T: Checked>(config: &T) -> Result<bool, TestCaseError> {
    match config.validate() {
        Ok(()) => {
            let again: T = seawall::config::overlay(config, serde_json::json!({}))
                .map_err(|err| TestCaseError::fail(format!("round trip: {err}")))?;
            prop_assert_eq!(&again, config, "changed by a round trip");
            if let Err(err) = config.build() {
                return Err(TestCaseError::fail(format!(
                    "valid but does not build: {err}"
                )));
            }
            Ok(true)
        }
        Err(err) => named(&err).map(|()| false),
    }
}

/// `overlay` and `Deserialize` from JSON, YAML and TOML text, for one configuration type.
fn check_type<T: Checked>(changes: &Node, syntax: Syntax) -> Result<bool, TestCaseError> {
    let overlaid = match seawall::config::overlay(&T::default(), grammar::to_value(changes)) {
        Ok(config) => check_read(&config)?,
        Err(err) => named(&err).map(|()| false)?,
    };
    let text = text::render(changes, syntax, Style { blocks: 2 });
    let read: Result<T, String> = match syntax {
        Syntax::Json => serde_json::from_str(&text).map_err(|err| err.to_string()),
        Syntax::Yaml => serde_norway::from_str(&text).map_err(|err| err.to_string()),
        Syntax::Toml => toml::from_str(&text).map_err(|err| err.to_string()),
    };
    match read {
        Ok(config) => check_read(&config).map(|ok| ok || overlaid),
        Err(message) => {
            prop_assert!(!message.is_empty());
            Ok(overlaid)
        }
    }
}

#[test]
fn every_configuration_type_reads_any_value_or_names_the_key() {
    let input = (0..grammar::KINDS.len() + 1).prop_flat_map(|kind| {
        let changes = if kind == grammar::KINDS.len() {
            grammar::budget_changes()
        } else {
            grammar::changes(kind)
        };
        (Just(kind), changes, formats())
    });
    run(
        "overlay and Deserialize",
        input,
        |(kind, changes, format)| match kind {
            0 => check_type::<CircuitBreakerConfig>(&changes, format),
            1 => check_type::<RetryConfig>(&changes, format),
            2 => check_type::<BulkheadConfig>(&changes, format),
            3 => check_type::<TimeoutConfig>(&changes, format),
            4 => check_type::<RateLimiterConfig>(&changes, format),
            _ => check_type::<RetryBudgetConfig>(&changes, format),
        },
    );
}

#[test]
fn the_writer_spells_one_tree_in_each_format_as_its_parser_reads_it() {
    let tree = Node::Map(vec![(
        "retry".into(),
        Node::Map(vec![(
            "instances".into(),
            Node::Map(vec![(
                "q x".into(),
                Node::Map(vec![
                    ("max_attempts".into(), Node::Int(3)),
                    ("wait_duration".into(), Node::Str("1s".into())),
                ]),
            )]),
        )]),
    )]);
    let mut parsed = Vec::new();
    for syntax in [Syntax::Yaml, Syntax::Toml, Syntax::Json] {
        for blocks in [0, 2, 9] {
            let text = text::render(&tree, syntax, Style { blocks });
            let document = Document::parse(&text, format_of(syntax));
            parsed.push(document.unwrap_or_else(|err| panic!("{syntax:?}:\n{text}\n{err}")));
        }
    }
    assert!(parsed.windows(2).all(|pair| pair[0] == pair[1]));
}

//! Configuration documents as hostile and careless input: every finding of the probe that
//! fed them ~90,000 generated documents, as a regression test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::clock::{Clock, ManualClock};
use seawall::registry::document::{Document, Format};
use seawall::registry::{BuildContext, Registries, RegistryEvent};

fn parse_err(text: &str, format: Format) -> seawall::ConfigError {
    Document::parse(text, format).unwrap_err()
}

#[test]
fn a_rate_limiter_period_of_centuries_is_refused_and_a_long_one_never_panics() {
    let err = parse_err(
        "ratelimiter: {instances: {api: {limit_refresh_period: 585years}}}",
        Format::Yaml,
    );
    assert_eq!(err.key(), "ratelimiter.instances.api.limit_refresh_period");
    assert!(err.rule().contains("365 days"), "{err}");

    // The longest period allowed, on a clock far past the origin: the permit count is
    // computed with saturating arithmetic.
    let clock = ManualClock::new();
    let registries = Registries::from_str(
        "ratelimiter: {instances: {api: {limit_refresh_period: 365days, limit_for_period: 1}}}",
        Format::Yaml,
        BuildContext::default().clock(Clock::from(clock.clone())),
    )
    .unwrap();
    let limiter = registries.rate_limiters().find("api").unwrap();
    clock.advance(Duration::from_secs(3 * 3_600));
    assert_eq!(limiter.available_permits(), 1);
    clock.advance(Duration::from_secs(400 * 86_400));
    assert!(limiter.available_permits() <= 1);
}

/// `configs.c0` inherits from nothing, `c1` from `c0`, …: a chain `depth` long, used by one
/// instance.
fn chain(depth: usize) -> String {
    let mut text =
        String::from("circuitbreaker:\n  configs:\n    c0: { failure_rate_threshold: 40 }\n");
    for level in 1..depth {
        text.push_str(&format!(
            "    c{level}: {{ base_config: c{} }}\n",
            level - 1
        ));
    }
    text.push_str(&format!(
        "  instances:\n    pg: {{ base_config: c{} }}\n",
        depth - 1
    ));
    text
}

#[test]
fn inheritance_chains_resolve_once_each_and_too_deep_a_chain_is_a_clear_error() {
    let registries =
        Registries::from_str(&chain(30), Format::Yaml, BuildContext::default()).unwrap();
    let config = registries.circuit_breakers().current_config("pg").unwrap();
    assert_eq!(
        config.failure_rate_threshold, 40.0,
        "inherited through 30 levels"
    );

    // 1,000 levels took 0.45 s and 10,000 did not finish; now the depth is bounded.
    let err = parse_err(&chain(10_000), Format::Yaml);
    assert!(err.key().ends_with(".base_config"), "{err}");
    assert!(err.rule().contains("more than 32"), "{err}");
}

#[test]
fn deeply_nested_yaml_is_refused_before_the_parser_sees_it() {
    let depth = 40_000;
    let text = format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth));
    let err = parse_err(&text, Format::Yaml);
    assert_eq!(err.key(), "document");
    assert!(err.rule().contains("more than 32 deep"), "{err}");
    // Brackets inside strings and comments do not count.
    let quoted = format!(
        "# {}\nretry: {{instances: {{q: {{max_attempts: 2}}}}}}\ntag_text: \"{}\"",
        "{".repeat(100),
        "[".repeat(100)
    );
    let err = parse_err(&quoted, Format::Yaml);
    assert_eq!(err.key(), "tag_text", "got past the nesting check: {err}");
}

#[test]
fn a_tiny_document_cannot_promise_gigabytes_of_windows() {
    let mut text = String::from(
        "circuitbreaker:\n  configs:\n    default: { sliding_window_size: 16777216, minimum_number_of_calls: 1 }\n  instances:\n",
    );
    for i in 0..100 {
        text.push_str(&format!("    b{i}: {{}}\n"));
    }
    assert!(text.len() < 3_000);
    let err = Registries::from_str(&text, Format::Yaml, BuildContext::default()).unwrap_err();
    assert!(err.key().starts_with("circuitbreaker.instances.b"), "{err}");
    assert!(err.key().ends_with(".sliding_window_size"), "{err}");
    assert!(err.rule().contains("memory budget"), "{err}");

    // A budget raised on purpose admits it: windows are then taken as they fill.
    let roomy = BuildContext::default().memory_budget(2 << 30);
    assert!(Registries::from_str(&text, Format::Yaml, roomy).is_ok());
}

#[test]
fn reloading_an_unchanged_document_is_a_no_op_even_with_unrounded_budget_values() {
    let text = "retry: {instances: {q: {budget: {max_tokens: 10, token_ratio: 0.1234}}}}";
    let registries = Registries::from_str(text, Format::Yaml, BuildContext::default()).unwrap();
    let changes = Arc::new(Mutex::new(0));
    let counted = changes.clone();
    registries.retries().on_event(move |event| {
        if matches!(event, RegistryEvent::ConfigChanged { .. }) {
            *counted.lock().unwrap() += 1;
        }
    });
    registries
        .reload(&Document::parse(text, Format::Yaml).unwrap())
        .unwrap();
    assert_eq!(*changes.lock().unwrap(), 0);

    let err = parse_err(
        "retry: {instances: {q: {budget: {max_tokens: 0.0004, token_ratio: 0.1}}}}",
        Format::Yaml,
    );
    assert_eq!(err.key(), "retry.instances.q.budget.max_tokens");
    assert!(err.rule().contains("0.001"), "{err}");
}

#[test]
fn non_finite_numbers_are_refused_not_read_as_unset() {
    let err = parse_err(
        "circuitbreaker: {instances: {pg: {failure_rate_threshold: .inf}}}",
        Format::Yaml,
    );
    assert_eq!(
        err.key(),
        "circuitbreaker.instances.pg.failure_rate_threshold"
    );
    assert!(err.rule().contains("finite"), "{err}");
    let err = parse_err(
        "[circuitbreaker.instances.pg]\nslow_call_rate_threshold = nan\n",
        Format::Toml,
    );
    assert_eq!(
        err.key(),
        "circuitbreaker.instances.pg.slow_call_rate_threshold"
    );
}

#[test]
fn a_list_is_never_read_as_a_map_of_keys() {
    let list: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    let text = format!(
        "{{\"circuitbreaker\": {{\"instances\": {{\"pg\": [{}]}}}}}}",
        list.join(",")
    );
    let err = parse_err(&text, Format::Json);
    assert_eq!(err.key(), "circuitbreaker.instances.pg");
    assert!(err.rule().contains("must be a map"), "{err}");
    let err = parse_err("retry: {instances: {q: {budget: [10, 0.1]}}}", Format::Yaml);
    assert_eq!(err.key(), "retry.instances.q.budget");
}

#[test]
fn duplicate_keys_and_two_spellings_of_one_key_are_errors_naming_both() {
    let err = parse_err(
        "circuitbreaker:\n  instances:\n    pg:\n      failure_rate_threshold: 40\n      failure_rate_threshold: 60\n",
        Format::Yaml,
    );
    assert!(
        err.rule()
            .contains("duplicate key `failure_rate_threshold`"),
        "{err}"
    );
    let err = parse_err(
        r#"{"retry": {"instances": {"q": {"max_attempts": 2, "max_attempts": 5}}}}"#,
        Format::Json,
    );
    assert!(err.rule().contains("duplicate key `max_attempts`"), "{err}");

    let err = parse_err(
        "circuitbreaker: {instances: {pg: {failureRateThreshold: 40, failure_rate_threshold: 60}}}",
        Format::Yaml,
    );
    assert!(
        err.key().starts_with("circuitbreaker.instances.pg."),
        "{err}"
    );
    assert!(
        err.to_string().contains("failureRateThreshold")
            && err.to_string().contains("failure_rate_threshold"),
        "{err}"
    );
    let err = parse_err(
        "circuitBreaker: {instances: {a: {}}}\ncircuitbreaker: {instances: {b: {}}}\n",
        Format::Yaml,
    );
    assert!(
        err.to_string().contains("circuitBreaker") && err.to_string().contains("circuitbreaker"),
        "{err}"
    );
}

#[test]
fn a_bad_shared_value_is_reported_where_it_was_written() {
    let err = parse_err(
        "circuitbreaker:\n  configs:\n    default: { failure_rate_threshold: 120 }\n    alpha: { minimum_number_of_calls: 5 }\n  instances:\n    pg: { base_config: alpha }\n",
        Format::Yaml,
    );
    assert_eq!(
        err.key(),
        "circuitbreaker.configs.default.failure_rate_threshold"
    );
}

#[test]
fn problems_at_the_root_and_byte_order_marks_read_clearly() {
    let err = parse_err("[1, 2]", Format::Json);
    assert_eq!(err.key(), "document");
    assert!(err.rule().contains("must be a map of sections"), "{err}");
    let with_bom = "\u{feff}{\"retry\": {\"instances\": {\"q\": {\"max_attempts\": 2}}}}";
    assert!(Document::parse(with_bom, Format::Json).is_ok());
    let err = parse_err(
        "[retry.instances.q]\nmax_attempts = 99999999999999999999\n",
        Format::Toml,
    );
    assert!(err.key() != "." && !err.key().is_empty(), "{err}");
}

#[test]
fn a_document_over_the_size_limit_is_refused_before_parsing() {
    let text = format!(
        "# {}\n",
        "x".repeat(seawall::registry::document::MAX_DOCUMENT_BYTES)
    );
    let err = parse_err(&text, Format::Yaml);
    assert_eq!(err.key(), "document");
    assert!(err.rule().contains("at most"), "{err}");
}

#[test]
fn an_instance_inherits_its_base_configurations_tags_unless_it_has_its_own() {
    let registries = Registries::from_str(
        "circuitbreaker:\n  configs:\n    default: { tags: { team: payments } }\n    strict: { base_config: default, failure_rate_threshold: 30 }\n  instances:\n    a: { base_config: strict }\n    b: { tags: { team: search } }\n",
        Format::Yaml,
        BuildContext::default(),
    )
    .unwrap();
    let breakers = registries.circuit_breakers();
    assert_eq!(
        breakers.tags("a").unwrap()["team"],
        "payments",
        "through strict"
    );
    assert_eq!(breakers.tags("b").unwrap()["team"], "search");
}

#[test]
fn a_circle_through_the_implicit_default_is_found() {
    let err = parse_err(
        "circuitbreaker:\n  configs:\n    default: { base_config: a }\n    a: { failure_rate_threshold: 30 }\n",
        Format::Yaml,
    );
    assert!(err.key().ends_with(".base_config"), "{err}");
    assert!(err.rule().contains("circular reference"), "{err}");
}

// Findings of the property suite (`properties.rs`).

#[test]
fn a_linear_backoff_written_over_the_exponential_default_is_read_as_linear() {
    use seawall::retry::Progression;
    let linear = |text: &str| {
        let registries = Registries::from_str(text, Format::Yaml, BuildContext::default())
            .unwrap_or_else(|err| panic!("{text}: {err}"));
        let backoff = registries.retries().current_config("q").unwrap().backoff;
        matches!(backoff.progression(), Progression::Linear { .. })
    };
    // The library's default is exponential: turning linear on turns it off.
    assert!(linear(
        "retry: {instances: {q: {enable_linear_backoff: true, linear_backoff_step: 50ms}}}"
    ));
    // So does an inherited `enable_exponential_backoff: true`.
    assert!(linear(
        "retry:\n  configs:\n    default: { enable_exponential_backoff: true }\n  instances:\n    q: { enable_linear_backoff: true }\n"
    ));
    // Both written on in one place is still a contradiction, named at a key.
    let err = parse_err(
        "retry: {instances: {q: {enable_linear_backoff: true, enable_exponential_backoff: true}}}",
        Format::Yaml,
    );
    assert_eq!(err.key(), "retry.instances.q.enable_linear_backoff");
    // And through a patch of a running retry, and `overlay`.
    let registries = Registries::from_str(
        "retry: {instances: {q: {}}}",
        Format::Yaml,
        BuildContext::default(),
    )
    .unwrap();
    let patched = registries
        .retries()
        .patch("q", serde_json::json!({"enableLinearBackoff": true}))
        .unwrap();
    assert!(matches!(
        patched.backoff.progression(),
        Progression::Linear { .. }
    ));
    let err = registries
        .retries()
        .patch(
            "q",
            serde_json::json!({"enable_linear_backoff": true, "enable_exponential_backoff": true}),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("retry.instances.q.enable_linear_backoff: "),
        "{err}"
    );
}

#[test]
fn an_empty_key_or_a_key_with_a_dot_is_quoted_in_the_error_path() {
    let err = parse_err("\"\": {}", Format::Yaml);
    assert_eq!(err.key(), "\"\"");
    assert!(err.rule().contains("unknown section"), "{err}");
    let err = parse_err(
        "ratelimiter: {instances: {\"a.b\": {limit_for_period: 0}}}",
        Format::Yaml,
    );
    assert_eq!(err.key(), "ratelimiter.instances.\"a.b\".limit_for_period");
    let base = seawall::rate_limiter::RateLimiterConfig::default();
    let err = seawall::config::overlay(&base, serde_json::json!({".": 1})).unwrap_err();
    assert_eq!(err.key(), "\".\"");
    let err = seawall::config::overlay(&base, serde_json::json!({"": 1})).unwrap_err();
    assert_eq!(err.key(), "\"\"");
}

#[test]
fn overlaying_nothing_changes_nothing_and_a_non_map_is_an_error_at_the_document() {
    let base = seawall::bulkhead::BulkheadConfig::new(3);
    assert_eq!(
        seawall::config::overlay(&base, serde_json::Value::Null).unwrap(),
        base
    );
    for changes in [serde_json::json!([1, 2]), serde_json::json!(5)] {
        let err = seawall::config::overlay(&base, changes).unwrap_err();
        assert_eq!(err.key(), "document");
        assert!(err.rule().contains("must be a map"), "{err}");
    }
}

#[test]
fn a_patch_cannot_grow_a_window_past_the_memory_budget() {
    let registries = Registries::from_str(
        "circuitbreaker: {instances: {pg: {sliding_window_size: 20}, other: {sliding_window_size: 1000}}}",
        Format::Yaml,
        BuildContext::default().memory_budget(1 << 20),
    )
    .unwrap();
    let breakers = registries.circuit_breakers();
    let err = breakers
        .patch("pg", serde_json::json!({"sliding_window_size": 16_777_216}))
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "circuitbreaker.instances.pg.sliding_window_size: the breakers' windows could take 16.0 MiB"
        ),
        "{err}"
    );
    assert_eq!(
        breakers.current_config("pg").unwrap().window_memory_bound(),
        20,
        "nothing changed"
    );
    // Within the budget, counting the other breaker's 1,000 calls, it applies.
    let within = (1 << 20) - 1_000;
    breakers
        .patch("pg", serde_json::json!({"sliding_window_size": within}))
        .unwrap();
    assert!(
        breakers
            .patch("pg", serde_json::json!({"sliding_window_size": within + 1}))
            .is_err()
    );
    // Shrinking is always allowed, as is a reload that swaps two windows' sizes.
    breakers
        .patch("pg", serde_json::json!({"sliding_window_size": 10}))
        .unwrap();
    let swapped = "circuitbreaker: {instances: {pg: {sliding_window_size: 1000}, other: {sliding_window_size: 20}}}";
    registries
        .reload(&Document::parse(swapped, Format::Yaml).unwrap())
        .unwrap();
}

// From the mutation run over the strict parser.

#[test]
fn an_integer_past_what_u64_holds_is_refused_at_its_key_in_every_format() {
    for (text, format) in [
        (
            "retry: {instances: {q: {max_attempts: 18446744073709551616}}}",
            Format::Yaml,
        ),
        (
            "retry: {instances: {q: {max_attempts: -9223372036854775809}}}",
            Format::Yaml,
        ),
        (
            r#"{"retry": {"instances": {"q": {"max_attempts": 18446744073709551616}}}}"#,
            Format::Json,
        ),
    ] {
        let err = parse_err(text, format);
        assert_eq!(err.key(), "retry.instances.q.max_attempts", "{text}");
        assert!(
            !err.rule().contains("max_attempts"),
            "the key said once: {err}"
        );
        assert!(
            ["out of range", "invalid type"]
                .iter()
                .any(|rule| err.rule().contains(rule)),
            "{err}"
        );
    }
}

#[test]
fn aliases_repeating_nulls_count_against_the_expansion_limit_too() {
    // 110 nulls, repeated 110 × 110 times: 1.3 million values from a 1 KB document.
    let nulls = vec!["~"; 110].join(", ");
    let twice = vec!["*a0"; 110].join(", ");
    let thrice = vec!["*a1"; 110].join(", ");
    let text = format!("a0: &a0 [{nulls}]\na1: &a1 [{twice}]\na2: [{thrice}]\n");
    let err = parse_err(&text, Format::Yaml);
    assert!(err.rule().contains("expands to more than"), "{err}");
}

#[test]
fn strings_written_with_escapes_read_the_same_in_every_format() {
    for (text, format) in [
        (
            "bulkhead: {tags: {team: \"pay\\\"ments\\u00e9\"}}",
            Format::Yaml,
        ),
        (
            "[bulkhead.tags]\nteam = \"pay\\\"ments\\u00e9\"\n",
            Format::Toml,
        ),
        (
            r#"{"bulkhead": {"tags": {"team": "pay\"ments\u00e9"}}}"#,
            Format::Json,
        ),
    ] {
        let registries = Registries::from_str(text, format, BuildContext::default())
            .unwrap_or_else(|err| panic!("{format:?}: {err}"));
        let bulkhead = registries.bulkheads().get_or_create("b");
        drop(bulkhead);
        assert_eq!(
            registries.bulkheads().tags("b").unwrap()["team"],
            "pay\"ments\u{e9}",
            "{format:?}"
        );
    }
}

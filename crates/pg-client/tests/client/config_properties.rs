//! Hostile configuration documents through pg-client's entry points: `PgClientConfig::from_json`,
//! serde `Deserialize` from JSON and TOML, then `validate` and `PgClient::builder(..).build()`.
//!
//! A document is read, or refused with an error naming a key (serde's errors: a message); a
//! configuration that validates builds a client; a configuration written out reads back the
//! same. Cases per test: 256, or `PROPTEST_CASES`; `--nocapture` shows how many were accepted.

use pg_client::{PgClient, PgClientConfig};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use seawall::ConfigError;

use config_grammar::Syntax as Format;
use config_grammar::grammar::{self, word};
use config_grammar::text::{self, Node, Style};
use config_grammar::{mutate, run};

fn named(err: &ConfigError) -> Result<(), TestCaseError> {
    config_grammar::names_a_key(err.key(), err.rule(), err)
}

const JSON: &str = r#"{
  "name": "toss",
  "base_url": "http://127.0.0.1:9000/gateway/",
  "currency": "KRW",
  "cancel_supported": true,
  "pre_create_messages": ["busy", "try later"],
  "charge": {
    "connect_timeout": "250ms", "read_timeout": "2s", "max_retry_after": "5s",
    "retry": { "max_attempts": 2, "wait_duration": "100ms", "enable_exponential_backoff": true, "jitter": "full" },
    "circuit_breaker": { "failure_rate_threshold": 60.0, "sliding_window_size": 20, "wait_duration_in_open_state": "10s" },
    "bulkhead": { "max_concurrent_calls": 10, "max_wait_duration": "50ms" }
  },
  "query": {
    "read_timeout": "10s",
    "retry": { "max_attempts": 5, "budget": { "max_tokens": 10, "token_ratio": 0.1 } },
    "circuit_breaker": { "sliding_window_type": "TIME_BASED", "sliding_window_size": 30, "minimum_number_of_calls": 5 }
  }
}"#;

const TOML: &str = r#"
name = "toss"
base_url = "http://127.0.0.1:9000"
cancel_supported = true
pre_create_messages = []

[charge]
connect_timeout = "250ms"

[charge.retry]
max_attempts = 1

[charge.bulkhead]
max_concurrent_calls = 3

[query]
read_timeout = "10s"

[query.retry]
enable_linear_backoff = true
linear_backoff_step = "50ms"

[query.circuit_breaker]
sliding_window_size = 20
failure_rate_threshold = 70.0
slow_call_tracking = false
"#;

fn url() -> BoxedStrategy<Node> {
    let known = select(
        &[
            "http://localhost:8082",
            "http://127.0.0.1:9000/gateway/",
            "http://[::1]:8082",
            "https://pg.example",
            "ftp://pg.example",
            "http://x/?a=b",
            "http://x/#top",
            "http://host:99999",
            "mailto:pg@example.com",
            "data:text/plain,x",
            "http://",
            "",
            "not a url",
        ][..],
    );
    prop_oneof![
        4 => known.prop_map(|url| Node::Str(url.to_owned())),
        1 => "http://[a-z0-9.:/?#%-]{0,30}".prop_map(Node::Str),
        1 => grammar::any_node(),
    ]
    .boxed()
}

fn duration() -> BoxedStrategy<Node> {
    prop_oneof![
        4 => grammar::duration_text().prop_map(Node::Str),
        1 => grammar::any_node(),
    ]
    .boxed()
}

/// One path's keys: timeouts and seawall's three configurations.
fn path_config() -> BoxedStrategy<Node> {
    let key = prop_oneof![
        2 => (
            select(&["connect_timeout", "read_timeout", "max_retry_after"][..]),
            duration()
        )
            .prop_map(|(key, value)| (key.to_owned(), value)),
        2 => grammar::changes(1).prop_map(|value| ("retry".to_owned(), value)),
        2 => grammar::changes(0).prop_map(|value| ("circuit_breaker".to_owned(), value)),
        1 => grammar::changes(2).prop_map(|value| ("bulkhead".to_owned(), value)),
        1 => (word(), grammar::any_node()),
    ];
    prop_oneof![
        8 => prop::collection::vec(key, 0..5).prop_map(Node::Map),
        1 => grammar::any_node(),
    ]
    .boxed()
}

fn client_document() -> BoxedStrategy<Node> {
    let key = prop_oneof![
        1 => word().prop_map(|name| ("name".to_owned(), Node::Str(name))),
        2 => url().prop_map(|url| ("base_url".to_owned(), url)),
        1 => prop_oneof![
            select(&["KRW", "USD", "krw", "EURO", "", "₩₩₩"][..]).prop_map(|c| Node::Str(c.to_owned())),
            grammar::any_node()
        ]
        .prop_map(|currency| ("currency".to_owned(), currency)),
        1 => grammar::any_node().prop_map(|flag| ("cancel_supported".to_owned(), flag)),
        1 => prop_oneof![
            prop::collection::vec(word().prop_map(Node::Str), 0..3).prop_map(Node::List),
            grammar::any_node()
        ]
        .prop_map(|messages| ("pre_create_messages".to_owned(), messages)),
        3 => (select(&["charge", "query"][..]), path_config())
            .prop_map(|(path, config)| (path.to_owned(), config)),
        1 => (word(), grammar::any_node()),
    ];
    prop_oneof![
        10 => prop::collection::vec(key, 0..6).prop_map(Node::Map),
        1 => grammar::any_node(),
    ]
    .boxed()
}

/// A configuration that was read: it validates and builds a client, or names the key; and
/// written out as JSON it reads back the same.
fn check_config(config: &PgClientConfig) -> Result<bool, TestCaseError> {
    let written = serde_json::to_string(config).unwrap();
    match PgClientConfig::from_json(&written) {
        Ok(again) => prop_assert_eq!(&again, config, "changed by a round trip"),
        Err(err) => return Err(TestCaseError::fail(format!("round trip: {err}"))),
    }
    match config.validate() {
        Ok(()) => match PgClient::builder(config.clone()).build() {
            Ok(_) => Ok(true),
            Err(err) => Err(TestCaseError::fail(format!(
                "valid but does not build: {err}"
            ))),
        },
        Err(err) => named(&err).map(|()| false),
    }
}

/// Every entry point on one text in `format` (JSON: `from_json` and `serde_json`; TOML:
/// `toml`). The two JSON readers agree.
fn check_text(text: &str, format: Format) -> Result<bool, TestCaseError> {
    match format {
        Format::Json | Format::Yaml => {
            let read = PgClientConfig::from_json(text);
            let direct = serde_json::from_str::<PgClientConfig>(text);
            match (&read, &direct) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Ok(_), Err(err)) => prop_assert!(text.starts_with('\u{feff}'), "{err}"),
                (Err(err), Ok(_)) => {
                    return Err(TestCaseError::fail(format!(
                        "from_json refused what serde read: {err}"
                    )));
                }
                (Err(_), Err(err)) => prop_assert!(!err.to_string().is_empty()),
            }
            match read {
                Ok(config) => check_config(&config),
                Err(err) => named(&err).map(|()| false),
            }
        }
        Format::Toml => match toml::from_str::<PgClientConfig>(text) {
            Ok(config) => check_config(&config),
            Err(err) => {
                prop_assert!(!err.to_string().is_empty());
                Ok(false)
            }
        },
    }
}

fn formats() -> impl Strategy<Value = Format> {
    select(&[Format::Toml, Format::Json][..])
}

#[test]
fn generated_client_documents_build_a_client_or_fail_with_a_named_key() {
    let style = (0usize..4).prop_map(|blocks| Style { blocks });
    run(
        "client documents",
        (client_document(), formats(), style),
        |(tree, format, style)| check_text(&text::render(&tree, format, style), format),
    );
}

#[test]
fn damaged_client_documents_build_a_client_or_fail_with_a_named_key() {
    run(
        "damaged client documents",
        mutate::mutated(vec![(Format::Json, JSON), (Format::Toml, TOML)]),
        |(format, text)| check_text(&text, format),
    );
}

#[test]
fn random_text_is_never_a_client_configuration_by_accident() {
    run(
        "random text",
        (
            prop_oneof![mutate::random_text(), mutate::deep_text()],
            formats(),
        ),
        |(text, format)| check_text(&text, format),
    );
}

#[test]
fn the_seed_documents_are_valid_client_configurations() {
    for (format, text) in [(Format::Json, JSON), (Format::Toml, TOML)] {
        let outcome = check_text(text, format);
        assert!(matches!(outcome, Ok(true)), "{format:?}: {outcome:?}");
    }
}

#[test]
fn hostile_client_documents_found_by_this_suite_read_as_expected() {
    // (document, the key its error names, or `None` for a client that validates)
    let cases = [
        // Not a map: the error was at the key `.`.
        ("[1, 2]", Some("document")),
        ("5", Some("document")),
        // An empty key: the error's key was empty.
        (r#"{"charge": {"": 1}}"#, Some(r#"charge."""#)),
        // Nothing written is the defaults, as `{}` is.
        ("null", None),
        // A linear backoff over the client's exponential default was refused.
        (
            r#"{"query": {"retry": {"enable_linear_backoff": true, "linear_backoff_step": "50ms"}}}"#,
            None,
        ),
    ];
    for (text, expected) in cases {
        let outcome = PgClientConfig::from_json(text).and_then(|config| config.validate());
        match (outcome, expected) {
            (Ok(()), None) => {}
            (Err(err), Some(key)) => assert_eq!(err.key(), key, "{text}: {err}"),
            (outcome, _) => panic!("{text}: expected {expected:?}, got {outcome:?}"),
        }
    }
}

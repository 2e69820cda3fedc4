//! Structured random documents: sections under known and unknown spellings, configurations
//! and instances with random names, real and random keys, values of every type, and
//! `base_config` references that may be missing, circular or long chains.

use proptest::prelude::*;
use proptest::sample::select;

use crate::text::{Node, Special};

/// The kinds of section, each with its keys (snake case) and what each key holds.
pub const KINDS: [(&str, &[(&str, Class)]); 5] = [
    (
        "circuitbreaker",
        &[
            ("failure_rate_threshold", Class::Rate),
            ("slow_call_rate_threshold", Class::Rate),
            ("slow_call_tracking", Class::Bool),
            ("slow_call_duration_threshold", Class::Duration),
            ("permitted_number_of_calls_in_half_open_state", Class::Count),
            ("max_wait_duration_in_half_open_state", Class::Duration),
            ("transition_to_state_after_wait_duration", Class::State),
            ("sliding_window_type", Class::WindowType),
            ("sliding_window_size", Class::WindowSize),
            ("sliding_window_bucket", Class::Duration),
            ("minimum_number_of_calls", Class::Count),
            ("wait_duration_in_open_state", Class::Duration),
            ("enable_exponential_backoff", Class::Bool),
            ("exponential_backoff_multiplier", Class::Multiplier),
            (
                "exponential_max_wait_duration_in_open_state",
                Class::Duration,
            ),
            ("wait_duration_in_open_state_jitter", Class::Jitter),
            (
                "automatic_transition_from_open_to_half_open_enabled",
                Class::Bool,
            ),
            ("initial_state", Class::State),
        ],
    ),
    (
        "retry",
        &[
            ("max_attempts", Class::Count),
            ("wait_duration", Class::Duration),
            ("enable_exponential_backoff", Class::Bool),
            ("exponential_backoff_multiplier", Class::Multiplier),
            ("exponential_max_wait_duration", Class::Duration),
            ("enable_linear_backoff", Class::Bool),
            ("linear_backoff_step", Class::Duration),
            ("jitter", Class::Jitter),
            ("max_elapsed", Class::Duration),
            ("fail_after_max_attempts", Class::Bool),
            ("budget", Class::Budget),
        ],
    ),
    (
        "bulkhead",
        &[
            ("max_concurrent_calls", Class::Count),
            ("max_wait_duration", Class::Duration),
        ],
    ),
    (
        "timelimiter",
        &[
            ("timeout_duration", Class::Duration),
            ("cancel_running_future", Class::Bool),
        ],
    ),
    (
        "ratelimiter",
        &[
            ("limit_for_period", Class::Count),
            ("limit_refresh_period", Class::Duration),
            ("timeout_duration", Class::Duration),
        ],
    ),
];

/// What a key holds, to draw values a real document would have (and some it would not).
#[derive(Clone, Copy, Debug)]
pub enum Class {
    /// A percentage (0 to 100).
    Rate,
    /// A whole number of calls, permits or attempts.
    Count,
    /// A duration, as text or milliseconds.
    Duration,
    /// A switch.
    Bool,
    /// A breaker state name.
    State,
    /// `COUNT_BASED` or `TIME_BASED`.
    WindowType,
    /// A sliding window's size, up to the memory limits.
    WindowSize,
    /// A backoff multiplier.
    Multiplier,
    /// A jitter name.
    Jitter,
    /// A retry budget's map of keys.
    Budget,
}

/// Section names as documents write them, right and wrong.
const SECTION_SPELLINGS: [(&str, &[&str]); 5] = [
    (
        "circuitbreaker",
        &[
            "circuitbreaker",
            "circuitBreaker",
            "circuit-breaker",
            "circuit_breakers",
            "CircuitBreakers",
        ],
    ),
    ("retry", &["retry", "retries", "Retry"]),
    ("bulkhead", &["bulkhead", "bulkheads", "bulkHead"]),
    (
        "timelimiter",
        &[
            "timelimiter",
            "timeLimiter",
            "time-limiter",
            "timeout",
            "timeouts",
        ],
    ),
    (
        "ratelimiter",
        &[
            "ratelimiter",
            "rateLimiter",
            "rate_limiters",
            "rate-limiter",
        ],
    ),
];

/// Names shared between configurations, instances and `base_config` values, so references
/// hit as often as they miss.
const NAMES: [&str; 8] = [
    "default", "pg", "a", "b", "c", "shared", "pg-query", "Default",
];

/// Strings that look like names, keys or values, including hostile ones.
pub fn word() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(&NAMES[..]).prop_map(str::to_owned),
        2 => "[a-z][a-zA-Z0-9_-]{0,12}",
        1 => ".{0,8}",
        1 => Just(String::new()),
        1 => (1usize..4).prop_map(|n| "x".repeat(n * 1000)),
    ]
    .boxed()
}

/// `snake_case` rewritten as a writer might: camel, kebab, Pascal or upper case.
pub fn spelled(snake: &'static str) -> BoxedStrategy<String> {
    (0u8..10)
        .prop_map(move |choice| match choice {
            0..=4 => snake.to_owned(),
            5 | 6 => camel(snake, false),
            7 => snake.replace('_', "-"),
            8 => camel(snake, true),
            _ => snake.to_ascii_uppercase(),
        })
        .boxed()
}

fn camel(snake: &str, pascal: bool) -> String {
    let mut out = String::new();
    let mut upper = pascal;
    for ch in snake.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.push(ch.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// Durations as documents write them, right and wrong.
pub fn duration_text() -> BoxedStrategy<String> {
    prop_oneof![
        select(
            &[
                "500ms",
                "1s",
                "10s",
                "1m 30s",
                "365days",
                "366days",
                "585years",
                "600years",
                "0ns",
                "1ns",
                "0s",
                "-1s",
                "soon",
                "",
                "1 s",
                "10000000000000000000ns",
                "2562047h",
            ][..]
        )
        .prop_map(str::to_owned),
        (
            0u64..100_000,
            select(&["ns", "us", "ms", "s", "m", "h", "d", "w", "y"][..])
        )
            .prop_map(|(n, unit)| format!("{n}{unit}")),
    ]
    .boxed()
}

fn int() -> BoxedStrategy<i128> {
    prop_oneof![
        3 => 0i128..200,
        2 => select(
            vec![
                -1,
                0,
                1,
                1 << 16,
                (1 << 16) + 1,
                100_000,
                1 << 20,
                5_000_000,
                1 << 24,
                (1 << 24) + 1,
                i128::from(u32::MAX),
                i128::from(u32::MAX) + 1,
                1 << 61,
                (1 << 61) + 1,
                i128::from(i64::MAX),
                i128::from(i64::MIN),
                i128::from(u64::MAX),
                99_999_999_999_999_999_999,
            ]
        ),
        1 => any::<i64>().prop_map(i128::from),
    ]
    .boxed()
}

fn float() -> BoxedStrategy<f64> {
    prop_oneof![
        2 => select(
            &[0.0, -0.0, 0.0004, 0.001, 0.1234, 1e-300, 0.5, 1.0, 50.0, 100.0, 100.0001, 1000.0,
                1000.5, 1e308][..]
        ),
        1 => -1e6f64..1e6,
    ]
    .boxed()
}

/// A value for a key of `class`: usually plausible, sometimes anything at all.
fn value_for(class: Class) -> BoxedStrategy<Node> {
    let plausible = match class {
        Class::Rate => prop_oneof![
            float().prop_map(Node::Float),
            (0i128..150).prop_map(Node::Int)
        ]
        .boxed(),
        Class::Count => int().prop_map(Node::Int).boxed(),
        Class::Duration => prop_oneof![
            duration_text().prop_map(Node::Str),
            int().prop_map(Node::Int)
        ]
        .boxed(),
        Class::Bool => any::<bool>().prop_map(Node::Bool).boxed(),
        Class::State => select(
            &[
                "CLOSED",
                "OPEN",
                "HALF_OPEN",
                "half-open",
                "DISABLED",
                "FORCED_OPEN",
                "METRICS_ONLY",
                "ajar",
            ][..],
        )
        .prop_map(|text| Node::Str(text.to_owned()))
        .boxed(),
        Class::WindowType => select(&["COUNT_BASED", "TIME_BASED", "time_based", "SESSION"][..])
            .prop_map(|text| Node::Str(text.to_owned()))
            .boxed(),
        Class::WindowSize => prop_oneof![
            int().prop_map(Node::Int),
            duration_text().prop_map(Node::Str)
        ]
        .boxed(),
        Class::Multiplier => prop_oneof![
            float().prop_map(Node::Float),
            (0i128..5).prop_map(Node::Int)
        ]
        .boxed(),
        Class::Jitter => select(&["none", "full", "EQUAL", "decorrelated", "some"][..])
            .prop_map(|text| Node::Str(text.to_owned()))
            .boxed(),
        Class::Budget => prop::collection::vec(
            (
                prop_oneof![spelled("max_tokens"), spelled("token_ratio"), word()],
                prop_oneof![float().prop_map(Node::Float), int().prop_map(Node::Int)],
            ),
            0..3,
        )
        .prop_map(Node::Map)
        .boxed(),
    };
    prop_oneof![5 => plausible, 1 => any_node()].boxed()
}

fn scalar() -> BoxedStrategy<Node> {
    prop_oneof![
        int().prop_map(Node::Int),
        float().prop_map(Node::Float),
        word().prop_map(Node::Str),
        duration_text().prop_map(Node::Str),
        any::<bool>().prop_map(Node::Bool),
        Just(Node::Null),
        select(&[Special::Nan, Special::Inf, Special::NegInf, Special::Exp400][..])
            .prop_map(Node::Special),
    ]
    .boxed()
}

/// Any value: scalars, lists and maps, nested a few levels.
pub fn any_node() -> BoxedStrategy<Node> {
    scalar()
        .prop_recursive(4, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Node::List),
                prop::collection::vec((word(), inner), 0..5).prop_map(Node::Map),
            ]
        })
        .boxed()
}

/// One key of a configuration or instance of `kind`.
fn property(kind: usize) -> BoxedStrategy<(String, Node)> {
    let keys = KINDS[kind].1;
    prop_oneof![
        8 => select(keys).prop_flat_map(|(key, class)| (spelled(key), value_for(class))),
        2 => (
            spelled("base_config"),
            prop_oneof![4 => word().prop_map(Node::Str), 1 => any_node()]
        ),
        1 => (
            Just("tags".to_owned()),
            prop_oneof![
                3 => prop::collection::vec((word(), scalar()), 0..3).prop_map(Node::Map),
                1 => any_node()
            ]
        ),
        1 => (word(), any_node()),
    ]
    .boxed()
}

fn entry(kind: usize) -> BoxedStrategy<Node> {
    prop_oneof![
        12 => prop::collection::vec(property(kind), 0..6).prop_map(Node::Map),
        1 => any_node(),
    ]
    .boxed()
}

fn group(kind: usize, max: usize) -> BoxedStrategy<Node> {
    prop_oneof![
        12 => prop::collection::vec((word(), entry(kind)), 0..max).prop_map(Node::Map),
        1 => any_node(),
    ]
    .boxed()
}

/// `configs.c0` to `configs.c<len-1>`, each inheriting from the one before (the first from
/// `default` or nothing), and instances naming links of the chain.
fn chain(kind: usize) -> BoxedStrategy<Node> {
    (
        0usize..40,
        any::<bool>(),
        prop::collection::vec(property(kind), 0..3),
        prop::collection::vec(0usize..45, 1..4),
    )
        .prop_map(move |(len, with_default, keys, links)| {
            let mut configs = Vec::new();
            if with_default {
                configs.push(("default".to_owned(), Node::Map(keys)));
            }
            for level in 0..len {
                let mut own = Vec::new();
                if level > 0 {
                    own.push((
                        "base_config".to_owned(),
                        Node::Str(format!("c{}", level - 1)),
                    ));
                }
                configs.push((format!("c{level}"), Node::Map(own)));
            }
            let instances = links
                .into_iter()
                .map(|link| {
                    let base = Node::Str(format!("c{link}"));
                    (
                        format!("i{link}"),
                        Node::Map(vec![("base_config".into(), base)]),
                    )
                })
                .collect();
            Node::Map(vec![
                ("configs".into(), Node::Map(configs)),
                ("instances".into(), Node::Map(instances)),
            ])
        })
        .boxed()
}

fn section_body(kind: usize) -> BoxedStrategy<Node> {
    let keyed = prop::collection::vec(
        prop_oneof![
            4 => (spelled("configs"), group(kind, 5)),
            6 => (
                prop_oneof![4 => spelled("instances"), 1 => Just("backends".to_owned())],
                group(kind, 7)
            ),
            1 => (
                Just("tags".to_owned()),
                prop::collection::vec((word(), scalar()), 0..3).prop_map(Node::Map)
            ),
            1 => (word(), any_node()),
        ],
        0..4,
    )
    .prop_map(Node::Map);
    prop_oneof![10 => keyed, 2 => chain(kind), 1 => any_node()].boxed()
}

fn section() -> BoxedStrategy<(String, Node)> {
    prop_oneof![
        12 => (0..KINDS.len()).prop_flat_map(|kind| {
            let spellings = SECTION_SPELLINGS[kind].1;
            (select(spellings).prop_map(str::to_owned), section_body(kind))
        }),
        1 => (word(), any_node()),
    ]
    .boxed()
}

/// A whole document: up to four sections, sometimes under a `resilience4j:` or `seawall:`
/// root, sometimes not a map at all.
pub fn document() -> BoxedStrategy<Node> {
    let sections = prop::collection::vec(section(), 0..5).prop_map(Node::Map);
    prop_oneof![
        8 => sections.clone(),
        2 => (select(&["resilience4j", "seawall"][..]), sections)
            .prop_map(|(root, inner)| Node::Map(vec![(root.to_owned(), inner)])),
        1 => any_node(),
    ]
    .boxed()
}

/// A change for `Registry::patch` or `config::overlay`: keys of `kind` (or any kind), or
/// anything at all.
pub fn changes(kind: usize) -> BoxedStrategy<Node> {
    prop_oneof![
        8 => prop::collection::vec(property(kind), 0..4).prop_map(Node::Map),
        1 => any_node(),
    ]
    .boxed()
}

/// A change for a retry budget's own keys, or anything at all.
pub fn budget_changes() -> BoxedStrategy<Node> {
    value_for(Class::Budget)
}

/// A `Node` as serde_json reads it (duplicate keys: the last wins; other formats' numbers
/// become what JSON can hold), for entry points that take a `Value`.
pub fn to_value(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| (key.clone(), to_value(value)))
                .collect(),
        ),
        Node::List(items) => Value::Array(items.iter().map(to_value).collect()),
        Node::Int(value) => i64::try_from(*value)
            .map(Value::from)
            .or_else(|_| u64::try_from(*value).map(Value::from))
            .unwrap_or_else(|_| Value::from(*value as f64)),
        Node::Float(value) => Value::from(*value),
        Node::Str(text) => Value::String(text.clone()),
        Node::Bool(flag) => Value::Bool(*flag),
        // serde_json writes a non-finite float as null.
        Node::Null | Node::Special(_) => Value::Null,
    }
}

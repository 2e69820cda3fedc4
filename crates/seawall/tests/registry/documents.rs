use std::time::Duration;

use seawall::circuit_breaker::{OpenWait, SlidingWindow, State};
use seawall::registry::document::{Document, Format};
use seawall::registry::{BuildContext, Registries};
use seawall::retry::RetryBudgetConfig;
use seawall::{Backoff, Jitter};

pub(crate) const YAML: &str = r#"
resilience4j:
  circuitbreaker:
    tags:
      team: payments
    configs:
      default:
        slidingWindowSize: 20
        minimumNumberOfCalls: 5
        waitDurationInOpenState: 10s
      strict:
        base-config: default
        failure-rate-threshold: 40
        slow-call-duration-threshold: 2s
        slow-call-rate-threshold: 50
      pg:
        permitted_number_of_calls_in_half_open_state: 5
    instances:
      pg:
        failure_rate_threshold: 45
        tags:
          tier: critical
      pg-strict:
        base_config: strict
        sliding_window_type: TIME_BASED
        sliding_window_size: 30
        sliding_window_bucket: 100ms
        enable_exponential_backoff: true
        exponential_backoff_multiplier: 3
        exponential_max_wait_duration_in_open_state: 5m
        wait_duration_in_open_state_jitter: full
        max_wait_duration_in_half_open_state: 30s
        transition_to_state_after_wait_duration: CLOSED
      catalog: {}
  retry:
    instances:
      pg-query:
        max_attempts: 4
        wait_duration: 200
        enable_exponential_backoff: true
        exponential_max_wait_duration: 2s
        jitter: full
        max_elapsed: 10s
        budget: { max_tokens: 10, token_ratio: 0.1 }
  bulkhead:
    instances:
      pg: { max_concurrent_calls: 20, max_wait_duration: 500ms }
  timelimiter:
    instances:
      pg: { timeout_duration: 3s, cancel_running_future: true }
"#;

pub(crate) const TOML: &str = r#"
[circuitbreaker.tags]
team = "payments"

[circuitbreaker.configs.default]
slidingWindowSize = 20
minimumNumberOfCalls = 5
waitDurationInOpenState = "10s"

[circuitbreaker.configs.strict]
base-config = "default"
failure-rate-threshold = 40
slow-call-duration-threshold = "2s"
slow-call-rate-threshold = 50

[circuitbreaker.configs.pg]
permitted_number_of_calls_in_half_open_state = 5

[circuitbreaker.instances.pg]
failure_rate_threshold = 45
tags = { tier = "critical" }

[circuitbreaker.instances.pg-strict]
base_config = "strict"
sliding_window_type = "TIME_BASED"
sliding_window_size = 30
sliding_window_bucket = "100ms"
enable_exponential_backoff = true
exponential_backoff_multiplier = 3
exponential_max_wait_duration_in_open_state = "5m"
wait_duration_in_open_state_jitter = "full"
max_wait_duration_in_half_open_state = "30s"
transition_to_state_after_wait_duration = "CLOSED"

[circuitbreaker.instances.catalog]

[retry.instances.pg-query]
max_attempts = 4
wait_duration = 200
enable_exponential_backoff = true
exponential_max_wait_duration = "2s"
jitter = "full"
max_elapsed = "10s"
budget = { max_tokens = 10, token_ratio = 0.1 }

[bulkhead.instances.pg]
max_concurrent_calls = 20
max_wait_duration = "500ms"

[timelimiter.instances.pg]
timeout_duration = "3s"
cancel_running_future = true
"#;

pub(crate) const JSON: &str = r#"{
  "seawall": {
    "circuitBreaker": {
      "tags": { "team": "payments" },
      "configs": {
        "default": { "slidingWindowSize": 20, "minimumNumberOfCalls": 5, "waitDurationInOpenState": "10s" },
        "strict": { "baseConfig": "default", "failureRateThreshold": 40, "slowCallDurationThreshold": "2s", "slowCallRateThreshold": 50 },
        "pg": { "permittedNumberOfCallsInHalfOpenState": 5 }
      },
      "instances": {
        "pg": { "failureRateThreshold": 45, "tags": { "tier": "critical" } },
        "pg-strict": {
          "baseConfig": "strict", "slidingWindowType": "TIME_BASED", "slidingWindowSize": 30,
          "slidingWindowBucket": "100ms", "enableExponentialBackoff": true,
          "exponentialBackoffMultiplier": 3, "exponentialMaxWaitDurationInOpenState": "5m",
          "waitDurationInOpenStateJitter": "full", "maxWaitDurationInHalfOpenState": "30s",
          "transitionToStateAfterWaitDuration": "CLOSED"
        },
        "catalog": {}
      }
    },
    "retry": { "instances": { "pg-query": {
      "maxAttempts": 4, "waitDuration": 200, "enableExponentialBackoff": true,
      "exponentialMaxWaitDuration": "2s", "jitter": "full", "maxElapsed": "10s",
      "budget": { "maxTokens": 10, "tokenRatio": 0.1 } } } },
    "bulkhead": { "instances": { "pg": { "maxConcurrentCalls": 20, "maxWaitDuration": "500ms" } } },
    "timeLimiter": { "instances": { "pg": { "timeoutDuration": "3s", "cancelRunningFuture": true } } }
  }
}"#;

fn registries(text: &str, format: Format) -> Registries {
    Registries::from_str(text, format, BuildContext::default()).unwrap()
}

#[test]
fn toml_yaml_and_json_of_the_same_document_give_equal_configurations() {
    let yaml = Document::parse(YAML, Format::Yaml).unwrap();
    let toml = Document::parse(TOML, Format::Toml).unwrap();
    let json = Document::parse(JSON, Format::Json).unwrap();
    assert_eq!(yaml, toml);
    assert_eq!(yaml, json);
    let (a, b, c) = (
        registries(YAML, Format::Yaml),
        registries(TOML, Format::Toml),
        registries(JSON, Format::Json),
    );
    for name in ["pg", "pg-strict", "catalog"] {
        let config = a.circuit_breakers().current_config(name).unwrap();
        assert_eq!(
            config,
            b.circuit_breakers().current_config(name).unwrap(),
            "{name}"
        );
        assert_eq!(
            config,
            c.circuit_breakers().current_config(name).unwrap(),
            "{name}"
        );
    }
    assert_eq!(
        a.retries().current_config("pg-query").unwrap(),
        c.retries().current_config("pg-query").unwrap()
    );
}

#[test]
fn instances_inherit_through_base_configs_then_default_then_library_defaults() {
    let registries = registries(YAML, Format::Yaml);
    let breakers = registries.circuit_breakers();

    // `pg`: no base_config, but a config named `pg` exists: pg -> configs.pg -> default.
    let pg = breakers.current_config("pg").unwrap();
    assert_eq!(pg.failure_rate_threshold, 45.0, "own key wins");
    assert_eq!(pg.permitted_calls_in_half_open, 5, "from configs.pg");
    assert_eq!(pg.sliding_window, SlidingWindow::count(20), "from default");
    assert_eq!(pg.minimum_number_of_calls, 5);
    assert_eq!(pg.open_wait, OpenWait::Fixed(Duration::from_secs(10)));
    assert_eq!(
        pg.slow_call_duration_threshold,
        Some(Duration::from_secs(60)),
        "library default"
    );

    // `pg-strict`: base strict -> default.
    let strict = breakers.current_config("pg-strict").unwrap();
    assert_eq!(strict.failure_rate_threshold, 40.0);
    assert_eq!(
        strict.slow_call_duration_threshold,
        Some(Duration::from_secs(2))
    );
    assert_eq!(
        strict.sliding_window,
        SlidingWindow::time_with_buckets(Duration::from_secs(30), Duration::from_millis(100))
    );
    assert_eq!(
        strict.minimum_number_of_calls, 5,
        "time windows do not clamp"
    );
    assert_eq!(
        strict.open_wait,
        OpenWait::Backoff(
            Backoff::exponential(Duration::from_secs(10))
                .multiplier(3.0)
                .max(Duration::from_secs(300))
                .jitter(Jitter::Full)
        )
    );
    assert_eq!(strict.max_wait_in_half_open, Duration::from_secs(30));
    assert_eq!(strict.state_after_half_open_wait, State::Closed);

    // `catalog`: only the default.
    let catalog = breakers.current_config("catalog").unwrap();
    assert_eq!(catalog.sliding_window, SlidingWindow::count(20));
    assert_eq!(catalog.failure_rate_threshold, 50.0);

    // Tags: the section's, then the instance's.
    let tags = breakers.tags("pg").unwrap();
    assert_eq!(tags.get("team").map(String::as_str), Some("payments"));
    assert_eq!(tags.get("tier").map(String::as_str), Some("critical"));

    let retry = registries.retries().current_config("pg-query").unwrap();
    assert_eq!(retry.max_attempts, 4);
    assert_eq!(
        retry.backoff,
        Backoff::exponential(Duration::from_millis(200))
            .max(Duration::from_secs(2))
            .full_jitter()
    );
    assert_eq!(retry.max_elapsed, Some(Duration::from_secs(10)));
    assert_eq!(retry.budget, Some(RetryBudgetConfig::new(10.0, 0.1)));
    let bulkhead = registries.bulkheads().find("pg").unwrap();
    assert_eq!(
        (bulkhead.max_concurrent_calls(), bulkhead.max_wait()),
        (20, Duration::from_millis(500))
    );
    assert_eq!(
        registries.timeouts().find("pg").unwrap().duration(),
        Duration::from_secs(3)
    );
    // Instances are created at once, so they are listed before any call.
    assert_eq!(breakers.names(), ["catalog", "pg", "pg-strict"]);
}

#[test]
fn every_error_names_its_full_key_path_and_rule() {
    let cases = [
        (
            "circuitbreaker:\n  instances:\n    pg:\n      failure_rate_threshold: 120\n",
            "circuitbreaker.instances.pg.failure_rate_threshold: must be in (0, 100], got 120",
        ),
        (
            "circuitbreaker:\n  configs:\n    default:\n      minimumNumberOfCalls: 0\n",
            "circuitbreaker.configs.default.minimum_number_of_calls: must be >= 1, got 0",
        ),
        (
            "circuitbreaker:\n  instances:\n    pg:\n      sliding_window_size: 0\n",
            "circuitbreaker.instances.pg.sliding_window_size: must be >= 1, got 0",
        ),
        (
            "circuitbreaker:\n  instances:\n    pg:\n      wait_duration_in_open_state: 0\n",
            "circuitbreaker.instances.pg.wait_duration_in_open_state: must be >= 1ms, got 0ns",
        ),
        (
            "circuitbreaker:\n  instances:\n    pg:\n      enable_exponential_backoff: true\n      exponential_backoff_multiplier: 0.5\n",
            "circuitbreaker.instances.pg.exponential_backoff_multiplier: must be a finite number >= 1, got 0.5",
        ),
        (
            "circuitbreaker:\n  instances:\n    pg:\n      permitted_number_of_calls_in_half_open_state: 0\n",
            "circuitbreaker.instances.pg.permitted_number_of_calls_in_half_open_state: must be >= 1, got 0",
        ),
        (
            "retry:\n  instances:\n    q:\n      max_attempts: 0\n",
            "retry.instances.q.max_attempts: must be >= 1 (it counts the first call), got 0",
        ),
        (
            "retry:\n  instances:\n    q:\n      budget: { max_tokens: 0, token_ratio: 0.1 }\n",
            "retry.instances.q.budget.max_tokens: must be in (0, 1000], got 0",
        ),
        (
            "timelimiter:\n  instances:\n    t:\n      cancel_running_future: false\n",
            "timelimiter.instances.t.cancel_running_future: must be true: seawall always cancels a call that times out",
        ),
        (
            "circuitbreaker:\n  instances:\n    pg:\n      base_config: missing\n",
            "circuitbreaker.instances.pg.base_config: no configuration named 'missing' in circuitbreaker.configs",
        ),
        (
            "circuitbreaker:\n  configs:\n    a: { base_config: b }\n    b: { base_config: a }\n  instances:\n    pg: { base_config: a }\n",
            "circuitbreaker.configs.a.base_config: circular reference: configs.a -> configs.b -> configs.a",
        ),
    ];
    for (yaml, expected) in cases {
        let err = Registries::from_str(yaml, Format::Yaml, BuildContext::default()).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
}

#[test]
fn unknown_keys_and_wrong_types_are_errors_at_their_path() {
    let err = Document::parse(
        "circuitbreaker:\n  instances:\n    pg:\n      failure_rate: 50\n",
        Format::Yaml,
    )
    .unwrap_err();
    assert_eq!(err.key(), "circuitbreaker.instances.pg.failure_rate");
    assert!(err.rule().contains("unknown field `failure_rate`"), "{err}");

    let err = Document::parse(
        "bulkhead:\n  instances:\n    pg:\n      max_concurrent_calls: many\n",
        Format::Yaml,
    )
    .unwrap_err();
    assert_eq!(err.key(), "bulkhead.instances.pg.max_concurrent_calls");

    let err = Document::parse(
        "[retry.instances.q]\nwait_duration = \"soon\"\n",
        Format::Toml,
    )
    .unwrap_err();
    assert_eq!(err.key(), "retry.instances.q.wait_duration");
    assert!(err.rule().contains("invalid duration \"soon\""), "{err}");

    let err = Document::parse("cache: {}\n", Format::Yaml).unwrap_err();
    assert_eq!(err.key(), "cache");
    assert!(err.rule().contains("unknown section"), "{err}");

    let err = Document::parse("{ not json", Format::Json).unwrap_err();
    assert_eq!(err.key(), "document");
}

#[test]
fn durations_accept_humantime_strings_and_integer_milliseconds() {
    let registries = registries(
        "timelimiter:\n  instances:\n    a: { timeout_duration: 1500 }\n    b: { timeout_duration: \"1m 30s\" }\n",
        Format::Yaml,
    );
    assert_eq!(
        registries.timeouts().find("a").unwrap().duration(),
        Duration::from_millis(1500)
    );
    assert_eq!(
        registries.timeouts().find("b").unwrap().duration(),
        Duration::from_secs(90)
    );
}

#[test]
fn a_striped_count_window_is_read_from_its_window_type_and_checked_like_a_count_window() {
    let yaml = "circuitbreaker:\n  instances:\n    pg:\n      slidingWindowType: COUNT_BASED_STRIPED\n      slidingWindowSize: 200\n";
    let breakers = registries(yaml, Format::Yaml);
    let config = breakers.circuit_breakers().current_config("pg").unwrap();
    assert_eq!(config.sliding_window, SlidingWindow::striped_count(200));
    let written = serde_json::to_value(&config).unwrap();
    assert_eq!(written["sliding_window_type"], "COUNT_BASED_STRIPED");
    let cases = [
        (
            "circuitbreaker:\n  instances:\n    pg:\n      sliding_window_type: COUNT_BASED_STRIPED\n      sliding_window_size: 0\n",
            "circuitbreaker.instances.pg.sliding_window_size: must be >= 1, got 0",
        ),
        (
            "circuitbreaker:\n  instances:\n    pg:\n      sliding_window_type: COUNT_BASED_STRIPED\n      sliding_window_size: 10s\n",
            "circuitbreaker.instances.pg.sliding_window_size: a COUNT_BASED window's size is a number of calls, not a duration",
        ),
    ];
    for (yaml, expected) in cases {
        let err = Registries::from_str(yaml, Format::Yaml, BuildContext::default()).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
}

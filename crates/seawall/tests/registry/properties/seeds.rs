//! Real documents of every section, in all three formats: the starting points of the
//! mutated-document tests.

use config_grammar::Syntax;

use crate::documents;

/// Real documents of every section, in all three formats.
pub(crate) fn all() -> Vec<(Syntax, &'static str)> {
    vec![
        (Syntax::Yaml, documents::YAML),
        (Syntax::Toml, documents::TOML),
        (Syntax::Json, documents::JSON),
        (Syntax::Yaml, LIMITERS_YAML),
        (Syntax::Toml, LIMITERS_TOML),
        (Syntax::Json, LIMITERS_JSON),
    ]
}

const LIMITERS_YAML: &str = "\
ratelimiter:
  configs:
    default: { limit_for_period: 10, limit_refresh_period: 1s, timeout_duration: 0 }
  instances:
    api: { limit_for_period: 100 }
    batch: { base_config: default, timeout_duration: 5s }
bulkhead:
  configs:
    default: { max_concurrent_calls: 5 }
  instances:
    db: {}
retry:
  configs:
    default: { max_attempts: 3, wait_duration: 100ms, enable_linear_backoff: true, linear_backoff_step: 50ms }
  instances:
    q: { jitter: equal, budget: { max_tokens: 10, token_ratio: 0.1234 } }
timelimiter:
  instances:
    db: { timeout_duration: 2s }
";

const LIMITERS_TOML: &str = r#"
[ratelimiter.configs.default]
limit_for_period = 10
limit_refresh_period = "1s"
timeout_duration = 0

[ratelimiter.instances.api]
limit_for_period = 100

[ratelimiter.instances.batch]
base_config = "default"
timeout_duration = "5s"

[bulkhead.configs.default]
max_concurrent_calls = 5

[bulkhead.instances.db]

[retry.instances.q]
max_attempts = 3
wait_duration = "100ms"
enable-linear-backoff = true
linear-backoff-step = "50ms"
jitter = "equal"
budget = { max_tokens = 10, token_ratio = 0.1234 }

[timelimiter.instances.db]
timeout_duration = "2s"
"#;

const LIMITERS_JSON: &str = r#"{
  "rateLimiter": {
    "configs": { "default": { "limitForPeriod": 10, "limitRefreshPeriod": "1s", "timeoutDuration": 0 } },
    "instances": { "api": { "limitForPeriod": 100 }, "batch": { "baseConfig": "default", "timeoutDuration": "5s" } }
  },
  "bulkhead": { "configs": { "default": { "maxConcurrentCalls": 5 } }, "instances": { "db": {} } },
  "retry": { "instances": { "q": { "maxAttempts": 3, "waitDuration": "100ms", "jitter": "equal",
    "budget": { "maxTokens": 10, "tokenRatio": 0.1234 } } } },
  "timelimiter": { "instances": { "db": { "timeoutDuration": "2s" } } }
}"#;

//! Settings: the defaults, the rules, and loading them from hostile or careless layers. The
//! environment is always passed in (`load_from`), never set on the process.

use std::path::PathBuf;

use seawall::circuit_breaker::OpenWait;

use super::*;

const NO_VARS: [(&str, &str); 0] = [];

/// A field of the settings, to set it.
type Field = fn(&mut Settings) -> &mut u64;
/// A change to the settings.
type Change = fn(&mut Settings);

fn from_env(vars: &[(&str, &str)]) -> Result<Loaded, SettingsError> {
    Settings::load_from(None, vars.iter().copied())
}

/// Loads `toml` as the file, then `vars`; the directory lives as long as the result is looked at.
fn from_file(
    toml: &str,
    vars: &[(&str, &str)],
) -> (Result<Loaded, SettingsError>, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    std::fs::write(&path, toml).unwrap();
    let result = Settings::load_from(Some(&path), vars.iter().copied());
    (result, path, dir)
}

/// The error's message, which must name every one of `names`.
fn refused_naming(result: Result<Loaded, SettingsError>, names: &[&str]) -> String {
    let message = match result {
        Ok(loaded) => panic!("loaded, expected an error naming {names:?}: {loaded:?}"),
        Err(err) => err.to_string(),
    };
    for name in names {
        assert!(message.contains(name), "{name:?} not in: {message}");
    }
    message
}

#[test]
fn the_defaults_are_valid() {
    Settings::default().validate().unwrap();
}

#[test]
fn a_bad_breaker_value_names_its_key() {
    let mut settings = Settings::default();
    settings
        .gateway
        .client
        .charge
        .circuit_breaker
        .failure_rate_threshold = 0.0;
    let err = settings.validate().unwrap_err();
    assert!(
        err.key()
            .starts_with("gateway.client.charge.circuit_breaker"),
        "{err}"
    );
}

#[test]
fn a_toml_file_overrides_the_defaults() {
    let (result, _, _dir) = from_file(
        "[recovery]\ninterval_ms = 250\n[gateway.client.charge.circuit_breaker]\nfailure_rate_threshold = 60.0\n",
        &NO_VARS,
    );
    let settings = result.unwrap().settings;
    assert_eq!(settings.recovery.interval_ms, 250);
    let breaker = &settings.gateway.client.charge.circuit_breaker;
    assert!((breaker.failure_rate_threshold - 60.0).abs() < f64::EPSILON);
    assert_eq!(settings.database, DatabaseSettings::default());
}

#[test]
fn environment_variables_override_the_file() {
    let (result, _, _dir) = from_file(
        "[recovery]\ninterval_ms = 250\npage_size = 7\n",
        &[
            ("APP_RECOVERY__INTERVAL_MS", "500"),
            ("APP_DATABASE__URL", "sqlite://orders.db"),
            ("APP_RECOVERY__ENABLED", "false"),
            ("PATH", "/usr/bin"),
        ],
    );
    let settings = result.unwrap().settings;
    assert_eq!(settings.recovery.interval_ms, 500);
    assert_eq!(settings.recovery.page_size, 7);
    assert!(!settings.recovery.enabled);
    assert_eq!(settings.database.url, "sqlite://orders.db");
}

// ----- 1. APP_ variables that are not ours, and keys that are misspelled -----

#[test]
fn unrelated_app_variables_are_ignored_and_reported() {
    let loaded = from_env(&[
        ("APP_ENV", "production"),
        ("APP_NAME", "shop"),
        ("APP_RECOVERY__INTERVAL_MS", "500"),
        ("HOME", "/root"),
    ])
    .unwrap();
    assert_eq!(loaded.ignored, ["APP_ENV", "APP_NAME"]);
    assert_eq!(loaded.settings.recovery.interval_ms, 500);
}

#[test]
fn a_misspelled_key_in_a_known_section_is_refused_naming_the_variable() {
    let message = refused_naming(
        from_env(&[("APP_DATABASE__URLL", "sqlite://orders.db")]),
        &["APP_DATABASE__URLL", "environment", "database.urll"],
    );
    assert!(message.contains("unknown"), "{message}");
    refused_naming(
        from_env(&[("APP_APPLICATION__PORTT", "1")]),
        &["APP_APPLICATION__PORTT", "environment", "application.portt"],
    );
}

#[test]
fn an_unknown_key_in_the_file_is_refused_naming_the_key_and_the_file() {
    let (result, path, _dir) = from_file("[database]\nurll = \"sqlite://x.db\"\n", &NO_VARS);
    refused_naming(result, &["database.urll", &path.display().to_string()]);
    let (result, path, _dir) = from_file("env = \"production\"\n", &NO_VARS);
    refused_naming(result, &["env", &path.display().to_string()]);
}

// ----- 2. Numbers out of range -----

#[test]
fn an_out_of_range_port_from_the_environment_names_the_key_and_the_variable() {
    refused_naming(
        from_env(&[("APP_APPLICATION__PORT", "70000")]),
        &["application.port", "APP_APPLICATION__PORT", "65535"],
    );
}

#[test]
fn a_retention_batch_of_zero_rows_is_refused() {
    refused_naming(
        from_env(&[("APP_RETENTION__BATCH_SIZE", "0")]),
        &["retention.batch_size", "APP_RETENTION__BATCH_SIZE", "> 0"],
    );
}

#[test]
fn a_negative_page_size_from_the_environment_names_the_key_and_the_variable() {
    refused_naming(
        from_env(&[("APP_RECOVERY__PAGE_SIZE", "-1")]),
        &["recovery.page_size", "APP_RECOVERY__PAGE_SIZE", "> 0"],
    );
}

#[test]
fn a_number_too_large_for_toml_names_its_key_and_the_file() {
    let (result, path, _dir) = from_file("[application]\nport = 99999999999999999999\n", &NO_VARS);
    refused_naming(
        result,
        &["application.port", &path.display().to_string(), "range"],
    );
}

#[test]
fn a_float_where_an_integer_belongs_is_refused_naming_its_key() {
    let (result, path, _dir) = from_file("[application]\nrequest_timeout_ms = 1e30\n", &NO_VARS);
    refused_naming(
        result,
        &[
            "application.request_timeout_ms",
            &path.display().to_string(),
            "integer",
        ],
    );
    refused_naming(
        from_env(&[("APP_APPLICATION__PORT", "8080.5")]),
        &["application.port", "APP_APPLICATION__PORT", "integer"],
    );
}

#[test]
fn durations_in_milliseconds_are_bounded_by_365_days() {
    let fields: [(&str, Field); 15] = [
        ("application.request_timeout_ms", |s| {
            &mut s.application.request_timeout_ms
        }),
        ("database.acquire_timeout_ms", |s| {
            &mut s.database.acquire_timeout_ms
        }),
        ("recovery.interval_ms", |s| &mut s.recovery.interval_ms),
        ("recovery.older_than_ms", |s| &mut s.recovery.older_than_ms),
        ("recovery.not_found_grace_ms", |s| {
            &mut s.recovery.not_found_grace_ms
        }),
        ("recovery.deadline_ms", |s| &mut s.recovery.deadline_ms),
        ("recovery.lease_ttl_ms", |s| &mut s.recovery.lease_ttl_ms),
        ("outbox.interval_ms", |s| &mut s.outbox.interval_ms),
        ("outbox.backoff_ms", |s| &mut s.outbox.backoff_ms),
        ("outbox.claim_ttl_ms", |s| &mut s.outbox.claim_ttl_ms),
        ("callback.rate_limit_period_ms", |s| {
            &mut s.callback.rate_limit_period_ms
        }),
        ("retention.interval_ms", |s| &mut s.retention.interval_ms),
        ("retention.idempotency_keys_ms", |s| {
            &mut s.retention.idempotency_keys_ms
        }),
        ("retention.published_events_ms", |s| {
            &mut s.retention.published_events_ms
        }),
        ("retention.pg_calls_ms", |s| &mut s.retention.pg_calls_ms),
    ];
    let max_ms = u64::try_from(seawall::config::MAX_DURATION.as_millis()).unwrap();
    for (key, field) in fields {
        let mut settings = Settings::default();
        // deadline_ms must stay >= not_found_grace_ms, so both move together.
        settings.recovery.deadline_ms = max_ms;
        *field(&mut settings) = max_ms;
        settings.validate().unwrap();
        *field(&mut settings) = max_ms + 1;
        let err = settings.validate().unwrap_err();
        assert_eq!(err.key(), key, "{err}");
        assert!(err.rule().contains("365 days"), "{err}");
    }
}

// ----- 3. The embedded gateway client -----

#[test]
fn a_bad_breaker_threshold_in_the_file_names_the_full_key_and_the_file() {
    let (result, path, _dir) = from_file(
        "[gateway.client.charge.circuit_breaker]\nfailure_rate_threshold = 120.0\n",
        &NO_VARS,
    );
    refused_naming(
        result,
        &[
            "gateway.client.charge.circuit_breaker.failure_rate_threshold",
            &path.display().to_string(),
        ],
    );
}

#[test]
fn a_bad_breaker_threshold_from_the_environment_names_the_full_key_and_the_variable() {
    refused_naming(
        from_env(&[(
            "APP_GATEWAY__CLIENT__CHARGE__CIRCUIT_BREAKER__FAILURE_RATE_THRESHOLD",
            "120",
        )]),
        &[
            "gateway.client.charge.circuit_breaker.failure_rate_threshold",
            "APP_GATEWAY__CLIENT__CHARGE__CIRCUIT_BREAKER__FAILURE_RATE_THRESHOLD",
        ],
    );
}

#[test]
fn a_client_value_of_the_wrong_type_names_the_full_key() {
    let (result, path, _dir) = from_file(
        "[gateway.client.charge.retry]\nmax_attempts = \"three\"\n",
        &NO_VARS,
    );
    refused_naming(
        result,
        &[
            "gateway.client.charge.retry.max_attempts",
            &path.display().to_string(),
        ],
    );
    refused_naming(
        from_env(&[("APP_GATEWAY__CLIENT__QUERY__RETRY__MAX_ATTEMPTS", "three")]),
        &[
            "gateway.client.query.retry.max_attempts",
            "APP_GATEWAY__CLIENT__QUERY__RETRY__MAX_ATTEMPTS",
        ],
    );
}

#[test]
fn a_misspelled_client_key_names_the_full_key_and_the_variable() {
    refused_naming(
        from_env(&[(
            "APP_GATEWAY__CLIENT__CHARGE__CIRCUIT_BREAKER__FAILURE_RATE_THRESHOL",
            "60",
        )]),
        &[
            "gateway.client.charge.circuit_breaker.failure_rate_threshol",
            "APP_GATEWAY__CLIENT__CHARGE__CIRCUIT_BREAKER__FAILURE_RATE_THRESHOL",
            "unknown",
        ],
    );
}

#[test]
fn client_values_from_the_environment_are_read_as_the_client_document_reads_them() {
    let settings = from_env(&[
        (
            "APP_GATEWAY__CLIENT__CHARGE__CIRCUIT_BREAKER__FAILURE_RATE_THRESHOLD",
            "60",
        ),
        (
            "APP_GATEWAY__CLIENT__CHARGE__CIRCUIT_BREAKER__WAIT_DURATION_IN_OPEN_STATE",
            "2s",
        ),
        ("APP_GATEWAY__CLIENT__QUERY__READ_TIMEOUT", "750ms"),
        ("APP_GATEWAY__CLIENT__QUERY__RETRY__MAX_ATTEMPTS", "5"),
    ])
    .unwrap()
    .settings;
    let client = &settings.gateway.client;
    assert!((client.charge.circuit_breaker.failure_rate_threshold - 60.0).abs() < f64::EPSILON);
    assert_eq!(
        client.charge.circuit_breaker.open_wait,
        OpenWait::Fixed(Duration::from_secs(2))
    );
    assert_eq!(client.query.read_timeout, Duration::from_millis(750));
    assert_eq!(client.query.retry.max_attempts, 5);
}

// ----- 4. Empty and blank values -----

#[test]
fn an_empty_database_url_from_the_environment_is_refused_naming_the_key() {
    refused_naming(
        from_env(&[("APP_DATABASE__URL", "")]),
        &["database.url", "APP_DATABASE__URL", "empty"],
    );
}

#[test]
fn a_whitespace_only_value_from_the_environment_is_refused_naming_the_key() {
    refused_naming(
        from_env(&[("APP_APPLICATION__HOST", "  ")]),
        &["application.host", "APP_APPLICATION__HOST", "empty"],
    );
}

#[test]
fn a_blank_admin_token_is_refused_rather_than_matching_a_missing_header() {
    refused_naming(
        from_env(&[("APP_ADMIN__TOKEN", "")]),
        &["admin.token", "APP_ADMIN__TOKEN"],
    );
    let (result, path, _dir) = from_file("[admin]\ntoken = \" \"\n", &NO_VARS);
    refused_naming(result, &["admin.token", &path.display().to_string()]);
}

#[test]
fn blank_strings_are_refused_by_validation() {
    let cases: [(&str, Change); 6] = [
        ("application.host", |s| s.application.host = " ".into()),
        ("application.public_base_url", |s| {
            s.application.public_base_url = Some(String::new());
        }),
        ("database.url", |s| s.database.url = "\t".into()),
        ("gateway.base_url", |s| {
            s.gateway.base_url = Some(" ".into());
        }),
        ("callback.secret", |s| {
            s.callback.secret = Some(String::new());
        }),
        ("admin.token", |s| s.admin.token = Some("  ".into())),
    ];
    for (key, blank) in cases {
        let mut settings = Settings::default();
        blank(&mut settings);
        let err = settings.validate().unwrap_err();
        assert_eq!(err.key(), key, "{err}");
        assert!(err.rule().contains("blank"), "{err}");
    }
}

#[test]
fn a_secret_shorter_than_16_bytes_is_refused_by_its_length_never_its_value() {
    for (variable, key) in [
        ("APP_ADMIN__TOKEN", "admin.token"),
        ("APP_CALLBACK__SECRET", "callback.secret"),
        (
            "APP_IDEMPOTENCY__FINGERPRINT_KEY",
            "idempotency.fingerprint_key",
        ),
    ] {
        let err = from_env(&[(variable, "fifteen-bytes!!")]).unwrap_err();
        assert_eq!(err.key(), key);
        assert!(err.rule().contains("at least 16 bytes, got 15"), "{err}");
        assert!(!err.to_string().contains("fifteen"), "{err}");
    }
    let sixteen = from_env(&[("APP_ADMIN__TOKEN", "sixteen-bytes!!!")]).unwrap();
    assert_eq!(
        sixteen.settings.admin.token.as_deref(),
        Some("sixteen-bytes!!!")
    );
}

#[test]
fn a_numeric_looking_secret_is_kept_exactly_as_written() {
    let settings = from_env(&[
        ("APP_ADMIN__TOKEN", "0042000000000000"),
        ("APP_CALLBACK__SECRET", "1e50000000000000"),
        ("APP_APPLICATION__HOST", "nan"),
    ])
    .unwrap()
    .settings;
    assert_eq!(settings.admin.token.as_deref(), Some("0042000000000000"));
    assert_eq!(
        settings.callback.secret.as_deref(),
        Some("1e50000000000000")
    );
    assert_eq!(settings.application.host, "nan");
}

#[test]
fn the_lock_timeout_is_bounded_by_what_both_engines_take() {
    refused_naming(
        from_env(&[("APP_DATABASE__LOCK_TIMEOUT_MS", "0")]),
        &["database.lock_timeout_ms", ">= 1"],
    );
    refused_naming(
        from_env(&[("APP_DATABASE__LOCK_TIMEOUT_MS", "2147483648")]),
        &["database.lock_timeout_ms", "2147483647"],
    );
    assert!(from_env(&[("APP_DATABASE__LOCK_TIMEOUT_MS", "2147483647")]).is_ok());
}

// ----- 5. Callback authentication and rate -----

#[test]
fn an_external_pg_without_a_callback_secret_is_refused_unless_unsigned_is_chosen() {
    refused_naming(
        from_env(&[("APP_GATEWAY__BASE_URL", "http://pg.internal:8082")]),
        &["callback.secret", "callback.allow_unsigned"],
    );
    let unsigned = from_env(&[
        ("APP_GATEWAY__BASE_URL", "http://pg.internal:8082"),
        ("APP_CALLBACK__ALLOW_UNSIGNED", "true"),
    ])
    .unwrap();
    assert!(unsigned.settings.callback.allow_unsigned);
    let signed = from_env(&[
        ("APP_GATEWAY__BASE_URL", "http://pg.internal:8082"),
        ("APP_CALLBACK__SECRET", "a-secret-of-24-bytes-ok!"),
    ]);
    assert!(signed.is_ok(), "{signed:?}");
    // No gateway.base_url: `serve` starts a simulator and gives it a secret of its own.
    assert!(from_env(&NO_VARS).is_ok());
}

#[test]
fn a_callback_rate_limit_of_zero_is_refused() {
    refused_naming(
        from_env(&[("APP_CALLBACK__RATE_LIMIT", "0")]),
        &["callback.rate_limit", "APP_CALLBACK__RATE_LIMIT", "> 0"],
    );
    refused_naming(
        from_env(&[("APP_CALLBACK__RATE_LIMIT_PERIOD_MS", "0")]),
        &["callback.rate_limit_period_ms", ">= 1"],
    );
}

// ----- What an error carries -----

#[test]
fn an_error_carries_its_key_its_rule_and_where_the_value_came_from() {
    let err = from_env(&[("APP_APPLICATION__PORT", "70000")]).unwrap_err();
    assert_eq!(err.key(), "application.port");
    assert!(err.rule().contains("65535"), "{err}");
    assert_eq!(
        err.origin(),
        Some(&Origin::Environment("APP_APPLICATION__PORT".to_owned()))
    );
    let err = from_env(&[("APP_DATABASE__URLL", "x")]).unwrap_err();
    assert_eq!(err.key(), "database.urll", "named once: {err}");
    let (result, path, _dir) = from_file("[database]\nurll = \"x\"\n", &NO_VARS);
    let err = result.unwrap_err();
    assert_eq!(err.key(), "database.urll", "{err}");
    assert_eq!(err.origin(), Some(&Origin::File(path)));
    let err = from_env(&[(
        "APP_GATEWAY__CLIENT__CHARGE__CIRCUIT_BREAKER__FAILURE_RATE_THRESHOL",
        "60",
    )])
    .unwrap_err();
    assert_eq!(
        err.key(),
        "gateway.client.charge.circuit_breaker.failure_rate_threshol"
    );
}

#[test]
fn a_rule_broken_by_the_defaults_names_no_origin() {
    let (result, _, _dir) = from_file("[recovery]\nnot_found_grace_ms = 900000\n", &NO_VARS);
    let err = result.unwrap_err();
    assert_eq!(err.key(), "recovery.deadline_ms");
    assert_eq!(err.origin(), None, "the file did not write deadline_ms");
    assert!(err.rule().contains("900000"), "{err}");
}

#[test]
fn the_sections_are_the_top_level_keys_of_the_settings() {
    let shape = serde_json::to_value(Settings::default()).unwrap();
    let mut keys: Vec<&str> = shape
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sections = SECTIONS.to_vec();
    keys.sort_unstable();
    sections.sort_unstable();
    assert_eq!(keys, sections);
}

#[test]
fn a_variable_with_one_underscore_after_a_section_is_ignored_with_the_likely_fix() {
    let loaded = from_env(&[("APP_DATABASE_URL", "sqlite://orders.db")]).unwrap();
    assert_eq!(loaded.ignored, ["APP_DATABASE_URL"]);
    assert_eq!(loaded.settings.database, DatabaseSettings::default());
    let warning = load::ignored_warning("APP_DATABASE_URL");
    assert!(
        warning.contains("did you mean APP_DATABASE__URL?"),
        "{warning}"
    );
    let warning = load::ignored_warning("APP_ENV");
    assert!(warning.contains("APP_ENV"), "{warning}");
    assert!(!warning.contains("did you mean"), "{warning}");
}

#[test]
fn variables_are_matched_without_regard_to_case_and_a_key_set_twice_is_refused() {
    let loaded = from_env(&[("app_recovery__interval_ms", "500")]).unwrap();
    assert_eq!(loaded.settings.recovery.interval_ms, 500);
    let err = from_env(&[
        ("APP_DATABASE__URL", "sqlite://a.db"),
        ("app_database__url", "sqlite://b.db"),
    ])
    .unwrap_err();
    assert_eq!(err.key(), "database.url");
    assert!(err.rule().contains("also set by"), "{err}");
}

#[test]
fn a_variable_naming_a_section_is_refused() {
    refused_naming(
        from_env(&[("APP_DATABASE", "sqlite://orders.db")]),
        &["APP_DATABASE", "section"],
    );
    refused_naming(
        from_env(&[("APP_DATABASE____URL", "sqlite://orders.db")]),
        &["APP_DATABASE____URL", "__"],
    );
}

#[test]
fn a_bad_gateway_base_url_names_the_key_that_was_written() {
    let err = from_env(&[("APP_GATEWAY__BASE_URL", "ftp://pg.example")]).unwrap_err();
    assert_eq!(err.key(), "gateway.base_url", "{err}");
    assert_eq!(
        err.origin(),
        Some(&Origin::Environment("APP_GATEWAY__BASE_URL".to_owned()))
    );
}

#[test]
fn counts_and_the_callback_tolerance_out_of_range_name_their_key() {
    let cases: [(&str, Change); 5] = [
        ("callback.tolerance_secs", |s| {
            s.callback.tolerance_secs = -5;
        }),
        ("callback.tolerance_secs", |s| {
            s.callback.tolerance_secs = i64::MAX;
        }),
        ("database.write_connections", |s| {
            s.database.write_connections = 0;
        }),
        ("database.read_connections", |s| {
            s.database.read_connections = 0;
        }),
        ("outbox.max_attempts", |s| s.outbox.max_attempts = 0),
    ];
    for (key, bad) in cases {
        let mut settings = Settings::default();
        bad(&mut settings);
        assert_eq!(settings.validate().unwrap_err().key(), key);
    }
}

#[test]
fn booleans_from_the_environment_read_the_usual_spellings_and_refuse_others() {
    for (text, expected) in [("true", true), ("0", false), ("Yes", true), ("off", false)] {
        let loaded = from_env(&[("APP_RECOVERY__ENABLED", text)]).unwrap();
        assert_eq!(loaded.settings.recovery.enabled, expected, "{text}");
    }
    refused_naming(
        from_env(&[("APP_RECOVERY__ENABLED", "maybe")]),
        &["recovery.enabled", "APP_RECOVERY__ENABLED", "true or false"],
    );
}

#[test]
fn one_client_key_from_the_environment_keeps_the_services_other_client_settings() {
    let loaded = from_env(&[(
        "APP_GATEWAY__CLIENT__CHARGE__CIRCUIT_BREAKER__FAILURE_RATE_THRESHOLD",
        "70",
    )])
    .unwrap();
    let client = &loaded.settings.gateway.client;
    let service = GatewaySettings::default_client();
    assert_eq!(client.charge.circuit_breaker.failure_rate_threshold, 70.0);
    assert_eq!(
        client.charge.circuit_breaker.sliding_window, service.charge.circuit_breaker.sliding_window,
        "the service's window, not pg-client's"
    );
    assert_eq!(client.query, service.query);
    assert!(client.cancel_supported);
}

#[test]
fn the_charge_tuning_reads_from_the_file_and_the_environment() {
    let (result, _, _dir) = from_file(
        "[gateway.charge_tuning]\nread_timeout_ceiling_ms = 4000\n",
        &[("APP_GATEWAY__CHARGE_TUNING__ENABLED", "false")],
    );
    let tuning = result.unwrap().settings.gateway.charge_tuning;
    assert!(!tuning.enabled);
    assert_eq!(tuning.read_timeout_ceiling_ms, 4_000);
    assert_eq!(tuning.min_samples, 20, "a key left out keeps its default");
}

#[test]
fn a_tuning_ceiling_under_the_configured_read_timeout_names_its_key() {
    let (result, _, _dir) = from_file(
        "[gateway.charge_tuning]\nread_timeout_ceiling_ms = 1000\n",
        &NO_VARS,
    );
    refused_naming(result, &["gateway.charge_tuning.read_timeout_ceiling_ms"]);
    let mut settings = Settings::default();
    settings.gateway.charge_tuning.read_timeout_ceiling_ms = 1_000;
    settings.gateway.charge_tuning.enabled = false;
    settings.validate().unwrap();
}

// ----- game-day fault injection -----

#[test]
fn fault_injection_is_off_by_default_and_a_game_day_file_or_variable_turns_it_on() {
    let settings = from_env(&NO_VARS).unwrap().settings;
    assert!(!settings.gateway.fault.charge.enabled);
    assert!(!settings.gateway.fault.query.enabled);

    let (result, _, _dir) = from_file(
        "[gateway.fault.charge]\nenabled = true\nerror_injection_rate = 0.2\nlatency_injection_rate = 0.5\nlatency_duration = \"3s\"\n",
        &[("APP_GATEWAY__FAULT__QUERY__ENABLED", "true")],
    );
    let settings = result.unwrap().settings;
    let charge = settings.gateway.fault.charge;
    assert!(charge.enabled);
    assert!((charge.error_injection_rate - 0.2).abs() < f64::EPSILON);
    assert_eq!(charge.latency_duration, Duration::from_secs(3));
    assert!(settings.gateway.fault.query.enabled);
}

#[test]
fn a_fault_rate_out_of_range_names_its_full_key() {
    let refused = from_env(&[("APP_GATEWAY__FAULT__CHARGE__ERROR_INJECTION_RATE", "1.5")]);
    refused_naming(
        refused,
        &["gateway.fault.charge.error_injection_rate", "[0, 1]"],
    );
}

#[test]
fn the_charge_paths_adaptive_limit_and_card_type_breakers_are_on_by_default_and_read_from_the_file()
{
    let defaults = Settings::default().gateway;
    let limit = defaults.client.charge.adaptive_limiter.unwrap();
    assert_eq!(limit.initial_limit, 16);
    assert!(limit.max_wait < Duration::from_millis(defaults.charge_tuning.read_timeout_ceiling_ms));
    assert!(defaults.charge_breakers_by_card_type);
    let (result, _, _dir) = from_file(
        "[gateway]\ncharge_breakers_by_card_type = false\n\
         [gateway.client.charge.adaptive_limiter]\ninitial_limit = 8\n",
        &NO_VARS,
    );
    let gateway = result.unwrap().settings.gateway;
    assert!(!gateway.charge_breakers_by_card_type);
    let limit = gateway.client.charge.adaptive_limiter.unwrap();
    assert_eq!(limit.initial_limit, 8);
    assert_eq!(
        limit.max_limit, 192,
        "a key left out keeps the service's value"
    );
}

#[test]
fn pg_names_must_be_plain_and_distinct() {
    let mut settings = Settings::default();
    settings.gateway.others = vec![super::PgRouteSettings {
        name: "B".to_owned(),
        ..super::PgRouteSettings::default()
    }];
    assert!(settings.validate().is_ok());
    settings.gateway.others[0].name = "A".to_owned();
    assert_eq!(
        settings.validate().unwrap_err().key(),
        "gateway.others[0].name"
    );
    settings.gateway.others[0].name = "b/../x".to_owned();
    assert_eq!(
        settings.validate().unwrap_err().key(),
        "gateway.others[0].name"
    );
    settings.gateway.name = String::new();
    assert_eq!(settings.validate().unwrap_err().key(), "gateway.name");
}

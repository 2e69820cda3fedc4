//! Settings: the defaults, the rules, and loading them from hostile or careless layers. The
//! environment is always passed in (`load_from`), never set on the process.

use std::path::PathBuf;

use super::*;

const NO_VARS: [(&str, &str); 0] = [];

/// A field of the settings, to set it.
type Field = fn(&mut Settings) -> &mut u64;
/// A change to the settings.
type Change = fn(&mut Settings);

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

#[test]
fn durations_in_milliseconds_are_bounded_by_365_days() {
    let fields: [(&str, Field); 9] = [
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

//! The in-process PG simulator of the default run (`serve` without `gateway.base_url`).
//!
//! It is the canonical PG (latency, 40 % failures, 1–5 s processing), or the pg-simulator
//! configuration file named by `gateway.simulator_config`, with what a correct client uses on
//! top: idempotency keys, cancel, callbacks to any loopback port. It listens on a free loopback
//! port. Magic card numbers stay off unless that file turns them on.
//!
//! Its ledger is kept in a file next to the SQLite database (`commerce.db` →
//! `commerce.db-pg-ledger.jsonl`, the format is in the pg-simulator README), unless the
//! simulator configuration names one: after a crash of the service (`kill -9`) the restarted
//! simulator still knows every charge, so recovery settles the open payments instead of
//! finding their keys unknown and sending them to NEEDS_REVIEW. A ledger file found without
//! its database belongs to another database's orders (order references restart at
//! `ORD-000001`) and is set aside rather than loaded. On Postgres there is no file to sit next
//! to: the ledger stays in memory unless the simulator configuration names a file.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use pg_simulator::SimConfig;
use seawall::ConfigError;
use sqlx::sqlite::SqliteConnectOptions;

use crate::configuration::Settings;

/// What the ledger file is called next to the database file.
const LEDGER_SUFFIX: &str = "-pg-ledger.jsonl";

/// The in-process simulator's configuration for these settings.
///
/// # Errors
///
/// `gateway.simulator_config` set together with `gateway.base_url` (it would have no effect),
/// or a simulator configuration file that cannot be read or is invalid.
pub(crate) fn simulator_config(settings: &Settings) -> Result<SimConfig, ConfigError> {
    const KEY: &str = "gateway.simulator_config";
    let mut config = match (
        &settings.gateway.simulator_config,
        &settings.gateway.base_url,
    ) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                KEY,
                "configures the in-process simulator, which gateway.base_url replaces: set one",
            ));
        }
        (Some(path), None) => SimConfig::from_toml_file(Path::new(path))
            .map_err(|e| ConfigError::new(KEY, format!("{path}: {e}")))?,
        (None, _) => SimConfig::canonical(),
    };
    config.server.host = "127.0.0.1".to_owned();
    config.server.port = 0;
    config.callback.allow_any_loopback = true;
    config.idempotency.enabled = true;
    config.extensions.cancel = true;
    if config.ledger.file.is_none() {
        config.ledger.file = sqlite_file(&settings.database.url).map(|db| ledger_next_to(&db));
    }
    Ok(config)
}

/// The configuration of a further in-process PG named `name`: `first`'s, with its own ledger
/// file (`commerce.db-pg-ledger.jsonl-B`).
pub(crate) fn second_simulator_config(first: &SimConfig, name: &str) -> SimConfig {
    let mut config = first.clone();
    config.ledger.file = first.ledger.file.as_ref().map(|file| {
        let mut named = file.as_os_str().to_owned();
        named.push(format!("-{name}"));
        PathBuf::from(named)
    });
    config
}

/// Sets aside a ledger file whose SQLite database does not exist (a fresh database reuses
/// order references the old ledger knows). Returns where it went.
///
/// # Errors
///
/// The file could not be renamed.
pub(crate) fn set_aside_orphan_ledger(
    settings: &Settings,
    config: &SimConfig,
) -> std::io::Result<Option<PathBuf>> {
    let (Some(db), Some(ledger)) = (sqlite_file(&settings.database.url), &config.ledger.file)
    else {
        return Ok(None);
    };
    if db.exists() || !ledger.exists() {
        return Ok(None);
    }
    let mut aside = ledger.as_os_str().to_owned();
    aside.push(format!(".orphan-{}", crate::persistence::now_ms()));
    let aside = PathBuf::from(aside);
    std::fs::rename(ledger, &aside)?;
    Ok(Some(aside))
}

/// The database file of an SQLite URL; `None` for Postgres and in-memory databases.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

fn ledger_next_to(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(LEDGER_SUFFIX);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Settings {
        let mut settings = Settings::default();
        settings.database.url = url.to_owned();
        settings
    }

    #[test]
    fn the_ledger_sits_next_to_the_sqlite_file() {
        for (url, ledger) in [
            ("sqlite://commerce.db", Some("commerce.db-pg-ledger.jsonl")),
            (
                "sqlite:data/orders.db?mode=rwc",
                Some("data/orders.db-pg-ledger.jsonl"),
            ),
            ("sqlite:///tmp/x.db", Some("/tmp/x.db-pg-ledger.jsonl")),
            ("sqlite::memory:", None),
            ("postgres://u:p@localhost/commerce", None),
        ] {
            let config = simulator_config(&settings(url)).unwrap();
            assert_eq!(
                config.ledger.file.as_deref(),
                ledger.map(Path::new),
                "{url}"
            );
        }
    }

    #[test]
    fn the_default_run_has_no_magic_cards_and_a_free_loopback_port() {
        let config = simulator_config(&Settings::default()).unwrap();
        assert!(!config.triggers.magic_cards);
        assert_eq!(
            (config.server.host.as_str(), config.server.port),
            ("127.0.0.1", 0)
        );
        assert!(config.idempotency.enabled && config.extensions.cancel);
        assert_eq!(config.request, SimConfig::canonical().request);
    }

    #[test]
    fn a_simulator_file_is_read_and_its_own_ledger_file_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sim.toml");
        std::fs::write(
            &file,
            "[control]\nenabled = true\nport = 0\n[ledger]\nfile = \"elsewhere.jsonl\"\n",
        )
        .unwrap();
        let mut s = settings("sqlite://commerce.db");
        s.gateway.simulator_config = Some(file.display().to_string());
        let config = simulator_config(&s).unwrap();
        assert!(config.control.enabled);
        assert_eq!(
            config.ledger.file.as_deref(),
            Some(Path::new("elsewhere.jsonl"))
        );
        s.gateway.base_url = Some("http://pg.example".into());
        let err = simulator_config(&s).unwrap_err();
        assert_eq!(err.key(), "gateway.simulator_config");
    }

    #[test]
    fn a_ledger_without_its_database_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("commerce.db");
        let s = settings(&format!("sqlite://{}", db.display()));
        let config = simulator_config(&s).unwrap();
        let ledger = config.ledger.file.clone().unwrap();
        std::fs::write(&ledger, "{}\n").unwrap();
        let aside = set_aside_orphan_ledger(&s, &config).unwrap().unwrap();
        assert!(!ledger.exists() && aside.exists());
        std::fs::write(&db, "").unwrap();
        std::fs::write(&ledger, "{}\n").unwrap();
        assert_eq!(set_aside_orphan_ledger(&s, &config).unwrap(), None);
        assert!(ledger.exists());
    }
}

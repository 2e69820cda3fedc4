//! This instance's stable name: the owner of the recovery lease.
//!
//! A restarted instance must recognise its own lease (left held by a crash in the middle of a
//! round) and take it back at once, while two live instances must never share one. So the
//! name is configured (`application.instance_id`), or made once at random and kept in a file
//! of the instance's own (`application.instance_id_file`), never derived from the pid or the
//! port, which change across restarts.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use seawall::ConfigError;

use crate::configuration::Settings;
use crate::persistence::Engine;

/// Where the random id is kept when the settings name no file: next to the SQLite database
/// (`orders.db` → `orders.db.instance-id`), else `commerce.instance-id` in the working
/// directory.
pub fn default_id_file(database_url: &str) -> PathBuf {
    let sqlite_file = (Engine::of(database_url) == Some(Engine::Sqlite))
        .then(|| {
            let path = database_url.trim_start_matches("sqlite:");
            let path = path.strip_prefix("//").unwrap_or(path);
            path.split('?').next().unwrap_or_default()
        })
        .filter(|path| !path.is_empty() && !path.contains(":memory:"));
    match sqlite_file {
        Some(path) => PathBuf::from(format!("{path}.instance-id")),
        None => PathBuf::from("commerce.instance-id"),
    }
}

/// The configured id, else the one kept in the id file (made on first use).
///
/// # Errors
///
/// The file cannot be read or written, or holds something that is not an id; the error
/// names `application.instance_id_file`.
pub fn instance_id(settings: &Settings) -> Result<String, ConfigError> {
    if let Some(id) = &settings.application.instance_id {
        return Ok(id.clone());
    }
    let file = settings
        .application
        .instance_id_file
        .clone()
        .unwrap_or_else(|| default_id_file(&settings.database.url));
    read_or_make(&file).map_err(|rule| {
        ConfigError::new(
            "application.instance_id_file",
            format!("{}: {rule}", file.display()),
        )
    })
}

fn read_or_make(file: &Path) -> Result<String, String> {
    // Two attempts: another process may create the file between our read and our write.
    for _ in 0..2 {
        match std::fs::read_to_string(file) {
            Ok(text) => {
                let id = text.trim();
                if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
                    return Err("does not hold an instance id (1 to 200 visible characters)".into());
                }
                return Ok(id.to_owned());
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.to_string()),
        }
        let id = format!(
            "commerce-{}",
            crate::secrets::random_hex(8).map_err(|e| e.to_string())?
        );
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(file)
            .and_then(|mut out| std::io::Write::write_all(&mut out, format!("{id}\n").as_bytes()));
        match written {
            Ok(()) => return Ok(id),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("could not be read nor created".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_file_sits_next_to_an_sqlite_database_and_in_the_working_directory_otherwise() {
        for (url, file) in [
            ("sqlite://commerce.db", "commerce.db.instance-id"),
            (
                "sqlite:///var/lib/orders.db?mode=rwc",
                "/var/lib/orders.db.instance-id",
            ),
            ("sqlite:data/orders.db", "data/orders.db.instance-id"),
            ("sqlite::memory:", "commerce.instance-id"),
            ("postgres://u@db/commerce", "commerce.instance-id"),
        ] {
            assert_eq!(default_id_file(url), PathBuf::from(file), "{url}");
        }
    }

    #[test]
    fn the_id_is_made_once_and_read_back_on_every_later_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        settings.application.instance_id_file = Some(dir.path().join("id"));
        let first = instance_id(&settings).unwrap();
        assert!(
            first.starts_with("commerce-") && first.len() == 25,
            "{first}"
        );
        assert_eq!(instance_id(&settings).unwrap(), first);
        settings.application.instance_id = Some("configured".to_owned());
        assert_eq!(instance_id(&settings).unwrap(), "configured");
    }

    #[test]
    fn an_unreadable_id_file_is_an_error_naming_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("id"), "\n").unwrap();
        let mut settings = Settings::default();
        settings.application.instance_id_file = Some(dir.path().join("id"));
        let err = instance_id(&settings).unwrap_err();
        assert_eq!(err.key(), "application.instance_id_file");
    }
}

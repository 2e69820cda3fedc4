//! Loading the layers: built-in defaults, then an optional TOML file, then `APP_` environment
//! variables. The environment is a parameter ([`Settings::load_from`]), so tests pass their
//! own instead of changing the process's (tests run in parallel threads).

use std::ffi::OsString;
use std::path::Path;

use seawall::ConfigError;

use super::Settings;

/// Settings as loaded, with what the loader chose to skip.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// The settings, validated.
    pub settings: Settings,
    /// `APP_` environment variables that were not read.
    pub ignored: Vec<String>,
}

/// A configuration that could not be loaded or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file or an environment variable could not be read or parsed.
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value broke a rule.
    #[error("configuration: {0}")]
    Invalid(#[from] ConfigError),
}

impl Settings {
    /// Defaults, then `file` (if given; TOML), then the process's `APP_*` environment
    /// variables.
    ///
    /// # Errors
    ///
    /// See [`load_from`](Self::load_from).
    pub fn load(file: Option<&Path>) -> Result<Loaded, SettingsError> {
        Self::load_from(file, std::env::vars_os())
    }

    /// Defaults, then `file` (if given; TOML), then the `APP_*` variables of `vars` (an
    /// environment: name and value pairs).
    ///
    /// # Errors
    ///
    /// An unreadable file, a value of the wrong type, or a rule broken (see
    /// [`validate`](Self::validate)).
    pub fn load_from<K, V>(
        file: Option<&Path>,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Loaded, SettingsError>
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let mut environment = config::Map::new();
        for (name, value) in vars {
            // A name that is not Unicode cannot be one of ours.
            let Ok(name) = name.into().into_string() else {
                continue;
            };
            let value = value.into().into_string().map_err(|value| {
                config::ConfigError::Message(format!(
                    "env variable {name:?} contains non-Unicode data: {value:?}"
                ))
            })?;
            environment.insert(name, value);
        }
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        let settings: Self = builder
            .add_source(
                config::Environment::with_prefix("APP")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(environment)),
            )
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(Loaded {
            settings,
            ignored: Vec::new(),
        })
    }
}

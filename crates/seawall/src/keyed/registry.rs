//! Keyed sets made from a registry's configuration, following its live changes.

use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};

use super::{Inner, Keyed, KeyedConfig, lock};
use crate::registry::{Kind, Registry, RegistryError};

type Follower<C> = Box<dyn Fn(&C) -> bool + Send + Sync>;

/// The keyed sets following each configuration of a registry.
pub(crate) struct Followers<C> {
    list: Mutex<Vec<(String, Follower<C>)>>,
}

impl<C> Default for Followers<C> {
    fn default() -> Self {
        Self {
            list: Mutex::default(),
        }
    }
}

impl<C> fmt::Debug for Followers<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Followers").finish_non_exhaustive()
    }
}

impl<C> Followers<C> {
    fn add(&self, config_name: &str, follower: Follower<C>) {
        lock(&self.list).push((config_name.to_owned(), follower));
    }

    /// Tells the followers of `config_name` its new value; forgets the dropped ones.
    pub(crate) fn notify(&self, config_name: &str, config: &C) {
        lock(&self.list).retain(|(name, follower)| name != config_name || follower(config));
    }
}

impl<K: Kind> Registry<K> {
    /// A keyed set whose template is the configuration `config_name`, named after it
    /// (instances are `config_name[key]`) and built with this registry's context (clock,
    /// seed). When the configuration is replaced ([`add_config`](Self::add_config), or a
    /// document reload), every live instance of the set is reconfigured, keeping its state.
    ///
    /// # Examples
    ///
    /// ```
    /// use seawall::keyed::KeyedConfig;
    /// use seawall::registry::{CircuitBreakers, Registry};
    ///
    /// let registry = Registry::<CircuitBreakers>::new();
    /// let by_card = registry.keyed::<String>("default", KeyedConfig::with_max_keys(64))?;
    /// assert_eq!(by_card.get("VISA").name(), "default[VISA]");
    /// # Ok::<(), seawall::registry::RegistryError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RegistryError::ConfigNotFound`], or invalid `settings`.
    pub fn keyed<Q>(
        &self,
        config_name: &str,
        settings: KeyedConfig,
    ) -> Result<Keyed<K, Q>, RegistryError>
    where
        Q: Hash + Eq + Clone + fmt::Display + fmt::Debug + Send + Sync + 'static,
    {
        let template = self
            .config(config_name)
            .ok_or_else(|| RegistryError::ConfigNotFound {
                section: K::SECTION,
                name: config_name.to_owned(),
            })?;
        let keyed = Keyed::<K, Q>::builder(template)
            .name(config_name)
            .config(settings)
            .context(self.context().clone())
            .build()
            .map_err(RegistryError::Invalid)?;
        let weak: Weak<Inner<K, Q>> = Arc::downgrade(&keyed.inner);
        self.followers().add(
            config_name,
            Box::new(move |config| {
                let Some(inner) = weak.upgrade() else {
                    return false;
                };
                // The registry validated it; a follower cannot refuse it.
                let _ = Keyed { inner }.reconfigure(config.clone());
                true
            }),
        );
        Ok(keyed)
    }
}

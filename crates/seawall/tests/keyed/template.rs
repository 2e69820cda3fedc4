use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::circuit_breaker::{CircuitBreakerConfig, State};
use seawall::clock::ManualClock;
use seawall::keyed::{Keyed, KeyedConfig, KeyedEvent, OTHER_LABEL};
use seawall::registry::{CircuitBreakers, Registry, RegistryError};

use super::{breakers, open};

fn threshold(percent: f64) -> CircuitBreakerConfig {
    let mut config = CircuitBreakerConfig::default();
    config.failure_rate_threshold = percent;
    config
}

#[test]
fn first_use_creates_an_instance_from_the_template() {
    let keyed = Keyed::<CircuitBreakers>::builder(threshold(25.0))
        .name("charge")
        .build()
        .unwrap();
    assert!(keyed.is_empty());
    let visa = keyed.get("VISA");
    assert_eq!(visa.name(), "charge[VISA]");
    assert_eq!(visa.config(), threshold(25.0));
    assert_eq!(visa.state(), State::Closed);
    assert!(keyed.contains("VISA"));
    assert_eq!(keyed.len(), 1);
}

#[test]
fn the_same_key_returns_the_same_instance_and_other_keys_their_own() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 10, None);
    open(&keyed, "SAMSUNG");
    assert_eq!(keyed.get("SAMSUNG").state(), State::Open);
    assert_eq!(keyed.find("SAMSUNG").unwrap().state(), State::Open);
    assert_eq!(keyed.get("VISA").state(), State::Closed);
    assert_eq!(keyed.len(), 2);
}

#[test]
fn an_invalid_template_or_setting_is_refused_naming_its_key() {
    let err = Keyed::<CircuitBreakers>::builder(threshold(0.0))
        .build()
        .unwrap_err();
    assert!(err.key().starts_with("template."), "{err}");
    let err = Keyed::<CircuitBreakers>::builder(threshold(50.0))
        .max_keys(0)
        .build()
        .unwrap_err();
    assert_eq!(err.key(), "max_keys");
    let err = Keyed::<CircuitBreakers>::builder(threshold(50.0))
        .max_keys(5)
        .max_labelled_keys(6)
        .build()
        .unwrap_err();
    assert_eq!(err.key(), "max_labelled_keys");
}

#[test]
fn reconfiguring_the_template_reaches_live_instances_and_keeps_an_open_breaker_open() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 10, None);
    open(&keyed, "SAMSUNG");
    let visa = keyed.get("VISA");
    keyed.reconfigure(threshold(10.0)).unwrap();
    assert_eq!(visa.config(), threshold(10.0));
    assert_eq!(keyed.get("SAMSUNG").config(), threshold(10.0));
    assert_eq!(keyed.get("SAMSUNG").state(), State::Open);
    assert_eq!(keyed.overflow().config(), threshold(10.0));
    assert_eq!(keyed.get("AMEX").config(), threshold(10.0), "new keys too");
    assert_eq!(keyed.template(), threshold(10.0));
}

#[test]
fn an_invalid_template_changes_nothing() {
    let clock = ManualClock::new();
    let keyed = breakers(&clock, 10, None);
    let visa = keyed.get("VISA");
    assert!(keyed.reconfigure(threshold(150.0)).is_err());
    assert_eq!(visa.config(), CircuitBreakerConfig::default());
}

#[test]
fn a_registry_keyed_set_follows_its_configuration() {
    let registry = Registry::<CircuitBreakers>::new();
    registry.add_config("card", threshold(40.0)).unwrap();
    let keyed = registry
        .keyed::<String>("card", KeyedConfig::with_max_keys(16))
        .unwrap();
    let visa = keyed.get("VISA");
    assert_eq!(visa.name(), "card[VISA]");
    assert_eq!(visa.config(), threshold(40.0));
    open(&keyed, "SAMSUNG");

    registry.add_config("card", threshold(20.0)).unwrap();
    assert_eq!(visa.config(), threshold(20.0));
    assert_eq!(keyed.get("SAMSUNG").config(), threshold(20.0));
    assert_eq!(keyed.get("SAMSUNG").state(), State::Open);

    registry.add_config("other", threshold(90.0)).unwrap();
    assert_eq!(visa.config(), threshold(20.0), "another configuration");
    drop(keyed);
    registry.add_config("card", threshold(30.0)).unwrap(); // a dropped set is forgotten
}

#[test]
fn a_registry_keyed_set_needs_a_known_configuration() {
    let registry = Registry::<CircuitBreakers>::new();
    let err = registry
        .keyed::<String>("nope", KeyedConfig::default())
        .unwrap_err();
    assert!(matches!(err, RegistryError::ConfigNotFound { .. }));
}

#[test]
fn labels_stay_bounded_with_an_other_bucket() {
    let clock = ManualClock::new();
    let keyed = Keyed::<CircuitBreakers>::builder(CircuitBreakerConfig::default())
        .max_keys(2)
        .max_labelled_keys(2)
        .idle_ttl(None)
        .clock(clock.clone().into())
        .build()
        .unwrap();
    let created = Arc::new(Mutex::new(Vec::new()));
    let seen = created.clone();
    keyed.on_event(move |event| {
        if let KeyedEvent::Created { key, label, .. } = event {
            seen.lock().unwrap().push((key.clone(), label.to_string()));
        }
    });
    for key in ["a", "b", "c", "d"] {
        clock.advance(Duration::from_secs(1));
        keyed.get(key);
    }
    clock.advance(Duration::from_secs(1));
    keyed.get("a"); // evicted earlier, back with its own label
    let created = created.lock().unwrap().clone();
    let labels: Vec<(&str, &str)> = created
        .iter()
        .map(|(key, label)| (key.as_str(), label.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("a", "a"),
            ("b", "b"),
            ("c", OTHER_LABEL),
            ("d", OTHER_LABEL),
            ("a", "a")
        ]
    );
    assert_eq!(keyed.label("a").as_deref(), Some("a"));
}

#[cfg(feature = "serde")]
#[test]
fn a_registry_keyed_set_follows_a_document_reload() {
    use seawall::registry::document::{Document, Format};
    use seawall::registry::{BuildContext, Registries};

    let document = |threshold: u32| {
        format!(
            "circuitbreaker:\n  configs:\n    card: {{ failure_rate_threshold: {threshold} }}\n"
        )
    };
    let registries =
        Registries::from_str(&document(60), Format::Yaml, BuildContext::default()).unwrap();
    let keyed = registries
        .circuit_breakers()
        .keyed::<String>("card", KeyedConfig::default())
        .unwrap();
    open(&keyed, "SAMSUNG");
    assert_eq!(keyed.get("KB").config().failure_rate_threshold, 60.0);

    registries
        .reload(&Document::parse(&document(35), Format::Yaml).unwrap())
        .unwrap();
    assert_eq!(keyed.get("KB").config().failure_rate_threshold, 35.0);
    assert_eq!(keyed.get("SAMSUNG").config().failure_rate_threshold, 35.0);
    assert_eq!(keyed.get("SAMSUNG").state(), State::Open, "state kept");
}

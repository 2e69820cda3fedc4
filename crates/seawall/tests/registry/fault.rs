//! Fault injectors from a game-day document, switched and tuned live through the registry.

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use seawall::fault::{FaultConfig, FaultKind};
use seawall::metrics::RegistryMetrics;
use seawall::registry::document::{Document, Format};
use seawall::registry::{BuildContext, Registries, RegistryError};
use seawall::{Clock, FaultInjector};
use serde_json::json;

#[derive(Debug)]
struct Boom;

const GAME_DAY: &str = r#"
fault:
  configs:
    default:
      latency_duration: 2s
  instances:
    pg-charge:
      enabled: true
      error_injection_rate: 0.25
    pg-query:
      latency_injection_rate: 1.0
"#;

async fn injected_calls(injector: &FaultInjector, calls: usize) -> Vec<usize> {
    let mut hit = Vec::new();
    for n in 0..calls {
        if injector.call(|| async { Ok::<_, Boom>(()) }).await.is_err() {
            hit.push(n);
        }
    }
    hit
}

#[tokio::test(start_paused = true)]
async fn a_game_day_document_builds_injectors_seeded_per_name() {
    let build = |seed| {
        Registries::from_str(GAME_DAY, Format::Yaml, BuildContext::default().seed(seed)).unwrap()
    };
    let registries = build(5);
    let charge = registries.fault_injectors().find("pg-charge").unwrap();
    assert_eq!(
        charge.config(),
        FaultConfig::new()
            .enabled(true)
            .error(0.25)
            .latency(0.0, Duration::from_secs(2))
    );
    let query = registries.fault_injectors().find("pg-query").unwrap();
    assert!(!query.is_enabled(), "off unless the document says on");

    let first = injected_calls(&charge, 1_000).await;
    let again = injected_calls(
        &build(5).fault_injectors().find("pg-charge").unwrap(),
        1_000,
    )
    .await;
    let other = injected_calls(
        &build(6).fault_injectors().find("pg-charge").unwrap(),
        1_000,
    )
    .await;
    assert_eq!(first, again);
    assert_ne!(first, other);
}

#[tokio::test(start_paused = true)]
async fn switching_through_the_registry_takes_effect_on_the_next_call() {
    let registries = Registries::from_str(GAME_DAY, Format::Yaml, BuildContext::default()).unwrap();
    let query = registries.fault_injectors().get_or_create("pg-query");
    let clock = Clock::tokio();
    let start = clock.now();
    query.call(|| async { Ok::<_, Boom>(()) }).await.unwrap();
    assert_eq!(clock.now(), start, "disabled: no delay");

    registries
        .fault_injectors()
        .update("pg-query", |config| Ok(config.enabled(true)))
        .unwrap();
    query.call(|| async { Ok::<_, Boom>(()) }).await.unwrap();
    assert_eq!(clock.now() - start, Duration::from_secs(2));

    let patched = registries
        .fault_injectors()
        .patch("pg-query", json!({"enabled": false}))
        .unwrap();
    assert!(!patched.enabled);
    query.call(|| async { Ok::<_, Boom>(()) }).await.unwrap();
    assert_eq!(clock.now() - start, Duration::from_secs(2), "off again");

    // A reload switches it back on and keeps the instance.
    let reload = Document::parse(
        "fault: { instances: { pg-query: { enabled: true, latency_injection_rate: 0.0, error_injection_rate: 1.0 } } }",
        Format::Yaml,
    )
    .unwrap();
    registries.reload(&reload).unwrap();
    let err = query
        .call(|| async { Ok::<_, Boom>(()) })
        .await
        .unwrap_err();
    assert!(err.is_injected());
}

#[test]
fn a_rate_out_of_range_is_refused_naming_its_key() {
    let err = Registries::from_str(
        "chaos: { instances: { pg: { error_injection_rate: 1.5 } } }",
        Format::Yaml,
        BuildContext::default(),
    )
    .unwrap_err();
    assert_eq!(err.key(), "fault.instances.pg.error_injection_rate");
    assert_eq!(err.rule(), "must be in [0, 1], got 1.5");

    let registries = Registries::new();
    registries.fault_injectors().get_or_create("pg");
    let err = registries
        .fault_injectors()
        .patch("pg", json!({"latencyInjectionRate": -1}))
        .unwrap_err();
    let RegistryError::Invalid(err) = err else {
        panic!("{err:?}")
    };
    assert_eq!(err.key(), "fault.instances.pg.latency_injection_rate");
}

#[tokio::test(start_paused = true)]
async fn injections_are_counted_in_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let registries = Registries::new();
    let (metrics, injector) = metrics::with_local_recorder(&recorder, || {
        let metrics = RegistryMetrics::new(&registries);
        // Created after binding: bound through the registry's Added event.
        (metrics, registries.fault_injectors().get_or_create("pg"))
    });
    injector
        .reconfigure(FaultConfig::new().enabled(true).error(1.0))
        .unwrap();
    for _ in 0..3 {
        let _ = injector.call(|| async { Ok::<_, Boom>(()) }).await;
    }
    metrics.publish();
    let mut errors = None;
    let mut enabled = None;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let kind = key
            .key()
            .labels()
            .find(|label| label.key() == "kind")
            .map(|label| label.value().to_owned());
        match (key.key().name(), kind.as_deref(), value) {
            ("seawall_fault_injections", Some("error"), DebugValue::Counter(n)) => errors = Some(n),
            ("seawall_fault_enabled", None, DebugValue::Gauge(v)) => enabled = Some(v.into_inner()),
            _ => {}
        }
    }
    assert_eq!(errors, Some(3));
    assert_eq!(enabled, Some(1.0));
    assert_eq!(injector.injected(FaultKind::Error), 3);
}

//! Keyed breakers' metrics: one series per label, the rest in the `other` bucket.
#![cfg(feature = "metrics")]

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use seawall::circuit_breaker::CircuitBreakerConfig;
use seawall::clock::ManualClock;
use seawall::keyed::{Keyed, KeyedMetrics, OTHER_LABEL};
use seawall::registry::CircuitBreakers;

/// (name, sorted labels) -> value.
fn read(snapshotter: &Snapshotter) -> HashMap<(String, Vec<(String, String)>), f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let mut labels: Vec<(String, String)> = key
                .key()
                .labels()
                .map(|label| (label.key().to_owned(), label.value().to_owned()))
                .collect();
            labels.sort();
            let value = match value {
                DebugValue::Counter(v) => v as f64,
                DebugValue::Gauge(v) => v.into_inner(),
                DebugValue::Histogram(_) => f64::NAN,
            };
            ((key.key().name().to_owned(), labels), value)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    labels
}

#[test]
fn metrics_labels_stay_bounded_and_counters_survive_eviction() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let clock = ManualClock::new();
    let keyed = Keyed::<CircuitBreakers>::builder(CircuitBreakerConfig::default())
        .name("charge")
        .max_keys(4)
        .max_labelled_keys(2)
        .idle_ttl(None)
        .clock(clock.clone().into())
        .build()
        .unwrap();
    let metrics = KeyedMetrics::new(&keyed);
    // 100 keys, one failed call each: two labelled, 98 in `other`.
    for n in 0..100 {
        clock.advance(Duration::from_secs(1));
        keyed
            .get(&format!("card-{n}"))
            .try_acquire()
            .unwrap()
            .failure();
    }
    keyed.get("card-0").try_acquire().unwrap().success(); // evicted, back with its label
    metrics::with_local_recorder(&recorder, || metrics.publish());
    let values = read(&snapshotter);
    let calls = |key: &str, kind: &str| {
        values[&(
            "seawall_keyed_circuitbreaker_calls".to_owned(),
            labels(&[("name", "charge"), ("key", key), ("kind", kind)]),
        )]
    };
    assert_eq!(calls("card-0", "failed"), 1.0);
    assert_eq!(calls("card-0", "successful"), 1.0);
    assert_eq!(calls("card-1", "failed"), 1.0);
    assert_eq!(
        calls(OTHER_LABEL, "failed"),
        98.0,
        "evicted breakers still count"
    );
    let keys: std::collections::BTreeSet<String> = values
        .keys()
        .filter(|(name, _)| name == "seawall_keyed_circuitbreaker_calls")
        .flat_map(|(_, labels)| {
            labels
                .iter()
                .filter(|(k, _)| k == "key")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let state = |key: &str, state: &str| {
        values[&(
            "seawall_keyed_circuitbreaker_state".to_owned(),
            labels(&[("name", "charge"), ("key", key), ("state", state)]),
        )]
    };
    assert_eq!(state("card-0", "closed"), 1.0);
    assert_eq!(
        state(OTHER_LABEL, "closed"),
        4.0,
        "three live keys and the overflow instance"
    );
    assert_eq!(
        values[&(
            "seawall_keyed_instances".to_owned(),
            labels(&[("name", "charge")])
        )],
        4.0
    );
}

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use seawall::CircuitBreaker;
use seawall::Clock;
use seawall::circuit_breaker::{SlidingWindow, State};
use seawall::metrics::RegistryMetrics;
use seawall::registry::Registries;

#[derive(Debug)]
struct Boom;

type Key = (String, Vec<(String, String)>);

/// Every metric of the snapshot: (name, sorted labels) -> value.
fn read(snapshotter: &Snapshotter) -> HashMap<Key, f64> {
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

fn get(metrics: &HashMap<Key, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    *metrics
        .get(&(name.to_owned(), labels.clone()))
        .unwrap_or_else(|| panic!("no metric {name} {labels:?}"))
}

#[tokio::test(start_paused = true)]
async fn a_recording_recorder_sees_exact_names_labels_and_values_through_trip_reject_recover() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let registries = Registries::new();
    registries
        .circuit_breakers()
        .add_config(
            "default",
            CircuitBreaker::builder()
                .sliding_window(SlidingWindow::count(2))
                .minimum_number_of_calls(2)
                .wait_in_open(Duration::from_secs(1))
                .permitted_calls_in_half_open(1)
                .build_config()
                .unwrap(),
        )
        .unwrap();
    let metrics = metrics::with_local_recorder(&recorder, || {
        let metrics = RegistryMetrics::new(&registries);
        // Created after binding: bound through the registry's Added event.
        registries.policy("pg");
        metrics
    });
    let breaker = registries.circuit_breakers().find("pg").unwrap();
    let policy = seawall::Policy::builder()
        .circuit_breaker(breaker.clone())
        .build();

    // Trip: two failures.
    for _ in 0..2 {
        let _ = policy.call(|| async { Err::<(), _>(Boom) }).await;
    }
    assert_eq!(breaker.state(), State::Open);
    // Reject: one call while open.
    assert!(
        policy
            .call(|| async { Ok::<(), Boom>(()) })
            .await
            .unwrap_err()
            .is_circuit_open()
    );
    metrics.publish();
    let open = read(&snapshotter);
    let pg = [("name", "pg")];
    assert_eq!(
        get(
            &open,
            "seawall_circuitbreaker_calls",
            &[("name", "pg"), ("kind", "failed")]
        ),
        2.0
    );
    assert_eq!(
        get(
            &open,
            "seawall_circuitbreaker_calls",
            &[("name", "pg"), ("kind", "successful")]
        ),
        0.0
    );
    assert_eq!(
        get(
            &open,
            "seawall_circuitbreaker_not_permitted_calls",
            &[("name", "pg"), ("kind", "not_permitted")]
        ),
        1.0
    );
    assert_eq!(
        get(
            &open,
            "seawall_circuitbreaker_state",
            &[("name", "pg"), ("state", "open")]
        ),
        1.0
    );
    assert_eq!(
        get(
            &open,
            "seawall_circuitbreaker_state",
            &[("name", "pg"), ("state", "closed")]
        ),
        0.0
    );
    assert_eq!(
        get(&open, "seawall_circuitbreaker_failure_rate", &pg),
        100.0
    );
    assert_eq!(
        get(&open, "seawall_circuitbreaker_slow_call_rate", &pg),
        0.0
    );
    assert_eq!(
        get(
            &open,
            "seawall_circuitbreaker_buffered_calls",
            &[("name", "pg"), ("kind", "failed")]
        ),
        2.0
    );
    assert_eq!(
        get(&open, "seawall_bulkhead_max_allowed_concurrent_calls", &pg),
        25.0
    );
    assert_eq!(
        get(&open, "seawall_bulkhead_available_concurrent_calls", &pg),
        25.0
    );

    // Recover: wait, one successful probe closes it.
    Clock::tokio().sleep(Duration::from_millis(1_001)).await;
    policy.call(|| async { Ok::<(), Boom>(()) }).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
    // The state gauge follows the transition at once, before any publish.
    let live = read(&snapshotter);
    assert_eq!(
        get(
            &live,
            "seawall_circuitbreaker_state",
            &[("name", "pg"), ("state", "closed")]
        ),
        1.0
    );
    metrics.publish();
    let closed = read(&snapshotter);
    assert_eq!(
        get(
            &closed,
            "seawall_circuitbreaker_calls",
            &[("name", "pg"), ("kind", "successful")]
        ),
        1.0
    );
    assert_eq!(
        get(
            &closed,
            "seawall_circuitbreaker_state",
            &[("name", "pg"), ("state", "open")]
        ),
        0.0
    );
    assert_eq!(
        get(
            &closed,
            "seawall_circuitbreaker_state",
            &[("name", "pg"), ("state", "half_open")]
        ),
        0.0
    );
    assert!(
        get(&closed, "seawall_circuitbreaker_failure_rate", &pg).is_nan(),
        "undefined below the minimum"
    );
    assert_eq!(
        get(
            &closed,
            "seawall_circuitbreaker_buffered_calls",
            &[("name", "pg"), ("kind", "failed")]
        ),
        0.0
    );

    // The policy's retry, timeout: their own names.
    assert_eq!(
        get(
            &closed,
            "seawall_retry_calls",
            &[("name", "pg"), ("kind", "successful_without_retry")]
        ),
        0.0
    );
    assert_eq!(
        get(
            &closed,
            "seawall_timeout_calls",
            &[("name", "pg"), ("kind", "timeout")]
        ),
        0.0
    );
}

#[tokio::test(start_paused = true)]
async fn instance_tags_become_labels_and_retry_timeout_bulkhead_counters_count() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let registries = Registries::from_str(
        "bulkhead:\n  tags: { team: payments }\n  instances:\n    db: { max_concurrent_calls: 0 }\nretry:\n  instances:\n    q: { max_attempts: 2, wait_duration: 1 }\ntimelimiter:\n  instances:\n    t: { timeout_duration: 10ms }\n",
        seawall::registry::document::Format::Yaml,
        Default::default(),
    )
    .unwrap();
    let metrics = metrics::with_local_recorder(&recorder, || RegistryMetrics::new(&registries));
    let _ = registries
        .bulkheads()
        .find("db")
        .unwrap()
        .call(|| async { Ok::<(), Boom>(()) })
        .await;
    let _ = registries
        .retries()
        .find("q")
        .unwrap()
        .call(|| async { Err::<(), _>(Boom) })
        .await;
    let _ = registries
        .timeouts()
        .find("t")
        .unwrap()
        .call(|| async {
            std::future::pending::<()>().await;
            Ok::<(), Boom>(())
        })
        .await;
    metrics.publish();
    let values = read(&snapshotter);
    assert_eq!(
        get(
            &values,
            "seawall_bulkhead_rejected_calls",
            &[("name", "db"), ("team", "payments")]
        ),
        1.0
    );
    assert_eq!(
        get(
            &values,
            "seawall_retry_calls",
            &[("name", "q"), ("kind", "failed_with_retry")]
        ),
        1.0
    );
    assert_eq!(
        get(
            &values,
            "seawall_timeout_calls",
            &[("name", "t"), ("kind", "timeout")]
        ),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn the_adaptive_limit_is_a_gauge() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let registries = Registries::new();
    let metrics = metrics::with_local_recorder(&recorder, || {
        let metrics = RegistryMetrics::new(&registries);
        registries.adaptive_limiters().get_or_create("charge");
        metrics
    });
    let limiter = registries.adaptive_limiters().find("charge").unwrap();
    let pg = [("name", "charge")];
    metrics::with_local_recorder(&recorder, || metrics.publish());
    assert_eq!(
        get(&read(&snapshotter), "seawall_adaptivelimiter_limit", &pg),
        20.0
    );

    // A drop: 20 × 0.9.
    let _ = limiter.call(|| async { Err::<(), _>(Boom) }).await;
    metrics::with_local_recorder(&recorder, || metrics.publish());
    let values = read(&snapshotter);
    assert_eq!(get(&values, "seawall_adaptivelimiter_limit", &pg), 18.0);
    assert_eq!(
        get(&values, "seawall_adaptivelimiter_inflight_calls", &pg),
        0.0
    );
    assert_eq!(
        get(&values, "seawall_adaptivelimiter_rejected_calls", &pg),
        0.0
    );
}

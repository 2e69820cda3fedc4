//! Metrics: one count per call by path and outcome class, plus per attempt.

use std::sync::OnceLock;

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use pg_client::{OrderId, PaymentGateway};

use crate::helpers::{fast_config, magic_card, request, request_with_card, sim, spawn, user};

/// The process-wide recorder (installed once; tests filter by their own `client` label).
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other recorder in this test binary");
        snapshotter
    })
}

type Entries = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// The counter `name` for this client, operation and outcome in `entries` (a snapshot drains
/// the counters, so the test takes exactly one).
fn count(entries: &Entries, name: &str, client: &str, operation: &str, outcome: &str) -> u64 {
    entries
        .iter()
        .filter(|(key, _, _, _)| key.kind() == MetricKind::Counter && key.key().name() == name)
        .filter(|(key, _, _, _)| {
            let labels: Vec<(&str, &str)> =
                key.key().labels().map(|l| (l.key(), l.value())).collect();
            labels.contains(&("client", client))
                && labels.contains(&("operation", operation))
                && labels.contains(&("outcome", outcome))
        })
        .map(|(_, _, _, value)| match value {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_count_each_call_by_path_and_outcome_class() {
    snapshotter();
    let pg = spawn(sim()).await;
    let client = crate::helpers::client(fast_config(&pg.base_url(), "metrics"));

    client
        .request_payment(&user(), &request("order-metrics"))
        .await
        .unwrap();
    client
        .request_payment(&user(), &request("short"))
        .await
        .unwrap_err();
    client
        .request_payment(
            &user(),
            &request_with_card("order-metrics-501", &magic_card(501)),
        )
        .await
        .unwrap();
    client
        .find_by_order(&user(), &OrderId::parse("order-metrics").unwrap())
        .await
        .unwrap();
    pg.go_down().await;
    let down = crate::helpers::client(fast_config(&pg.base_url(), "metrics"));
    down.request_payment(&user(), &request("order-metrics-down"))
        .await
        .unwrap_err();

    let entries = snapshotter().snapshot().into_vec();
    let requests = "pg_client_requests_total";
    let count = |name, operation, outcome| count(&entries, name, "metrics", operation, outcome);
    assert_eq!(count(requests, "charge", "success"), 1);
    assert_eq!(count(requests, "charge", "business"), 1);
    assert_eq!(count(requests, "charge", "uncertain"), 1);
    assert_eq!(count(requests, "charge", "not_reached"), 1);
    assert_eq!(count(requests, "find_by_order", "success"), 1);
    assert_eq!(
        count("pg_client_attempts_total", "charge", "not_reached"),
        3
    );
}

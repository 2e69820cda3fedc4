//! The `hedge` section: instances from a document, live reloads keeping state, metrics.

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use seawall::hedge::{HedgeBudgetConfig, HedgeConfig};
use seawall::metrics::RegistryMetrics;
use seawall::registry::document::{Document, Format};
use seawall::registry::{BuildContext, Registries};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

const DOCUMENT: &str = "hedge:
  configs:
    default: { delay: 2s }
  instances:
    pg-status:
      delay: 80ms
      max_hedged_attempts: 2
      budget: { ratio: 0.1, min_per_second: 1 }
    adaptive:
      delay: 100ms
      delay_percentile: 0.95
      delay_floor: 20ms
      delay_ceiling: 1s
      latency_window_size: 50
      minimum_number_of_samples: 10
";

#[test]
fn a_document_s_hedge_section_builds_hedges_with_its_keys() {
    let registries = Registries::from_str(DOCUMENT, Format::Yaml, BuildContext::default()).unwrap();
    let status = registries.hedges().find("pg-status").unwrap();
    let mut expected = HedgeConfig::fixed(ms(80));
    expected.max_hedged_attempts = 2;
    expected.budget = Some(HedgeBudgetConfig::new(0.1, 1.0));
    assert_eq!(status.config(), expected);
    let adaptive = registries.hedges().find("adaptive").unwrap().config();
    assert_eq!(adaptive.delay_percentile, Some(0.95));
    assert_eq!(
        (adaptive.delay_floor, adaptive.delay_ceiling),
        (ms(20), ms(1000))
    );
    assert_eq!(
        registries.hedges().get_or_create("other").config().delay,
        ms(2000)
    );
}

#[test]
fn a_bad_hedge_value_is_named_by_its_full_path() {
    let err = Document::parse(
        "hedge:\n  instances:\n    q: { max_hedged_attempts: 17 }\n",
        Format::Yaml,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("hedge.instances.q.max_hedged_attempts"),
        "{err}"
    );
    let err =
        Document::parse("hedge:\n  instances:\n    q: { delai: 1s }\n", Format::Yaml).unwrap_err();
    assert!(err.to_string().contains("delai"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_reload_changes_a_running_hedge_and_keeps_its_budget() {
    let registries = Registries::from_str(DOCUMENT, Format::Yaml, BuildContext::default()).unwrap();
    let hedge = registries.hedges().find("pg-status").unwrap();
    for _ in 0..30 {
        hedge.call(|| async { Ok::<_, ()>(()) }).await.unwrap();
    }
    assert_eq!(hedge.metrics().budget_tokens, 3.0);
    let changed = Document::parse(
        &DOCUMENT.replace("delay: 80ms", "delay: 30ms"),
        Format::Yaml,
    )
    .unwrap();
    registries.reload(&changed).unwrap();
    assert_eq!(hedge.config().delay, ms(30));
    assert_eq!(
        hedge.metrics().budget_tokens,
        3.0,
        "the tokens survive the reload"
    );
    let patched = registries
        .hedges()
        .patch("pg-status", serde_json::json!({ "maxHedgedAttempts": 3 }))
        .unwrap();
    assert_eq!(patched.max_hedged_attempts, 3);
    assert_eq!(hedge.config().max_hedged_attempts, 3);
}

#[tokio::test(start_paused = true)]
async fn hedge_counters_are_published() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let registries = Registries::from_str(DOCUMENT, Format::Yaml, BuildContext::default()).unwrap();
    let metrics = metrics::with_local_recorder(&recorder, || RegistryMetrics::new(&registries));
    let hedge = registries.hedges().find("pg-status").unwrap();
    hedge
        .call_with_attempt(|attempt| async move {
            let took = if attempt.is_first() { ms(1000) } else { ms(10) };
            seawall::Clock::tokio().sleep(took).await;
            Ok::<_, ()>(())
        })
        .await
        .unwrap();
    metrics.publish();
    let snapshot = snapshotter.snapshot().into_vec();
    let value = |kind: &str| {
        snapshot
            .iter()
            .find(|(key, _, _, _)| {
                key.key().name() == "seawall_hedge_attempts"
                    && key
                        .key()
                        .labels()
                        .any(|l| l.key() == "name" && l.value() == "pg-status")
                    && key
                        .key()
                        .labels()
                        .any(|l| l.key() == "kind" && l.value() == kind)
            })
            .map(|(_, _, _, value)| value)
    };
    assert_eq!(value("started"), Some(&DebugValue::Counter(1)));
    assert_eq!(value("won"), Some(&DebugValue::Counter(1)));
    assert_eq!(value("budget_refused"), Some(&DebugValue::Counter(0)));
}

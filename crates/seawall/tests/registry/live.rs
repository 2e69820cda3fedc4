use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::CircuitBreaker;
use seawall::circuit_breaker::{CircuitBreakerConfig, SlidingWindow, State};
use seawall::registry::document::{Document, Format};
use seawall::registry::{
    BuildContext, CircuitBreakers, Registries, Registry, RegistryError, RegistryEvent,
};
use seawall::{Backoff, Clock};
use serde_json::json;

#[derive(Debug)]
struct Boom;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn small_breakers() -> Registry<CircuitBreakers> {
    let registry = Registry::<CircuitBreakers>::new();
    registry
        .add_config(
            "default",
            CircuitBreaker::builder()
                .sliding_window(SlidingWindow::count(4))
                .minimum_number_of_calls(4)
                .wait_in_open(Duration::from_secs(30))
                .build_config()
                .unwrap(),
        )
        .unwrap();
    registry
}

#[test]
fn get_or_create_returns_the_existing_instance_and_ignores_a_new_config() {
    let registry = small_breakers();
    let first = registry.get_or_create("pg");
    let again = registry
        .get_or_create_with("pg", &CircuitBreakerConfig::default(), Default::default())
        .unwrap();
    first.transition_to_open().unwrap();
    assert_eq!(again.state(), State::Open, "the same instance");
    assert_eq!(again.config().sliding_window, SlidingWindow::count(4));
    assert!(matches!(
        registry.get_or_create_from("other", "nope"),
        Err(RegistryError::ConfigNotFound { .. })
    ));
}

#[test]
fn registry_events_report_additions_removals_replacements_and_changes_with_old_and_new() {
    let registry = small_breakers();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    registry.on_event(move |event| sink.lock().unwrap().push(event.clone()));
    registry.get_or_create("pg");
    registry
        .update("pg", |c| {
            CircuitBreaker::builder()
                .config(c)
                .failure_rate_threshold(30.0)
                .build_config()
        })
        .unwrap();
    registry.replace(
        "pg",
        seawall::CircuitBreaker::builder()
            .name("pg")
            .build()
            .unwrap(),
    );
    registry.remove("pg");
    let events = events.lock().unwrap();
    assert!(
        matches!(&events[0], RegistryEvent::Added { section: "circuitbreaker", name } if &**name == "pg")
    );
    match &events[1] {
        RegistryEvent::ConfigChanged { old, new, .. } => {
            assert_eq!(old.failure_rate_threshold, 50.0);
            assert_eq!(new.failure_rate_threshold, 30.0);
        }
        other => panic!("expected a config change, got {other:?}"),
    }
    assert!(matches!(&events[2], RegistryEvent::Replaced { .. }));
    assert!(matches!(&events[3], RegistryEvent::Removed { .. }));
}

#[tokio::test(start_paused = true)]
async fn breaker_thresholds_change_on_the_next_call_and_an_open_breaker_stays_open() {
    let registry = small_breakers();
    let breaker = registry.get_or_create("pg");
    for _ in 0..3 {
        let _ = breaker.call(|| async { Err::<(), _>(Boom) }).await;
    }
    // 3 failures of 3: below the minimum of 4. Lower the threshold: counts are kept.
    registry
        .update("pg", |c| {
            CircuitBreaker::builder()
                .config(c)
                .failure_rate_threshold(25.0)
                .build_config()
        })
        .unwrap();
    assert_eq!(breaker.metrics().failed_calls, 3, "window kept");
    breaker.call(|| async { Ok::<(), Boom>(()) }).await.unwrap();
    assert_eq!(
        breaker.state(),
        State::Open,
        "75 % >= 25 % on the next call"
    );

    registry
        .update("pg", |c| {
            CircuitBreaker::builder()
                .config(c)
                .failure_rate_threshold(99.0)
                .wait_in_open(ms(10))
                .build_config()
        })
        .unwrap();
    assert_eq!(breaker.state(), State::Open, "an open breaker stays open");
    let err = breaker
        .call(|| async { Ok::<(), Boom>(()) })
        .await
        .unwrap_err();
    assert!(
        err.retry_after().unwrap() > ms(10),
        "the current open period is not cut short"
    );
}

#[tokio::test(start_paused = true)]
async fn the_slow_call_threshold_and_window_size_change_live() {
    let registry = small_breakers();
    let breaker = registry.get_or_create("pg");
    let clock = Clock::tokio();
    let slow_call = || {
        let clock = clock.clone();
        async move {
            clock.sleep(ms(300)).await;
            Ok::<(), Boom>(())
        }
    };
    breaker.call(slow_call).await.unwrap();
    assert_eq!(breaker.metrics().slow_calls, 0, "60 s default: not slow");
    registry
        .patch(
            "pg",
            json!({ "slowCallDurationThreshold": "200ms", "slow-call-rate-threshold": 50 }),
        )
        .unwrap();
    breaker.call(slow_call).await.unwrap();
    assert_eq!(breaker.metrics().slow_calls, 1, "the next call uses 200 ms");

    // Resize 4 -> 2: the newest two outcomes stay.
    registry
        .patch("pg", json!({ "sliding_window_size": 2 }))
        .unwrap();
    let metrics = breaker.metrics();
    assert_eq!((metrics.buffered_calls, metrics.slow_calls), (2, 1));
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn an_invalid_change_is_rejected_whole_with_its_key_path() {
    let registry = small_breakers();
    let breaker = registry.get_or_create("pg");
    let before = breaker.config();
    let err = registry
        .patch(
            "pg",
            json!({ "failure_rate_threshold": 20, "minimum_number_of_calls": 0 }),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "circuitbreaker.instances.pg.minimum_number_of_calls: must be >= 1, got 0"
    );
    assert_eq!(
        breaker.config(),
        before,
        "nothing applied, not even the valid field"
    );
    let err = registry
        .patch("pg", json!({ "failure_rate": 20 }))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("circuitbreaker.instances.pg.failure_rate: unknown field `failure_rate`"),
        "{err}"
    );
    assert!(matches!(
        registry.patch("nope", json!({})),
        Err(RegistryError::InstanceNotFound { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn bulkhead_retry_and_timeout_changes_apply_to_the_next_call() {
    let registries = Registries::new();
    let bulkhead = registries.bulkheads().get_or_create("db");
    assert_eq!(bulkhead.max_concurrent_calls(), 25);
    registries
        .bulkheads()
        .patch("db", json!({ "maxConcurrentCalls": 1 }))
        .unwrap();
    let held = bulkhead.try_acquire().unwrap();
    assert!(
        bulkhead
            .call(|| async { Ok::<(), Boom>(()) })
            .await
            .unwrap_err()
            .is_bulkhead_full()
    );
    drop(held);

    let retry = registries.retries().get_or_create("q");
    registries
        .retries()
        .patch(
            "q",
            json!({ "max_attempts": 5, "wait_duration": 10, "enable_exponential_backoff": false }),
        )
        .unwrap();
    assert_eq!(
        retry.backoff(),
        Backoff::constant(ms(10))
            .max(Duration::from_secs(30))
            .full_jitter(),
        "the default's cap and jitter are kept"
    );
    let calls = AtomicUsize::new(0);
    let _ = retry
        .call(|| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(Boom) }
        })
        .await;
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    let err = registries
        .retries()
        .patch(
            "q",
            json!({ "budget": { "max_tokens": 5, "token_ratio": 1 } }),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("budget: cannot change while the retry runs"),
        "{err}"
    );

    let timeout = registries.timeouts().get_or_create("t");
    registries
        .timeouts()
        .patch("t", json!({ "timeout_duration": "50ms" }))
        .unwrap();
    let err = timeout
        .call(|| async {
            std::future::pending::<()>().await;
            Ok::<(), Boom>(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.as_timeout().unwrap().after(), ms(50));
}

#[tokio::test(start_paused = true)]
async fn reloading_a_changed_document_keeps_running_state() {
    let registries = Registries::from_str(
        "circuitbreaker:\n  instances:\n    pg: { sliding_window_size: 2, minimum_number_of_calls: 2 }\n",
        Format::Yaml,
        BuildContext::default(),
    )
    .unwrap();
    let breaker = registries.circuit_breakers().find("pg").unwrap();
    for _ in 0..2 {
        let _ = breaker.call(|| async { Err::<(), _>(Boom) }).await;
    }
    assert_eq!(breaker.state(), State::Open);
    let changed = Document::parse(
        "circuitbreaker:\n  instances:\n    pg: { sliding_window_size: 2, minimum_number_of_calls: 2, failure_rate_threshold: 90 }\n    new: {}\n",
        Format::Yaml,
    )
    .unwrap();
    registries.reload(&changed).unwrap();
    assert_eq!(breaker.state(), State::Open, "state kept across a reload");
    assert_eq!(breaker.config().failure_rate_threshold, 90.0);
    assert!(registries.circuit_breakers().find("new").is_some());

    // A document with one bad value is refused whole, before anything reaches the registry.
    let err = Document::parse(
        "circuitbreaker:\n  instances:\n    pg: { failure_rate_threshold: 10 }\n    broken: { failure_rate_threshold: 0 }\n",
        Format::Yaml,
    )
    .unwrap_err();
    assert_eq!(
        err.key(),
        "circuitbreaker.instances.broken.failure_rate_threshold"
    );
    assert_eq!(
        breaker.config().failure_rate_threshold,
        90.0,
        "nothing applied"
    );
}

#[test]
fn reconfiguration_under_concurrent_calls_stays_consistent() {
    const THREADS: usize = 3;
    const CALLS: usize = 5_000;
    let registries = Registries::new();
    registries
        .circuit_breakers()
        .add_config(
            "default",
            CircuitBreaker::builder()
                .sliding_window(SlidingWindow::count(50))
                .minimum_number_of_calls(50)
                .failure_rate_threshold(100.0)
                .disable_slow_call_tracking()
                .build_config()
                .unwrap(),
        )
        .unwrap();
    let breaker = registries.circuit_breakers().get_or_create("pg");
    let bulkhead = registries.bulkheads().get_or_create("pg");
    let changes = Arc::new(AtomicUsize::new(0));
    let counted = changes.clone();
    registries.circuit_breakers().on_event(move |event| {
        if matches!(event, RegistryEvent::ConfigChanged { .. }) {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak_over_limit = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let (breaker, bulkhead, in_flight, over) = (
                breaker.clone(),
                bulkhead.clone(),
                in_flight.clone(),
                peak_over_limit.clone(),
            );
            scope.spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    for call in 0..CALLS {
                        let limit = bulkhead.max_concurrent_calls();
                        let _ = bulkhead
                            .call(|| {
                                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                                // A shrink applies as permits return: only a limit seen
                                // before the call may be exceeded, never the larger one.
                                if now > 25 {
                                    over.fetch_add(1, Ordering::SeqCst);
                                }
                                let _ = limit;
                                in_flight.fetch_sub(1, Ordering::SeqCst);
                                async { Ok::<(), Boom>(()) }
                            })
                            .await;
                        let _ = breaker
                            .call(|| async move { if call % 7 == 0 { Err(Boom) } else { Ok(()) } })
                            .await;
                    }
                });
            });
        }
        scope.spawn(|| {
            for round in 0..200u32 {
                let threshold = if round % 2 == 0 { 90.0 } else { 100.0 };
                let size = 20 + round % 40;
                registries
                    .circuit_breakers()
                    .update("pg", |c| {
                        CircuitBreaker::builder()
                            .config(c)
                            .failure_rate_threshold(threshold)
                            .sliding_window(SlidingWindow::count(size))
                            .build_config()
                    })
                    .unwrap();
                registries
                    .bulkheads()
                    .update("pg", |mut c| {
                        c.max_concurrent_calls = 1 + (round as usize % 25);
                        Ok(c)
                    })
                    .unwrap();
            }
        });
    });
    assert_eq!(peak_over_limit.load(Ordering::SeqCst), 0);
    let config = breaker.config();
    assert_eq!(config.failure_rate_threshold, 100.0, "the last change won");
    assert_eq!(config.sliding_window, SlidingWindow::count(20 + 199 % 40));
    assert_eq!(changes.load(Ordering::SeqCst), 200, "one event per change");
    let metrics = breaker.metrics();
    assert!(metrics.buffered_calls <= u64::from(20 + 199u32 % 40));
    assert_eq!(
        breaker.state(),
        State::Closed,
        "1 in 7 failures never reaches 90 %"
    );
    assert_eq!(
        bulkhead.available_permits(),
        bulkhead.max_concurrent_calls(),
        "every permit returned"
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limiters_come_from_documents_and_change_live() {
    let registries = Registries::from_str(
        "ratelimiter:\n  instances:\n    api: { limit_for_period: 1, limit_refresh_period: 1s, timeout_duration: 0 }\n",
        Format::Yaml,
        BuildContext::default(),
    )
    .unwrap();
    let limiter = registries.rate_limiters().find("api").unwrap();
    limiter.call(|| async { Ok::<(), Boom>(()) }).await.unwrap();
    assert!(
        limiter
            .call(|| async { Ok::<(), Boom>(()) })
            .await
            .unwrap_err()
            .is_rate_limited()
    );
    registries
        .rate_limiters()
        .patch("api", json!({ "timeoutDuration": "2s" }))
        .unwrap();
    limiter.call(|| async { Ok::<(), Boom>(()) }).await.unwrap();
    let err = registries
        .rate_limiters()
        .patch("api", json!({ "limit_for_period": 0 }))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ratelimiter.instances.api.limit_for_period: must be >= 1, got 0"
    );
}

#[tokio::test(start_paused = true)]
async fn adaptive_limiters_come_from_documents_and_change_live_keeping_their_limit() {
    let registries = Registries::from_str(
        "adaptiveLimiter:\n  instances:\n    charge: { algorithm: vegas, initial_limit: 12, max_limit: 40, max_wait_duration: 10ms }\n",
        Format::Yaml,
        BuildContext::default(),
    )
    .unwrap();
    let limiter = registries.adaptive_limiters().find("charge").unwrap();
    assert_eq!(limiter.limit(), 12);
    assert_eq!(
        limiter.config().algorithm,
        seawall::adaptive::LimitAlgorithm::Vegas
    );
    assert_eq!(limiter.config().max_wait, ms(10));
    limiter.call(|| async { Ok::<(), Boom>(()) }).await.unwrap();

    registries
        .adaptive_limiters()
        .patch(
            "charge",
            json!({ "algorithm": "aimd", "maxLimit": 8, "minLimit": 2, "initialLimit": 2 }),
        )
        .unwrap();
    assert_eq!(limiter.limit(), 8, "kept, clamped into the new bounds");
    assert_eq!(
        limiter.config().algorithm,
        seawall::adaptive::LimitAlgorithm::Aimd
    );
    let err = registries
        .adaptive_limiters()
        .patch("charge", json!({ "backoff_ratio": 1.5 }))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "adaptivelimiter.instances.charge.backoff_ratio: must be in [0.5, 1), got 1.5"
    );
}

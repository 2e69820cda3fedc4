use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use seawall::fault::{FaultConfig, FaultEvent, FaultKind, InjectedFault};
use seawall::{Clock, ErrorKind, FaultInjector, Policy, Retry, Timeout};

use crate::support::{Failure, ms};

fn injector(config: FaultConfig, seed: u64) -> FaultInjector {
    FaultInjector::builder()
        .config(config)
        .seed(seed)
        .build()
        .unwrap()
}

/// The indices of the calls (out of `calls`) that failed with an injected error.
async fn injected_calls(injector: &FaultInjector, calls: usize) -> Vec<usize> {
    let mut hit = Vec::new();
    for n in 0..calls {
        let outcome = injector.call(|| async { Ok::<_, Failure>(n) }).await;
        match outcome {
            Ok(value) => assert_eq!(value, n),
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::Injected);
                hit.push(n);
            }
        }
    }
    hit
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_injects_on_the_same_calls_and_another_seed_does_not() {
    let config = FaultConfig::new().enabled(true).error(0.2);
    let first = injected_calls(&injector(config, 42), 1_000).await;
    let again = injected_calls(&injector(config, 42), 1_000).await;
    let other = injected_calls(&injector(config, 43), 1_000).await;
    assert_eq!(first, again, "same seed, same injected calls");
    assert_ne!(first, other, "another seed, another sequence");
    assert!(
        (150..=250).contains(&first.len()),
        "{} of 1000 at 20 %",
        first.len()
    );
}

#[tokio::test(start_paused = true)]
async fn each_kind_injects_at_about_its_rate_and_exactly_again_with_the_same_seed() {
    let config = FaultConfig::new()
        .enabled(true)
        .error(0.1)
        .latency(0.25, ms(10))
        .outcome(0.3);
    let run = |seed| async move {
        let injector = injector(config, seed).with_outcome(|| Ok::<_, Failure>(u32::MAX));
        let (mut errors, mut replaced) = (0, 0);
        for _ in 0..10_000 {
            match injector.call(|| async { Ok::<_, Failure>(1) }).await {
                Err(err) if err.is_injected() => errors += 1,
                Ok(u32::MAX) => replaced += 1,
                Ok(_) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(injector.injected(FaultKind::Error), errors);
        assert_eq!(injector.injected(FaultKind::Outcome), replaced);
        (errors, injector.injected(FaultKind::Latency), replaced)
    };
    let (errors, delays, replaced) = run(9).await;
    let near = |got: u64, rate: f64| (got as f64 / 10_000.0 - rate).abs() < 0.02;
    assert!(near(errors, 0.1), "errors {errors}");
    assert!(near(delays, 0.25), "delays {delays}");
    // An outcome is replaced only when no error was drawn: 0.9 × 0.3.
    assert!(near(replaced, 0.27), "replaced {replaced}");
    assert_eq!(
        run(9).await,
        (errors, delays, replaced),
        "exact with the seed"
    );
}

#[tokio::test(start_paused = true)]
async fn an_injected_latency_is_exactly_the_configured_delay_then_the_call_runs() {
    let injector = injector(FaultConfig::new().enabled(true).latency(1.0, ms(250)), 1);
    let clock = Clock::tokio();
    let start = clock.now();
    let value = injector
        .call(|| async { Ok::<_, Failure>("ran") })
        .await
        .unwrap();
    assert_eq!(value, "ran");
    assert_eq!(clock.now() - start, ms(250));
    assert_eq!(injector.injected(FaultKind::Latency), 1);
}

#[tokio::test(start_paused = true)]
async fn a_disabled_injector_injects_nothing_and_takes_no_time() {
    let config = FaultConfig::new()
        .error(1.0)
        .latency(1.0, ms(100))
        .outcome(1.0);
    let injector = injector(config, 3).with_outcome(|| Ok::<_, Failure>(0));
    let clock = Clock::tokio();
    let start = clock.now();
    for n in 1..=1_000 {
        let value = injector.call(|| async { Ok::<_, Failure>(n) }).await;
        assert_eq!(value.unwrap(), n);
    }
    assert_eq!(clock.now(), start);
    for kind in FaultKind::ALL {
        assert_eq!(injector.injected(kind), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn an_injected_error_does_not_run_the_operation() {
    let injector = injector(FaultConfig::new().enabled(true).error(1.0), 5);
    let started = AtomicUsize::new(0);
    let err = injector
        .call(|| {
            started.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Failure>(()) }
        })
        .await
        .unwrap_err();
    assert!(err.is_injected());
    assert_eq!(started.load(Ordering::SeqCst), 0);
    assert_eq!(err.to_string(), "fault injected on purpose");
    assert!(err.into_box_error().is::<InjectedFault>());
}

#[tokio::test(start_paused = true)]
async fn with_error_injects_the_operations_own_error_which_a_retry_then_retries() {
    let injector =
        injector(FaultConfig::new().enabled(true).error(1.0), 5).with_error(Failure::transient);
    let err = injector
        .call(|| async { Ok::<_, Failure>(()) })
        .await
        .unwrap_err();
    assert_eq!(err.inner(), Some(&Failure::transient()));

    let policy = Policy::builder()
        .retry(
            Retry::builder()
                .max_attempts(3)
                .no_backoff()
                .build()
                .unwrap(),
        )
        .fault(injector.clone())
        .build();
    let err = policy
        .call(|| async { Ok::<_, Failure>(()) })
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), Some(3), "each attempt drew its own fault");
    assert_eq!(injector.injected(FaultKind::Error), 4);
}

#[tokio::test(start_paused = true)]
async fn a_replaced_outcome_is_returned_without_running_the_operation() {
    let injector = injector(FaultConfig::new().enabled(true).outcome(1.0), 5)
        .with_outcome(|| Err(Failure::permanent()));
    let started = AtomicUsize::new(0);
    let err = injector
        .call(|| {
            started.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Failure>(1) }
        })
        .await
        .unwrap_err();
    assert_eq!(err.inner(), Some(&Failure::permanent()));
    assert_eq!(started.load(Ordering::SeqCst), 0);

    // Without a replacement the outcome rate has no effect.
    let plain = injector_without_outcome();
    assert_eq!(
        plain.call(|| async { Ok::<_, Failure>(1) }).await.unwrap(),
        1
    );
    assert_eq!(plain.injected(FaultKind::Outcome), 0);
}

fn injector_without_outcome() -> FaultInjector {
    injector(FaultConfig::new().enabled(true).outcome(1.0), 5)
}

#[tokio::test(start_paused = true)]
async fn switching_takes_effect_on_the_next_call_and_only_changes_are_events() {
    let injector = injector(FaultConfig::new().error(1.0), 11);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    injector.on_event(move |event| {
        if let FaultEvent::Switched { enabled, .. } = event {
            sink.lock().unwrap().push(*enabled);
        }
    });
    let call = || injector.call(|| async { Ok::<_, Failure>(()) });
    assert!(call().await.is_ok());
    injector.set_enabled(true);
    injector.set_enabled(true);
    assert!(call().await.unwrap_err().is_injected());
    injector.set_enabled(false);
    assert!(call().await.is_ok());
    assert_eq!(*events.lock().unwrap(), [true, false]);
}

#[tokio::test(start_paused = true)]
async fn reconfiguring_keeps_the_generators_place() {
    let config = FaultConfig::new().enabled(true).error(0.5);
    let reference = injected_calls(&injector(config, 77), 1_000).await;

    let live = injector(config, 77);
    let mut seen = injected_calls(&live, 500).await;
    live.reconfigure(config.error(0.5)).unwrap();
    let rest = injected_calls(&live, 500).await;
    seen.extend(rest.into_iter().map(|n| n + 500));
    assert_eq!(seen, reference);

    let err = live.reconfigure(config.error(1.5)).unwrap_err();
    assert_eq!(err.key(), "error_injection_rate");
    assert_eq!(live.config(), config, "nothing changed");
}

#[tokio::test(start_paused = true)]
async fn an_injected_latency_is_cut_short_by_a_timeout_around_it() {
    let policy = Policy::builder()
        .timeout(Timeout::new(ms(100)))
        .fault(injector(
            FaultConfig::new().enabled(true).latency(1.0, ms(500)),
            1,
        ))
        .build();
    let started = AtomicUsize::new(0);
    let err = policy
        .call(|| {
            started.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Failure>(()) }
        })
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(
        started.load(Ordering::SeqCst),
        0,
        "cancelled during the delay"
    );
}

#[cfg(feature = "tower")]
mod tower_layer {
    use std::convert::Infallible;

    use seawall::fault::{FaultConfig, FaultLayer, InjectedFault};
    use seawall::{Clock, Error};
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    use super::injector;
    use crate::support::ms;

    #[tokio::test(start_paused = true)]
    async fn the_tower_layer_injects_a_downcastable_marker_and_delays() {
        let faults = injector(FaultConfig::new().enabled(true).error(1.0), 1);
        let service = ServiceBuilder::new()
            .layer(FaultLayer::new(faults.clone()))
            .service(service_fn(|n: u32| async move { Ok::<_, Infallible>(n) }));
        let err = service.clone().oneshot(1).await.unwrap_err();
        assert!(err.is::<InjectedFault>());
        assert!(Error::from_box_error(err).is_injected());

        faults
            .reconfigure(FaultConfig::new().enabled(true).latency(1.0, ms(40)))
            .unwrap();
        let clock = Clock::tokio();
        let start = clock.now();
        assert_eq!(service.clone().oneshot(2).await.unwrap(), 2);
        assert_eq!(clock.now() - start, ms(40));

        faults.set_enabled(false);
        assert_eq!(service.oneshot(3).await.unwrap(), 3);
        assert_eq!(clock.now() - start, ms(40));
    }
}

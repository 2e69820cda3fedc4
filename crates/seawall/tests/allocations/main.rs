//! A warm policy makes no heap allocation per call on the happy path.
//!
//! `allocation-counter` installs a counting global allocator that counts per thread, so other
//! tests running in parallel do not disturb the figures.

use std::future::{Future, ready};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use seawall::{Backoff, Bulkhead, Error, ErrorKind, Fallback, Policy, Retry, RetryBudget, Timeout};

#[derive(Debug)]
struct Failure;

/// Polls one call of `policy` around a ready operation to completion, with a no-op waker.
fn one_call<F: Future<Output = Result<u64, Error<Failure>>>>(call: F) -> u64 {
    let mut call = pin!(call);
    let mut cx = Context::from_waker(Waker::noop());
    match call.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(value)) => value,
        other => panic!("a ready operation must complete on the first poll: {other:?}"),
    }
}

#[test]
fn a_warm_timeout_retry_bulkhead_fallback_policy_allocates_nothing_per_call() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let policy = Policy::builder()
        .fallback(Fallback::value(0u64).when_kind([ErrorKind::CircuitOpen]))
        .timeout(Timeout::new(Duration::from_secs(10)))
        .retry(
            Retry::builder()
                .max_attempts(3)
                .backoff(Backoff::exponential(Duration::from_millis(10)).full_jitter())
                .budget(RetryBudget::new(10.0, 0.1).unwrap())
                .build()
                .unwrap()
                .retry_if(|_: &Failure| true),
        )
        .bulkhead(Bulkhead::new(8))
        .timeout(Timeout::new(Duration::from_secs(1)))
        .build();

    // Warm up: anything lazily initialised happens here.
    for _ in 0..16 {
        one_call(policy.call(|| ready(Ok::<u64, Failure>(1))));
    }

    const CALLS: u64 = 10_000;
    let mut sum = 0;
    let allocations = allocation_counter::measure(|| {
        for n in 0..CALLS {
            sum += one_call(policy.call(|| ready(Ok::<u64, Failure>(n))));
        }
    });
    assert_eq!(sum, CALLS * (CALLS - 1) / 2, "every call ran");
    assert_eq!(
        allocations.count_total, 0,
        "{} allocations over {CALLS} calls",
        allocations.count_total
    );
}

#[test]
fn a_warm_adaptive_limiter_allocates_nothing_per_call_for_every_algorithm() {
    use seawall::AdaptiveLimiter;
    use seawall::adaptive::{AdaptiveLimiterConfig, LimitAlgorithm};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    for algorithm in [
        LimitAlgorithm::Aimd,
        LimitAlgorithm::Vegas,
        LimitAlgorithm::Gradient2,
    ] {
        let mut config = AdaptiveLimiterConfig::new(algorithm);
        config.window_size = 10;
        let limiter = AdaptiveLimiter::builder().config(config).build().unwrap();
        // Successes and drops, so every branch that moves the limit runs.
        let policy = Policy::builder().adaptive_limiter(limiter.clone()).build();
        for n in 0..16 {
            one_call(policy.call(|| ready(Ok::<u64, Failure>(n))));
        }

        const CALLS: u64 = 10_000;
        let mut sum = 0;
        let allocations = allocation_counter::measure(|| {
            for n in 0..CALLS {
                sum += one_call(policy.call(|| ready(Ok::<u64, Failure>(n))));
                if n % 100 == 0 {
                    let _ = limiter.try_acquire().map(|permit| permit.dropped());
                }
            }
        });
        assert_eq!(sum, CALLS * (CALLS - 1) / 2, "every call ran");
        assert_eq!(
            allocations.count_total, 0,
            "{algorithm:?}: {} allocations over {CALLS} calls",
            allocations.count_total
        );
    }
}

#[test]
fn a_closed_breaker_allocates_nothing_per_call_with_either_window_and_slow_call_tracking() {
    use seawall::circuit_breaker::{CircuitBreaker, SlidingWindow};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let windows = [
        SlidingWindow::count(100),
        SlidingWindow::time(Duration::from_secs(10)),
        SlidingWindow::time_with_buckets(Duration::from_secs(1), Duration::from_millis(10)),
    ];
    for window in windows {
        let breaker = CircuitBreaker::builder()
            .sliding_window(window)
            .minimum_number_of_calls(10)
            .slow_call_duration_threshold(Duration::from_millis(500))
            .build()
            .unwrap();
        let policy = Policy::builder().circuit_breaker(breaker.clone()).build();
        for _ in 0..16 {
            one_call(policy.call(|| ready(Ok::<u64, Failure>(1))));
        }
        const CALLS: u64 = 10_000;
        let allocations = allocation_counter::measure(|| {
            for n in 0..CALLS {
                one_call(policy.call(|| ready(Ok::<u64, Failure>(n))));
            }
        });
        assert_eq!(
            allocations.count_total, 0,
            "{window:?}: {} allocations",
            allocations.count_total
        );
        assert!(
            breaker.metrics().buffered_calls > 0,
            "{window:?}: calls were recorded"
        );
    }
}

#[test]
fn an_open_breaker_rejects_without_allocating() {
    use seawall::circuit_breaker::CircuitBreaker;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let breaker = CircuitBreaker::builder().build().unwrap();
    breaker.transition_to_open().unwrap();
    let policy = Policy::builder().circuit_breaker(breaker).build();
    let mut cx = Context::from_waker(Waker::noop());
    let mut reject = || {
        let mut call = pin!(policy.call(|| ready(Ok::<u64, Failure>(1))));
        assert!(
            matches!(call.as_mut().poll(&mut cx), Poll::Ready(Err(ref e)) if e.is_circuit_open())
        );
    };
    for _ in 0..16 {
        reject();
    }
    let allocations = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            reject();
        }
    });
    assert_eq!(allocations.count_total, 0);
}

/// A future that is pending on its first poll and ready with `value` on its second.
struct YieldOnce(Option<u64>, bool);

impl Future for YieldOnce {
    type Output = Result<u64, Failure>;

    fn poll(mut self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        if std::mem::replace(&mut self.1, true) {
            Poll::Ready(Ok(self.0.take().unwrap_or(0)))
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn a_hedge_whose_primary_answers_before_the_delay_allocates_nothing() {
    use seawall::Hedge;
    use seawall::hedge::{HedgeBudgetConfig, HedgeConfig};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let mut config = HedgeConfig::fixed(Duration::from_millis(50));
    config.budget = Some(HedgeBudgetConfig::new(0.1, 10.0));
    let fixed = Hedge::builder().config(config).build().unwrap();
    let percentile = Hedge::builder()
        .config(HedgeConfig::percentile(
            0.95,
            Duration::from_millis(5),
            Duration::from_secs(1),
        ))
        .build()
        .unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    for hedge in [fixed, percentile] {
        let policy = Policy::builder().hedge(hedge.clone()).build();
        // Ready at once: no clock read, no timer.
        let ready_at_once = |n: u64| one_call(policy.call(|| ready(Ok::<u64, Failure>(n))));
        // Pending once (the timer is armed), then ready before the delay.
        let mut pending_once = |n: u64| {
            let mut call = pin!(policy.call(|| YieldOnce(Some(n), false)));
            assert!(call.as_mut().poll(&mut cx).is_pending());
            match call.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(value)) => value,
                other => panic!("the primary answers on its second poll: {other:?}"),
            }
        };
        for n in 0..16 {
            ready_at_once(n);
            pending_once(n);
        }
        const CALLS: u64 = 1_000;
        let mut sum = 0;
        let allocations = allocation_counter::measure(|| {
            for n in 0..CALLS {
                sum += ready_at_once(n) + pending_once(n);
            }
        });
        assert_eq!(sum, CALLS * (CALLS - 1), "every call ran");
        assert_eq!(
            allocations.count_total, 0,
            "{hedge:?}: {} allocations over {CALLS} calls",
            allocations.count_total
        );
        assert_eq!(hedge.metrics().hedges_started, 0);
    }
}

#[test]
fn the_counter_does_see_allocations() {
    // Guards against a vacuous zero: the counting allocator is installed and counting.
    let allocations = allocation_counter::measure(|| {
        std::hint::black_box(Box::new(7u64));
    });
    assert_eq!(allocations.count_total, 1);
}

/// A `default` configuration with `n` tags, and `n` instances that inherit them.
#[cfg(feature = "serde")]
fn tags_inherited_by_many(n: usize) -> String {
    let tags: Vec<String> = (0..n).map(|i| format!("t{i}: v")).collect();
    let mut text = format!(
        "bulkhead:\n  configs:\n    default: {{tags: {{{}}}}}\n  instances:\n",
        tags.join(", ")
    );
    for i in 0..n {
        text.push_str(&format!("    i{i}: {{}}\n"));
    }
    text
}

#[cfg(feature = "serde")]
#[test]
fn inherited_tags_are_shared_so_a_document_takes_memory_in_proportion_to_its_size() {
    use seawall::registry::BuildContext;
    use seawall::registry::document::{Document, Format};

    // 400 instances inheriting 400 tags: copies would be 160,000 tags, over 10 MB.
    let text = tags_inherited_by_many(400);
    let mut document = None;
    let parsing = allocation_counter::measure(|| {
        document = Some(Document::parse(&text, Format::Yaml).unwrap());
    });
    assert!(
        parsing.bytes_max < 200 * text.len() as u64,
        "{} bytes at the peak for {} bytes of text",
        parsing.bytes_max,
        text.len()
    );
    let document = document.unwrap();
    let building = allocation_counter::measure(|| {
        let registries =
            seawall::registry::Registries::from_document(&document, BuildContext::default())
                .unwrap();
        assert_eq!(registries.bulkheads().tags("i7").unwrap().len(), 400);
    });
    assert!(
        building.bytes_max < 200 * text.len() as u64,
        "{} bytes at the peak for {} bytes of text",
        building.bytes_max,
        text.len()
    );
}

#[cfg(feature = "fault")]
#[test]
fn a_disabled_fault_injector_allocates_nothing_and_neither_does_an_injected_error() {
    use seawall::FaultInjector;
    use seawall::fault::FaultConfig;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let injector = FaultInjector::builder()
        .config(
            FaultConfig::new()
                .error(1.0)
                .latency(1.0, Duration::from_secs(1)),
        )
        .seed(1)
        .build()
        .unwrap();
    let policy = Policy::builder()
        .timeout(Timeout::new(Duration::from_secs(10)))
        .fault(injector.clone())
        .build();
    for _ in 0..16 {
        one_call(policy.call(|| ready(Ok::<u64, Failure>(1))));
    }
    const CALLS: u64 = 10_000;
    let mut sum = 0;
    let disabled = allocation_counter::measure(|| {
        for n in 0..CALLS {
            sum += one_call(policy.call(|| ready(Ok::<u64, Failure>(n))));
        }
    });
    assert_eq!(sum, CALLS * (CALLS - 1) / 2, "every call ran");
    assert_eq!(disabled.count_total, 0, "disabled");

    injector
        .reconfigure(FaultConfig::new().enabled(true).error(1.0))
        .unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let injected = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            let mut call = pin!(policy.call(|| ready(Ok::<u64, Failure>(1))));
            assert!(
                matches!(call.as_mut().poll(&mut cx), Poll::Ready(Err(ref e)) if e.is_injected())
            );
        }
    });
    assert_eq!(injected.count_total, 0, "injected errors");
}

#[test]
fn looking_up_a_live_key_allocates_nothing() {
    use seawall::circuit_breaker::CircuitBreakerConfig;
    use seawall::clock::ManualClock;
    use seawall::keyed::Keyed;
    use seawall::registry::CircuitBreakers;

    let clock = ManualClock::new();
    let keyed = Keyed::<CircuitBreakers>::builder(CircuitBreakerConfig::default())
        .clock(clock.clone().into())
        .idle_ttl(Some(Duration::from_secs(60)))
        .build()
        .unwrap();
    for key in ["SAMSUNG", "KB", "HYUNDAI"] {
        keyed.get(key);
    }
    let allocations = allocation_counter::measure(|| {
        for n in 0..10_000u64 {
            // Time moves, so last-use times are written (10 s in all: no idle sweep falls due).
            clock.advance(Duration::from_millis(n % 3));
            let breaker = keyed.get(["SAMSUNG", "KB", "HYUNDAI"][(n % 3) as usize]);
            assert!(breaker.is_call_permitted());
        }
    });
    assert_eq!(
        allocations.count_total, 0,
        "a lookup by &str takes a read lock and clones a handle"
    );
}

/// Polls one call that must fail at once, and checks what failed it.
fn one_rejection<F: Future<Output = Result<u64, Error<Failure>>>>(
    call: F,
    check: impl Fn(&Error<Failure>) -> bool,
) {
    let mut call = pin!(call);
    let mut cx = Context::from_waker(Waker::noop());
    match call.as_mut().poll(&mut cx) {
        Poll::Ready(Err(error)) => assert!(check(&error), "unexpected error: {error:?}"),
        other => panic!("the call must be rejected on the first poll: {other:?}"),
    }
}

#[test]
fn a_full_bulkhead_a_spent_rate_limiter_and_an_open_breaker_behind_a_retry_reject_without_allocating()
 {
    use seawall::RateLimiter;
    use seawall::circuit_breaker::CircuitBreaker;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let full = Policy::builder()
        .bulkhead(
            Bulkhead::builder()
                .name("db")
                .max_concurrent_calls(0)
                .max_wait(Duration::ZERO)
                .build()
                .unwrap(),
        )
        .build();
    let limiter = RateLimiter::builder()
        .limit_for_period(1)
        .limit_refresh_period(Duration::from_secs(3600))
        .timeout(Duration::ZERO)
        .build()
        .unwrap();
    let limited = Policy::builder().rate_limiter(limiter).build();
    one_call(limited.call(|| ready(Ok::<u64, Failure>(1))));
    let breaker = CircuitBreaker::builder().build().unwrap();
    breaker.transition_to_open().unwrap();
    let passed_through = Policy::builder()
        .retry(
            Retry::builder()
                .max_attempts(3)
                .build()
                .unwrap()
                .retry_error_if(|_: &Error<Failure>| false),
        )
        .circuit_breaker(breaker.clone())
        .build();
    let gave_up = Policy::builder()
        .retry(Retry::builder().max_attempts(1).build().unwrap())
        .circuit_breaker(breaker)
        .build();

    let reject = || {
        one_rejection(full.call(|| ready(Ok::<u64, Failure>(1))), |e| {
            e.is_bulkhead_full() && e.rejected_by() == Some("db")
        });
        one_rejection(limited.call(|| ready(Ok::<u64, Failure>(1))), |e| {
            e.is_rate_limited() && e.retry_after().is_some()
        });
        one_rejection(passed_through.call(|| ready(Ok::<u64, Failure>(1))), |e| {
            e.is_circuit_open() && e.attempts() == Some(1) && !e.is_retries_exhausted()
        });
        one_rejection(gave_up.call(|| ready(Ok::<u64, Failure>(1))), |e| {
            e.is_circuit_open() && e.attempts() == Some(1)
        });
    };
    for _ in 0..16 {
        reject();
    }
    let allocations = allocation_counter::measure(|| {
        for _ in 0..1_000 {
            reject();
        }
    });
    assert_eq!(allocations.count_total, 0);
}

#[test]
fn a_timeout_that_fires_allocates_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let policy = Policy::builder()
        .timeout(Timeout::new(Duration::from_millis(5)))
        .build();
    let time_out = || async {
        let error = policy
            .call(std::future::pending::<Result<u64, Failure>>)
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert_eq!(
            error.as_timeout().unwrap().after(),
            Duration::from_millis(5)
        );
    };
    runtime.block_on(async {
        for _ in 0..16 {
            time_out().await;
        }
    });
    let allocations = allocation_counter::measure(|| {
        runtime.block_on(async {
            for _ in 0..1_000 {
                time_out().await;
            }
        });
    });
    assert_eq!(allocations.count_total, 0);
}

use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::retry::{RetryEvent, SplitMix64};
use seawall::{Attempt, Backoff, Error, ErrorKind, Fallback, GaveUp, Policy, Retry, RetryBudget};

use crate::support::{AttemptLog, Failure, ms};

/// Runs an operation that fails `failures` times with `error`, then succeeds with `"ok"`.
async fn run_failing<C>(
    retry: &Retry<C>,
    log: &AttemptLog,
    failures: usize,
    error: Failure,
) -> Result<&'static str, Error<Failure>>
where
    C: seawall::retry::RetryClassifier<&'static str, Failure>,
{
    retry
        .call(|| {
            let attempt = log.record();
            let error = error.clone();
            async move {
                if attempt <= failures {
                    Err(error)
                } else {
                    Ok("ok")
                }
            }
        })
        .await
}

fn retry(max_attempts: u32, backoff: Backoff) -> Retry {
    Retry::builder()
        .max_attempts(max_attempts)
        .backoff(backoff)
        .seed(42)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn constant_backoff_waits_the_same_before_every_retry() {
    let log = AttemptLog::new();
    let result = run_failing(
        &retry(4, Backoff::constant(ms(300))),
        &log,
        3,
        Failure::transient(),
    )
    .await;
    assert_eq!(result.unwrap(), "ok");
    assert_eq!(log.starts(), [ms(0), ms(300), ms(600), ms(900)]);
}

#[tokio::test(start_paused = true)]
async fn linear_backoff_grows_by_its_step() {
    let log = AttemptLog::new();
    let backoff = Backoff::linear(ms(100), ms(50));
    run_failing(&retry(4, backoff), &log, 3, Failure::transient())
        .await
        .unwrap();
    assert_eq!(log.gaps(), [ms(100), ms(150), ms(200)]);
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_multiplies_and_stops_at_its_cap() {
    let log = AttemptLog::new();
    let backoff = Backoff::exponential(ms(100)).multiplier(3.0).max(ms(1000));
    run_failing(&retry(6, backoff), &log, 5, Failure::transient())
        .await
        .unwrap();
    assert_eq!(log.gaps(), [ms(100), ms(300), ms(900), ms(1000), ms(1000)]);
}

/// The schedule a jittered backoff must follow with seed 42, computed independently of the
/// retry machinery from the same seeded sequence.
fn expected_schedule(backoff: Backoff, retries: u32) -> Vec<Duration> {
    let random = SplitMix64::seeded(42);
    let mut previous = None;
    (1..=retries)
        .map(|retry| {
            let delay = backoff.delay(retry, previous, &random);
            previous = Some(delay);
            delay
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn seeded_jitter_gives_an_exact_reproducible_schedule_within_bounds() {
    let base = Backoff::exponential(ms(100)).max(ms(2000));
    for backoff in [
        base.full_jitter(),
        base.equal_jitter(),
        base.decorrelated_jitter(),
    ] {
        let log = AttemptLog::new();
        run_failing(&retry(6, backoff), &log, 5, Failure::transient())
            .await
            .unwrap();
        let gaps = log.gaps();
        // tokio's timer wheel has millisecond resolution: a sleep ends on the next whole ms.
        let expected: Vec<Duration> = expected_schedule(backoff, 5)
            .into_iter()
            .map(|d| Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64))
            .collect();
        assert_eq!(gaps, expected, "{:?}", backoff.jitter_mode());
        let mut previous = None;
        for (retry, delay) in (1..).zip(expected_schedule(backoff, 5)) {
            assert!(
                delay >= backoff.lower_bound(retry),
                "{backoff:?} retry {retry}: {delay:?}"
            );
            assert!(
                delay <= backoff.upper_bound(retry, previous),
                "{backoff:?} retry {retry}: {delay:?}"
            );
            previous = Some(delay);
        }
        // Jitter actually varies the waits.
        assert!(
            gaps.windows(2).any(|w| w[0] != w[1]) || backoff.jitter_mode() == seawall::Jitter::None
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_last_error_is_returned_with_the_attempt_count_when_attempts_run_out() {
    let log = AttemptLog::new();
    let err = run_failing(&retry(3, Backoff::none()), &log, 10, Failure::transient())
        .await
        .unwrap_err();
    assert_eq!(log.count(), 3);
    assert_eq!(err.inner(), Some(&Failure::transient()));
    assert_eq!(err.attempts(), Some(3));
    assert_eq!(err.gave_up(), Some(GaveUp::MaxAttempts));
    assert_eq!(
        err.to_string(),
        "gave up after 3 attempts: max attempts reached"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_if_stops_at_the_first_error_it_rejects() {
    let log = AttemptLog::new();
    let retry = retry(5, Backoff::none()).retry_if(|e: &Failure| e.transient);
    let err = run_failing(&retry, &log, 10, Failure::permanent())
        .await
        .unwrap_err();
    assert_eq!(log.count(), 1);
    assert_eq!(err.attempts(), Some(1));
    assert!(
        !err.is_retries_exhausted(),
        "not retryable is not exhaustion"
    );
    assert_eq!(retry.metrics().failed_without_retry, 1);

    let log = AttemptLog::new();
    assert_eq!(
        run_failing(&retry, &log, 2, Failure::transient())
            .await
            .unwrap(),
        "ok"
    );
    assert_eq!(log.count(), 3);
    assert_eq!(retry.metrics().successful_with_retry, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_on_result_retries_rejected_values_then_returns_the_last_one() {
    let retry =
        retry(3, Backoff::constant(ms(10))).retry_on_result(|status: &&str| *status == "PENDING");
    let log = AttemptLog::new();
    let outcome = retry
        .call(|| {
            log.record();
            async { Ok::<_, Failure>("PENDING") }
        })
        .await;
    assert_eq!(
        outcome.unwrap(),
        "PENDING",
        "without fail_after_max_attempts the last result comes back"
    );
    assert_eq!(log.count(), 3);
    assert_eq!(retry.metrics().failed_with_retry, 1);

    let log = AttemptLog::new();
    let outcome = retry
        .call(|| {
            let attempt = log.record();
            async move { Ok::<_, Failure>(if attempt < 2 { "PENDING" } else { "SUCCESS" }) }
        })
        .await;
    assert_eq!(outcome.unwrap(), "SUCCESS");
    assert_eq!(log.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_on_result_with_fail_after_max_attempts_returns_an_exhausted_error() {
    let retry = Retry::builder()
        .name("poll-status")
        .max_attempts(2)
        .no_backoff()
        .fail_after_max_attempts(true)
        .build()
        .unwrap()
        .retry_on_result(|status: &&str| *status == "PENDING");
    let err = retry
        .call(|| async { Ok::<_, Failure>("PENDING") })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RetriesExhausted);
    assert!(err.is_retries_exhausted());
    assert_eq!(err.attempts(), Some(2));
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_stops_before_a_wait_that_would_pass_it() {
    let retry = Retry::builder()
        .max_attempts(10)
        .backoff(Backoff::constant(ms(400)))
        .max_elapsed(ms(1000))
        .build()
        .unwrap();
    let log = AttemptLog::new();
    let err = run_failing(&retry, &log, 100, Failure::transient())
        .await
        .unwrap_err();
    // Attempts at 0, 400, 800; a wait to 1200 would pass 1000.
    assert_eq!(log.starts(), [ms(0), ms(400), ms(800)]);
    assert_eq!(err.gave_up(), Some(GaveUp::MaxElapsed));
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_hint_overrides_the_backoff() {
    let retry = retry(3, Backoff::constant(ms(10))).retry_after_hint(|e: &Failure| e.retry_after);
    let log = AttemptLog::new();
    let throttled = Failure {
        transient: true,
        retry_after: Some(Duration::from_secs(2)),
    };
    run_failing(&retry, &log, 1, throttled).await.unwrap();
    assert_eq!(log.gaps(), [Duration::from_secs(2)]);

    let log = AttemptLog::new();
    run_failing(&retry, &log, 1, Failure::transient())
        .await
        .unwrap();
    assert_eq!(log.gaps(), [ms(10)], "no hint: the backoff applies");
}

#[tokio::test(start_paused = true)]
async fn a_drained_budget_stops_retries_and_successes_refill_it() {
    let budget = RetryBudget::new(4.0, 1.0).unwrap();
    let retry = Retry::builder()
        .max_attempts(5)
        .no_backoff()
        .budget(budget.clone())
        .build()
        .unwrap();
    let log = AttemptLog::new();
    // Failures cost 1 token each: 4 -> 3 (retry allowed, 3 > 2) -> 2 (refused, 2 <= 2).
    let err = run_failing(&retry, &log, 100, Failure::transient())
        .await
        .unwrap_err();
    assert_eq!(log.count(), 2);
    assert_eq!(err.gave_up(), Some(GaveUp::BudgetExhausted));
    assert_eq!(budget.tokens(), 2.0);

    // A second caller sharing the budget gets no retry at all.
    let other = retry.clone();
    let log = AttemptLog::new();
    let err = run_failing(&other, &log, 100, Failure::transient())
        .await
        .unwrap_err();
    assert_eq!(log.count(), 1);
    assert_eq!(err.gave_up(), Some(GaveUp::BudgetExhausted));

    // Successes refund tokens until retries are allowed again.
    for _ in 0..3 {
        let log = AttemptLog::new();
        run_failing(&retry, &log, 0, Failure::transient())
            .await
            .unwrap();
    }
    assert_eq!(budget.tokens(), 4.0);
    let log = AttemptLog::new();
    assert_eq!(
        run_failing(&retry, &log, 1, Failure::transient())
            .await
            .unwrap(),
        "ok"
    );
    assert_eq!(log.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_operation_sees_each_attempt_number() {
    let retry = retry(3, Backoff::none());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let result = retry
        .call_with_attempt(|attempt: Attempt| {
            seen.lock().unwrap().push(attempt.number());
            async move {
                if attempt.number() < 3 {
                    Err(Failure::transient())
                } else {
                    Ok(attempt.is_first())
                }
            }
        })
        .await;
    assert!(!result.unwrap());
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_is_not_retried_by_default() {
    let policy = Policy::builder()
        .retry(retry(5, Backoff::none()))
        .fallback(Fallback::new(|_: Error<Failure>| {
            Err::<(), _>(crate::support::circuit_open().into())
        }))
        .build();
    let log = AttemptLog::new();
    let err = policy
        .call(|| {
            log.record();
            async { Err::<(), _>(Failure::transient()) }
        })
        .await
        .unwrap_err();
    assert!(err.is_circuit_open());
    assert_eq!(log.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn events_report_each_retry_with_its_delay_and_the_give_up() {
    let retry = Retry::builder()
        .name("pg-query")
        .max_attempts(3)
        .backoff(Backoff::constant(ms(20)))
        .build()
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    retry.on_event(move |event| sink.lock().unwrap().push(event.clone()));
    let log = AttemptLog::new();
    run_failing(&retry, &log, 10, Failure::transient())
        .await
        .unwrap_err();
    let retrying = |attempt| RetryEvent::Retrying {
        name: "pg-query".into(),
        attempt,
        delay: ms(20),
        cause: Some(ErrorKind::Inner),
    };
    assert_eq!(
        *events.lock().unwrap(),
        [
            retrying(1),
            retrying(2),
            RetryEvent::GaveUp {
                name: "pg-query".into(),
                attempts: 3,
                reason: GaveUp::MaxAttempts,
                cause: Some(ErrorKind::Inner),
            }
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn reconfigured_attempts_and_backoff_apply_to_the_next_call() {
    let retry = retry(2, Backoff::constant(ms(10)));
    retry.set_max_attempts(4).unwrap();
    retry.set_backoff(Backoff::constant(ms(30))).unwrap();
    let log = AttemptLog::new();
    run_failing(&retry, &log, 3, Failure::transient())
        .await
        .unwrap();
    assert_eq!(log.gaps(), [ms(30), ms(30), ms(30)]);
    assert_eq!(
        retry.set_max_attempts(0).unwrap_err().to_string(),
        "max_attempts: must be >= 1 (it counts the first call), got 0"
    );
}

#[test]
fn builders_reject_invalid_values_with_the_key_and_rule() {
    let err = Retry::builder().max_attempts(0).build().unwrap_err();
    assert_eq!(err.key(), "max_attempts");
    let err = Retry::builder()
        .backoff(Backoff::exponential(ms(10)).multiplier(0.0))
        .build()
        .unwrap_err();
    assert_eq!(err.key(), "exponential_backoff_multiplier");
    let err = Retry::builder()
        .max_elapsed(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "max_elapsed: must be >= 1ns, got 0ns");
}

#[tokio::test(start_paused = true)]
async fn a_retried_result_can_name_its_own_wait() {
    /// A result that says "busy, come back in 3 s" itself.
    #[derive(Debug, PartialEq)]
    enum Answer {
        Busy(Duration),
        Done,
    }

    #[derive(Clone, Copy)]
    struct BusyAnswers;

    impl seawall::retry::RetryClassifier<Answer, Failure> for BusyAnswers {
        fn should_retry(&self, _: &Error<Failure>) -> bool {
            false
        }

        fn should_retry_result(&self, answer: &Answer) -> bool {
            matches!(answer, Answer::Busy(_))
        }

        fn retry_after_result(&self, answer: &Answer) -> Option<Duration> {
            match answer {
                Answer::Busy(wait) => Some(*wait),
                Answer::Done => None,
            }
        }
    }

    let retry = retry(3, Backoff::constant(ms(10))).with_classifier(BusyAnswers);
    let log = AttemptLog::new();
    let answer = retry
        .call(|| {
            let first = log.record() == 1;
            async move {
                Ok::<_, Failure>(if first {
                    Answer::Busy(Duration::from_secs(3))
                } else {
                    Answer::Done
                })
            }
        })
        .await
        .unwrap();
    assert_eq!(answer, Answer::Done);
    assert_eq!(
        log.gaps(),
        [Duration::from_secs(3)],
        "the answer's wait, not the backoff"
    );
}

#[test]
fn attempts_have_an_upper_bound_so_a_typo_cannot_make_a_loop() {
    let err = Retry::builder()
        .max_attempts(seawall::retry::MAX_ATTEMPTS + 1)
        .build()
        .unwrap_err();
    assert_eq!(err.key(), "max_attempts");
    assert!(
        Retry::builder()
            .max_attempts(seawall::retry::MAX_ATTEMPTS)
            .build()
            .is_ok()
    );
}

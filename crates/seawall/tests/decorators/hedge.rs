use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::clock::Clock;
use seawall::hedge::{HedgeBudgetConfig, HedgeConfig, HedgeEvent};
use seawall::{Attempt, Error, Hedge, Policy, Timeout};

use crate::support::{AttemptLog, Failure, ms};

fn hedge(config: HedgeConfig) -> Hedge {
    Hedge::builder().config(config).build().unwrap()
}

/// Records, on the paused clock, when each attempt's future was dropped.
#[derive(Clone)]
struct DropProbe {
    clock: Clock,
    origin: seawall::clock::Instant,
    drops: Arc<Mutex<Vec<(u32, Duration)>>>,
}

struct Guard {
    probe: DropProbe,
    attempt: u32,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let at = self.probe.clock.now() - self.probe.origin;
        self.probe.drops.lock().unwrap().push((self.attempt, at));
    }
}

impl DropProbe {
    fn new() -> Self {
        let clock = Clock::tokio();
        Self {
            origin: clock.now(),
            clock,
            drops: Arc::default(),
        }
    }

    fn guard(&self, attempt: Attempt) -> Guard {
        Guard {
            probe: self.clone(),
            attempt: attempt.number(),
        }
    }

    fn drops(&self) -> Vec<(u32, Duration)> {
        let mut drops = self.drops.lock().unwrap().clone();
        drops.sort();
        drops
    }
}

/// An attempt that answers `outcome` after `after`, logging its start.
async fn answer<T>(
    log: &AttemptLog,
    after: Duration,
    outcome: Result<T, Failure>,
) -> Result<T, Failure> {
    log.record();
    seawall::Clock::tokio().sleep(after).await;
    outcome
}

#[tokio::test(start_paused = true)]
async fn a_hedge_starts_exactly_at_the_delay_and_not_before() {
    let hedge = hedge(HedgeConfig::fixed(ms(100)));
    let log = AttemptLog::new();
    let value = hedge
        .call_with_attempt(|attempt| {
            let took = if attempt.is_first() { ms(1000) } else { ms(30) };
            answer(&log, took, Ok(attempt.number()))
        })
        .await
        .unwrap();
    assert_eq!(value, 2);
    assert_eq!(log.starts(), [ms(0), ms(100)]);

    let log = AttemptLog::new();
    let value = hedge
        .call(|| answer(&log, ms(99), Ok("primary")))
        .await
        .unwrap();
    assert_eq!(value, "primary");
    assert_eq!(
        log.count(),
        1,
        "a primary that answers before the delay is not hedged"
    );
    assert_eq!(hedge.metrics().hedges_started, 1);
}

#[tokio::test(start_paused = true)]
async fn the_winner_is_returned_and_the_losers_are_cancelled_at_once() {
    let hedge = hedge({
        let mut config = HedgeConfig::fixed(ms(100));
        config.max_hedged_attempts = 2;
        config
    });
    let probe = DropProbe::new();
    let ended = Arc::new(AtomicUsize::new(0));
    let value = hedge
        .call_with_attempt(|attempt| {
            let guard = probe.guard(attempt);
            let ended = ended.clone();
            // The second attempt is the fastest: 100 + 50 ms; the third starts at 200 ms.
            let took = match attempt.number() {
                1 => ms(10_000),
                2 => ms(150),
                _ => ms(10),
            };
            async move {
                let _guard = guard;
                seawall::Clock::tokio().sleep(took).await;
                ended.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Failure>(attempt.number())
            }
        })
        .await
        .unwrap();
    assert_eq!(
        value, 3,
        "the third attempt (200 + 10 ms) beats the second (100 + 150 ms)"
    );
    assert_eq!(
        ended.load(Ordering::SeqCst),
        1,
        "only the winner ran to its end"
    );
    assert_eq!(
        probe.drops(),
        [(1, ms(210)), (2, ms(210)), (3, ms(210))],
        "the losers were dropped when the winner answered"
    );
    assert_eq!(hedge.metrics().hedges_won, 1);
}

#[tokio::test(start_paused = true)]
async fn a_primary_that_wins_cancels_the_hedge() {
    let hedge = hedge(HedgeConfig::fixed(ms(100)));
    let probe = DropProbe::new();
    let value = hedge
        .call_with_attempt(|attempt| {
            let guard = probe.guard(attempt);
            let took = if attempt.is_first() { ms(120) } else { ms(500) };
            async move {
                let _guard = guard;
                seawall::Clock::tokio().sleep(took).await;
                Ok::<_, Failure>(attempt.number())
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 1);
    assert_eq!(probe.drops(), [(1, ms(120)), (2, ms(120))]);
    assert_eq!(hedge.metrics().hedges_won, 0);
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_the_extra_calls() {
    let hedge = hedge({
        let mut config = HedgeConfig::fixed(ms(100));
        config.budget = Some(HedgeBudgetConfig::new(0.1, 5.0));
        config
    });
    let hedged = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let hedge = hedge.clone();
        let hedged = hedged.clone();
        tasks.spawn(async move {
            hedge
                .call_with_attempt(|attempt| {
                    if !attempt.is_first() {
                        hedged.fetch_add(1, Ordering::SeqCst);
                    }
                    async {
                        seawall::Clock::tokio().sleep(ms(1000)).await;
                        Ok::<_, Failure>(())
                    }
                })
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    // 100 primaries × 10 % = 10 tokens, plus the reserve of 5 a second.
    assert_eq!(hedged.load(Ordering::SeqCst), 15);
    let metrics = hedge.metrics();
    assert_eq!(metrics.hedges_started, 15);
    assert_eq!(metrics.budget_refusals, 85);
}

#[tokio::test(start_paused = true)]
async fn a_refused_hedge_is_reported_and_the_primary_still_answers() {
    let hedge = hedge({
        let mut config = HedgeConfig::fixed(ms(100));
        config.budget = Some(HedgeBudgetConfig::new(0.1, 0.0));
        config
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    hedge.on_event(move |event| seen.lock().unwrap().push(event.clone()));
    let log = AttemptLog::new();
    let value = hedge.call(|| answer(&log, ms(300), Ok(7))).await.unwrap();
    assert_eq!(value, 7);
    assert_eq!(log.count(), 1);
    assert!(matches!(
        events.lock().unwrap().as_slice(),
        [HedgeEvent::BudgetExhausted { .. }]
    ));
}

#[tokio::test(start_paused = true)]
async fn the_percentile_delay_follows_the_recorded_latencies() {
    let mut config = HedgeConfig::percentile(0.9, ms(10), ms(400));
    config.delay = ms(500);
    config.minimum_number_of_samples = 5;
    let hedge = hedge(config);
    // Before five samples the configured delay is used.
    let log = AttemptLog::new();
    hedge.call(|| answer(&log, ms(40), Ok(()))).await.unwrap();
    for _ in 0..9 {
        hedge.call(|| answer(&log, ms(40), Ok(()))).await.unwrap();
    }
    assert_eq!(hedge.metrics().hedges_started, 0);

    let slow_primary = |log: &AttemptLog| {
        let log = log.clone();
        hedge.call_with_attempt(move |attempt| {
            let took = if attempt.is_first() { ms(5000) } else { ms(1) };
            let log = log.clone();
            async move { answer(&log, took, Ok(())).await }
        })
    };
    let log = AttemptLog::new();
    slow_primary(&log).await.unwrap();
    assert_eq!(log.gaps(), [ms(40)], "p90 of 40 ms latencies");

    // Slow answers move the percentile up to the ceiling.
    for _ in 0..20 {
        hedge.call(|| answer(&log, ms(900), Ok(()))).await.unwrap();
    }
    let log = AttemptLog::new();
    slow_primary(&log).await.unwrap();
    assert_eq!(log.gaps(), [ms(400)], "clamped to the ceiling");
}

#[tokio::test(start_paused = true)]
async fn a_zero_delay_starts_every_attempt_at_once() {
    let hedge = hedge(HedgeConfig::parallel(2));
    let log = AttemptLog::new();
    let value = hedge
        .call_with_attempt(|attempt| {
            let took = ms(100 - 10 * u64::from(attempt.number()));
            answer(&log, took, Ok(attempt.number()))
        })
        .await
        .unwrap();
    assert_eq!(value, 3);
    assert_eq!(log.starts(), [ms(0), ms(0), ms(0)]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_attempt_s_error_is_not_returned_while_another_is_still_running() {
    let hedge = hedge({
        let mut config = HedgeConfig::fixed(ms(100));
        config.hedge_on_failure = false;
        config
    });
    let log = AttemptLog::new();
    let clock = seawall::Clock::tokio();
    let start = clock.now();
    let value = hedge
        .call_with_attempt(|attempt| {
            if attempt.is_first() {
                answer(&log, ms(300), Ok("slow but fine"))
            } else {
                answer(&log, ms(10), Err(Failure::transient()))
            }
        })
        .await
        .unwrap();
    assert_eq!(value, "slow but fine");
    assert_eq!(clock.now() - start, ms(300));
    assert_eq!(
        log.starts(),
        [ms(0), ms(100)],
        "the hedge ran and failed at 110 ms"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_primary_starts_the_hedge_at_once() {
    let hedge = hedge(HedgeConfig::fixed(ms(100)));
    let log = AttemptLog::new();
    let value = hedge
        .call_with_attempt(|attempt| {
            if attempt.is_first() {
                answer(&log, ms(20), Err(Failure::transient()))
            } else {
                answer(&log, ms(20), Ok(attempt.number()))
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 2);
    assert_eq!(log.starts(), [ms(0), ms(20)], "not at 100 ms");
}

#[tokio::test(start_paused = true)]
async fn when_every_attempt_fails_the_last_error_is_returned() {
    let hedge = hedge({
        let mut config = HedgeConfig::fixed(ms(100));
        config.max_hedged_attempts = 2;
        config
    });
    let error = hedge
        .call_with_attempt(|attempt| async move {
            seawall::Clock::tokio().sleep(ms(10)).await;
            Err::<(), _>(attempt.number())
        })
        .await
        .unwrap_err();
    assert_eq!(error.into_inner(), Some(3));
}

#[tokio::test(start_paused = true)]
async fn an_accepted_error_ends_the_call_without_hedging() {
    let hedge =
        hedge(HedgeConfig::fixed(ms(100))).accept_if(|outcome: &Result<u32, Error<Failure>>| {
            match outcome {
                Ok(_) => true,
                Err(error) => error.inner().is_some_and(|f| !f.transient),
            }
        });
    let log = AttemptLog::new();
    let error = hedge
        .call(|| answer(&log, ms(10), Err::<u32, _>(Failure::permanent())))
        .await
        .unwrap_err();
    assert_eq!(error.into_inner(), Some(Failure::permanent()));
    assert_eq!(log.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_attempt_number_is_visible_to_the_operation() {
    let hedge = hedge({
        let mut config = HedgeConfig::fixed(ms(10));
        config.max_hedged_attempts = 3;
        config
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    hedge
        .call_with_attempt(|attempt| {
            seen.lock().unwrap().push(attempt.number());
            async move {
                seawall::Clock::tokio()
                    .sleep(ms(if attempt.number() == 4 { 1 } else { 1000 }))
                    .await;
                Ok::<_, Failure>(())
            }
        })
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn in_a_policy_each_attempt_gets_its_own_inner_timeout() {
    let hedge = hedge(HedgeConfig::fixed(ms(100)));
    let policy = Policy::builder()
        .timeout(Timeout::new(ms(1000)))
        .hedge(hedge)
        .timeout(Timeout::new(ms(250)))
        .build();
    let log = AttemptLog::new();
    let value = policy
        .call_with_attempt(|attempt| {
            let took = if attempt.is_first() {
                ms(10_000)
            } else {
                ms(50)
            };
            answer(&log, took, Ok(attempt.number()))
        })
        .await
        .unwrap();
    assert_eq!(value, 2);
    assert_eq!(log.starts(), [ms(0), ms(100)]);
}

#[tokio::test(start_paused = true)]
async fn a_reconfigured_delay_applies_to_the_next_calls() {
    let hedge = hedge(HedgeConfig::fixed(ms(100)));
    hedge.reconfigure(HedgeConfig::fixed(ms(30))).unwrap();
    let log = AttemptLog::new();
    hedge
        .call_with_attempt(|attempt| {
            let took = if attempt.is_first() { ms(1000) } else { ms(5) };
            answer(&log, took, Ok(()))
        })
        .await
        .unwrap();
    assert_eq!(log.starts(), [ms(0), ms(30)]);
    let err = hedge
        .reconfigure(HedgeConfig::parallel(
            seawall::hedge::MAX_HEDGED_ATTEMPTS + 1,
        ))
        .unwrap_err();
    assert_eq!(err.key(), "max_hedged_attempts");
    assert_eq!(
        hedge.config().delay,
        ms(30),
        "an invalid change changes nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn zero_hedged_attempts_turn_hedging_off_until_reconfigured() {
    let hedge = hedge(HedgeConfig::parallel(0));
    let log = AttemptLog::new();
    hedge.call(|| answer(&log, ms(500), Ok(()))).await.unwrap();
    assert_eq!(log.count(), 1);
    hedge.reconfigure(HedgeConfig::fixed(ms(100))).unwrap();
    let log = AttemptLog::new();
    hedge
        .call_with_attempt(|attempt| {
            let took = if attempt.is_first() { ms(500) } else { ms(5) };
            answer(&log, took, Ok(()))
        })
        .await
        .unwrap();
    assert_eq!(log.starts(), [ms(0), ms(100)]);
}

//! The adaptive limiter: admission, cancellation, and convergence against a simulated
//! dependency (a queue in front of 8 workers, 50 ms each) under 100 closed-loop clients.

use std::time::Duration;

use seawall::AdaptiveLimiter;
use seawall::adaptive::{AdaptiveLimiterConfig, LimitAlgorithm};

use crate::queue_model::{Load, QueueModel, mean_limit};

const KNEE: f64 = 8.0;
const SERVICE: Duration = Duration::from_millis(50);

fn limiter(config: AdaptiveLimiterConfig) -> AdaptiveLimiter {
    AdaptiveLimiter::builder()
        .name("pg")
        .config(config)
        .build()
        .unwrap()
}

// Every algorithm sees windows of 10 samples (a drop closes one at once).

/// AIMD is loss-based: an RTT above 60 ms (1.2 × the service time) counts as a drop.
fn aimd() -> AdaptiveLimiterConfig {
    let mut config = AdaptiveLimiterConfig::new(LimitAlgorithm::Aimd);
    config.initial_limit = 4;
    config.rtt_timeout = Duration::from_millis(55);
    config.window_size = 10;
    config
}

/// Vegas keeps about one call queued at the dependency.
fn vegas() -> AdaptiveLimiterConfig {
    let mut config = AdaptiveLimiterConfig::new(LimitAlgorithm::Vegas);
    config.initial_limit = 4;
    config.vegas_alpha = 1.0;
    config.vegas_beta = 1.0;
    // Re-measure the no-load RTT rarely, so a slowdown is seen as one.
    config.probe_multiplier = 1000;
    config.window_size = 10;
    config
}

/// Gradient2 allows one queued call and no RTT tolerance.
fn gradient2() -> AdaptiveLimiterConfig {
    let mut config = AdaptiveLimiterConfig::new(LimitAlgorithm::Gradient2);
    config.initial_limit = 4;
    config.queue_size = 1.0;
    config.rtt_tolerance = 1.0;
    config.window_size = 10;
    config
}

async fn run_until_samples(load: &Load, samples: usize) {
    while load.count() < samples {
        seawall::Clock::tokio()
            .sleep(Duration::from_millis(10))
            .await;
    }
}

/// Waits (in virtual time, polling every 10 ms) until `done` holds; returns how long it took,
/// or `None` after `bound`.
async fn time_until(bound: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let clock = seawall::Clock::tokio();
    let start = clock.now();
    while clock.now() - start <= bound {
        if done() {
            return Some(clock.now() - start);
        }
        seawall::Clock::tokio()
            .sleep(Duration::from_millis(10))
            .await;
    }
    None
}

/// The mean limit over the 200 samples after the first `skip` ones recorded from now on.
async fn settled_limit(load: &Load, skip: usize) -> f64 {
    let from = load.count() + skip;
    run_until_samples(load, from + 200).await;
    mean_limit(&load.samples()[from..from + 200])
}

/// What "settled at the knee" means: the mean limit over 200 consecutive samples within
/// ±25 % of the knee (8 workers), i.e. in [6, 10].
fn assert_at_knee(mean: f64, what: &str) {
    eprintln!("{what}: mean limit {mean:.2}");
    assert!(
        (KNEE * 0.75..=KNEE * 1.25).contains(&mean),
        "{what}: mean limit {mean:.2} not within ±25 % of {KNEE}"
    );
}

/// A closed loop of 100 clients (a 1 s timeout per call, inside the limiter) against the
/// 8-worker queue, started from a limit of 4.
fn start(config: AdaptiveLimiterConfig) -> (QueueModel, AdaptiveLimiter, Load) {
    let dependency = QueueModel::new(8, SERVICE);
    let limiter = limiter(config);
    let load = Load::start(100, &limiter, Duration::from_secs(1), &dependency);
    (dependency, limiter, load)
}

/// Settles within 800 samples: the mean over samples 800..1000 is at the knee, and still is
/// over samples 1800..2000.
async fn settles_at_the_knee(config: AdaptiveLimiterConfig) {
    let (_dependency, _limiter, load) = start(config);
    assert_at_knee(settled_limit(&load, 800).await, "samples 800..1000");
    assert_at_knee(settled_limit(&load, 800).await, "samples 1800..2000");
}

/// After settling, the service time goes ×4: the limit is at most half the knee within
/// 3 s. Back to normal: within 200 samples the limit is settled at the knee.
async fn follows_a_slowdown(config: AdaptiveLimiterConfig) {
    let (dependency, limiter, load) = start(config);
    run_until_samples(&load, 1000).await;
    dependency.set_service(SERVICE * 4);
    let fell = time_until(Duration::from_secs(3), || limiter.limit() <= 4).await;
    assert!(
        fell.is_some(),
        "limit still {} 3 s after the slowdown",
        limiter.limit()
    );
    eprintln!("fell to <= 4 in {fell:?} after the slowdown");
    seawall::Clock::tokio().sleep(Duration::from_secs(5)).await;
    dependency.set_service(SERVICE);
    assert_at_knee(
        settled_limit(&load, 200).await,
        "200 samples after the recovery",
    );
}

/// After settling, the dependency hangs (calls end only by their 1 s timeout, a drop): the
/// limit is at most half the knee within 1.5 s. When it answers again, the limit is back to
/// at least 6 within 5 s, and settled at the knee 200 samples later.
async fn follows_a_hang(config: AdaptiveLimiterConfig) {
    let (dependency, limiter, load) = start(config);
    run_until_samples(&load, 1000).await;
    dependency.set_hung(true);
    let fell = time_until(Duration::from_millis(1500), || limiter.limit() <= 4).await;
    assert!(
        fell.is_some(),
        "limit still {} 1.5 s into the hang",
        limiter.limit()
    );
    eprintln!("fell to <= 4 in {fell:?} into the hang");
    seawall::Clock::tokio().sleep(Duration::from_secs(5)).await;
    dependency.set_hung(false);
    let back = time_until(Duration::from_secs(5), || limiter.limit() >= 6).await;
    assert!(
        back.is_some(),
        "limit still {} 5 s after the hang",
        limiter.limit()
    );
    eprintln!("back to >= 6 in {back:?} after the hang");
    assert_at_knee(
        settled_limit(&load, 200).await,
        "200 samples after the hang",
    );
}

#[tokio::test(start_paused = true)]
async fn aimd_settles_within_25_percent_of_the_knee() {
    settles_at_the_knee(aimd()).await;
}

#[tokio::test(start_paused = true)]
async fn vegas_settles_within_25_percent_of_the_knee() {
    settles_at_the_knee(vegas()).await;
}

#[tokio::test(start_paused = true)]
async fn gradient2_settles_within_25_percent_of_the_knee() {
    settles_at_the_knee(gradient2()).await;
}

#[tokio::test(start_paused = true)]
async fn aimd_falls_when_the_dependency_slows_down_and_recovers_with_it() {
    follows_a_slowdown(aimd()).await;
}

#[tokio::test(start_paused = true)]
async fn vegas_falls_when_the_dependency_slows_down_and_recovers_with_it() {
    follows_a_slowdown(vegas()).await;
}

#[tokio::test(start_paused = true)]
async fn gradient2_falls_when_the_dependency_slows_down_and_recovers_with_it() {
    follows_a_slowdown(gradient2()).await;
}

#[tokio::test(start_paused = true)]
async fn aimd_falls_when_the_dependency_hangs_and_recovers_with_it() {
    follows_a_hang(aimd()).await;
}

#[tokio::test(start_paused = true)]
async fn vegas_falls_when_the_dependency_hangs_and_recovers_with_it() {
    follows_a_hang(vegas()).await;
}

#[tokio::test(start_paused = true)]
async fn gradient2_falls_when_the_dependency_hangs_and_recovers_with_it() {
    follows_a_hang(gradient2()).await;
}

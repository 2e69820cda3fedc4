//! Calls a flaky, then dead, payment gateway with and without a seawall policy, and prints what
//! each caller experienced.
//!
//! The gateway is simulated in-process and the whole run uses tokio's paused clock, so minutes
//! of simulated outage take a fraction of a second and every run prints the same table.
//!
//! Run with `cargo run --release -p examples --bin payment_call`.

use std::time::Duration;

use seawall::{Backoff, Bulkhead, Clock, Error, ErrorKind, Fallback, Policy, Retry, Timeout};

/// What the simulated gateway can do to a request.
#[derive(Clone, Copy, Debug)]
enum Gateway {
    /// 40 % of requests fail fast with a 500 before anything is created; the rest answer after
    /// 100–500 ms (the canonical PG simulator).
    Flaky,
    /// Every request hangs: the gateway accepts connections and never answers.
    Dead,
}

#[derive(Debug)]
enum PgError {
    Unavailable,
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("payment gateway unavailable")
    }
}

impl std::error::Error for PgError {}

/// A tiny deterministic generator so the run is reproducible.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

async fn request_payment(
    gateway: Gateway,
    clock: &Clock,
    draw: u64,
) -> Result<&'static str, PgError> {
    match gateway {
        Gateway::Flaky if draw % 100 < 40 => {
            clock.sleep(Duration::from_millis(20)).await;
            Err(PgError::Unavailable)
        }
        Gateway::Flaky => {
            clock.sleep(Duration::from_millis(100 + draw % 401)).await;
            Ok("PENDING")
        }
        Gateway::Dead => {
            std::future::pending::<()>().await;
            unreachable!("a dead gateway never answers")
        }
    }
}

struct Outcome {
    accepted: usize,
    told_to_retry_later: usize,
    latencies: Vec<Duration>,
    total: Duration,
}

impl Outcome {
    fn row(&self, label: &str, calls: usize) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let mean =
            sorted.iter().sum::<Duration>() / u32::try_from(sorted.len().max(1)).unwrap_or(1);
        let p99 = sorted
            .get((sorted.len() * 99 / 100).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default();
        format!(
            "| {label:<34} | {:>6.1} % | {:>5} | {:>9.0?} | {:>9.0?} | {:>9.1?} |",
            self.accepted as f64 * 100.0 / calls as f64,
            self.told_to_retry_later,
            mean,
            p99,
            self.total,
        )
    }
}

/// Sends `calls` requests, `concurrency` at a time, each through `call`.
async fn run<F, Fut>(calls: usize, concurrency: usize, call: F) -> Outcome
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<&'static str, Error<PgError>>> + Send,
{
    let clock = Clock::tokio();
    let start = clock.now();
    let mut draws = Lcg(7);
    let mut outcome = Outcome {
        accepted: 0,
        told_to_retry_later: 0,
        latencies: Vec::with_capacity(calls),
        total: Duration::ZERO,
    };
    let mut pending = Vec::new();
    for chunk in (0..calls).collect::<Vec<_>>().chunks(concurrency) {
        for _ in chunk {
            let call = call.clone();
            let draw = draws.next();
            let clock = clock.clone();
            pending.push(tokio::spawn(async move {
                let began = clock.now();
                // A caller gives up after 30 s, as an HTTP client or load balancer would.
                let result = tokio::time::timeout(Duration::from_secs(30), call(draw)).await;
                (result, clock.now() - began)
            }));
        }
        for task in pending.drain(..) {
            let (result, latency) = task.await.expect("task panicked");
            outcome.latencies.push(latency);
            match result {
                Ok(Ok(_)) => outcome.accepted += 1,
                Ok(Err(err)) if err.is_circuit_open() || err.is_bulkhead_full() => {
                    outcome.told_to_retry_later += 1;
                }
                _ => {}
            }
        }
    }
    outcome.total = clock.now() - start;
    outcome
}

/// A boxed, sendable payment call.
type PaymentCall =
    std::pin::Pin<Box<dyn Future<Output = Result<&'static str, Error<PgError>>> + Send>>;

fn policy() -> impl Fn(Gateway, u64) -> PaymentCall + Clone {
    let policy = Policy::builder()
        .fallback(
            Fallback::new(|err: Error<PgError>| Err(err))
                .when_kind([ErrorKind::Timeout, ErrorKind::BulkheadFull]),
        )
        .timeout(Timeout::new(Duration::from_secs(3)))
        .retry(
            Retry::builder()
                .name("pg")
                .max_attempts(3)
                .backoff(Backoff::exponential(Duration::from_millis(100)).full_jitter())
                .seed(1)
                .build()
                .expect("valid retry"),
        )
        .bulkhead(
            Bulkhead::builder()
                .name("pg")
                .max_concurrent_calls(40)
                .build()
                .expect("valid bulkhead"),
        )
        .timeout(Timeout::new(Duration::from_millis(800)))
        .build();
    move |gateway, draw| {
        let policy = policy.clone();
        Box::pin(async move {
            let clock = Clock::tokio();
            let mut attempt = 0u64;
            policy
                .call(|| {
                    attempt += 1;
                    let clock = clock.clone();
                    async move {
                        request_payment(gateway, &clock, draw.wrapping_add(attempt * 37)).await
                    }
                })
                .await
        })
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        const CALLS: usize = 400;
        const CONCURRENCY: usize = 50;
        println!("seawall demo: {CALLS} card payments, {CONCURRENCY} at a time, simulated gateway, virtual clock\n");
        println!("| caller                             | accepted | shed  | mean      | p99       | total     |");
        println!("|------------------------------------|----------|-------|-----------|-----------|-----------|");
        for gateway in [Gateway::Flaky, Gateway::Dead] {
            let bare = run(CALLS, CONCURRENCY, move |draw| async move {
                let clock = Clock::tokio();
                request_payment(gateway, &clock, draw).await.map_err(Error::from_inner)
            })
            .await;
            println!("{}", bare.row(&format!("{gateway:?} gateway, bare call"), CALLS));
            let protect = policy();
            let protected = run(CALLS, CONCURRENCY, move |draw| protect(gateway, draw)).await;
            println!("{}", protected.row(&format!("{gateway:?} gateway, seawall policy"), CALLS));
        }
        println!(
            "\nbare: one attempt, no timeout (callers give up after 30 s).\n\
             seawall: 800 ms per attempt, 3 attempts with jittered backoff, 3 s in all, 40 in flight."
        );
    });
}

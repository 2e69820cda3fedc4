//! The run: callers drive the policy against the simulated dependency, in tokio's paused time.
//!
//! The runtime is single-threaded with the clock paused, so time jumps to the next timer as
//! soon as every task waits: an hour of traffic runs in seconds, and the order in which tasks
//! run (and so every random draw) is the same on every run. The dependency itself runs no
//! task: a request's reply is decided when it arrives ([`crate::model`]), and the attempt
//! sleeps until the reply's time, so the decorators' timeouts, breaker waits and backoffs race
//! it on the same clock.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use seawall::clock::Instant;
use seawall::{Clock, ConfigError, Error, ErrorKind};

use crate::model::{Nanos, PhaseModel, Reply, Server, nanos};
use crate::policy::{self, DepError, LabPolicy, Observed, Present};
use crate::rng::Rng;
use crate::scenario::{Arrivals, Loaded, Scenario};

/// How a caller's call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success.
    Ok,
    /// The dependency answered with this error kind.
    DepError(u16),
    /// The dependency refused (outage `refuse` or a full queue).
    Refused,
    /// A seawall timeout fired.
    Timeout,
    /// The circuit breaker did not permit the call.
    CircuitOpen,
    /// The bulkhead was full.
    BulkheadFull,
    /// The adaptive limiter was at its limit.
    LimitExceeded,
    /// Another decorator stopped the call.
    OtherRejection,
    /// The caller gave up (`load.caller_timeout`).
    CallerGaveUp,
}

/// One caller's call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// When it started.
    pub at: Nanos,
    /// How long it took.
    pub latency: Nanos,
    /// How it ended.
    pub outcome: Outcome,
    /// The caller stopped waiting at its timeout while the call went on
    /// (`load.caller_cancels = false`); `latency` is then the caller's wait.
    pub left: bool,
}

/// What the dependency saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DependencyStats {
    /// Requests that reached it (every attempt, retry and hedge).
    pub requests: u64,
    /// Abandoned by the caller after the work had started (or been swallowed by a hang): the
    /// caller cannot know whether it took effect.
    pub uncertain: u64,
    /// Abandoned while still queued: the dependency does the work later anyway.
    pub abandoned_queued: u64,
    /// Latencies of successful answers, as the attempt saw them (queueing included).
    pub success_latencies: Vec<Nanos>,
    /// When each request reached it, per timeline bucket (filled by the report).
    pub request_times: Vec<Nanos>,
}

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The caller's calls, in the order they finished.
    pub calls: Vec<CallRecord>,
    /// Calls still running when the drain time was over.
    pub unfinished: u64,
    /// What the dependency saw.
    pub dependency: DependencyStats,
    /// What the decorators reported.
    pub observed: Observed,
    /// Which decorators took part.
    pub present: Present,
    /// The phases.
    pub phases: Vec<PhaseModel>,
    /// The dependency's error kinds.
    pub error_kinds: Vec<String>,
    /// The simulated length of the load.
    pub duration: Nanos,
}

/// The dependency and the callers' records, shared by every task.
#[derive(Debug)]
struct World {
    server: Server,
    rng: Rng,
    phases: Vec<PhaseModel>,
    phase: usize,
    calls: Vec<CallRecord>,
    dependency: DependencyStats,
}

impl World {
    fn phase_at(&mut self, now: Nanos) -> usize {
        while self.phase + 1 < self.phases.len() && now >= self.phases[self.phase].end {
            self.phase += 1;
        }
        self.phase
    }

    fn request(&mut self, now: Nanos) -> Reply {
        let phase = self.phase_at(now);
        self.dependency.requests += 1;
        self.dependency.request_times.push(now);
        self.server.request(now, &self.phases[phase], &mut self.rng)
    }
}

#[derive(Debug)]
struct Shared {
    world: Mutex<World>,
    /// tokio's (paused) clock, its origin the start of the run.
    clock: Clock,
    in_flight: AtomicU64,
    /// Set when the run is over: calls dropped then are unfinished, not abandoned.
    over: AtomicBool,
}

impl Shared {
    fn now(&self) -> Nanos {
        self.clock.now().as_nanos()
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts an attempt abandoned by its caller before the answer.
struct AttemptGuard<'a> {
    shared: &'a Shared,
    /// When the work starts; `None` once answered.
    start: Option<Nanos>,
}

impl Drop for AttemptGuard<'_> {
    fn drop(&mut self) {
        let Some(start) = self.start else { return };
        if self.shared.over.load(Ordering::Relaxed) {
            return;
        }
        let now = self.shared.now();
        let mut world = self.shared.world();
        if now >= start {
            world.dependency.uncertain += 1;
        } else {
            world.dependency.abandoned_queued += 1;
        }
    }
}

/// One attempt against the simulated dependency.
async fn attempt(shared: Arc<Shared>) -> Result<(), DepError> {
    let now = shared.now();
    let reply = shared.world().request(now);
    match reply {
        Reply::Refused | Reply::QueueFull => {
            // A refusal still costs a round trip: 1 ms.
            shared.clock.sleep(Duration::from_millis(1)).await;
            Err(if reply == Reply::Refused {
                DepError::Refused
            } else {
                DepError::QueueFull
            })
        }
        Reply::Hang => {
            let _guard = AttemptGuard {
                shared: &shared,
                start: Some(now),
            };
            std::future::pending::<()>().await;
            Ok(())
        }
        Reply::Answer {
            start,
            finish,
            error,
        } => {
            let mut guard = AttemptGuard {
                shared: &shared,
                start: Some(start),
            };
            shared.clock.sleep_until(Instant::from_nanos(finish)).await;
            guard.start = None;
            drop(guard);
            match error {
                Some(kind) => Err(DepError::Kind(kind)),
                None => {
                    shared
                        .world()
                        .dependency
                        .success_latencies
                        .push(finish - now);
                    Ok(())
                }
            }
        }
    }
}

fn classify(result: &Result<(), Error<DepError>>) -> Outcome {
    match result {
        Ok(()) => Outcome::Ok,
        Err(error) => match error.kind() {
            ErrorKind::Inner => match error.inner() {
                Some(DepError::Kind(kind)) => Outcome::DepError(*kind),
                _ => Outcome::Refused,
            },
            ErrorKind::Timeout => Outcome::Timeout,
            ErrorKind::CircuitOpen => Outcome::CircuitOpen,
            ErrorKind::BulkheadFull => Outcome::BulkheadFull,
            ErrorKind::LimitExceeded => Outcome::LimitExceeded,
            _ => Outcome::OtherRejection,
        },
    }
}

/// The caller's patience.
#[derive(Clone, Copy, Debug)]
struct Patience {
    limit: Option<Duration>,
    cancels: bool,
}

/// One caller's call through the policy, recorded.
async fn call(shared: Arc<Shared>, policy: LabPolicy, patience: Patience) {
    let at = shared.now();
    let run = policy.call(|| attempt(shared.clone()));
    let outcome = match patience.limit {
        Some(limit) if patience.cancels => match tokio::time::timeout(limit, run).await {
            Ok(result) => classify(&result),
            Err(_) => Outcome::CallerGaveUp,
        },
        _ => classify(&run.await),
    };
    let mut latency = shared.now() - at;
    let mut left = false;
    if let Some(limit) = patience.limit.map(nanos)
        && latency > limit
    {
        latency = limit;
        left = true;
    }
    shared.world().calls.push(CallRecord {
        at,
        latency,
        outcome,
        left,
    });
    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
}

/// Runs a loaded scenario to the end (builds its own paused runtime).
///
/// # Errors
///
/// A policy value the registries refuse, or a runtime that cannot be built.
pub fn run(loaded: &Loaded) -> Result<RunResult, ConfigError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|err| ConfigError::new("runtime", err.to_string()))?;
    runtime.block_on(run_async(loaded))
}

async fn run_async(loaded: &Loaded) -> Result<RunResult, ConfigError> {
    let scenario = &loaded.scenario;
    let clock = Clock::tokio();
    let now = {
        let clock = clock.clone();
        move || clock.now().as_nanos()
    };
    let (phases, error_kinds) =
        PhaseModel::build(&scenario.dependency, &loaded.phases, scenario.load.rate);
    let built = policy::build(loaded, &error_kinds, now)?;
    let duration = nanos(Scenario::total_duration(&loaded.phases));
    let shared = Arc::new(Shared {
        world: Mutex::new(World {
            server: Server::new(scenario.dependency.workers, scenario.dependency.queue),
            rng: Rng::new(scenario.seed),
            phases: phases.clone(),
            phase: 0,
            calls: Vec::new(),
            dependency: DependencyStats::default(),
        }),
        clock,
        in_flight: AtomicU64::new(0),
        over: AtomicBool::new(false),
    });
    if let Some(every) = scenario.policy.tune_every {
        spawn_detached(tune(
            shared.clone(),
            built.registries.clone(),
            built.observed.clone(),
            scenario.policy.instance.clone(),
            every.0,
        ));
    }
    let caller_timeout = Patience {
        limit: scenario.load.caller_timeout.map(|d| d.0),
        cancels: scenario.load.caller_cancels,
    };
    let mut tasks = Vec::new();
    if let Some(concurrency) = scenario.load.concurrency {
        let think = scenario.load.think.map_or(Duration::ZERO, |d| d.0);
        for _ in 0..concurrency {
            let (shared, policy) = (shared.clone(), built.policy.clone());
            tasks.push(tokio::spawn(async move {
                while shared.now() < duration {
                    shared.in_flight.fetch_add(1, Ordering::Relaxed);
                    call(shared.clone(), policy.clone(), caller_timeout).await;
                    // A caller that fails at once must still let time pass.
                    shared
                        .clock
                        .sleep(think.max(Duration::from_micros(100)))
                        .await;
                }
            }));
        }
    } else {
        open_loop(
            &shared,
            &built.policy,
            &phases,
            scenario,
            caller_timeout,
            duration,
        )
        .await;
    }
    // Closed-loop callers run on their own until the end of the load.
    shared
        .clock
        .sleep_until(Instant::from_nanos(duration))
        .await;
    drain(&shared, duration + nanos(scenario.report.drain.0)).await;
    shared.over.store(true, Ordering::Relaxed);
    for task in tasks {
        task.abort();
    }
    let unfinished = shared.in_flight.load(Ordering::Relaxed);
    let observed = built
        .observed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut world = shared.world();
    Ok(RunResult {
        calls: std::mem::take(&mut world.calls),
        unfinished,
        dependency: std::mem::take(&mut world.dependency),
        observed,
        present: built.present,
        phases,
        error_kinds,
        duration,
    })
}

/// Open-loop arrivals: a call every gap, whatever the answers.
async fn open_loop(
    shared: &Arc<Shared>,
    policy: &LabPolicy,
    phases: &[PhaseModel],
    scenario: &Scenario,
    caller_timeout: Patience,
    duration: Nanos,
) {
    // Arrivals draw from their own generator, so the load does not depend on the answers.
    let mut rng = Rng::new(scenario.seed ^ 0x5eed_a441_7a15);
    let mut next: Nanos = 0;
    let mut phase = 0;
    while next < duration {
        while phase + 1 < phases.len() && next >= phases[phase].end {
            phase += 1;
        }
        let rate = phases[phase].rate.unwrap_or(1.0);
        shared.clock.sleep_until(Instant::from_nanos(next)).await;
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        spawn_detached(call(shared.clone(), policy.clone(), caller_timeout));
        let gap = match scenario.load.arrivals {
            Arrivals::Uniform => 1.0 / rate,
            Arrivals::Poisson => rng.exponential() / rate,
        };
        next += nanos(Duration::from_secs_f64(gap)).max(1);
    }
}

/// Applies seawall's slow-call tuner every `every`, from the answers since its last run.
async fn tune(
    shared: Arc<Shared>,
    registries: seawall::registry::Registries,
    observed: Arc<Mutex<Observed>>,
    name: String,
    every: Duration,
) {
    let tuner = seawall::tuning::SlowCallTuner::default();
    let mut seen = 0;
    loop {
        shared.clock.sleep(every).await;
        let mut window = {
            let world = shared.world();
            let latencies = &world.dependency.success_latencies;
            let window = latencies.get(seen..).unwrap_or_default().to_vec();
            seen = latencies.len();
            window
        };
        if window.is_empty() {
            continue;
        }
        window.sort_unstable();
        let p95 = Duration::from_nanos(crate::report::quantile(&window, 0.95));
        if let Ok(Some(change)) = tuner.apply(registries.circuit_breakers(), &name, p95) {
            let at = shared.now();
            observed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .tunings
                .push((at, change.new));
        }
    }
}

fn spawn_detached(future: impl Future<Output = ()> + Send + 'static) {
    drop(tokio::spawn(future));
}

/// Waits until every call has finished or `deadline` has passed.
async fn drain(shared: &Shared, deadline: Nanos) {
    while shared.in_flight.load(Ordering::Relaxed) > 0 && shared.now() < deadline {
        shared.clock.sleep(Duration::from_millis(50)).await;
    }
}

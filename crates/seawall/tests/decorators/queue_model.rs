//! A simulated dependency for the adaptive limiter's convergence tests: a FIFO queue in front
//! of `workers` workers with a fixed service time, so latency grows with concurrency beyond
//! the number of workers (the knee). It can be slowed down or made to hang, and recover.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seawall::AdaptiveLimiter;
use seawall::Timeout;
use seawall::policy::{Identity, Layered, Policy};
use tokio::sync::Semaphore;

/// The dependency: `workers` permits served in arrival order, each call holding one for the
/// service time.
#[derive(Clone)]
pub(crate) struct QueueModel {
    workers: Arc<Semaphore>,
    service_nanos: Arc<AtomicU64>,
    hung: Arc<AtomicBool>,
}

/// The dependency's (never returned) error type.
#[derive(Debug)]
pub(crate) struct Unavailable;

impl QueueModel {
    pub(crate) fn new(workers: usize, service: Duration) -> Self {
        Self {
            workers: Arc::new(Semaphore::new(workers)),
            service_nanos: Arc::new(AtomicU64::new(service.as_nanos() as u64)),
            hung: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Changes the service time of calls that reach a worker from now on.
    pub(crate) fn set_service(&self, service: Duration) {
        self.service_nanos
            .store(service.as_nanos() as u64, Ordering::SeqCst);
    }

    /// While hung, calls that arrive never complete (only a timeout ends them).
    pub(crate) fn set_hung(&self, hung: bool) {
        self.hung.store(hung, Ordering::SeqCst);
    }

    /// One call.
    pub(crate) async fn serve(&self) -> Result<(), Unavailable> {
        if self.hung.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let _worker = self.workers.acquire().await.map_err(|_| Unavailable)?;
        let service = Duration::from_nanos(self.service_nanos.load(Ordering::SeqCst));
        seawall::Clock::tokio().sleep(service).await;
        Ok(())
    }
}

/// One completed call as the clients saw it: the limit right after it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub(crate) limit: usize,
}

/// A closed loop of `clients` clients calling `dependency` through `limiter` (and a per-call
/// timeout inside it) until the run is stopped; records the limit after every completed call.
pub(crate) struct Load {
    samples: Arc<Mutex<Vec<Sample>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

type Limited = Policy<Layered<AdaptiveLimiter, Layered<Timeout, Identity>>>;

impl Load {
    pub(crate) fn start(
        clients: usize,
        limiter: &AdaptiveLimiter,
        timeout: Duration,
        dependency: &QueueModel,
    ) -> Self {
        let policy: Limited = Policy::builder()
            .adaptive_limiter(limiter.clone())
            .timeout(Timeout::new(timeout))
            .build();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..clients)
            .map(|_| {
                let (policy, dependency, samples, limiter) = (
                    policy.clone(),
                    dependency.clone(),
                    samples.clone(),
                    limiter.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        let result = policy.call(|| dependency.serve()).await;
                        match result {
                            Err(error) if error.is_limit_exceeded() => {
                                // Rejected at once or after the maximum wait: think, retry.
                                seawall::Clock::tokio()
                                    .sleep(Duration::from_millis(5))
                                    .await;
                            }
                            _ => samples.lock().unwrap().push(Sample {
                                limit: limiter.limit(),
                            }),
                        }
                    }
                })
            })
            .collect();
        Self { samples, tasks }
    }

    /// The samples recorded so far.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }

    /// How many samples were recorded so far.
    pub(crate) fn count(&self) -> usize {
        self.samples.lock().unwrap().len()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The mean limit over `samples`.
pub(crate) fn mean_limit(samples: &[Sample]) -> f64 {
    samples.iter().map(|s| s.limit as f64).sum::<f64>() / samples.len() as f64
}

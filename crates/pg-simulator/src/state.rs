//! The state shared by the listeners, the handlers, the processing tasks and the handle.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SimConfig;
use crate::decider::Decider;
use crate::fault::{Fault, FaultContext, FaultLog, Trigger};
use crate::idempotency::IdempotencyStore;
use crate::key::KeyGenerator;
use crate::ledger::Ledger;
use crate::server::ListenerControl;
use crate::stats::Stats;

/// A callback of this transaction was delivered (used to release held, reordered callbacks).
#[derive(Clone, Debug)]
pub(crate) struct Delivered {
    pub(crate) user_id: String,
    pub(crate) order_id: String,
    pub(crate) transaction_key: String,
}

#[derive(Debug)]
pub(crate) struct Shared {
    config: RwLock<Arc<SimConfig>>,
    pub(crate) decider: Mutex<Decider>,
    pub(crate) keys: Arc<dyn KeyGenerator>,
    pub(crate) ledger: Ledger,
    pub(crate) stats: Stats,
    pub(crate) fault_log: FaultLog,
    pub(crate) idempotency: Arc<IdempotencyStore>,
    pub(crate) http: reqwest::Client,
    pub(crate) processing: Arc<Semaphore>,
    pub(crate) tracker: TaskTracker,
    pub(crate) shutdown: CancellationToken,
    pub(crate) black_hole: AtomicBool,
    pub(crate) delivered: broadcast::Sender<Delivered>,
    pub(crate) listener: tokio::sync::Mutex<ListenerControl>,
}

impl Shared {
    pub(crate) fn new(
        config: SimConfig,
        seed: u64,
        keys: Arc<dyn KeyGenerator>,
        http: reqwest::Client,
        ledger: Ledger,
    ) -> Self {
        Self {
            decider: Mutex::new(Decider::new(seed)),
            keys,
            ledger,
            stats: Stats::default(),
            fault_log: FaultLog::new(config.faults.log_capacity),
            idempotency: Arc::new(IdempotencyStore::default()),
            http,
            processing: Arc::new(Semaphore::new(config.processing.concurrency)),
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            black_hole: AtomicBool::new(false),
            delivered: broadcast::Sender::new(1_024),
            listener: tokio::sync::Mutex::new(ListenerControl::default()),
            config: RwLock::new(Arc::new(config)),
        }
    }

    /// The config in force now (one consistent copy per request).
    pub(crate) fn config(&self) -> Arc<SimConfig> {
        Arc::clone(
            &self
                .config
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    pub(crate) fn replace_config(&self, config: SimConfig) {
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
    }

    pub(crate) fn record(&self, fault: Fault, trigger: Trigger, ctx: &FaultContext) {
        self.fault_log.record(fault, trigger, ctx);
        self.ledger.touch();
    }
}

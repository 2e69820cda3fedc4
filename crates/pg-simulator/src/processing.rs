//! Asynchronous processing: PENDING → outcome after the planned delay, then the callback.
//!
//! All processing and every callback attempt share one semaphore of
//! `processing.concurrency` permits, like the canonical 8-thread pool; the queue in front of it
//! is unbounded, so a small concurrency reproduces the backlog fault (F18).

use std::sync::Arc;
use std::time::Duration;

use crate::callback;
use crate::clock;
use crate::model::Outcome;
use crate::state::Shared;

/// Starts processing of a freshly created transaction.
pub(crate) fn schedule(shared: &Arc<Shared>, key: String, delay: Duration, outcome: Outcome) {
    let task_shared = Arc::clone(shared);
    shared.tracker.spawn(async move {
        let shared = task_shared;
        let work = async {
            let Ok(permit) = Arc::clone(&shared.processing).acquire_owned().await else {
                return;
            };
            clock::sleep(delay).await;
            let completed = shared.ledger.complete(&key, outcome);
            drop(permit);
            match completed {
                Ok(view) => {
                    tracing::debug!(transaction_key = %key, status = %view.tx.status, "transaction processed");
                    callback::dispatch(&shared, view).await;
                }
                // Already completed by force-complete, or evicted: the canonical guard only logs.
                Err(e) => tracing::debug!(transaction_key = %key, error = %e, "processing skipped"),
            }
        };
        tokio::select! {
            () = work => {}
            () = shared.shutdown.cancelled() => {}
        }
    });
}

//! The retention job: deletes what the service no longer needs, so the tables stop growing.
//!
//! Every `retention.interval_ms`: idempotency keys older than `retention.idempotency_keys_ms`
//! and outbox events published longer ago than `retention.published_events_ms`, in batches of
//! PG call log rows sent longer ago than `retention.pg_calls_ms`, in batches of
//! `retention.batch_size` rows (each its own short statement, so no prune holds a lock for
//! long). Undelivered and dead events are never deleted. Every instance may run it: a delete
//! that finds nothing does nothing.

use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::configuration::RetentionSettings;
use crate::persistence;
use crate::persistence::{self as db, Db};

/// What one prune deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionReport {
    /// Idempotency keys deleted.
    pub idempotency_keys: u64,
    /// Published outbox events deleted.
    pub published_events: u64,
    /// PG call log rows deleted.
    pub pg_calls: u64,
}

/// The retention job. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RetentionJob {
    db: Db,
    settings: RetentionSettings,
}

impl RetentionJob {
    /// A job over `db`.
    pub fn new(db: Db, settings: RetentionSettings) -> Self {
        Self { db, settings }
    }

    /// Prunes every `interval` until `shutdown` fires (a prune in progress finishes).
    pub async fn run(self, shutdown: CancellationToken) {
        let clock = seawall::Clock::default();
        let interval = Duration::from_millis(self.settings.interval_ms);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = clock.sleep(interval) => {}
            }
            match self.run_once(db::now_ms()).await {
                Ok(report) if report != RetentionReport::default() => {
                    tracing::info!(?report, "retention prune");
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "retention prune failed"),
            }
        }
        tracing::info!("retention job stopped");
    }

    /// Deletes what is older than the retention ages as of `now` (milliseconds since the
    /// epoch; tests pass a later one instead of waiting).
    ///
    /// # Errors
    ///
    /// A database error; what was deleted before it stays deleted.
    pub async fn run_once(&self, now: i64) -> Result<RetentionReport, sqlx::Error> {
        let batch = self.settings.batch_size;
        let keys_cutoff = now.saturating_sub(ms(self.settings.idempotency_keys_ms));
        let events_cutoff = now.saturating_sub(ms(self.settings.published_events_ms));
        let mut report = RetentionReport::default();
        loop {
            let deleted = persistence::prune_idempotency_keys(
                &mut *self.db.writer().await?,
                keys_cutoff,
                batch,
            )
            .await?;
            report.idempotency_keys += deleted;
            if deleted < batch.unsigned_abs() {
                break;
            }
        }
        loop {
            let deleted = persistence::prune_published_events(
                &mut *self.db.writer().await?,
                events_cutoff,
                batch,
            )
            .await?;
            report.published_events += deleted;
            if deleted < batch.unsigned_abs() {
                break;
            }
        }
        let calls_cutoff = now.saturating_sub(ms(self.settings.pg_calls_ms));
        loop {
            let deleted =
                persistence::prune_pg_calls(&mut *self.db.writer().await?, calls_cutoff, batch)
                    .await?;
            report.pg_calls += deleted;
            if deleted < batch.unsigned_abs() {
                break;
            }
        }
        metrics::counter!("commerce_retention_pruned_total", "table" => "pg_calls")
            .increment(report.pg_calls);
        metrics::counter!("commerce_retention_pruned_total", "table" => "idempotency_keys")
            .increment(report.idempotency_keys);
        metrics::counter!("commerce_retention_pruned_total", "table" => "outbox_events")
            .increment(report.published_events);
        Ok(report)
    }
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

//! The outbox relay (polling publisher): delivers outbox events, in id order, at least once,
//! to in-process subscribers.
//!
//! Events are written in the same transaction as the change they announce
//! ([`crate::persistence::insert_outbox`]). The relay polls due, undelivered events in id
//! order, hands each to every subscriber, then marks the delivered ones published together, in
//! one statement (`UPDATE … WHERE id IN (…)`, not one write per event). A subscriber that fails
//! makes the event wait (exponential backoff per event, dead after `max_attempts`), and the
//! relay stops the batch there so later events never overtake it. A crash between delivery
//! and marking redelivers the event: **subscribers must dedupe by event id**
//! ([`RecordingSubscriber`] shows how).
//!
//! On Postgres, several instances' relays share one outbox: each pass first claims its batch
//! ([`claim_outbox_batch`](crate::persistence::claim_outbox_batch): `FOR UPDATE SKIP LOCKED` in a short transaction that records
//! the relay's instance id and a claim expiry), delivers it outside any transaction, then
//! marks it. So two relays never deliver the same event in normal operation, an order's
//! events still go out in id order (an event waits while an older one of its order is held
//! elsewhere), and a dead instance's claim expires and is taken over (at least once). The
//! claim is a separate short transaction rather than delivering inside the locking one, so a
//! slow subscriber or broker holds no row lock and no pooled connection. On SQLite the single
//! writer already serialises relays; its path is unchanged (no claim write per pass).

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::configuration::OutboxSettings;
use crate::persistence;
use crate::persistence::{self as db, Db, Engine};

/// One delivered event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Unique, increasing id: the dedupe key.
    pub id: i64,
    /// The order concerned.
    pub order_id: i64,
    /// e.g. `OrderPaid`, `PaymentStatusChanged`, `DoubleChargeDetected`.
    pub event_type: String,
    /// The event's JSON payload.
    pub payload: serde_json::Value,
}

/// Receives events. Delivery is at least once: implementations dedupe by [`Event::id`].
pub trait Subscriber: Send + Sync + fmt::Debug {
    /// Handles one event; an error makes the relay deliver it again later.
    ///
    /// # Errors
    ///
    /// Any failure to handle the event.
    fn handle(&self, event: &Event) -> Result<(), String>;
}

/// Event ids seen lately: at most `capacity`, the oldest forgotten first. A redelivery follows
/// its first delivery closely (the relay goes in id order and redelivers what it could not
/// mark published on its next pass), so a window of recent ids dedupes it without keeping
/// every id for ever.
#[derive(Debug)]
struct RecentIds {
    capacity: usize,
    order: VecDeque<i64>,
    set: HashSet<i64>,
}

impl RecentIds {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            set: HashSet::new(),
        }
    }

    /// Remembers `id`; false if it was already remembered.
    fn insert(&mut self, id: i64) -> bool {
        if self.set.contains(&id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.set.remove(&oldest);
        }
        self.order.push_back(id);
        self.set.insert(id);
        true
    }
}

/// Logs alert events (conflicts, double charges) at ERROR and every other event at DEBUG.
/// Dedupes by event id over the last [`AlertLog::DEFAULT_WINDOW`] events, so its memory is
/// bounded however long the service runs.
#[derive(Debug)]
pub struct AlertLog {
    seen: Mutex<RecentIds>,
}

impl Default for AlertLog {
    fn default() -> Self {
        Self::with_window(Self::DEFAULT_WINDOW)
    }
}

impl AlertLog {
    /// Event ids remembered for deduplication by default.
    pub const DEFAULT_WINDOW: usize = 10_000;

    /// An alert log that remembers the last `window` event ids (at least 1).
    pub fn with_window(window: usize) -> Self {
        Self {
            seen: Mutex::new(RecentIds::new(window)),
        }
    }

    /// How many event ids it remembers now.
    pub fn remembered(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .order
            .len()
    }
}

impl Subscriber for AlertLog {
    fn handle(&self, event: &Event) -> Result<(), String> {
        if !self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(event.id)
        {
            return Ok(());
        }
        match event.event_type.as_str() {
            "PaymentConflictDetected" | "DoubleChargeDetected" => tracing::error!(
                event_id = event.id, order_id = event.order_id, kind = %event.event_type,
                payload = %event.payload, "alert delivered"
            ),
            _ => {
                tracing::debug!(event_id = event.id, order_id = event.order_id, kind = %event.event_type, "event");
            }
        }
        Ok(())
    }
}

/// Keeps every distinct event it receives (deduped by id), for tests and the demo; can be
/// told to fail a number of deliveries first.
#[derive(Debug, Default)]
pub struct RecordingSubscriber {
    state: Mutex<Recording>,
}

#[derive(Debug, Default)]
struct Recording {
    seen: HashSet<i64>,
    events: Vec<Event>,
    deliveries: u64,
    fail_next: u32,
}

impl RecordingSubscriber {
    /// A recorder that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails the next `n` deliveries.
    pub fn fail_next(&self, n: u32) {
        self.lock().fail_next = n;
    }

    /// Distinct events received, in delivery order.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// Deliveries received, duplicates and failures included.
    pub fn deliveries(&self) -> u64 {
        self.lock().deliveries
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Subscriber for RecordingSubscriber {
    fn handle(&self, event: &Event) -> Result<(), String> {
        let mut state = self.lock();
        state.deliveries += 1;
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return Err("recording subscriber told to fail".to_owned());
        }
        if state.seen.insert(event.id) {
            state.events.push(event.clone());
        }
        Ok(())
    }
}

/// What one relay pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Events delivered and marked.
    pub published: u64,
    /// Events whose delivery failed this pass.
    pub failed: u64,
}

/// The relay. Cheap to clone.
#[derive(Clone)]
pub struct OutboxRelay {
    db: Db,
    subscribers: Arc<Vec<Arc<dyn Subscriber>>>,
    settings: OutboxSettings,
    wake: Arc<Notify>,
    pass: Arc<tokio::sync::Mutex<()>>,
    owner: Arc<str>,
    sink: Option<Arc<dyn crate::sink::EventSink>>,
}

impl fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("subscribers", &self.subscribers.len())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl OutboxRelay {
    /// A relay to `subscribers`.
    pub fn new(db: Db, subscribers: Vec<Arc<dyn Subscriber>>, settings: OutboxSettings) -> Self {
        Self {
            db,
            subscribers: Arc::new(subscribers),
            settings,
            wake: Arc::new(Notify::new()),
            pass: Arc::new(tokio::sync::Mutex::new(())),
            owner: Arc::from(unique_owner()),
            sink: None,
        }
    }

    /// The same relay publishing every event to `sink` as well, after the in-process
    /// subscribers; an event is marked published only once the sink acknowledged it.
    #[must_use]
    pub fn with_sink(mut self, sink: Arc<dyn crate::sink::EventSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The same relay claiming batches (on Postgres) under `owner`, the instance's stable id
    /// ([`crate::instance::instance_id`]); by default a name unique to this relay in this
    /// process.
    #[must_use]
    pub fn claiming_as(mut self, owner: &str) -> Self {
        self.owner = Arc::from(owner);
        self
    }

    /// Asks the running relay to poll now rather than at its next interval.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Polls until `shutdown` fires; a pass in progress finishes first. A pass that delivered
    /// a whole batch is followed by the next at once ([`next_pass`]); otherwise the relay
    /// waits for its interval or a [`wake`](Self::wake).
    pub async fn run(self, shutdown: CancellationToken) {
        let clock = seawall::Clock::default();
        let interval = Duration::from_millis(self.settings.interval_ms);
        loop {
            let next = match self.relay_once().await {
                Ok(report) => next_pass(report, self.settings.batch_size),
                Err(error) => {
                    tracing::error!(%error, "outbox pass failed");
                    NextPass::Wait
                }
            };
            if next == NextPass::AtOnce && !shutdown.is_cancelled() {
                // A full batch: more are likely waiting. Yield so the order writers and the
                // HTTP work share the runtime, then go again without the interval.
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {}
                () = clock.sleep(interval) => {}
            }
        }
        // One last pass so events of requests that finished during shutdown go out.
        if let Err(error) = self.relay_once().await {
            tracing::error!(%error, "final outbox pass failed");
        }
        tracing::info!("outbox relay stopped");
    }

    /// Delivers every due event now, in id order, up to the first one still backing off
    /// (one pass; passes never overlap).
    ///
    /// # Errors
    ///
    /// A database error.
    pub async fn relay_once(&self) -> Result<RelayReport, sqlx::Error> {
        let _pass = self.pass.lock().await;
        let mut report = RelayReport::default();
        let now = db::now_ms();
        let batch = match self.db.engine() {
            Engine::Sqlite => {
                persistence::pending_outbox_events(
                    &mut *self.db.reader().await?,
                    self.settings.batch_size,
                )
                .await?
            }
            Engine::Postgres => {
                let ttl = i64::try_from(self.settings.claim_ttl_ms).unwrap_or(i64::MAX);
                persistence::claim_outbox_batch(
                    &mut *self.db.writer().await?,
                    &self.owner,
                    self.settings.batch_size,
                    now,
                    now.saturating_add(ttl),
                )
                .await?
            }
        };
        // Delivered events are marked together, in one statement, before anything else is
        // written (a failure's record, the end of the pass): at least once, never lost.
        let mut delivered = Vec::with_capacity(batch.len());
        let mut rows = batch.into_iter();
        for row in rows.by_ref() {
            if row.next_attempt_at > now {
                // Waiting out its backoff; later events wait behind it.
                break;
            }
            let event = Event {
                id: row.id,
                order_id: row.aggregate_id,
                event_type: row.event_type,
                payload: serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null),
            };
            let mut failure = self.subscribers.iter().find_map(|s| s.handle(&event).err());
            if failure.is_none()
                && let Some(sink) = &self.sink
            {
                failure = sink.publish(&event).await.err();
            }
            let Some(error) = failure else {
                delivered.push(event.id);
                continue;
            };
            self.mark_delivered(&mut delivered, &mut report).await?;
            let attempts = row.attempts + 1;
            let dead = attempts >= self.settings.max_attempts;
            let next = now + backoff_ms(self.settings.backoff_ms, attempts);
            persistence::mark_outbox_failed(
                &mut *self.db.writer().await?,
                event.id,
                next,
                dead,
                &error,
            )
            .await?;
            metrics::counter!("commerce_outbox_failures_total").increment(1);
            if dead {
                tracing::error!(event_id = event.id, %error, "outbox event parked as dead");
            } else {
                tracing::warn!(event_id = event.id, attempts, %error, "outbox delivery failed; will retry");
            }
            report.failed += 1;
            // Keep id order: nothing overtakes a failed event.
            if !dead {
                break;
            }
        }
        self.mark_delivered(&mut delivered, &mut report).await?;
        let behind: Vec<i64> = rows.map(|row| row.id).collect();
        if self.db.engine() == Engine::Postgres && !behind.is_empty() {
            persistence::release_outbox_claims(&mut *self.db.writer().await?, &self.owner, &behind)
                .await?;
        }
        Ok(report)
    }

    /// Marks `delivered` published in one statement and empties it.
    async fn mark_delivered(
        &self,
        delivered: &mut Vec<i64>,
        report: &mut RelayReport,
    ) -> Result<(), sqlx::Error> {
        if delivered.is_empty() {
            return Ok(());
        }
        persistence::mark_outbox_published_batch(
            &mut *self.db.writer().await?,
            delivered,
            db::now_ms(),
        )
        .await?;
        let count = u64::try_from(delivered.len()).unwrap_or(u64::MAX);
        report.published += count;
        metrics::counter!("commerce_outbox_published_total").increment(count);
        delivered.clear();
        Ok(())
    }
}

/// When the relay's next pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextPass {
    /// At once: the pass delivered a whole batch, so more events are likely waiting.
    AtOnce,
    /// After the interval, or sooner when a commit wakes the relay: the pass found fewer
    /// than a batch, or a delivery failed (the failed event backs off; nothing overtakes it).
    Wait,
}

/// The next pass after one that did `report` with batches of `batch_size`. A relay that
/// waited its interval after a full pass drained at most `batch_size` events per interval
/// (100 per 500 ms: the 189 events/s once measured in `docs/service-load.md`). Pure.
pub fn next_pass(report: RelayReport, batch_size: i64) -> NextPass {
    let full = u64::try_from(batch_size).is_ok_and(|size| size > 0 && report.published >= size);
    if full && report.failed == 0 {
        NextPass::AtOnce
    } else {
        NextPass::Wait
    }
}

/// A relay name unique in this process, for relays not told their instance's id.
fn unique_owner() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("relay-{}-{n}", std::process::id())
}

/// The wait before attempt `attempts + 1` of a failed event: `base_ms` doubled per earlier
/// attempt, at most a minute. Pure.
pub fn backoff_ms(base_ms: u64, attempts: i64) -> i64 {
    let shift = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let delay = base_ms
        .saturating_mul(1_u64 << shift.saturating_sub(1))
        .min(60_000);
    i64::try_from(delay).unwrap_or(60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64) -> Event {
        Event {
            id,
            order_id: 1,
            event_type: "OrderPaid".to_owned(),
            payload: serde_json::Value::Null,
        }
    }

    fn report(published: u64, failed: u64) -> RelayReport {
        RelayReport { published, failed }
    }

    #[test]
    fn a_full_pass_is_followed_by_another_at_once() {
        assert_eq!(next_pass(report(100, 0), 100), NextPass::AtOnce);
        assert_eq!(next_pass(report(1_000, 0), 1_000), NextPass::AtOnce);
    }

    #[test]
    fn a_pass_short_of_a_batch_waits() {
        assert_eq!(next_pass(report(99, 0), 100), NextPass::Wait);
        assert_eq!(next_pass(report(0, 0), 100), NextPass::Wait);
    }

    #[test]
    fn a_pass_with_a_failure_waits_even_when_full() {
        assert_eq!(next_pass(report(100, 1), 100), NextPass::Wait);
        assert_eq!(next_pass(report(0, 1), 1), NextPass::Wait);
    }

    #[test]
    fn a_batch_size_below_one_never_loops() {
        assert_eq!(next_pass(report(0, 0), 0), NextPass::Wait);
        assert_eq!(next_pass(report(5, 0), -1), NextPass::Wait);
    }

    #[test]
    fn a_failed_event_backs_off_doubling_up_to_a_minute() {
        assert_eq!(backoff_ms(200, 1), 200);
        assert_eq!(backoff_ms(200, 2), 400);
        assert_eq!(backoff_ms(200, 4), 1_600);
        assert_eq!(backoff_ms(200, 30), 60_000);
        assert_eq!(backoff_ms(0, 5), 0);
    }

    #[test]
    fn the_alert_log_remembers_a_bounded_window_of_event_ids() {
        let log = AlertLog::with_window(100);
        for id in 1..=10_000 {
            log.handle(&event(id)).unwrap();
        }
        assert_eq!(log.remembered(), 100);
        // A recent id is still a duplicate; an old one has been forgotten.
        let mut seen = log.seen.lock().unwrap();
        assert!(!seen.insert(10_000));
        assert!(seen.insert(1));
        assert_eq!(seen.order.len(), 100);
        assert_eq!(seen.set.len(), 100);
    }

    #[test]
    fn the_default_alert_log_is_bounded_too() {
        let log = AlertLog::default();
        for id in 0..25_000 {
            log.handle(&event(id)).unwrap();
        }
        assert_eq!(log.remembered(), AlertLog::DEFAULT_WINDOW);
    }
}

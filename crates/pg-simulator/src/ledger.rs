//! The transaction store: insert-only keys, per-(user, order) index, bounded size; in memory,
//! and also in the ledger file when one is configured (see the `journal` module).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::clock::{self, Instant};
use crate::fault::{ActiveFaults, Fault, lock};
use crate::journal::{self, IdempotencyRecord, Journal, JournalError, Record};
use crate::key::KeyGenerator;
use crate::model::{CardNumber, CardType, Outcome, TransactionStatus, messages};

/// One transaction as the gateway stores it. Its `Debug` and `Serialize` mask the card number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// `yyyyMMdd:TR:xxxxxx`.
    pub transaction_key: String,
    /// The `X-USER-ID` that created it; reads are scoped by it.
    pub user_id: String,
    /// The merchant's order id (not unique: retries create several transactions).
    pub order_id: String,
    /// Card issuer.
    pub card_type: CardType,
    /// Card number (full inside, masked when printed).
    pub card_no: CardNumber,
    /// Amount in minor units.
    pub amount: i64,
    /// Where the result is posted.
    pub callback_url: String,
    /// Current status.
    pub status: TransactionStatus,
    /// Reason of a terminal status; absent while PENDING.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Creation time, ms since the Unix epoch.
    pub created_at_unix_ms: u64,
    /// Last status change, ms since the Unix epoch.
    pub updated_at_unix_ms: u64,
    /// Transaction-level faults injected into it (e.g. `drop-callback`).
    pub faults: Vec<Fault>,
}

/// A consistent copy of the whole ledger, oldest transaction first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LedgerSnapshot {
    transactions: Vec<Transaction>,
}

impl LedgerSnapshot {
    /// Every retained transaction, oldest first.
    pub fn transactions(&self) -> &[Transaction] {
        &self.transactions
    }

    /// Number of retained transactions.
    pub fn len(&self) -> usize {
        self.transactions.len()
    }

    /// Whether the ledger is empty.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }

    /// The transaction with this key, whoever owns it.
    pub fn get(&self, transaction_key: &str) -> Option<&Transaction> {
        self.transactions
            .iter()
            .find(|t| t.transaction_key == transaction_key)
    }

    /// Transactions of one order (any user), oldest first.
    pub fn for_order(&self, order_id: &str) -> Vec<&Transaction> {
        self.transactions
            .iter()
            .filter(|t| t.order_id == order_id)
            .collect()
    }

    /// How many transactions an order has (any user).
    pub fn count_for_order(&self, order_id: &str) -> usize {
        self.for_order(order_id).len()
    }

    /// How many SUCCESS transactions an order has (any user).
    pub fn successes_for_order(&self, order_id: &str) -> usize {
        self.transactions
            .iter()
            .filter(|t| t.order_id == order_id && t.status == TransactionStatus::Success)
            .count()
    }

    /// Orders (user, order id) charged more than once: more than one SUCCESS.
    pub fn double_charged_orders(&self) -> Vec<(String, String)> {
        let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for t in &self.transactions {
            if t.status == TransactionStatus::Success {
                *counts.entry((&t.user_id, &t.order_id)).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|((u, o), _)| (u.to_owned(), o.to_owned()))
            .collect()
    }

    /// Asserts that no order was charged twice — the invariant every client test wants.
    ///
    /// # Panics
    ///
    /// When some (user, order) has more than one SUCCESS transaction; the message lists them.
    #[track_caller]
    pub fn assert_no_double_charge(&self) {
        let doubles = self.double_charged_orders();
        assert!(
            doubles.is_empty(),
            "orders with more than one SUCCESS transaction (user, order): {doubles:?}"
        );
    }
}

/// What the ledger needs to create a transaction.
#[derive(Clone, Debug)]
pub(crate) struct NewTransaction {
    pub(crate) user_id: String,
    pub(crate) order_id: String,
    pub(crate) card_type: CardType,
    pub(crate) card_no: CardNumber,
    pub(crate) amount: i64,
    pub(crate) callback_url: String,
    pub(crate) faults: ActiveFaults,
    /// The outcome and delay processing will apply (kept so a restart finishes it the same way).
    pub(crate) outcome: Outcome,
    pub(crate) processing_delay: Duration,
    /// The `Idempotency-Key` it was created under, if any.
    pub(crate) idempotency: Option<IdempotencyRecord>,
}

/// A transaction read back from the ledger file at start, with what a restart needs to finish
/// it (processing, the idempotency key).
#[derive(Clone, Debug)]
pub(crate) struct Restored {
    pub(crate) tx: Transaction,
    pub(crate) stuck: bool,
    pub(crate) outcome: Outcome,
    pub(crate) process_at_unix_ms: u64,
    pub(crate) idempotency: Option<IdempotencyRecord>,
}

/// A transaction plus the hidden state the query and callback faults need.
#[derive(Clone, Debug)]
pub(crate) struct EntryView {
    pub(crate) tx: Transaction,
    pub(crate) faults: ActiveFaults,
    pub(crate) created: Instant,
    pub(crate) completed: Option<Instant>,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    tx: Transaction,
    faults: ActiveFaults,
    created: Instant,
    completed: Option<Instant>,
    outcome: Outcome,
    process_at_unix_ms: u64,
    idempotency: Option<IdempotencyRecord>,
}

impl Entry {
    fn view(&self) -> EntryView {
        EntryView {
            tx: self.tx.clone(),
            faults: self.faults.clone(),
            created: self.created,
            completed: self.completed,
        }
    }

    /// The line of the ledger file (with the full card number: it is the PG's record).
    fn record(&self) -> Record {
        let tx = &self.tx;
        Record {
            transaction_key: tx.transaction_key.clone(),
            user_id: tx.user_id.clone(),
            order_id: tx.order_id.clone(),
            card_type: tx.card_type,
            card_no: tx.card_no.expose().to_owned(),
            amount: tx.amount,
            callback_url: tx.callback_url.clone(),
            status: tx.status,
            reason: tx.reason.clone(),
            created_at_unix_ms: tx.created_at_unix_ms,
            updated_at_unix_ms: tx.updated_at_unix_ms,
            faults: self.faults.iter().copied().collect(),
            outcome: self.outcome,
            process_at_unix_ms: self.process_at_unix_ms,
            idempotency: self.idempotency.clone(),
        }
    }

    /// An entry read back from the file; its monotonic times are set back by the wall-clock
    /// age, so query lags and stale PENDING windows keep running from where they were.
    fn from_record(seq: u64, r: Record, now_ms: u64, now: Instant) -> Self {
        let at = |unix_ms: u64| {
            now.checked_sub(Duration::from_millis(now_ms.saturating_sub(unix_ms)))
                .unwrap_or(now)
        };
        let mut faults = ActiveFaults::new();
        for a in &r.faults {
            faults.insert(a.fault, a.trigger, a.param);
        }
        let terminal = r.status.is_terminal();
        Self {
            seq,
            created: at(r.created_at_unix_ms),
            completed: terminal.then(|| at(r.updated_at_unix_ms)),
            tx: Transaction {
                transaction_key: r.transaction_key,
                user_id: r.user_id,
                order_id: r.order_id,
                card_type: r.card_type,
                card_no: CardNumber::new(r.card_no),
                amount: r.amount,
                callback_url: r.callback_url,
                status: r.status,
                reason: r.reason,
                created_at_unix_ms: r.created_at_unix_ms,
                updated_at_unix_ms: r.updated_at_unix_ms,
                faults: faults.faults(),
            },
            faults,
            outcome: r.outcome,
            process_at_unix_ms: r.process_at_unix_ms,
            idempotency: r.idempotency,
        }
    }

    fn restored(&self) -> Restored {
        Restored {
            tx: self.tx.clone(),
            stuck: self.faults.contains(Fault::Stuck),
            outcome: self.outcome,
            process_at_unix_ms: self.process_at_unix_ms,
            idempotency: self.idempotency.clone(),
        }
    }
}

#[derive(Debug)]
struct Inner {
    next_seq: u64,
    by_key: HashMap<String, Entry>,
    by_seq: BTreeMap<u64, String>,
    by_order: HashMap<(String, String), Vec<String>>,
    retention: usize,
    journal: Option<Journal>,
}

/// Why a transaction could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InsertError {
    #[error("no unique transaction key after {0} attempts")]
    KeysExhausted(u32),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Why a status change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// No transaction with this key (for this user).
    #[error("transaction not found")]
    NotFound,
    /// The transaction is not in a state that allows the change.
    #[error("transaction is {0}")]
    InvalidState(TransactionStatus),
}

/// The ledger plus a change counter that waiters can watch.
#[derive(Debug)]
pub(crate) struct Ledger {
    inner: Mutex<Inner>,
    changes: watch::Sender<u64>,
}

const MAX_KEY_ATTEMPTS: u32 = 32;
const EVICTION_SCAN: usize = 1_024;

impl Ledger {
    /// A ledger in memory only.
    pub(crate) fn new(retention: usize) -> Self {
        Self::with_inner(Inner::empty(retention))
    }

    /// A ledger kept in the file at `path`: loads what the file holds (the retained part, as
    /// if the transactions had been inserted again), compacts the file and appends to it from
    /// now on. Returns the transactions read back.
    pub(crate) fn open(
        retention: usize,
        path: &Path,
    ) -> Result<(Self, Vec<Restored>), JournalError> {
        let records = journal::load(path)?;
        let mut inner = Inner::empty(retention);
        let (now_ms, now) = (clock::unix_millis(), clock::now());
        for record in records {
            let seq = inner.next_seq;
            inner.next_seq += 1;
            inner.add(Entry::from_record(seq, record, now_ms, now));
        }
        inner.journal = Some(Journal::create(path, inner.records())?);
        let restored = inner.entries().map(Entry::restored).collect();
        Ok((Self::with_inner(inner), restored))
    }

    fn with_inner(inner: Inner) -> Self {
        Self {
            inner: Mutex::new(inner),
            changes: watch::Sender::new(0),
        }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Signals waiters that something observable changed (ledger or counters).
    pub(crate) fn touch(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Creates a PENDING transaction under a fresh key; returns it and the number of
    /// collisions met on the way. `force_collision` proposes the newest existing key first.
    pub(crate) fn insert(
        &self,
        new: NewTransaction,
        keys: &dyn KeyGenerator,
        date: &str,
        force_collision: bool,
    ) -> Result<(Transaction, u32), InsertError> {
        let now_ms = clock::unix_millis();
        let mut inner = lock(&self.inner);
        let mut collisions = 0;
        let mut key = None;
        for attempt in 0..MAX_KEY_ATTEMPTS {
            let candidate = match inner.by_seq.last_key_value() {
                Some((_, newest)) if force_collision && attempt == 0 => newest.clone(),
                _ => keys.generate(date),
            };
            if inner.by_key.contains_key(&candidate) {
                collisions += 1;
                tracing::warn!(transaction_key = %candidate, "transaction key collision, regenerating");
            } else {
                key = Some(candidate);
                break;
            }
        }
        let key = key.ok_or(InsertError::KeysExhausted(MAX_KEY_ATTEMPTS))?;
        let tx = Transaction {
            transaction_key: key,
            user_id: new.user_id,
            order_id: new.order_id,
            card_type: new.card_type,
            card_no: new.card_no,
            amount: new.amount,
            callback_url: new.callback_url,
            status: TransactionStatus::Pending,
            reason: None,
            created_at_unix_ms: now_ms,
            updated_at_unix_ms: now_ms,
            faults: new.faults.faults(),
        };
        let delay_ms = u64::try_from(new.processing_delay.as_millis()).unwrap_or(u64::MAX);
        let entry = Entry {
            seq: inner.next_seq,
            tx: tx.clone(),
            faults: new.faults,
            created: clock::now(),
            completed: None,
            outcome: new.outcome,
            process_at_unix_ms: now_ms.saturating_add(delay_ms),
            idempotency: new.idempotency,
        };
        // On file before anyone can learn of it: a client told "created" can find it after a
        // restart. Nothing was created when this fails.
        if let Some(journal) = inner.journal.as_mut() {
            journal.append(&entry.record())?;
        }
        inner.next_seq += 1;
        inner.add(entry);
        inner.compact_if_due();
        drop(inner);
        self.touch();
        Ok((tx, collisions))
    }

    /// PENDING → the outcome's status. Terminal states are final.
    pub(crate) fn complete(
        &self,
        key: &str,
        outcome: Outcome,
    ) -> Result<EntryView, TransitionError> {
        let mut inner = lock(&self.inner);
        let entry = inner.by_key.get_mut(key).ok_or(TransitionError::NotFound)?;
        if entry.tx.status != TransactionStatus::Pending {
            return Err(TransitionError::InvalidState(entry.tx.status));
        }
        entry.tx.status = outcome.status();
        entry.tx.reason = Some(outcome.reason().to_owned());
        entry.tx.updated_at_unix_ms = clock::unix_millis();
        entry.completed = Some(clock::now());
        let view = entry.view();
        inner.persist(key);
        drop(inner);
        self.touch();
        Ok(view)
    }

    /// SUCCESS → CANCELED for the owner; CANCELED stays CANCELED (returns `false`: unchanged).
    pub(crate) fn cancel(
        &self,
        user: &str,
        key: &str,
    ) -> Result<(EntryView, bool), TransitionError> {
        let mut inner = lock(&self.inner);
        let entry = inner
            .by_key
            .get_mut(key)
            .filter(|e| e.tx.user_id == user)
            .ok_or(TransitionError::NotFound)?;
        match entry.tx.status {
            TransactionStatus::Canceled => Ok((entry.view(), false)),
            TransactionStatus::Success => {
                entry.tx.status = TransactionStatus::Canceled;
                entry.tx.reason = Some(messages::REASON_CANCELED.to_owned());
                entry.tx.updated_at_unix_ms = clock::unix_millis();
                let view = entry.view();
                inner.persist(key);
                drop(inner);
                self.touch();
                Ok((view, true))
            }
            other => Err(TransitionError::InvalidState(other)),
        }
    }

    /// The transaction with this key if `user` owns it.
    pub(crate) fn get_for_user(&self, user: &str, key: &str) -> Option<EntryView> {
        let inner = lock(&self.inner);
        inner
            .by_key
            .get(key)
            .filter(|e| e.tx.user_id == user)
            .map(Entry::view)
    }

    /// The transaction with this key, whoever owns it.
    pub(crate) fn get(&self, key: &str) -> Option<EntryView> {
        lock(&self.inner).by_key.get(key).map(Entry::view)
    }

    /// The user's transactions for an order, newest first.
    pub(crate) fn for_order(&self, user: &str, order: &str) -> Vec<EntryView> {
        let inner = lock(&self.inner);
        let Some(keys) = inner.by_order.get(&(user.to_owned(), order.to_owned())) else {
            return Vec::new();
        };
        let mut views: Vec<(u64, EntryView)> = keys
            .iter()
            .filter_map(|k| inner.by_key.get(k))
            .map(|e| (e.seq, e.view()))
            .collect();
        views.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        views.into_iter().map(|(_, v)| v).collect()
    }

    pub(crate) fn snapshot(&self) -> LedgerSnapshot {
        let inner = lock(&self.inner);
        LedgerSnapshot {
            transactions: inner
                .by_seq
                .values()
                .filter_map(|k| inner.by_key.get(k))
                .map(|e| e.tx.clone())
                .collect(),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).by_key.len()
    }
}

impl Inner {
    fn empty(retention: usize) -> Self {
        Self {
            next_seq: 0,
            by_key: HashMap::new(),
            by_seq: BTreeMap::new(),
            by_order: HashMap::new(),
            retention: retention.max(1),
            journal: None,
        }
    }

    /// Indexes an entry, evicting first to stay within the retention.
    fn add(&mut self, entry: Entry) {
        while self.by_key.len() >= self.retention {
            self.evict_one();
        }
        let key = entry.tx.transaction_key.clone();
        self.by_seq.insert(entry.seq, key.clone());
        self.by_order
            .entry((entry.tx.user_id.clone(), entry.tx.order_id.clone()))
            .or_default()
            .push(key.clone());
        self.by_key.insert(key, entry);
    }

    /// Retained entries, oldest first.
    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_seq.values().filter_map(|k| self.by_key.get(k))
    }

    fn records(&self) -> Vec<Record> {
        self.entries().map(Entry::record).collect()
    }

    /// Appends the entry's new state to the file. A failure is logged: the change stands in
    /// memory, and a restart would process a PENDING transaction again to the same outcome.
    fn persist(&mut self, key: &str) {
        let Some(record) = self.by_key.get(key).map(Entry::record) else {
            return;
        };
        if let Some(journal) = self.journal.as_mut()
            && let Err(error) = journal.append(&record)
        {
            tracing::error!(transaction_key = %key, %error, "ledger file not updated");
        }
        self.compact_if_due();
    }

    fn compact_if_due(&mut self) {
        if !self
            .journal
            .as_ref()
            .is_some_and(|j| j.wants_compaction(self.by_key.len()))
        {
            return;
        }
        let records = self.records();
        if let Some(journal) = self.journal.as_mut()
            && let Err(error) = journal.compact(records)
        {
            tracing::error!(%error, "ledger file not compacted");
        }
    }

    /// Drops the oldest terminal transaction (looking at most `EVICTION_SCAN` deep), or the
    /// oldest one outright: memory stays bounded even if everything is stuck.
    fn evict_one(&mut self) {
        let victim = self
            .by_seq
            .iter()
            .take(EVICTION_SCAN)
            .find(|(_, k)| {
                self.by_key
                    .get(*k)
                    .is_some_and(|e| e.tx.status.is_terminal())
            })
            .or_else(|| self.by_seq.iter().next())
            .map(|(seq, k)| (*seq, k.clone()));
        let Some((seq, key)) = victim else { return };
        self.by_seq.remove(&seq);
        if let Some(entry) = self.by_key.remove(&key) {
            let order = (entry.tx.user_id, entry.tx.order_id);
            if let Some(list) = self.by_order.get_mut(&order) {
                list.retain(|k| *k != key);
                if list.is_empty() {
                    self.by_order.remove(&order);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::ScriptedKeys;

    fn new_tx(order: &str) -> NewTransaction {
        NewTransaction {
            user_id: "u1".into(),
            order_id: order.into(),
            card_type: CardType::Kb,
            card_no: CardNumber::new("1234-5678-9012-3456"),
            amount: 5000,
            callback_url: "http://localhost:8080/cb".into(),
            faults: ActiveFaults::new(),
            outcome: Outcome::Success,
            processing_delay: Duration::ZERO,
            idempotency: None,
        }
    }

    #[test]
    fn a_colliding_key_is_regenerated_and_never_overwrites() {
        let ledger = Ledger::new(10);
        let keys = ScriptedKeys::new(["k1", "k1", "k1", "k2"]);
        let (first, c) = ledger.insert(new_tx("order-1"), &keys, "d", false).unwrap();
        assert_eq!((first.transaction_key.as_str(), c), ("k1", 0));
        let (second, c) = ledger.insert(new_tx("order-2"), &keys, "d", false).unwrap();
        assert_eq!((second.transaction_key.as_str(), c), ("k2", 2));
        assert_eq!(ledger.get("k1").unwrap().tx.order_id, "order-1");
    }

    #[test]
    fn retention_evicts_the_oldest_terminal_transaction_first() {
        let ledger = Ledger::new(2);
        let keys = ScriptedKeys::new(["a", "b", "c"]);
        ledger.insert(new_tx("order-a"), &keys, "d", false).unwrap();
        ledger.insert(new_tx("order-b"), &keys, "d", false).unwrap();
        ledger.complete("b", Outcome::Success).unwrap();
        ledger.insert(new_tx("order-c"), &keys, "d", false).unwrap();
        assert_eq!(ledger.len(), 2);
        assert!(ledger.get("a").is_some(), "pending a must survive");
        assert!(ledger.get("b").is_none(), "terminal b is evicted first");
        assert!(ledger.for_order("u1", "order-b").is_empty());
    }

    #[test]
    fn terminal_states_are_final() {
        let ledger = Ledger::new(10);
        let keys = ScriptedKeys::new(["a"]);
        ledger.insert(new_tx("order-a"), &keys, "d", false).unwrap();
        ledger.complete("a", Outcome::InvalidCard).unwrap();
        assert_eq!(
            ledger.complete("a", Outcome::Success).unwrap_err(),
            TransitionError::InvalidState(TransactionStatus::Failed)
        );
        assert_eq!(
            ledger.cancel("u1", "a").unwrap_err(),
            TransitionError::InvalidState(TransactionStatus::Failed)
        );
    }

    #[test]
    fn the_snapshot_detects_double_charges() {
        let ledger = Ledger::new(10);
        let keys = ScriptedKeys::new(["a", "b"]);
        ledger.insert(new_tx("order-a"), &keys, "d", false).unwrap();
        ledger.insert(new_tx("order-a"), &keys, "d", false).unwrap();
        ledger.complete("a", Outcome::Success).unwrap();
        ledger.snapshot().assert_no_double_charge();
        ledger.complete("b", Outcome::Success).unwrap();
        let snap = ledger.snapshot();
        assert_eq!(snap.successes_for_order("order-a"), 2);
        assert_eq!(
            snap.double_charged_orders(),
            vec![("u1".to_owned(), "order-a".to_owned())]
        );
    }
}

//! The opt-in `Idempotency-Key` store (Stripe/Toss semantics, scoped per `X-USER-ID`).
//!
//! - same key, same request → the first response is replayed;
//! - same key, different request → 422 `IDEMPOTENCY_KEY_REUSED`;
//! - same key while the first is still running → 409.
//!
//! A key is only remembered once a transaction was created: a request that failed before
//! creating anything (canonical 500, throttle, ...) leaves no trace, so retrying it is useful.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::clock::{self, Instant};
use crate::config::IdempotencyConfig;
use crate::fault::lock;

type Scope = (String, String);

#[derive(Debug)]
enum Slot {
    InFlight {
        fingerprint: String,
        token: u64,
    },
    Done {
        fingerprint: String,
        body: Bytes,
        at: Instant,
    },
}

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<Scope, Slot>,
    order: VecDeque<Scope>,
    next_token: u64,
}

/// Stored responses by (user, key).
#[derive(Debug, Default)]
pub(crate) struct IdempotencyStore {
    inner: Mutex<Inner>,
}

/// The decision for a request carrying a key.
#[derive(Debug)]
pub(crate) enum Begin {
    /// First use: run the request and complete the guard once a transaction exists.
    Started(IdempotencyGuard),
    /// Seen before with the same request: answer 200 with this body.
    Replay(Bytes),
    /// Seen before with a different request.
    Reused,
    /// The first request with this key is still running.
    InProgress,
}

/// Marks a key in flight; dropping it without `complete` forgets the key.
#[derive(Debug)]
#[must_use]
pub(crate) struct IdempotencyGuard {
    store: Arc<IdempotencyStore>,
    scope: Scope,
    fingerprint: String,
    token: u64,
    done: bool,
}

impl IdempotencyStore {
    pub(crate) fn begin(
        self: &Arc<Self>,
        user: &str,
        key: &str,
        fingerprint: String,
        retention: Duration,
        max_keys: usize,
    ) -> Begin {
        let scope = (user.to_owned(), key.to_owned());
        let mut inner = lock(&self.inner);
        let now = clock::now();
        match inner.slots.get(&scope) {
            Some(Slot::InFlight { .. }) => return Begin::InProgress,
            Some(Slot::Done {
                fingerprint: stored,
                body,
                at,
            }) if now.duration_since(*at) <= retention => {
                return if *stored == fingerprint {
                    Begin::Replay(body.clone())
                } else {
                    Begin::Reused
                };
            }
            _ => {}
        }
        while inner.slots.len() >= max_keys {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.slots.remove(&oldest);
        }
        let token = inner.next_token;
        inner.next_token += 1;
        let slot = Slot::InFlight {
            fingerprint: fingerprint.clone(),
            token,
        };
        if inner.slots.insert(scope.clone(), slot).is_none() {
            inner.order.push_back(scope.clone());
        }
        Begin::Started(IdempotencyGuard {
            store: Arc::clone(self),
            scope,
            fingerprint,
            token,
            done: false,
        })
    }

    /// Remembers a key read back from the ledger file, `age` after its first use; a key past
    /// its retention is not brought back.
    pub(crate) fn restore(
        &self,
        user: &str,
        key: &str,
        fingerprint: String,
        body: Bytes,
        age: Duration,
        config: &IdempotencyConfig,
    ) {
        if age > config.retention {
            return;
        }
        let now = clock::now();
        let scope = (user.to_owned(), key.to_owned());
        let mut inner = lock(&self.inner);
        while inner.slots.len() >= config.max_keys {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.slots.remove(&oldest);
        }
        let slot = Slot::Done {
            fingerprint,
            body,
            at: now.checked_sub(age).unwrap_or(now),
        };
        if inner.slots.insert(scope.clone(), slot).is_none() {
            inner.order.push_back(scope);
        }
    }
}

impl IdempotencyGuard {
    /// The key and the request's fingerprint, as the ledger file keeps them.
    pub(crate) fn record(&self) -> crate::journal::IdempotencyRecord {
        crate::journal::IdempotencyRecord {
            key: self.scope.1.clone(),
            fingerprint: self.fingerprint.clone(),
        }
    }

    /// Stores the response to replay: the body of the 200 that created the transaction.
    pub(crate) fn complete(mut self, body: Bytes) {
        let mut inner = lock(&self.store.inner);
        if let Some(slot) = inner.slots.get_mut(&self.scope)
            && let Slot::InFlight { fingerprint, token } = slot
            && *token == self.token
        {
            let fingerprint = std::mem::take(fingerprint);
            *slot = Slot::Done {
                fingerprint,
                body,
                at: clock::now(),
            };
        }
        self.done = true;
    }
}

impl Drop for IdempotencyGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut inner = lock(&self.store.inner);
        if matches!(inner.slots.get(&self.scope), Some(Slot::InFlight { token, .. }) if *token == self.token)
        {
            inner.slots.remove(&self.scope);
            let scope = self.scope.clone();
            inner.order.retain(|s| *s != scope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[tokio::test]
    async fn a_completed_key_replays_and_rejects_other_requests() {
        let store = Arc::new(IdempotencyStore::default());
        let Begin::Started(guard) = store.begin("u", "k", "A".into(), DAY, 10) else {
            panic!("first use must start");
        };
        assert!(matches!(
            store.begin("u", "k", "A".into(), DAY, 10),
            Begin::InProgress
        ));
        guard.complete(Bytes::from_static(b"body"));
        assert!(
            matches!(store.begin("u", "k", "A".into(), DAY, 10), Begin::Replay(b) if b == "body")
        );
        assert!(matches!(
            store.begin("u", "k", "B".into(), DAY, 10),
            Begin::Reused
        ));
        assert!(matches!(
            store.begin("other", "k", "B".into(), DAY, 10),
            Begin::Started(_)
        ));
    }

    #[tokio::test]
    async fn a_dropped_guard_forgets_the_key() {
        let store = Arc::new(IdempotencyStore::default());
        let Begin::Started(guard) = store.begin("u", "k", "A".into(), DAY, 10) else {
            panic!("first use must start");
        };
        drop(guard);
        assert!(matches!(
            store.begin("u", "k", "B".into(), DAY, 10),
            Begin::Started(_)
        ));
    }
}

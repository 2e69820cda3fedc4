//! Request and callback counters. Client tests use them to prove that a request did (or did
//! not) reach the network.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Live counters. Each is independent, so `Relaxed` suffices: readers only need eventually
/// exact totals, never an order between two counters.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) connections: AtomicU64,
    pub(crate) payment_requests: AtomicU64,
    pub(crate) payments_created: AtomicU64,
    pub(crate) detail_queries: AtomicU64,
    pub(crate) order_queries: AtomicU64,
    pub(crate) cancel_requests: AtomicU64,
    pub(crate) callbacks_attempted: AtomicU64,
    pub(crate) callbacks_delivered: AtomicU64,
    pub(crate) callbacks_failed: AtomicU64,
}

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            connections: g(&self.connections),
            payment_requests: g(&self.payment_requests),
            payments_created: g(&self.payments_created),
            detail_queries: g(&self.detail_queries),
            order_queries: g(&self.order_queries),
            cancel_requests: g(&self.cancel_requests),
            callbacks_attempted: g(&self.callbacks_attempted),
            callbacks_delivered: g(&self.callbacks_delivered),
            callbacks_failed: g(&self.callbacks_failed),
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    /// TCP connections accepted on the payment API.
    pub connections: u64,
    /// `POST /api/v1/payments` requests received (valid or not).
    pub payment_requests: u64,
    /// Transactions created.
    pub payments_created: u64,
    /// `GET /api/v1/payments/{key}` requests received.
    pub detail_queries: u64,
    /// `GET /api/v1/payments?orderId=` requests received.
    pub order_queries: u64,
    /// `POST /api/v1/payments/{key}/cancel` requests received.
    pub cancel_requests: u64,
    /// Callback HTTP attempts (every copy and every retry counts).
    pub callbacks_attempted: u64,
    /// Callback attempts answered with a 2xx.
    pub callbacks_delivered: u64,
    /// Callback attempts that failed (transport error, timeout or non-2xx).
    pub callbacks_failed: u64,
}

impl StatsSnapshot {
    /// Every request received on the payment API.
    pub const fn requests(&self) -> u64 {
        self.payment_requests + self.detail_queries + self.order_queries + self.cancel_requests
    }

    /// Both kinds of query.
    pub const fn queries(&self) -> u64 {
        self.detail_queries + self.order_queries
    }
}

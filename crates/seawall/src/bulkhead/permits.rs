//! The bulkhead's permits: an atomic counter on the fast path, a FIFO line only for callers
//! that wait.
//!
//! Taking a free permit is one compare-and-swap, giving it back an atomic add: no lock on
//! either side (tokio's semaphore locks its waiter list on every release, which made it the
//! slower half of the bulkhead's cost). Callers that may wait sleep on a `tokio::sync::Notify`,
//! which wakes them in arrival order. The line is fair, as Resilience4j's (fair) semaphore is:
//! a permit returned while anyone waits is not put back in the pool but handed off to the
//! waiter it wakes, so a newcomer cannot take it first. The pool is signed so that a shrink can
//! take it below zero and retire permits as they come back.
//!
//! Every counter uses `SeqCst`: a returner and a waiter each write one counter and then read
//! the other, and one of them must see the other's write (Dekker's pattern) — either the
//! waiter finds the permit or the returner finds the waiter and wakes it.

use crate::sync::atomic::{AtomicI64, AtomicUsize, Ordering::SeqCst};
use crate::sync::seq_cst_point;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

#[cfg(all(test, loom))]
#[path = "loom_tests.rs"]
mod loom_tests;

/// Permits and the line of callers waiting for one.
#[derive(Debug)]
pub(crate) struct Permits {
    /// Free permits anyone may take while nobody waits; negative while a shrink retires some.
    pool: AtomicI64,
    /// Permits returned while someone waited, reserved for the waiters they woke.
    handoffs: AtomicUsize,
    /// Callers in line (registered with `notify` before they are counted).
    waiters: AtomicUsize,
    notify: Notify,
}

impl Permits {
    pub(crate) fn new(permits: usize) -> Self {
        Self {
            pool: AtomicI64::new(i64::try_from(permits).unwrap_or(i64::MAX)),
            handoffs: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            notify: Notify::new(),
        }
    }

    /// Takes a free permit for a newcomer: only when nobody is in line before it.
    #[inline]
    pub(crate) fn try_take(&self) -> bool {
        self.waiters.load(SeqCst) == 0 && self.take_from_pool()
    }

    #[inline]
    fn take_from_pool(&self) -> bool {
        let mut current = self.pool.load(SeqCst);
        loop {
            if current <= 0 {
                return false;
            }
            match self
                .pool
                .compare_exchange_weak(current, current - 1, SeqCst, SeqCst)
            {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    fn take_handoff(&self) -> bool {
        self.handoffs
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Returns a permit: to the first waiter if anyone waits, otherwise to the pool.
    #[inline]
    pub(crate) fn give_back(&self) {
        // While a shrink is retiring permits, a returned one pays that debt instead.
        if self.waiters.load(SeqCst) > 0 && self.pool.load(SeqCst) >= 0 {
            self.handoffs.fetch_add(1, SeqCst);
            seq_cst_point();
            self.notify.notify_one();
            // The last waiter may have left in between; then nobody will claim the handoff.
            if self.waiters.load(SeqCst) == 0 {
                self.reclaim_handoffs();
            }
        } else {
            self.pool.fetch_add(1, SeqCst);
            seq_cst_point();
            // A caller that joined the line meanwhile may have missed the permit: wake it.
            if self.waiters.load(SeqCst) > 0 {
                self.notify.notify_one();
            }
        }
    }

    /// Moves unclaimed handoffs back to the pool once nobody waits for them.
    fn reclaim_handoffs(&self) {
        let unclaimed = self.handoffs.swap(0, SeqCst);
        if unclaimed > 0 {
            self.pool
                .fetch_add(i64::try_from(unclaimed).unwrap_or(i64::MAX), SeqCst);
            seq_cst_point();
            if self.waiters.load(SeqCst) > 0 {
                self.notify.notify_one();
            }
        }
    }

    /// Adds (or, negative, removes) permits: the limit changed.
    pub(crate) fn adjust(&self, delta: i64) {
        self.pool.fetch_add(delta, SeqCst);
        seq_cst_point();
        if delta > 0 && self.waiters.load(SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Permits free right now.
    pub(crate) fn available(&self) -> usize {
        usize::try_from(self.pool.load(SeqCst)).unwrap_or(0)
    }

    /// Waits in line for a permit; the caller bounds the wait. The caller joins the line when
    /// the future is first polled.
    pub(crate) fn wait(&self) -> Wait<'_> {
        Wait {
            permits: self,
            notified: self.notify.notified(),
            in_line: false,
            granted: false,
        }
    }
}

pin_project! {
    /// Waiting for a permit. Ready once a permit was taken (the caller then owns it); dropping
    /// it leaves the line, and a wake-up it received but did not use passes to the next waiter.
    pub(crate) struct Wait<'a> {
        permits: &'a Permits,
        #[pin]
        notified: Notified<'a>,
        in_line: bool,
        granted: bool,
    }

    impl<'a> PinnedDrop for Wait<'a> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // `notified` is dropped after this, and tokio forwards an unused `notify_one` to
            // the next registered waiter. If nobody is left, handoffs go back to the pool.
            if *this.in_line && this.permits.waiters.fetch_sub(1, SeqCst) == 1 {
                seq_cst_point();
                this.permits.reclaim_handoffs();
            }
        }
    }
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if *this.granted {
            return Poll::Ready(());
        }
        let permits = *this.permits;
        if !*this.in_line {
            // Register for wake-ups before being counted, so every counted waiter can be woken.
            this.notified.as_mut().enable();
            permits.waiters.fetch_add(1, SeqCst);
            seq_cst_point();
            *this.in_line = true;
            // A permit returned just before we were counted went to the pool.
            if permits.take_from_pool() {
                *this.granted = true;
                return Poll::Ready(());
            }
        }
        loop {
            if this.notified.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Woken: what the waker wrote before `notify_one` is visible (tokio's `Notify`
            // orders it; loom cannot see that, so the point stands in for it).
            seq_cst_point();
            if permits.take_handoff() || permits.take_from_pool() {
                *this.granted = true;
                return Poll::Ready(());
            }
            // Woken without a permit (a neighbour took it): re-register, then look once more
            // so a permit returned while we were unregistered is not missed.
            this.notified.set(permits.notify.notified());
            this.notified.as_mut().enable();
            if permits.take_handoff() || permits.take_from_pool() {
                *this.granted = true;
                return Poll::Ready(());
            }
        }
    }
}

impl std::fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wait")
            .field("in_line", &self.in_line)
            .field("granted", &self.granted)
            .finish()
    }
}

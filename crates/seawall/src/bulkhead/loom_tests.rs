//! loom models of the bulkhead's permits (`permits.rs`): taking a free permit, giving it back,
//! handing it off to a waiter, and a waiter cancelled while a permit comes back.
//!
//! The atomics are loom's (through `crate::sync`); the waiters' line is tokio's `Notify`, which
//! loom cannot see into: each of its calls is one indivisible step of the model. Run with
//! `crates/seawall/scripts/loom.sh` (`RUSTFLAGS="--cfg loom"`).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom::sync::Arc;
use loom::sync::atomic::AtomicUsize;
use loom::thread;

use super::Permits;
use crate::sync::atomic::Ordering::SeqCst;

/// Counts the callers holding a permit, and fails the model if there are more than `max`.
struct Holders {
    now: AtomicUsize,
    max: usize,
}

impl Holders {
    fn new(max: usize) -> Self {
        Self {
            now: AtomicUsize::new(0),
            max,
        }
    }

    /// Runs a call while holding a permit, then gives the permit back.
    fn hold_then_give_back(&self, permits: &Permits) {
        let holding = self.now.fetch_add(1, SeqCst) + 1;
        assert!(
            holding <= self.max,
            "{holding} callers hold {} permits",
            self.max
        );
        self.now.fetch_sub(1, SeqCst);
        permits.give_back();
    }
}

/// Nothing is lost or duplicated: every permit is back in the pool, none is parked as an
/// unclaimed hand-off, and nobody is counted in line.
fn assert_settled(permits: &Permits, total: i64) {
    assert_eq!(
        permits.pool.load(SeqCst),
        total,
        "permits lost or duplicated"
    );
    assert_eq!(permits.handoffs.load(SeqCst), 0, "a hand-off nobody claims");
    assert_eq!(permits.waiters.load(SeqCst), 0, "a waiter still counted");
}

#[test]
fn two_newcomers_never_hold_one_permit_together() {
    loom::model(|| {
        let permits = Arc::new(Permits::new(1));
        let holders = Arc::new(Holders::new(1));
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let (permits, holders) = (permits.clone(), holders.clone());
                thread::spawn(move || {
                    if permits.try_take() {
                        holders.hold_then_give_back(&permits);
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.join().unwrap();
        }
        assert_settled(&permits, 1);
    });
}

#[test]
fn a_returned_permit_reaches_the_waiter() {
    loom::model(|| {
        let permits = Arc::new(Permits::new(1));
        let holders = Arc::new(Holders::new(1));
        assert!(permits.try_take());
        holders.now.fetch_add(1, SeqCst);

        // A caller waits in line (block_on parks it until it is woken: a lost wake-up is a
        // deadlock, which loom reports).
        let waiter = {
            let (permits, holders) = (permits.clone(), holders.clone());
            thread::spawn(move || {
                loom::future::block_on(permits.wait());
                holders.hold_then_give_back(&permits);
            })
        };
        // A newcomer tries its luck meanwhile: it must not overtake a waiter it saw.
        let newcomer = {
            let (permits, holders) = (permits.clone(), holders.clone());
            thread::spawn(move || {
                if permits.try_take() {
                    holders.hold_then_give_back(&permits);
                }
            })
        };
        holders.now.fetch_sub(1, SeqCst);
        permits.give_back();

        waiter.join().unwrap();
        newcomer.join().unwrap();
        assert_settled(&permits, 1);
    });
}

#[test]
fn a_cancelled_waiter_loses_no_permit_and_no_wake_up() {
    loom::model(|| {
        let permits = Arc::new(Permits::new(1));
        let holders = Arc::new(Holders::new(1));
        assert!(permits.try_take());
        holders.now.fetch_add(1, SeqCst);

        // The first waiter joins the line and is dropped (an outer timeout, a `select!`)
        // while the permit comes back: a hand-off it received must pass on.
        let cancelled = {
            let (permits, holders) = (permits.clone(), holders.clone());
            thread::spawn(move || {
                let granted = {
                    let mut wait = pin!(permits.wait());
                    let mut cx = Context::from_waker(Waker::noop());
                    wait.as_mut().poll(&mut cx) == Poll::Ready(())
                };
                if granted {
                    holders.hold_then_give_back(&permits);
                }
            })
        };
        // A second waiter must get the permit whatever the first did.
        let waiter = {
            let (permits, holders) = (permits.clone(), holders.clone());
            thread::spawn(move || {
                loom::future::block_on(permits.wait());
                holders.hold_then_give_back(&permits);
            })
        };
        holders.now.fetch_sub(1, SeqCst);
        permits.give_back();

        cancelled.join().unwrap();
        waiter.join().unwrap();
        assert_settled(&permits, 1);
    });
}

#[test]
fn tokio_notify_wakes_a_waiter_blocked_in_loom() {
    loom::model(|| {
        let notify = Arc::new(tokio::sync::Notify::new());
        let waiter = {
            let notify = notify.clone();
            thread::spawn(move || loom::future::block_on(notify.notified()))
        };
        notify.notify_one();
        waiter.join().unwrap();
    });
}

//! The synchronisation primitives the lock-free code uses, in one place.
//!
//! A normal build re-exports `std`'s. Under `RUSTFLAGS="--cfg loom"` the same names come from
//! `loom`, whose model checker then explores every interleaving of the code that uses them (see
//! `crates/seawall/scripts/loom.sh` and the `loom_tests` modules). Code whose orderings matter
//! imports `crate::sync::atomic::*`, `crate::sync::Arc` and `crate::sync::Mutex` from here, never
//! from `std::sync` directly, so that the models check the code that ships.

#![allow(unused_imports, unreachable_pub)]

#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

/// Atomic integers, booleans and pointers, and [`Ordering`](atomic::Ordering).
pub(crate) mod atomic {
    #[cfg(not(loom))]
    pub(crate) use std::sync::atomic::*;

    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::*;
}

/// Marks a point where code relies on an order that loom cannot see, so that the models do not
/// report executions no machine can produce:
///
/// - the single total order of `SeqCst` accesses (a write then a read of another atomic,
///   Dekker's pattern): loom models `SeqCst` loads and read-modify-writes as acquire/release
///   only, a documented limitation of loom;
/// - the order a non-loom primitive gives (tokio's `Notify` makes what a notifier wrote before
///   `notify_one` visible to the woken waiter, through its own lock).
///
/// Under loom it is a `SeqCst` fence, which loom does model, placed after the write and before
/// the read (or notify). In a normal build the accesses are `SeqCst` and `Notify` orders its
/// wake-ups, so this is nothing at all.
#[inline(always)]
pub(crate) fn seq_cst_point() {
    #[cfg(loom)]
    loom::sync::atomic::fence(atomic::Ordering::SeqCst);
}

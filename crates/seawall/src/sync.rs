//! The synchronisation primitives the lock-free code uses, in one place.
//!
//! A normal build re-exports `std`'s. Under `RUSTFLAGS="--cfg loom"` the same names come from
//! `loom`, whose model checker then explores every interleaving of the code that uses them (see
//! `crates/seawall/scripts/loom.sh` and the `loom_*` tests). Code whose orderings matter imports
//! `crate::sync::atomic::*`, `crate::sync::Arc` and `crate::sync::Mutex` from here, never from
//! `std::sync` directly, so that the models check the code that ships.

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

/// A hint inside a spin or CAS loop: `std::hint::spin_loop`, or a yield to loom's scheduler.
#[allow(dead_code)]
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

//! The limiter's schedule: one atomic "theoretical arrival time" advanced by compare-and-swap.
//!
//! These functions are the whole lock-free protocol, apart from the configuration and the
//! clock, so the loom models (`loom_tests.rs`) check exactly the code that ships.

use crate::sync::atomic::{AtomicU64, Ordering};

/// What one reservation decided, in the clock's nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Go now.
    Now,
    /// Reserved: go `wait` ns from now; `slot` is the arrival time this call wrote, which
    /// identifies it for a release.
    Wait { wait: u64, slot: u64 },
    /// Rejected: the next slot is `wait` ns away, more than the timeout.
    Rejected { wait: u64 },
}

/// Reserves the next slot at `now` if it is at most `timeout` away. Calls are spaced by
/// `interval`, and up to `tolerance` of schedule may run ahead of now (the burst).
#[inline]
pub(crate) fn reserve(
    arrival: &AtomicU64,
    now: u64,
    interval: u64,
    tolerance: u64,
    timeout: u64,
) -> Slot {
    let mut current = arrival.load(Ordering::Acquire);
    loop {
        let start = current.max(now);
        let wait = (start - now).saturating_sub(tolerance);
        if wait > timeout {
            return Slot::Rejected { wait };
        }
        let next = start.saturating_add(interval);
        match arrival.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) if wait == 0 => return Slot::Now,
            Ok(_) => return Slot::Wait { wait, slot: next },
            Err(seen) => current = seen,
        }
    }
}

/// A waiting call gave up: gives its slot back if nobody reserved after it (otherwise the
/// schedule has moved on and the slot stays spent). True when the slot was given back.
#[inline]
pub(crate) fn release(arrival: &AtomicU64, slot: u64, interval: u64) -> bool {
    arrival
        .compare_exchange(
            slot,
            slot.saturating_sub(interval),
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_ok()
}

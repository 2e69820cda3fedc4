//! Half-open probe slots: how many of the `permitted_calls_in_half_open` probes are taken.
//!
//! A probe takes a slot when it is admitted and keeps it once it has recorded its outcome (the
//! slots count the half-open state's probes, not the calls in flight); a probe that is
//! cancelled (its future or permit dropped) or whose outcome is ignored gives its slot back,
//! so another call can probe. The counter is shared by every state generation of one
//! HALF_OPEN state (a reconfiguration replaces the generation, not the slots), so a probe
//! admitted just before a reconfiguration is counted in the slots that follow it.
//!
//! The atomics come from [`crate::sync`], so the loom models (`probes_loom_tests.rs`) check
//! this code.

use crate::sync::atomic::{AtomicU32, Ordering};

/// The slots taken in one HALF_OPEN state.
#[derive(Debug)]
pub(crate) struct ProbeSlots {
    used: AtomicU32,
}

impl ProbeSlots {
    /// No slot taken.
    pub(crate) fn new() -> Self {
        Self {
            used: AtomicU32::new(0),
        }
    }

    /// Takes a slot if fewer than `permitted` are taken; returns whether it did.
    pub(crate) fn try_take(&self, permitted: u32) -> bool {
        // AcqRel/Acquire: a slot given back happens-before the take that reuses it.
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < permitted).then_some(used + 1)
            })
            .is_ok()
    }

    /// Gives a taken slot back. Never goes below zero.
    pub(crate) fn give_back(&self) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_sub(1)
            });
    }

    /// The slots taken now.
    pub(crate) fn taken(&self) -> u32 {
        self.used.load(Ordering::Acquire)
    }
}

#[cfg(all(test, loom))]
#[path = "probes_loom_tests.rs"]
mod loom_tests;

//! loom models of the breaker's half-open probe slots (`probes.rs`): probes admitted at once
//! never exceed the permitted number, a cancelled probe's slot lets exactly one other call in,
//! and no slot is leaked — including across a reconfiguration that replaces the state
//! generation while probes are admitted.
//!
//! What the models do not cover: the state generation itself is published through an
//! `ArcSwap`, which loom cannot see into; the models take the generation the engine would
//! load as given (a probe holds its generation's slots, as `Shared::release` finds them).
//! Run with `crates/seawall/scripts/loom.sh` (`RUSTFLAGS="--cfg loom"`).

use loom::sync::Arc;
use loom::sync::atomic::AtomicU32;
use loom::thread;

use super::ProbeSlots;
use crate::sync::atomic::Ordering::SeqCst;

/// Counts the probes running at once, and fails the model past `max`.
struct Running {
    now: AtomicU32,
    max: u32,
}

impl Running {
    fn new(max: u32) -> Self {
        Self {
            now: AtomicU32::new(0),
            max,
        }
    }

    /// A probe runs: counted while it runs, checked against the limit.
    fn run(&self) {
        let running = self.now.fetch_add(1, SeqCst) + 1;
        assert!(
            running <= self.max,
            "{running} probes for {} slots",
            self.max
        );
        self.now.fetch_sub(1, SeqCst);
    }
}

/// What a caller did with the probe it asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// Not permitted: every slot was taken.
    Rejected,
    /// Ran and recorded its outcome: the slot stays taken.
    Recorded,
    /// Ran, then was cancelled (its future dropped): the slot is given back.
    Cancelled,
}

fn probe(slots: &ProbeSlots, running: &Running, permitted: u32, cancel: bool) -> Probe {
    if !slots.try_take(permitted) {
        return Probe::Rejected;
    }
    running.run();
    if cancel {
        slots.give_back();
        Probe::Cancelled
    } else {
        Probe::Recorded
    }
}

#[test]
fn three_callers_for_two_slots_one_cancelled_never_exceed_two_and_leak_nothing() {
    loom::model(|| {
        let slots = Arc::new(ProbeSlots::new());
        let running = Arc::new(Running::new(2));
        let callers: Vec<_> = [false, true, false]
            .into_iter()
            .map(|cancel| {
                let (slots, running) = (slots.clone(), running.clone());
                thread::spawn(move || probe(&slots, &running, 2, cancel))
            })
            .collect();
        let probes: Vec<Probe> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        let recorded = probes.iter().filter(|p| **p == Probe::Recorded).count();
        let rejected = probes.iter().filter(|p| **p == Probe::Rejected).count();
        // Exactly the recorded probes hold slots at the end: none leaked, none lost.
        assert_eq!(slots.taken() as usize, recorded, "{probes:?}");
        assert!(recorded <= 2, "{probes:?}");
        // A rejection happens only while both slots are held.
        assert!(rejected <= 1, "{probes:?}");
        if probes[1] == Probe::Rejected {
            assert_eq!(recorded, 2, "rejected with a free slot: {probes:?}");
        }
    });
}

#[test]
fn a_cancelled_probe_lets_exactly_one_waiting_caller_in() {
    loom::model(|| {
        let slots = Arc::new(ProbeSlots::new());
        let running = Arc::new(Running::new(1));
        assert!(slots.try_take(1));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (slots, running) = (slots.clone(), running.clone());
                thread::spawn(move || probe(&slots, &running, 1, false))
            })
            .collect();
        // The first probe is cancelled while the others ask.
        slots.give_back();
        let probes: Vec<Probe> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        let recorded = probes.iter().filter(|p| **p == Probe::Recorded).count();
        assert!(recorded <= 1, "two probes took one freed slot: {probes:?}");
        assert_eq!(slots.taken() as usize, recorded, "{probes:?}");
        // A caller that asks after the release gets the slot.
        let late = probe(&slots, &running, 1, false);
        assert_eq!(recorded + usize::from(late == Probe::Recorded), 1);
    });
}

#[test]
fn a_reconfiguration_while_probes_are_admitted_keeps_every_slot_counted() {
    loom::model(|| {
        // The generation before the reconfiguration, and the one after: the engine hands the
        // new generation the same slots (`engine/transitions.rs`), so a probe admitted through
        // the old one is counted in the new one and gives back where it was counted.
        let old = Arc::new(ProbeSlots::new());
        let running = Arc::new(Running::new(1));
        let early = {
            let (old, running) = (old.clone(), running.clone());
            thread::spawn(move || probe(&old, &running, 1, true))
        };
        let new = old.clone(); // the reconfiguration
        let late = probe(&new, &running, 1, false);
        let early = early.join().unwrap();
        assert!(
            !(early == Probe::Rejected && late == Probe::Rejected),
            "a free slot was refused"
        );
        let held = usize::from(late == Probe::Recorded);
        assert_eq!(new.taken() as usize, held, "{early:?} {late:?}");
    });
}

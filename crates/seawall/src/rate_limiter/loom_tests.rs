//! loom models of the limiter's schedule (`schedule.rs`): every interleaving of the
//! compare-and-swap loop, with a bounded number of preemptions.
//!
//! Run with `crates/seawall/scripts/loom.sh` (`RUSTFLAGS="--cfg loom"`).

use loom::sync::Arc;
use loom::sync::atomic::AtomicU64;
use loom::thread;

use super::schedule::{self, Slot};
use crate::sync::atomic::Ordering;

/// Two calls per 20 ns: calls 10 ns apart, a burst of two.
const INTERVAL: u64 = 10;
const TOLERANCE: u64 = 10;
const NOW: u64 = 100;

#[test]
fn three_callers_in_one_instant_admit_exactly_the_burst() {
    loom::model(|| {
        let arrival = Arc::new(AtomicU64::new(0));
        let callers: Vec<_> = (0..3)
            .map(|_| {
                let arrival = arrival.clone();
                thread::spawn(move || schedule::reserve(&arrival, NOW, INTERVAL, TOLERANCE, 0))
            })
            .collect();
        let slots: Vec<Slot> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        let admitted = slots.iter().filter(|s| **s == Slot::Now).count();
        let rejected = slots
            .iter()
            .filter(|s| **s == Slot::Rejected { wait: INTERVAL })
            .count();
        assert_eq!((admitted, rejected), (2, 1), "{slots:?}");
        // The rejection wrote nothing: the schedule holds exactly the two admitted calls.
        assert_eq!(arrival.load(Ordering::SeqCst), NOW + 2 * INTERVAL);
    });
}

#[test]
fn waiting_callers_reserve_distinct_slots_in_order() {
    loom::model(|| {
        // One call per 10 ns, no burst; callers may wait up to 1 µs.
        let arrival = Arc::new(AtomicU64::new(0));
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let arrival = arrival.clone();
                thread::spawn(move || schedule::reserve(&arrival, NOW, INTERVAL, 0, 1_000))
            })
            .collect();
        let mut slots: Vec<Slot> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        slots.sort_by_key(|s| match s {
            Slot::Now => 0,
            Slot::Wait { wait, .. } | Slot::Rejected { wait } => *wait,
        });
        assert_eq!(
            slots,
            [
                Slot::Now,
                Slot::Wait {
                    wait: INTERVAL,
                    slot: NOW + 2 * INTERVAL
                }
            ]
        );
        assert_eq!(arrival.load(Ordering::SeqCst), NOW + 2 * INTERVAL);
    });
}

#[test]
fn a_released_slot_is_reused_at_most_once() {
    loom::model(|| {
        let arrival = Arc::new(AtomicU64::new(0));
        // One call goes now, a second waits for the slot ending at NOW + 2 × INTERVAL.
        assert_eq!(
            schedule::reserve(&arrival, NOW, INTERVAL, 0, 1_000),
            Slot::Now
        );
        let waiting = schedule::reserve(&arrival, NOW, INTERVAL, 0, 1_000);
        let Slot::Wait { slot: given_up, .. } = waiting else {
            panic!("the second call should wait, got {waiting:?}");
        };

        // The waiting call gives up while a third call and a fourth reserve.
        let releaser = {
            let arrival = arrival.clone();
            thread::spawn(move || schedule::release(&arrival, given_up, INTERVAL))
        };
        let reservers: Vec<_> = (0..2)
            .map(|_| {
                let arrival = arrival.clone();
                thread::spawn(move || schedule::reserve(&arrival, NOW, INTERVAL, 0, 1_000))
            })
            .collect();
        let released = releaser.join().unwrap();
        let mut live = vec![NOW + INTERVAL];
        if !released {
            live.push(given_up);
        }
        for reserver in reservers {
            match reserver.join().unwrap() {
                Slot::Wait { slot, .. } => live.push(slot),
                other => panic!("every later call waits, got {other:?}"),
            }
        }
        // No two live calls share a slot, and the schedule ends right after the last one.
        live.sort_unstable();
        let mut distinct = live.clone();
        distinct.dedup();
        assert_eq!(
            live, distinct,
            "a slot was handed out twice (released: {released})"
        );
        assert_eq!(live.last().copied(), Some(arrival.load(Ordering::SeqCst)));
        // Slots are contiguous: a release only ever gave back the schedule's last slot.
        let expected: Vec<u64> = (1..=live.len() as u64)
            .map(|i| NOW + i * INTERVAL)
            .collect();
        assert_eq!(live, expected, "released: {released}");
    });
}

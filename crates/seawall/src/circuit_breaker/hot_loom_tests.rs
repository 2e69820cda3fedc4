//! loom models of the breaker's CLOSED admission racing transitions (`hot.rs`): the `hot` word
//! protocol the engine ships ([`HotWord`], [`Hot`], [`twin`]) against a transitioner that
//! publishes as `Shared::install` does (`engine/transitions.rs`): OPEN and HALF_OPEN keep the
//! window index, a new CLOSED state clears the twin window and then publishes its word.
//!
//! What the models check: a call admitted before the trip records into its own CLOSED state's
//! window or is ignored, never into the window a later CLOSED state cleared, and at most once;
//! a call that has seen the OPEN publication is not admitted by the tripped CLOSED state.
//!
//! What they found: a caller that stalls between its generation check and its write across
//! *two* whole CLOSED states lands in the window the second one cleared and reuses (the pair
//! has only two entries). `engine/mod.rs` documents this bound; closing it needs the writer to
//! announce itself (a read-modify-write more on every closed call), so it is kept as a model
//! that must find the race (`#[should_panic]`) and will flag a change of the bound.
//!
//! What they do not cover: the windows themselves (`window.rs` uses `std` atomics; a window
//! here is a loom mutex holding the generations recorded into it) and the `ArcSwap`-held state
//! generation (the engine's general path ignores an outcome whose generation is not current).
//! Run with `crates/seawall/scripts/loom.sh breaker` (`RUSTFLAGS="--cfg loom"`).

use loom::sync::atomic::AtomicBool;
use loom::sync::{Arc, Mutex};
use loom::thread;

use super::{Hot, HotWord, twin};
use crate::circuit_breaker::State;
use crate::sync::atomic::Ordering::{Acquire, Release};

/// A stand-in for one entry of the engine's window table: the CLOSED generation it was last
/// cleared for, and the generations of the calls recorded into it since.
struct Entry(Mutex<(u64, Vec<u64>)>);

impl Entry {
    fn new(cleared_for: u64) -> Self {
        Self(Mutex::new((cleared_for, Vec::new())))
    }

    fn record(&self, generation: u64) {
        self.0.lock().unwrap().1.push(generation);
    }

    fn clear(&self, generation: u64) {
        *self.0.lock().unwrap() = (generation, Vec::new());
    }

    /// Every call in the window was admitted by the CLOSED state it was cleared for.
    fn assert_one_epoch(&self, index: usize) {
        let (cleared_for, recorded) = &*self.0.lock().unwrap();
        assert!(
            recorded.iter().all(|generation| generation == cleared_for),
            "window {index} reused for generation {cleared_for} holds {recorded:?}"
        );
    }
}

/// The breaker as the closed path sees it: the `hot` word and a pair of windows.
struct Breaker {
    hot: HotWord,
    windows: [Entry; 2],
    /// Set right after the OPEN word is published.
    opened: AtomicBool,
}

impl Breaker {
    /// CLOSED, generation 1, recording into window 0.
    fn new() -> Self {
        let hot = HotWord::new();
        hot.publish(Hot::pack(State::Closed, false, 0, 1));
        Self {
            hot,
            windows: [Entry::new(1), Entry::new(1)],
            opened: AtomicBool::new(false),
        }
    }

    /// The transitioner: `cycles` times CLOSED → OPEN → HALF_OPEN → CLOSED, published as
    /// `Shared::install` publishes (a new CLOSED state clears its twin window first).
    fn cycle(&self, cycles: u64) {
        let (mut generation, mut window) = (1, 0);
        for _ in 0..cycles {
            for to in [State::Open, State::HalfOpen, State::Closed] {
                generation += 1;
                if to == State::Closed {
                    window = twin(window);
                    self.windows[window].clear(generation);
                }
                self.hot.publish(Hot::pack(to, false, window, generation));
                if to == State::Open {
                    self.opened.store(true, Release);
                }
            }
        }
    }

    /// A call: admitted by one load, then recorded as `Shared::record` records a plain
    /// success. Returns the generation that admitted it and the window it recorded into.
    fn call(&self) -> Call {
        let saw_open = self.opened.load(Acquire);
        let Some(generation) = Hot::permits_all(self.hot.load()) else {
            return Call::Rejected;
        };
        assert!(
            !(saw_open && generation == 1),
            "admitted by the tripped CLOSED state after its OPEN publication"
        );
        match self.hot.recording_window(generation) {
            Some(index) => {
                self.windows[index].record(generation);
                Call::Recorded { generation, index }
            }
            None => Call::Ignored { generation },
        }
    }

    fn assert_windows(&self) {
        for (index, entry) in self.windows.iter().enumerate() {
            entry.assert_one_epoch(index);
        }
    }

    /// How many times the window table counts a call of `generation`.
    fn counted(&self, generation: u64) -> usize {
        self.windows
            .iter()
            .map(|entry| {
                let (_, recorded) = &*entry.0.lock().unwrap();
                recorded.iter().filter(|g| **g == generation).count()
            })
            .sum()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Rejected,
    Recorded { generation: u64, index: usize },
    Ignored { generation: u64 },
}

#[test]
fn a_closed_call_racing_a_trip_and_a_new_closed_state_records_in_its_own_window_or_nowhere() {
    loom::model(|| {
        let breaker = Arc::new(Breaker::new());
        let caller = {
            let breaker = breaker.clone();
            thread::spawn(move || breaker.call())
        };
        breaker.cycle(1);
        let call = caller.join().unwrap();
        breaker.assert_windows();
        match call {
            // Admitted before the trip: its own window (0), or the new state's (1) if
            // admitted after the new CLOSED publication.
            Call::Recorded { generation, index } => {
                assert!(
                    (generation, index) == (1, 0) || (generation, index) == (4, 1),
                    "{call:?}"
                );
                assert_eq!(breaker.counted(generation), 1, "{call:?}");
            }
            Call::Ignored { generation } => {
                assert_eq!(generation, 1, "{call:?}");
                assert_eq!(breaker.counted(generation), 0, "{call:?}");
            }
            Call::Rejected => {}
        }
    });
}

#[test]
fn two_closed_calls_racing_a_trip_are_each_counted_at_most_once_in_the_old_window() {
    loom::model(|| {
        let breaker = Arc::new(Breaker::new());
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let breaker = breaker.clone();
                thread::spawn(move || breaker.call())
            })
            .collect();
        // Only the trip: the closed state's window stays current for the OPEN state.
        breaker.hot.publish(Hot::pack(State::Open, false, 0, 2));
        breaker.opened.store(true, Release);
        let calls: Vec<Call> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        breaker.assert_windows();
        let recorded = calls
            .iter()
            .filter(|call| matches!(call, Call::Recorded { .. }))
            .count();
        assert_eq!(breaker.counted(1), recorded, "{calls:?}");
        for call in &calls {
            assert!(
                matches!(
                    call,
                    Call::Rejected
                        | Call::Ignored { generation: 1 }
                        | Call::Recorded {
                            generation: 1,
                            index: 0
                        }
                ),
                "{calls:?}"
            );
        }
        // A call after the trip is rejected.
        assert_eq!(breaker.call(), Call::Rejected);
    });
}

/// The bound `engine/mod.rs` documents: the race needs a caller stalled across two whole
/// CLOSED states, and the model finds it. When a fix closes it, drop `should_panic`.
#[test]
#[should_panic(expected = "reused for generation 7")]
fn a_call_stalled_across_two_closed_states_can_land_in_the_window_the_second_reuses() {
    loom::model(|| {
        let breaker = Arc::new(Breaker::new());
        let caller = {
            let breaker = breaker.clone();
            thread::spawn(move || breaker.call())
        };
        breaker.cycle(2);
        caller.join().unwrap();
        breaker.assert_windows();
    });
}

//! The `hot` word: the breaker's closed-path view of its state, and the protocol that admits
//! and records a call through it.
//!
//! One atomic word carries the state (bits 0–2), slow-call tracking (bit 3), the index of the
//! CLOSED / METRICS_ONLY window in the engine's window table (bits 4–7) and the state
//! generation (the rest). The engine (`engine/mod.rs`, `engine/transitions.rs`) publishes a
//! new word after every state change, under its transition lock; a call is admitted by one
//! load of it, and recorded into the window the word names only if the word still carries the
//! generation that admitted it ([`HotWord::recording_window`]). A new CLOSED state records into
//! the other window of its pair ([`twin`]), cleared, so a call still recording into the
//! previous CLOSED state's window never lands in the fresh one.
//!
//! The atomic comes from [`crate::sync`], so the loom models (`hot_loom_tests.rs`) check this
//! code: a CLOSED admission racing transitions to OPEN and back to a new CLOSED state.

use super::State;
use crate::sync::atomic::{AtomicU64, Ordering};

/// The published word (see the [module documentation](self)).
#[derive(Debug)]
pub(crate) struct HotWord {
    word: AtomicU64,
}

impl HotWord {
    /// CLOSED, generation 0, window 0, untimed (the engine publishes the real first word).
    pub(crate) fn new() -> Self {
        Self {
            word: AtomicU64::new(0),
        }
    }

    /// The current word: the admission fast path's one load.
    #[inline(always)]
    pub(crate) fn load(&self) -> u64 {
        // Acquire: pairs with the Release store in `publish`, after which what the publisher
        // wrote before it (the state generation, the cleared window) is visible.
        self.word.load(Ordering::Acquire)
    }

    /// Publishes `word`. Only the holder of the engine's transition lock publishes.
    pub(crate) fn publish(&self, word: u64) {
        // Release: a reader of the new word finds everything written before it.
        self.word.store(word, Ordering::Release);
    }

    /// The window table entry a call admitted by `generation` records into: `None` if the
    /// breaker has left that generation, or its state records nothing (the call then takes
    /// the engine's general path, which ignores an outcome of an earlier generation).
    #[inline]
    pub(crate) fn recording_window(&self, generation: u64) -> Option<usize> {
        let word = self.load();
        (Hot::generation(word) == generation && Hot::records(word)).then(|| Hot::window(word))
    }
}

/// The window a new CLOSED (or METRICS_ONLY) state records into when the current state's
/// window is table entry `index`: the other entry of its pair.
#[inline]
pub(crate) const fn twin(index: usize) -> usize {
    index ^ 1
}

/// The pure functions of a `hot` word.
pub(crate) struct Hot;

impl Hot {
    /// Slow-call tracking is on.
    pub(crate) const SLOW: u64 = 1 << 3;
    const WINDOW_SHIFT: u32 = 4;
    /// The window index of a window owned by its state generation.
    pub(crate) const OWNED: usize = 0xF;
    const SHIFT: u32 = 8;

    pub(crate) const fn code(state: State) -> u64 {
        match state {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::Disabled => 3,
            State::ForcedOpen => 4,
            State::MetricsOnly => 5,
        }
    }

    /// The word of `state` with window `window` (masked to 4 bits) and `generation`.
    pub(crate) fn pack(state: State, slow: bool, window: usize, generation: u64) -> u64 {
        let slow = if slow { Self::SLOW } else { 0 };
        Self::code(state)
            | slow
            | ((window as u64 & 0xF) << Self::WINDOW_SHIFT)
            | (generation << Self::SHIFT)
    }

    pub(crate) fn generation(word: u64) -> u64 {
        word >> Self::SHIFT
    }

    pub(crate) fn window(word: u64) -> usize {
        ((word >> Self::WINDOW_SHIFT) & 0xF) as usize
    }

    /// Whether calls admitted under `word` are recorded into the window.
    pub(crate) fn records(word: u64) -> bool {
        let state = word & 0b111;
        state == Self::code(State::Closed) || state == Self::code(State::MetricsOnly)
    }

    /// The generation if the state lets every call through (closed, disabled, metrics-only).
    #[inline]
    pub(crate) fn permits_all(word: u64) -> Option<u64> {
        const PERMIT_ALL: u64 = (1 << Hot::code(State::Closed))
            | (1 << Hot::code(State::Disabled))
            | (1 << Hot::code(State::MetricsOnly));
        (PERMIT_ALL & (1 << (word & 0b111)) != 0).then_some(word >> Self::SHIFT)
    }

    /// Whether a call admitted under `word` (a state that permits all) is left unrecorded
    /// (DISABLED).
    #[inline]
    pub(crate) fn unrecorded(word: u64) -> bool {
        word & 0b111 == Self::code(State::Disabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_word_gives_back_its_state_window_and_generation() {
        let word = Hot::pack(State::Closed, true, 5, 42);
        assert_eq!(Hot::generation(word), 42);
        assert_eq!(Hot::window(word), 5);
        assert_ne!(word & Hot::SLOW, 0);
        assert!(Hot::records(word));
        assert_eq!(Hot::permits_all(word), Some(42));
        let open = Hot::pack(State::Open, false, 5, 43);
        assert!(!Hot::records(open));
        assert_eq!(Hot::permits_all(open), None);
        assert!(Hot::unrecorded(Hot::pack(State::Disabled, false, 0, 1)));
    }

    #[test]
    fn a_call_records_only_while_the_word_carries_its_generation() {
        let hot = HotWord::new();
        hot.publish(Hot::pack(State::Closed, false, 2, 7));
        assert_eq!(hot.recording_window(7), Some(2));
        assert_eq!(hot.recording_window(6), None);
        hot.publish(Hot::pack(State::Open, false, 2, 8));
        assert_eq!(hot.recording_window(7), None);
        assert_eq!(hot.recording_window(8), None);
    }

    #[test]
    fn a_new_closed_state_takes_the_other_window_of_its_pair() {
        assert_eq!(twin(0), 1);
        assert_eq!(twin(1), 0);
        assert_eq!(twin(12), 13);
    }
}

#[cfg(all(test, loom))]
#[path = "hot_loom_tests.rs"]
mod loom_tests;

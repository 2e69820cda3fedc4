//! How the breaker times a call for slow-call tracking (see [`Start`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{CircuitBreakerConfig, Shared, Slot};
use crate::clock::{Instant, coarse_elapsed_nanos, coarse_reading, duration_to_nanos};

/// When a call started, for slow-call tracking.
///
/// A call run as a future on tokio's clock is timed lazily, because a precise reading of that
/// clock costs more than the rest of a closed breaker's call: it starts as
/// [`FirstPoll`](Self::FirstPoll), a reading of the process-wide coarse clock (one atomic
/// load). If its first poll finishes it, its duration is the coarse clock's (see
/// [`coarse_elapsed_nanos`]) and no precise reading is made at all; if the first poll is
/// pending, [`Shared::polled_pending`] reads the breaker's clock once and the slot becomes
/// [`Resumed`](Self::Resumed), which adds the first poll's coarse duration. Under tokio's
/// paused time no virtual time passes inside a poll, so that reading is the call's start;
/// a manual or coarse clock and the permit API are always timed precisely.
#[derive(Clone, Copy, Debug)]
pub(super) enum Start {
    /// Slow-call tracking is off.
    Untimed,
    /// The breaker's clock at the call's start.
    Precise(Instant),
    /// The process-wide coarse reading at the call's start; not polled pending yet.
    FirstPoll(u64),
    /// A lazily timed call once pending: the breaker's clock when its first poll was pending,
    /// and that first poll's duration as the coarse clock saw it, in whole microseconds (up to
    /// about 71 minutes: a `u32`, so that a slot stays four words).
    Resumed {
        pending: Instant,
        first_poll_micros: u32,
    },
}

impl Shared {
    /// The start of a timed call.
    #[inline]
    pub(super) fn start(&self, lazy: bool) -> Start {
        if lazy && self.lazy_timing {
            Start::FirstPoll(coarse_reading())
        } else {
            Start::Precise(self.clock.now())
        }
    }

    /// The start of a call admitted under `config`.
    pub(super) fn start_under(&self, config: &CircuitBreakerConfig, lazy: bool) -> Start {
        match config.slow_call_duration_threshold {
            Some(_) => self.start(lazy),
            None => Start::Untimed,
        }
    }

    /// A call's first poll (or a later one) was pending: a lazily timed call reads the
    /// breaker's clock now, and counts its first poll as the coarse clock saw it.
    #[inline]
    pub(crate) fn polled_pending(&self, slot: &mut Slot) {
        if let Start::FirstPoll(coarse) = slot.start {
            let micros = coarse_elapsed_nanos(coarse) / 1_000;
            slot.start = Start::Resumed {
                first_poll_micros: u32::try_from(micros).unwrap_or(u32::MAX),
                pending: self.clock.now(),
            };
        }
    }

    /// Whether the call holding `slot` is known not to be slow without reading the breaker's
    /// clock: it is untimed, or timed by the coarse clock alone (finished on its first poll)
    /// within the threshold. A reconfiguration racing with the call may judge it by the
    /// threshold before or after, as it would on the general path.
    #[inline]
    pub(super) fn known_not_slow(&self, slot: &Slot) -> bool {
        match slot.start {
            Start::Untimed => true,
            Start::FirstPoll(coarse) => {
                coarse_elapsed_nanos(coarse) <= self.slow_threshold.load(Ordering::Relaxed)
            }
            // On a coarse clock a reading is one atomic load: cheap enough to decide here.
            Start::Precise(start) if self.clock.is_coarse() => {
                duration_to_nanos(self.clock.now() - start)
                    <= self.slow_threshold.load(Ordering::Relaxed)
            }
            Start::Precise(_) | Start::Resumed { .. } => false,
        }
    }

    /// How long the call holding `slot` has run, if it is timed; `now` reads the breaker's
    /// clock (only for a precisely timed call).
    #[inline]
    pub(super) fn elapsed_nanos(slot: &Slot, now: impl FnOnce() -> Instant) -> Option<u64> {
        match slot.start {
            Start::Untimed => None,
            Start::Precise(start) => Some(duration_to_nanos(now() - start)),
            Start::FirstPoll(coarse) => Some(coarse_elapsed_nanos(coarse)),
            Start::Resumed {
                pending,
                first_poll_micros,
            } => Some(
                duration_to_nanos(now() - pending)
                    .saturating_add(u64::from(first_poll_micros) * 1_000),
            ),
        }
    }

    /// How long the call holding `slot` has run, if it is timed.
    pub(crate) fn elapsed(&self, slot: &Slot) -> Option<Duration> {
        Self::elapsed_nanos(slot, || self.clock.now()).map(Duration::from_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_stays_four_words() {
        assert_eq!(std::mem::size_of::<Start>(), 16);
        assert!(std::mem::size_of::<Slot>() <= 32);
    }
}

//! The light half of [`Error`]: who rejected a call, shared by reference count, and one packed
//! word of per-call data. The layout is written up in `docs/error-model.md` ("Its size").
//!
//! A decorator instance builds its [`Origin`] once (a breaker one per state) and each rejection
//! clones it, so a rejection allocates nothing. Markers made without an instance (a tower
//! layer's `BoxError` read back, `From<BulkheadFull>`…) share process-wide origins.

use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use super::{Error, ErrorKind, GaveUp};
use crate::circuit_breaker::State;
use crate::timeout::error::Elapsed;

/// Which decorator made a light error, and what of it never changes between rejections.
pub(crate) struct Origin {
    marker: Marker,
    /// The rejecting instance's name (`None` for a timeout and for markers made without an
    /// instance, as [`Error::rejected_by`] reports).
    name: Option<Arc<str>>,
}

/// The cause of a light error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Marker {
    Timeout(Elapsed),
    BulkheadFull,
    CircuitOpen(State),
    LimitExceeded,
    RateLimited,
    #[cfg(feature = "fault")]
    Injected,
}

impl Marker {
    pub(crate) const fn kind(self) -> ErrorKind {
        match self {
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::BulkheadFull => ErrorKind::BulkheadFull,
            Self::CircuitOpen(_) => ErrorKind::CircuitOpen,
            Self::LimitExceeded => ErrorKind::LimitExceeded,
            Self::RateLimited => ErrorKind::RateLimited,
            #[cfg(feature = "fault")]
            Self::Injected => ErrorKind::Injected,
        }
    }
}

impl Origin {
    /// An origin for the instance `name` (built once per instance, not per call). The first
    /// one built also builds the process-wide origins, so that markers made without an
    /// instance (read back from a tower layer's `BoxError`) never allocate on a call's path.
    pub(crate) fn new(marker: Marker, name: Option<Arc<str>>) -> Arc<Self> {
        LazyLock::force(&UNNAMED);
        Self::build(marker, name)
    }

    fn build(marker: Marker, name: Option<Arc<str>>) -> Arc<Self> {
        Arc::new(Self { marker, name })
    }

    pub(crate) fn marker(&self) -> Marker {
        self.marker
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The timeout marker, if this origin is a timeout's.
    pub(crate) fn elapsed(&self) -> Option<&Elapsed> {
        match &self.marker {
            Marker::Timeout(elapsed) => Some(elapsed),
            _ => None,
        }
    }

    /// The process-wide origin of a marker made without an instance (no name; a breaker's is
    /// `Open`).
    pub(crate) fn unnamed(marker: Unnamed) -> &'static Arc<Self> {
        let origins = &*UNNAMED;
        match marker {
            Unnamed::BulkheadFull => &origins.bulkhead_full,
            Unnamed::CircuitOpen => &origins.circuit_open,
            Unnamed::LimitExceeded => &origins.limit_exceeded,
            #[cfg(feature = "fault")]
            Unnamed::Injected => &origins.injected,
        }
    }
}

/// The process-wide origins, built together on first use.
struct UnnamedOrigins {
    bulkhead_full: Arc<Origin>,
    circuit_open: Arc<Origin>,
    limit_exceeded: Arc<Origin>,
    #[cfg(feature = "fault")]
    injected: Arc<Origin>,
}

static UNNAMED: LazyLock<UnnamedOrigins> = LazyLock::new(|| UnnamedOrigins {
    bulkhead_full: Origin::build(Marker::BulkheadFull, None),
    circuit_open: Origin::build(Marker::CircuitOpen(State::Open), None),
    limit_exceeded: Origin::build(Marker::LimitExceeded, None),
    #[cfg(feature = "fault")]
    injected: Origin::build(Marker::Injected, None),
});

/// Builds the process-wide origins now (a decorator without an origin of its own that makes
/// unnamed markers, such as a fault injector, calls it when built).
#[cfg(feature = "fault")]
pub(crate) fn prepare_unnamed() {
    LazyLock::force(&UNNAMED);
}

/// The markers that can be made without an instance and carry nothing per call.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Unnamed {
    BulkheadFull,
    CircuitOpen,
    LimitExceeded,
    #[cfg(feature = "fault")]
    Injected,
}

/// A breaker's origins, one per state (a rejection names the state that rejected it), each
/// built on the breaker's first rejection in that state: one allocation then, none after.
/// Built lazily because most states never reject and a keyed breaker family holds thousands
/// of breakers (`tests/keyed/memory.rs` bounds their memory).
pub(crate) struct BreakerOrigins {
    name: Arc<str>,
    by_state: [OnceLock<Arc<Origin>>; 6],
}

impl BreakerOrigins {
    pub(crate) fn new(name: &Arc<str>) -> Self {
        Self {
            name: name.clone(),
            by_state: Default::default(),
        }
    }

    /// The rejection of a call in `state`, `retry_after` before the breaker half-opens.
    pub(crate) fn rejected<E>(&self, state: State, retry_after: Option<Duration>) -> Error<E> {
        let index = match state {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::Disabled => 3,
            State::ForcedOpen => 4,
            State::MetricsOnly => 5,
        };
        let origin = self.by_state[index]
            .get_or_init(|| Origin::new(Marker::CircuitOpen(state), Some(self.name.clone())));
        Error::light(RateLimited::light(origin.clone(), retry_after))
    }
}

impl fmt::Debug for BreakerOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BreakerOrigins")
    }
}

/// A timeout's origin for the duration it last fired with: rebuilt (one allocation) only when
/// a timeout fires after its duration changed.
pub(crate) struct TimeoutOrigin(Mutex<Arc<Origin>>);

impl TimeoutOrigin {
    pub(crate) fn new(after: Duration) -> Self {
        Self(Mutex::new(Origin::new(
            Marker::Timeout(Elapsed::new(after)),
            None,
        )))
    }

    /// The error of a call that timed out `after` its start.
    pub(crate) fn elapsed<E>(&self, after: Duration) -> Error<E> {
        let mut origin = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if origin.elapsed().map(Elapsed::after) != Some(after) {
            *origin = Origin::new(Marker::Timeout(Elapsed::new(after)), None);
        }
        Error::light(RateLimited::light(origin.clone(), None))
    }
}

impl fmt::Debug for TimeoutOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TimeoutOrigin")
    }
}

/// What a retry recorded on an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryTrace {
    pub(crate) attempts: u32,
    pub(crate) gave_up: Option<GaveUp>,
}

/// The packed word: bits 0–47 a retry-after (0: none; below 2⁴⁷ − 1 ns, the nanoseconds
/// plus one; above, bit 47 set and whole milliseconds), bits 48–61 a retry's attempt count
/// (0: no trace), bits 62–63 why it gave up (0: it did not).
mod packed {
    use std::time::Duration;

    use super::{GaveUp, RetryTrace};

    const RETRY_AFTER_MASK: u64 = (1 << 48) - 1;
    const COARSE: u64 = 1 << 47;
    const ATTEMPTS_SHIFT: u32 = 48;
    const ATTEMPTS_MASK: u64 = (1 << 14) - 1;
    const GAVE_UP_SHIFT: u32 = 62;

    pub(super) fn retry_after(duration: Option<Duration>) -> u64 {
        let Some(duration) = duration else { return 0 };
        match u64::try_from(duration.as_nanos()) {
            Ok(nanos) if nanos < COARSE - 1 => nanos + 1,
            _ => {
                let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
                COARSE | millis.min(COARSE - 1)
            }
        }
    }

    pub(super) fn read_retry_after(word: u64) -> Option<Duration> {
        match word & RETRY_AFTER_MASK {
            0 => None,
            code if code & COARSE != 0 => Some(Duration::from_millis(code & (COARSE - 1))),
            code => Some(Duration::from_nanos(code - 1)),
        }
    }

    /// `word` with `trace` in it, or `None` when the trace does not fit.
    pub(super) fn with_trace(word: u64, trace: RetryTrace) -> Option<u64> {
        let attempts = u64::from(trace.attempts);
        if attempts == 0 || attempts > ATTEMPTS_MASK {
            return None;
        }
        let gave_up: u64 = match trace.gave_up {
            None => 0,
            Some(GaveUp::MaxAttempts) => 1,
            Some(GaveUp::MaxElapsed) => 2,
            Some(GaveUp::BudgetExhausted) => 3,
        };
        Some(without_trace(word) | attempts << ATTEMPTS_SHIFT | gave_up << GAVE_UP_SHIFT)
    }

    pub(super) fn trace(word: u64) -> Option<RetryTrace> {
        let attempts = (word >> ATTEMPTS_SHIFT) & ATTEMPTS_MASK;
        let gave_up = match word >> GAVE_UP_SHIFT {
            1 => Some(GaveUp::MaxAttempts),
            2 => Some(GaveUp::MaxElapsed),
            3 => Some(GaveUp::BudgetExhausted),
            _ => None,
        };
        u32::try_from(attempts)
            .ok()
            .filter(|&attempts| attempts != 0)
            .map(|attempts| RetryTrace { attempts, gave_up })
    }

    pub(super) const fn without_trace(word: u64) -> u64 {
        word & RETRY_AFTER_MASK
    }
}

/// A rate limiter did not permit the call.
///
/// It is also the light half of every [`Error`] made by a decorator instance (an origin
/// pointer and one packed word), so [`Error::as_rate_limited`] can lend it; only a rate
/// limiter's is ever shown as one.
#[derive(Clone)]
pub struct RateLimited {
    origin: Arc<Origin>,
    packed: u64,
}

/// The light half of an [`Error`] (see [`RateLimited`]).
pub(crate) type Light = RateLimited;

impl RateLimited {
    /// The rejection of the rate limiter of `origin`.
    pub(crate) fn new(origin: &Arc<Origin>, retry_after: Option<Duration>) -> Self {
        Self::light(origin.clone(), retry_after)
    }

    pub(crate) fn light(origin: Arc<Origin>, retry_after: Option<Duration>) -> Self {
        Self {
            origin,
            packed: packed::retry_after(retry_after),
        }
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        self.origin.name().unwrap_or_default()
    }

    /// When a permit is expected, if known (to the nanosecond below 39 hours, to the
    /// millisecond above).
    pub fn retry_after(&self) -> Option<Duration> {
        packed::read_retry_after(self.packed)
    }

    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    pub(crate) fn trace(&self) -> Option<RetryTrace> {
        packed::trace(self.packed)
    }

    /// This error with `trace` recorded, or without any trace when it does not fit.
    pub(crate) fn with_trace(self, trace: RetryTrace) -> Result<Self, Self> {
        match packed::with_trace(self.packed, trace) {
            Some(packed) => Ok(Self { packed, ..self }),
            None => Err(self.without_trace()),
        }
    }

    pub(crate) fn without_trace(self) -> Self {
        Self {
            packed: packed::without_trace(self.packed),
            ..self
        }
    }
}

impl PartialEq for RateLimited {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.retry_after() == other.retry_after()
    }
}

impl Eq for RateLimited {}

impl fmt::Debug for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimited")
            .field("name", &self.name())
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limiter '{}' does not permit further calls",
            self.name()
        )
    }
}

impl std::error::Error for RateLimited {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_after_packs_exactly_below_39_hours_and_to_the_millisecond_above() {
        for duration in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_secs(4),
            Duration::from_nanos((1 << 47) - 2),
        ] {
            let word = packed::retry_after(Some(duration));
            assert_eq!(packed::read_retry_after(word), Some(duration));
        }
        let long = Duration::new(200_000, 123_456_789);
        assert_eq!(
            packed::read_retry_after(packed::retry_after(Some(long))),
            Some(Duration::from_millis(200_000_123))
        );
        let huge = packed::read_retry_after(packed::retry_after(Some(Duration::MAX)));
        assert_eq!(huge, Some(Duration::from_millis((1 << 47) - 1)));
        assert_eq!(packed::read_retry_after(packed::retry_after(None)), None);
    }

    #[test]
    fn a_trace_packs_beside_the_retry_after_when_it_fits() {
        let word = packed::retry_after(Some(Duration::from_millis(1500)));
        for gave_up in [
            None,
            Some(GaveUp::MaxAttempts),
            Some(GaveUp::MaxElapsed),
            Some(GaveUp::BudgetExhausted),
        ] {
            let trace = RetryTrace {
                attempts: (1 << 14) - 1,
                gave_up,
            };
            let traced = packed::with_trace(word, trace).unwrap();
            assert_eq!(packed::trace(traced), Some(trace));
            assert_eq!(
                packed::read_retry_after(traced),
                Some(Duration::from_millis(1500))
            );
        }
        let too_many = RetryTrace {
            attempts: 1 << 14,
            gave_up: None,
        };
        assert_eq!(packed::with_trace(word, too_many), None);
        assert_eq!(packed::trace(word), None);
    }
}

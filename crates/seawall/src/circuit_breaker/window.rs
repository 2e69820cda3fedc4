//! Lock-free sliding windows for the closed state: O(1) per call and per snapshot, fixed
//! memory whatever the traffic.
//!
//! A **count window** is a bit-packed ring: per 64 calls one word of failure bits and one of
//! slow bits, plus running counts of failures, slow calls and slow failures; the number of
//! calls is `min(head, size)`. Recording claims the next position with one `fetch_add` and
//! writes a bit (and moves its count) only if it changes — in the steady state (a success
//! replacing a success) nothing but the `fetch_add` is written. It holds exactly the last
//! `size` calls (Resilience4j's semantics).
//!
//! A **time window** is a ring of buckets, each the totals of one bucket-width of time, plus
//! running totals — striped: each thread records into the buckets of its stripe (threads
//! are numbered round-robin; the stripes are the available parallelism, at most 8), so
//! threads recording at once write different cache lines. A reading sums the stripes; that
//! is exact, because the counts of one bucket commute. The first caller to see a new bucket
//! period advances the window one bucket at a time (a CAS on the head epoch), subtracting
//! each expired bucket of every stripe from that stripe's totals; after a long idle the
//! whole window is cleared at once. This is Resilience4j's partial-aggregation design,
//! lock-free. A shared count of the failures and slow calls in the window (written only by
//! those and by their expiry) tells a success whether it can change the verdict, so a
//! healthy window's call writes and reads nothing of another thread's stripe.
//!
//! Both rings are allocated a chunk at a time as they fill (`slots.rs`), so a large window
//! takes memory in proportion to the calls it has seen.
//!
//! Totals are kept in separate atomics. Under concurrent recording a snapshot may mix the
//! effect of calls in flight by one or two; sequentially it is exact (the model-based tests
//! check that).

use std::sync::atomic::{AtomicU64, Ordering};

use super::config::SlidingWindow;
use super::rules::{Counts, FAILURE, SLOW, code, split};
use super::slots::Slots;
use crate::clock::{Instant, duration_to_nanos};

pub(crate) use self::striped::StripedCountWindow;
pub(crate) use self::time::TimeWindow;
use self::time::{Padded, stripe_count, stripe_of_thread};

/// Window totals. Each field is a wrapping counter read as a signed number and clamped, so a
/// subtraction that lands before its matching addition cannot underflow a snapshot.
#[derive(Debug, Default)]
pub(crate) struct AtomicCounts {
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
    slow_failures: AtomicU64,
}

// Relaxed throughout: totals are statistics; the breaker's state and generation (published
// through an `ArcSwap`) order everything that must be ordered.
impl AtomicCounts {
    pub(crate) fn add(&self, code: u8) {
        let (calls, failures, slow, slow_failures) = split(code);
        bump(&self.calls, calls);
        bump(&self.failures, failures);
        bump(&self.slow, slow);
        bump(&self.slow_failures, slow_failures);
    }

    pub(crate) fn add_counts(&self, counts: &Counts) {
        bump(&self.calls, counts.calls);
        bump(&self.failures, counts.failures);
        bump(&self.slow, counts.slow);
        bump(&self.slow_failures, counts.slow_failures);
    }

    fn sub(&self, counts: &Counts) {
        drop_by(&self.calls, counts.calls);
        drop_by(&self.failures, counts.failures);
        drop_by(&self.slow, counts.slow);
        drop_by(&self.slow_failures, counts.slow_failures);
    }

    pub(crate) fn load(&self) -> Counts {
        let read = |field: &AtomicU64| (field.load(Ordering::Relaxed) as i64).max(0) as u64;
        let calls = read(&self.calls);
        let failures = read(&self.failures).min(calls);
        let slow = read(&self.slow).min(calls);
        Counts {
            calls,
            failures,
            slow,
            slow_failures: read(&self.slow_failures).min(failures).min(slow),
        }
    }

    fn take(&self) -> Counts {
        let take = |field: &AtomicU64| field.swap(0, Ordering::Relaxed);
        Counts {
            calls: take(&self.calls),
            failures: take(&self.failures),
            slow: take(&self.slow),
            slow_failures: take(&self.slow_failures),
        }
    }
}

#[inline]
fn bump(field: &AtomicU64, by: u64) {
    if by != 0 {
        field.fetch_add(by, Ordering::Relaxed);
    }
}

#[inline]
fn drop_by(field: &AtomicU64, by: u64) {
    if by != 0 {
        field.fetch_sub(by, Ordering::Relaxed);
    }
}

/// The closed state's window.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    StripedCount(StripedCountWindow),
    // Boxed: the time window is aligned to 128 bytes (its shared words on lines of their
    // own), and inline it would pad every count window to that alignment too (the keyed
    // memory bound in `tests/keyed/memory.rs` counts every byte of 10 000 breakers).
    Time(Box<TimeWindow>),
}

impl Window {
    pub(crate) fn new(window: SlidingWindow, now: Instant) -> Self {
        match window {
            SlidingWindow::Count(size) => Self::Count(CountWindow::new(size)),
            SlidingWindow::StripedCount(size) => Self::StripedCount(StripedCountWindow::new(size)),
            SlidingWindow::Time { size, bucket } => {
                Self::Time(Box::new(TimeWindow::new(size, bucket, now)))
            }
        }
    }

    /// A window of a new shape holding the newest outcomes of this one that fit: a count
    /// window keeps its newest outcomes, a striped count window each stripe's newest, a time
    /// window with the same bucket width its newest buckets; any other change starts empty.
    pub(crate) fn resized(&self, shape: SlidingWindow, now: Instant) -> Self {
        let next = Self::new(shape, now);
        next.refill_from(self, now);
        next
    }

    /// Copies into this (empty) window the newest outcomes of `old` that fit (see
    /// [`Window::resized`]).
    pub(crate) fn refill_from(&self, old: &Self, now: Instant) {
        match (old, self) {
            (Self::Count(old), Self::Count(new)) => {
                for outcome in old.newest(new.size as usize) {
                    new.record(outcome & FAILURE != 0, outcome & SLOW != 0);
                }
            }
            (Self::StripedCount(old), Self::StripedCount(new)) => {
                for (stripe, ring) in old.stripes.iter().enumerate() {
                    let keep = new.stripes[stripe & (new.stripes.len() - 1)].0.size;
                    for outcome in ring.0.newest(keep as usize) {
                        new.record_in(stripe, outcome & FAILURE != 0, outcome & SLOW != 0);
                    }
                }
            }
            (Self::Time(old), Self::Time(new)) if old.bucket_nanos == new.bucket_nanos => {
                let epoch = now.as_nanos() / old.bucket_nanos;
                old.advance(epoch);
                new.advance(epoch);
                let keep = old.buckets.min(new.buckets);
                for back in (0..keep).rev() {
                    let Some(bucket_epoch) = epoch.checked_sub(back) else {
                        continue;
                    };
                    new.add_to_bucket(bucket_epoch, &old.bucket(bucket_epoch));
                }
            }
            _ => {}
        }
    }

    /// Records one outcome; `now` is read only by a time window. Returns whether a plain
    /// success recorded now is *settled* — it cannot change the verdict, so the rates need not
    /// be evaluated: a count window that was full (the outcome replaced an older one; a
    /// success then can raise no rate and cannot bring the window to its minimum), a time
    /// window holding no failure and no slow call (both rates are 0). Deciding it reads one
    /// word no call writes in the steady state, never another thread's stripe.
    #[inline]
    pub(crate) fn record(&self, failure: bool, slow: bool, now: impl FnOnce() -> Instant) -> bool {
        match self {
            Self::Count(window) => window.record(failure, slow),
            Self::StripedCount(window) => window.record(failure, slow),
            Self::Time(window) => window.record(code(failure, slow), now()),
        }
    }

    /// The totals; `now` is read only by a time window.
    #[inline]
    pub(crate) fn counts(&self, now: impl FnOnce() -> Instant) -> Counts {
        match self {
            Self::Count(window) => window.counts(),
            Self::StripedCount(window) => window.counts(),
            Self::Time(window) => window.counts(now()),
        }
    }

    /// Empties the window for a new CLOSED (or METRICS_ONLY) state, keeping its memory.
    pub(crate) fn clear(&self, now: Instant) {
        match self {
            Self::Count(window) => window.clear(),
            Self::StripedCount(window) => window.clear(),
            Self::Time(window) => window.clear(now),
        }
    }

    /// Whether this window has `shape`.
    pub(crate) fn has_shape(&self, shape: SlidingWindow) -> bool {
        match (self, shape) {
            (Self::Count(window), SlidingWindow::Count(size)) => window.size == size.max(1),
            (Self::StripedCount(window), SlidingWindow::StripedCount(size)) => {
                window.size == size.max(1)
            }
            (Self::Time(window), SlidingWindow::Time { size, bucket }) => {
                window.bucket_nanos == duration_to_nanos(bucket).max(1)
                    && window.buckets == SlidingWindow::bucket_count(size, bucket).max(1)
            }
            _ => false,
        }
    }
}

/// The last `size` outcomes, bit-packed: one [`Word`] (a failure plane and a slow plane) per
/// 64 calls, and running counts of failures, slow calls and slow failures.
///
/// The number of calls is `min(head, size)`, so it needs no counter. Recording claims the
/// next position with one `fetch_add` and then, per plane, reads the bit it replaces: only a
/// bit that changes is written (`fetch_or` / `fetch_and`) and moves its count. In the steady
/// state (a success replacing a success) a call is one `fetch_add` and two plain loads.
#[derive(Debug)]
pub(crate) struct CountWindow {
    size: u32,
    /// `u128::MAX / size + 1`: Lemire's constant for a division-free `% size` of a `u64`.
    modulus: u128,
    /// The sequence number of the next call.
    head: AtomicU64,
    words: Slots<Word>,
    failures: AtomicU64,
    slow: AtomicU64,
    slow_failures: AtomicU64,
}

/// 64 outcomes: bit `i` of `failed` and of `slow` describe the call at position `64k + i`.
#[derive(Debug, Default)]
struct Word {
    failed: AtomicU64,
    slow: AtomicU64,
}

/// Words per chunk of a count window (4 KiB, 16 384 outcomes).
const COUNT_CHUNK: usize = 256;
/// Outcomes in one word.
const WORD_BITS: u64 = 64;
/// Buckets per chunk of a time window (8 KiB).
const TIME_CHUNK: usize = 256;

/// The most memory a window of this shape can take, in bytes, as the registry's budget
/// counts it. A count window is counted at a byte per call: its two rings of a pair take
/// `2 × 16` bytes per 64 calls, half of that for large windows.
pub(crate) fn memory_bound(window: SlidingWindow) -> usize {
    match window {
        SlidingWindow::Count(size) => size as usize,
        SlidingWindow::StripedCount(size) => StripedCountWindow::memory_bound(size),
        SlidingWindow::Time { size, bucket } => {
            let buckets =
                usize::try_from(SlidingWindow::bucket_count(size, bucket)).unwrap_or(usize::MAX);
            // Every stripe holds its own buckets.
            buckets
                .saturating_mul(std::mem::size_of::<AtomicCounts>())
                .saturating_mul(stripe_count())
        }
    }
}

/// Makes `bit` of `plane` equal to `value`; returns its previous value. Writes only if the
/// bit changes. Another writer can only touch the same bit after the ring went round once
/// more, so reading first loses nothing a `swap` would have kept.
#[inline]
fn put_bit(plane: &AtomicU64, bit: u64, value: bool) -> bool {
    let was = plane.load(Ordering::Relaxed) & bit != 0;
    if was == value {
        return was;
    }
    let before = if value {
        plane.fetch_or(bit, Ordering::Relaxed)
    } else {
        plane.fetch_and(!bit, Ordering::Relaxed)
    };
    before & bit != 0
}

/// Moves a count by one outcome's change (`old` → `new`).
#[inline]
fn step(count: &AtomicU64, old: bool, new: bool) {
    match (old, new) {
        (false, true) => {
            count.fetch_add(1, Ordering::Relaxed);
        }
        (true, false) => {
            count.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

impl CountWindow {
    fn new(size: u32) -> Self {
        let size = size.max(1);
        Self {
            size,
            modulus: (u128::MAX / u128::from(size)).wrapping_add(1),
            head: AtomicU64::new(0),
            words: Slots::new((size as usize).div_ceil(WORD_BITS as usize), COUNT_CHUNK),
            failures: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            slow_failures: AtomicU64::new(0),
        }
    }

    /// `sequence % size` without a division (Lemire, Kaser and Kurz's `fastmod`, 64-bit).
    #[inline]
    fn slot(&self, sequence: u64) -> usize {
        let low = self.modulus.wrapping_mul(u128::from(sequence));
        let size = u128::from(self.size);
        // The high 64 bits of the 192-bit product `low × size`.
        let high = ((low >> 64) * size + (((low & u128::from(u64::MAX)) * size) >> 64)) >> 64;
        high as usize
    }

    /// The word and bit of ring position `index`.
    #[inline]
    fn locate(index: usize) -> (usize, u64) {
        (index / WORD_BITS as usize, 1 << (index as u64 % WORD_BITS))
    }

    /// The outcome at ring position `index` (without its presence bit).
    fn read(&self, index: usize) -> (bool, bool) {
        let (word, bit) = Self::locate(index);
        self.words.get(word).map_or((false, false), |word| {
            (
                word.failed.load(Ordering::Relaxed) & bit != 0,
                word.slow.load(Ordering::Relaxed) & bit != 0,
            )
        })
    }

    /// The newest `n` outcomes, oldest first.
    fn newest(&self, n: usize) -> Vec<u8> {
        let head = self.head.load(Ordering::Acquire);
        let stored = head.min(u64::from(self.size));
        let take = stored.min(n as u64);
        (1..=take)
            .rev()
            .map(|back| {
                let (failure, slow) = self.read(self.slot(head - back));
                code(failure, slow)
            })
            .collect()
    }

    /// Records one outcome; returns whether it replaced one (the window was full).
    #[inline]
    fn record(&self, failure: bool, slow: bool) -> bool {
        let sequence = self.head.fetch_add(1, Ordering::Relaxed);
        let (word, bit) = Self::locate(self.slot(sequence));
        let word = self.words.get_or_alloc(word);
        // The steady state, inlined: a plain success over a plain success (or over a position
        // never written) changes no bit and no count.
        if !failure
            && !slow
            && (word.failed.load(Ordering::Relaxed) | word.slow.load(Ordering::Relaxed)) & bit == 0
        {
            return sequence >= u64::from(self.size);
        }
        self.record_changed(sequence, word, bit, failure, slow)
    }

    /// The rest of [`record`](Self::record): an outcome that may differ from the one it
    /// replaces writes the bits that change and moves their counts.
    #[inline(never)]
    fn record_changed(
        &self,
        sequence: u64,
        word: &Word,
        bit: u64,
        failure: bool,
        slow: bool,
    ) -> bool {
        let was_failure = put_bit(&word.failed, bit, failure);
        let was_slow = put_bit(&word.slow, bit, slow);
        step(&self.failures, was_failure, failure);
        step(&self.slow, was_slow, slow);
        step(
            &self.slow_failures,
            was_failure && was_slow,
            failure && slow,
        );
        sequence >= u64::from(self.size)
    }

    fn counts(&self) -> Counts {
        let read = |field: &AtomicU64| (field.load(Ordering::Relaxed) as i64).max(0) as u64;
        let calls = self.head.load(Ordering::Relaxed).min(u64::from(self.size));
        let failures = read(&self.failures).min(calls);
        let slow = read(&self.slow).min(calls);
        Counts {
            calls,
            failures,
            slow,
            slow_failures: read(&self.slow_failures).min(failures).min(slow),
        }
    }

    /// Empties the window (a new CLOSED state), keeping its memory.
    fn clear(&self) {
        for word in self.words.allocated() {
            word.failed.store(0, Ordering::Relaxed);
            word.slow.store(0, Ordering::Relaxed);
        }
        self.failures.store(0, Ordering::Relaxed);
        self.slow.store(0, Ordering::Relaxed);
        self.slow_failures.store(0, Ordering::Relaxed);
        self.head.store(0, Ordering::Release);
    }
}
#[path = "window_time.rs"]
mod time;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit_breaker::config::MAX_COUNT_WINDOW;
    use crate::circuit_breaker::rules::code;
    use std::time::Duration;

    #[test]
    fn lemire_modulo_matches_the_remainder() {
        for size in [1u32, 2, 3, 7, 10, 100, 1000, 65_537] {
            let window = CountWindow::new(size);
            for sequence in [
                0u64,
                1,
                2,
                99,
                100,
                101,
                12_345,
                u64::from(u32::MAX),
                u64::from(u32::MAX) + 1,
                u64::MAX - 1,
                u64::MAX,
            ] {
                assert_eq!(
                    window.slot(sequence),
                    (sequence % u64::from(size)) as usize,
                    "{sequence} % {size}"
                );
            }
        }
    }

    #[test]
    fn a_count_window_evicts_the_oldest_outcome() {
        let window = CountWindow::new(3);
        window.record(true, false);
        window.record(false, true);
        window.record(false, false);
        assert_eq!(
            window.counts(),
            Counts {
                calls: 3,
                failures: 1,
                slow: 1,
                slow_failures: 0
            }
        );
        window.record(false, false); // evicts the failure
        assert_eq!(
            window.counts(),
            Counts {
                calls: 3,
                failures: 0,
                slow: 1,
                slow_failures: 0
            }
        );
        window.record(true, true); // evicts the slow success
        assert_eq!(
            window.counts(),
            Counts {
                calls: 3,
                failures: 1,
                slow: 1,
                slow_failures: 1
            }
        );
    }

    #[test]
    fn time_buckets_expire_exactly_at_the_window_edge() {
        let second = Duration::from_secs(1);
        let window = TimeWindow::new(3 * second, second, Instant::ZERO);
        let at = |ms: u64| Instant::from_nanos(ms * 1_000_000);
        window.record(code(true, false), at(0));
        window.record(code(false, false), at(1_500));
        assert_eq!(window.counts(at(2_999)).calls, 2);
        // Period 3 starts: period 0 leaves the window.
        assert_eq!(
            window.counts(at(3_000)),
            Counts {
                calls: 1,
                failures: 0,
                slow: 0,
                slow_failures: 0
            }
        );
        assert_eq!(window.counts(at(4_999)).calls, 0);
    }

    #[test]
    fn resizing_keeps_the_newest_outcomes_that_fit() {
        let window = Window::new(SlidingWindow::count(4), Instant::ZERO);
        for failure in [true, true, false, false] {
            window.record(failure, false, || Instant::ZERO);
        }
        let smaller = window.resized(SlidingWindow::count(2), Instant::ZERO);
        assert_eq!(
            smaller.counts(|| Instant::ZERO),
            Counts {
                calls: 2,
                failures: 0,
                slow: 0,
                slow_failures: 0
            }
        );
        let larger = window.resized(SlidingWindow::count(10), Instant::ZERO);
        assert_eq!(larger.counts(|| Instant::ZERO).failures, 2);
        let to_time = window.resized(SlidingWindow::time(Duration::from_secs(5)), Instant::ZERO);
        assert_eq!(to_time.counts(|| Instant::ZERO), Counts::default());
        let timed = Window::new(SlidingWindow::time(Duration::from_secs(5)), Instant::ZERO);
        timed.record(true, false, || Instant::ZERO);
        let finer = timed.resized(
            SlidingWindow::time_with_buckets(Duration::from_secs(5), Duration::from_millis(500)),
            Instant::ZERO,
        );
        assert_eq!(
            finer.counts(|| Instant::ZERO),
            Counts::default(),
            "another bucket width starts empty"
        );

        let second = Duration::from_secs(1);
        let at = |s: u64| Instant::from_nanos(s * 1_000_000_000);
        let timed = Window::new(SlidingWindow::time(5 * second), at(0));
        for s in 0..5 {
            timed.record(s % 2 == 0, false, || at(s));
        }
        let shorter = timed.resized(SlidingWindow::time(2 * second), at(4));
        assert_eq!(
            shorter.counts(|| at(4)),
            Counts {
                calls: 2,
                failures: 1,
                slow: 0,
                slow_failures: 0
            }
        );
    }

    #[test]
    fn a_large_window_takes_memory_as_it_fills_not_when_it_is_built() {
        let window = CountWindow::new(MAX_COUNT_WINDOW);
        assert_eq!(
            window.words.allocated_len(),
            COUNT_CHUNK,
            "4 MiB promised, 4 KiB taken"
        );
        let per_chunk = COUNT_CHUNK * WORD_BITS as usize;
        for _ in 0..per_chunk + 1 {
            window.record(false, false);
        }
        assert_eq!(window.words.allocated_len(), 2 * COUNT_CHUNK);
        assert_eq!(window.counts().calls, per_chunk as u64 + 1);
        assert!(
            memory_bound(SlidingWindow::count(MAX_COUNT_WINDOW))
                >= 2 * window.words.len() * std::mem::size_of::<Word>(),
            "a pair of rings fits in the bound"
        );
        let time = TimeWindow::new(
            Duration::from_secs(65_536),
            Duration::from_secs(1),
            Instant::ZERO,
        );
        assert_eq!(time.stripes[0].ring.allocated_len(), TIME_CHUNK);
        assert_eq!(
            memory_bound(SlidingWindow::time(Duration::from_secs(65_536))),
            65_536 * 32 * stripe_count(),
            "every stripe's buckets are counted"
        );
    }

    #[test]
    fn a_long_idle_read_sees_an_empty_time_window() {
        let window = TimeWindow::new(
            Duration::from_secs(10),
            Duration::from_millis(100),
            Instant::ZERO,
        );
        for ms in 0..100 {
            window.record(
                code(ms % 2 == 0, false),
                Instant::from_nanos(ms * 10_000_000),
            );
        }
        assert_eq!(window.counts(Instant::from_nanos(999_000_000)).calls, 100);
        let hours_later = Instant::from_nanos(3 * 3_600 * 1_000_000_000);
        assert_eq!(window.counts(hours_later), Counts::default());
        window.record(code(true, false), hours_later);
        assert_eq!(window.counts(hours_later).failures, 1);
    }
}

#[path = "window_striped.rs"]
mod striped;

#[cfg(test)]
#[path = "window_tests.rs"]
mod window_tests;

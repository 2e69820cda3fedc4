//! The time window (`SlidingWindow::Time`), striped per thread: see `window.rs`'s module
//! docs. Also the stripe numbering the striped count window (`window_striped.rs`) shares.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::{AtomicCounts, TIME_CHUNK, bump, drop_by};
use crate::circuit_breaker::config::SlidingWindow;
use crate::circuit_breaker::rules::{Counts, split};
use crate::circuit_breaker::slots::Slots;
use crate::clock::{Instant, duration_to_nanos};

/// A value on cache lines of its own: 128 bytes, since adjacent-line prefetchers fetch lines
/// in pairs.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct Padded<T>(pub(super) T);

/// One thread group's share of a time window: its own ring of buckets and running totals,
/// on cache lines of its own, so threads recording at once do not write the same lines.
#[derive(Debug)]
#[repr(align(128))]
pub(super) struct Stripe {
    pub(super) ring: Slots<AtomicCounts>,
    pub(super) totals: AtomicCounts,
}

/// The most stripes a time window has.
const MAX_STRIPES: usize = 8;

/// The stripes of every time window in this process: the available parallelism, rounded
/// up to a power of two, at most [`MAX_STRIPES`].
pub(super) fn stripe_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .next_power_of_two()
            .min(MAX_STRIPES)
    })
}

/// This thread's stripe number (any window masks it to its stripe count): threads are
/// numbered round-robin on their first record.
#[inline]
pub(super) fn stripe_of_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|stripe| {
        let mut number = stripe.get();
        if number == usize::MAX {
            number = NEXT.fetch_add(1, Ordering::Relaxed) % MAX_STRIPES;
            stripe.set(number);
        }
        number
    })
}

/// The outcomes of the last `buckets × bucket_nanos`, striped: a thread records into its
/// stripe's bucket; a reading sums the stripes' totals. Exact, since the counts of one
/// bucket commute: whichever stripe a call lands in, it is in its bucket's period.
///
/// In the steady state of a healthy window (successes, one bucket period after another) a
/// call writes only its own stripe's lines: the bucket and the totals. Everything else it
/// touches is read-only then, on lines no stripe shares (the struct is aligned to 128
/// bytes, `marks` padded apart): the shape and `head` (written once per bucket period, by
/// the caller that advances the window) and `marks` (written only by a failure, a slow call
/// or the expiry of a bucket holding one). Whether a success is settled is read from
/// `marks` alone, so no call reads the other stripes' lines, which would pull them away
/// from the cores writing them.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct TimeWindow {
    pub(super) bucket_nanos: u64,
    pub(super) buckets: u64,
    /// The latest bucket period the window has been advanced to.
    pub(super) head: AtomicU64,
    pub(super) stripes: Box<[Stripe]>,
    /// Failures plus slow calls in the window, over every stripe (a wrapping counter read
    /// as a signed number, like [`AtomicCounts`]): 0 means both rates are 0.
    pub(super) marks: Padded<AtomicU64>,
}

/// What `counts` adds to [`TimeWindow::marks`].
fn marks(counts: &Counts) -> u64 {
    counts.failures.wrapping_add(counts.slow)
}

impl TimeWindow {
    pub(super) fn new(
        size: std::time::Duration,
        bucket: std::time::Duration,
        now: Instant,
    ) -> Self {
        let bucket_nanos = duration_to_nanos(bucket).max(1);
        let buckets = SlidingWindow::bucket_count(size, bucket).max(1);
        let len = usize::try_from(buckets).unwrap_or(usize::MAX);
        Self {
            bucket_nanos,
            buckets,
            head: AtomicU64::new(now.as_nanos() / bucket_nanos),
            stripes: (0..stripe_count())
                .map(|_| Stripe {
                    ring: Slots::new(len, TIME_CHUNK),
                    totals: AtomicCounts::default(),
                })
                .collect(),
            marks: Padded::default(),
        }
    }

    pub(super) fn index(&self, epoch: u64) -> usize {
        (epoch % self.buckets) as usize
    }

    /// Empties the bucket at `index` in every stripe.
    pub(super) fn retire(&self, index: usize) {
        for stripe in &self.stripes {
            if let Some(bucket) = stripe.ring.get(index) {
                self.expire(stripe, &bucket.take());
            }
        }
    }

    /// Takes the `counts` of an expired bucket of `stripe` out of the totals.
    pub(super) fn expire(&self, stripe: &Stripe, counts: &Counts) {
        stripe.totals.sub(counts);
        drop_by(&self.marks.0, marks(counts));
    }

    /// Empties every bucket of every stripe.
    pub(super) fn retire_all(&self) {
        for stripe in &self.stripes {
            for bucket in stripe.ring.allocated() {
                self.expire(stripe, &bucket.take());
            }
        }
    }

    /// The counts of bucket period `epoch`'s bucket, summed over the stripes.
    pub(super) fn bucket(&self, epoch: u64) -> Counts {
        let mut sum = Counts::default();
        for stripe in &self.stripes {
            if let Some(bucket) = stripe.ring.get(self.index(epoch)) {
                sum = sum.plus(&bucket.load());
            }
        }
        sum
    }

    /// Moves the window forward to bucket period `epoch`, expiring what left it.
    pub(super) fn advance(&self, epoch: u64) {
        loop {
            let head = self.head.load(Ordering::Acquire);
            if epoch <= head {
                return;
            }
            if epoch - head >= self.buckets {
                // Idle for a whole window or more: everything has expired.
                if self
                    .head
                    .compare_exchange(head, epoch, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    self.retire_all();
                    return;
                }
            } else if self
                .head
                .compare_exchange(head, head + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // The winner retires the bucket that period `head + 1` reuses.
                self.retire(self.index(head + 1));
            }
        }
    }

    /// Records one outcome in this thread's stripe; returns whether the window now holds no
    /// failure and no slow call (a success is then settled, see [`Window::record`](super::Window::record)).
    pub(super) fn record(&self, code: u8, now: Instant) -> bool {
        let epoch = now.as_nanos() / self.bucket_nanos;
        self.advance(epoch);
        // A record from a period that already left the window (a caller stalled for a whole
        // window) is dropped rather than counted in a newer bucket.
        if self.head.load(Ordering::Acquire).saturating_sub(epoch) < self.buckets {
            let stripe = &self.stripes[stripe_of_thread() & (self.stripes.len() - 1)];
            stripe.ring.get_or_alloc(self.index(epoch)).add(code);
            stripe.totals.add(code);
            let (_, failures, slow, _) = split(code);
            bump(&self.marks.0, failures + slow);
        }
        self.is_clean()
    }

    /// Whether the window holds no failure and no slow call. One load of a line that only
    /// failures, slow calls and their expiry write. Racing a concurrent failure it may say
    /// "clean" once too often; that failure's own record evaluates the rates.
    pub(super) fn is_clean(&self) -> bool {
        (self.marks.0.load(Ordering::Relaxed) as i64) <= 0
    }

    pub(super) fn counts(&self, now: Instant) -> Counts {
        self.advance(now.as_nanos() / self.bucket_nanos);
        self.totals()
    }

    /// The stripes' totals, summed.
    pub(super) fn totals(&self) -> Counts {
        let sum = self.stripes.iter().fold(Counts::default(), |sum, stripe| {
            sum.plus(&stripe.totals.load())
        });
        let failures = sum.failures.min(sum.calls);
        let slow = sum.slow.min(sum.calls);
        Counts {
            calls: sum.calls,
            failures,
            slow,
            slow_failures: sum.slow_failures.min(failures).min(slow),
        }
    }

    /// Empties the window, which starts again at `now`'s bucket.
    pub(super) fn clear(&self, now: Instant) {
        self.retire_all();
        self.head
            .store(now.as_nanos() / self.bucket_nanos, Ordering::Release);
    }

    /// Adds `counts` to bucket period `epoch` (stripe 0), for a resized copy.
    pub(super) fn add_to_bucket(&self, epoch: u64, counts: &Counts) {
        if let Some(stripe) = self.stripes.first() {
            stripe
                .ring
                .get_or_alloc(self.index(epoch))
                .add_counts(counts);
            stripe.totals.add_counts(counts);
            bump(&self.marks.0, marks(counts));
        }
    }
}

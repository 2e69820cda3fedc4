//! The opt-in striped count window ([`SlidingWindow::StripedCount`]): approximately the last
//! `n` calls, recorded by threads at once without sharing a cache line.
//!
//! The window is `S` exact count rings (the [`CountWindow`] of `window.rs`), one per stripe,
//! of sizes `m_s` that add up to `n` (`⌈n / S⌉` or `⌊n / S⌋`); a thread records into its
//! stripe's ring only (threads are numbered as for the time window). A reading sums the
//! rings. `S` is the process's stripe count (the available parallelism, a power of two, at
//! most 8), no more than `n`.
//!
//! # Error bound
//!
//! Let `c_s` be the number of the exact last `n` calls that went to stripe `s`. Once every
//! stripe has seen at least `m_s` calls, the window holds `n` calls: stripe `s`'s newest
//! `m_s`. Where `c_s > m_s` it misses `c_s − m_s` of the last `n` calls; where `c_s < m_s`
//! it holds `m_s − c_s` older calls instead. Since `Σ c_s = Σ m_s = n`, both sums are the
//! same number, the **skew** `k = Σ_s max(0, c_s − m_s)`, and the failures (and the slow
//! calls) the window counts differ from those of the exact last `n` calls by at most `k`:
//! the rates by at most `100 · k / n` points. Threads recording at the same pace give a
//! small skew; a stripe whose threads went quiet keeps older calls. The property test in
//! `window_tests.rs` checks the bound over arbitrary interleavings.
//!
//! Until every stripe is full (few calls yet, or one thread doing all the work) the rings
//! hold fewer than `n` calls, `h`, while `t` calls were seen in all. The window then reports
//! `min(t, n)` calls — the breaker's minimum is met after as many calls as with an exact
//! window — and failures and slow calls scaled from the `h` calls held to that number
//! (rounded to the nearest): the rates are those of the newest calls of each stripe.

use std::sync::atomic::Ordering;

use super::{CountWindow, Padded, stripe_count, stripe_of_thread};
use crate::circuit_breaker::rules::Counts;

/// `n` calls in per-thread stripes: see the [module docs](self).
#[derive(Debug)]
pub(crate) struct StripedCountWindow {
    pub(super) size: u32,
    pub(super) stripes: Box<[Padded<CountWindow>]>,
}

impl StripedCountWindow {
    /// A window of `size` calls over the process's stripes.
    pub(crate) fn new(size: u32) -> Self {
        Self::with_stripes(size, stripe_count())
    }

    /// A window of `size` calls over `stripes` stripes (rounded down to a power of two, at
    /// least 1 and at most `size`).
    pub(crate) fn with_stripes(size: u32, stripes: usize) -> Self {
        let size = size.max(1);
        let most = stripes.clamp(1, size as usize);
        // The largest power of two not above `most`.
        let count = 1usize << (usize::BITS - 1 - most.leading_zeros());
        let count_u32 = u32::try_from(count).unwrap_or(1);
        let (each, extra) = (size / count_u32, size % count_u32);
        Self {
            size,
            stripes: (0..count_u32)
                .map(|stripe| Padded(CountWindow::new(each + u32::from(stripe < extra))))
                .collect(),
        }
    }

    /// The number of stripes.
    #[cfg(test)]
    pub(crate) fn stripe_count(&self) -> usize {
        self.stripes.len()
    }

    /// Records one outcome in this thread's stripe; returns whether a plain success is
    /// settled (see [`Window::record`](super::Window::record)): this stripe alone had seen `n`
    /// calls, so the window reports `n` calls whatever the others hold, and a success can
    /// raise no count in it.
    #[inline]
    pub(crate) fn record(&self, failure: bool, slow: bool) -> bool {
        self.record_in(stripe_of_thread(), failure, slow)
    }

    /// Records one outcome in stripe `stripe` (masked to the stripe count).
    #[inline]
    pub(crate) fn record_in(&self, stripe: usize, failure: bool, slow: bool) -> bool {
        let ring = &self.stripes[stripe & (self.stripes.len() - 1)].0;
        let seen = ring.head.load(Ordering::Relaxed);
        ring.record(failure, slow);
        seen >= u64::from(self.size)
    }

    /// The window's counts (see the module docs for a window whose stripes are not all
    /// full).
    pub(crate) fn counts(&self) -> Counts {
        let mut held = Counts::default();
        let mut seen = 0u64;
        for ring in &self.stripes {
            held = held.plus(&ring.0.counts());
            seen = seen.saturating_add(ring.0.head.load(Ordering::Relaxed));
        }
        let calls = seen.min(u64::from(self.size));
        if held.calls == calls || held.calls == 0 {
            return held;
        }
        let scale = |count: u64| {
            let scaled = (u128::from(count) * u128::from(calls) + u128::from(held.calls) / 2)
                / u128::from(held.calls);
            u64::try_from(scaled).unwrap_or(calls).min(calls)
        };
        let failures = scale(held.failures);
        let slow = scale(held.slow);
        Counts {
            calls,
            failures,
            slow,
            slow_failures: scale(held.slow_failures).min(failures).min(slow),
        }
    }

    /// Empties every stripe, keeping its memory.
    pub(crate) fn clear(&self) {
        for ring in &self.stripes {
            ring.0.clear();
        }
    }

    /// The memory the window takes at most: its rings' words, counted as a count window's
    /// (a byte per call), plus one word pair per stripe for the rounding.
    pub(crate) fn memory_bound(size: u32) -> usize {
        (size as usize).saturating_add(stripe_count().saturating_mul(32))
    }
}

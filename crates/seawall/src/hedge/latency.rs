//! The recent latencies a percentile delay is taken over: a bounded ring of samples.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::HedgeConfig;

/// A fixed-size ring of the most recent latencies (nanoseconds), with a scratch buffer of
/// the same size for selecting the percentile, so neither recording nor reading allocates.
#[derive(Debug, Default)]
pub(crate) struct Ring {
    samples: Vec<u64>,
    next: usize,
    len: usize,
    scratch: Vec<u64>,
}

impl Ring {
    pub(crate) fn with_capacity(size: usize) -> Self {
        Self {
            samples: vec![0; size],
            next: 0,
            len: 0,
            scratch: Vec::with_capacity(size),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.samples.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn record(&mut self, latency: Duration) {
        let Some(slot) = self.samples.get_mut(self.next) else {
            return;
        };
        *slot = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.next = (self.next + 1) % self.samples.len();
        self.len = (self.len + 1).min(self.samples.len());
    }

    /// The `percentile` (in `(0, 1]`) of the recorded latencies: the smallest sample at least
    /// that share of samples is at or below (nearest rank). `None` with no sample.
    pub(crate) fn percentile(&mut self, percentile: f64) -> Option<Duration> {
        if self.len == 0 {
            return None;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.samples[..self.len]);
        let rank = (percentile * self.len as f64).ceil() as usize;
        let index = rank.clamp(1, self.len) - 1;
        let (_, nth, _) = self.scratch.select_nth_unstable(index);
        Some(Duration::from_nanos(*nth))
    }
}

/// The delay before the next hedged attempt under `config`, given the recent latencies:
/// the fixed delay, or the clamped percentile once enough samples are recorded.
pub(crate) fn delay(config: &HedgeConfig, ring: &mut Ring) -> Duration {
    let Some(percentile) = config.delay_percentile else {
        return config.delay;
    };
    if ring.len() < config.minimum_number_of_samples {
        return config.delay;
    }
    ring.percentile(percentile).map_or(config.delay, |d| {
        d.clamp(config.delay_floor, config.delay_ceiling)
    })
}

/// The ring behind a lock, shared by a hedge's clones.
#[derive(Debug, Default)]
pub(crate) struct Latencies(Mutex<Ring>);

impl Latencies {
    pub(crate) fn new(size: usize) -> Self {
        Self(Mutex::new(Ring::with_capacity(size)))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Ring) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Resizes the ring for a new window size (the samples are dropped: they were taken over
    /// a different window).
    pub(crate) fn resize(&self, size: usize) {
        self.with(|ring| {
            if ring.capacity() != size {
                *ring = Ring::with_capacity(size);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_percentile_is_the_nearest_rank_of_the_recent_samples() {
        let mut ring = Ring::with_capacity(100);
        for n in 1..=100 {
            ring.record(ms(n));
        }
        assert_eq!(ring.percentile(0.95), Some(ms(95)));
        assert_eq!(ring.percentile(0.5), Some(ms(50)));
        assert_eq!(ring.percentile(1.0), Some(ms(100)));
        assert_eq!(ring.percentile(0.001), Some(ms(1)));
    }

    #[test]
    fn old_samples_fall_out_of_the_window() {
        let mut ring = Ring::with_capacity(4);
        for n in [500, 500, 500, 500, 10, 20, 30, 40] {
            ring.record(ms(n));
        }
        assert_eq!(ring.len(), 4);
        assert_eq!(ring.percentile(1.0), Some(ms(40)));
    }

    #[test]
    fn the_delay_is_fixed_until_enough_samples_then_the_clamped_percentile() {
        let mut config = HedgeConfig::percentile(0.9, ms(20), ms(200));
        config.minimum_number_of_samples = 3;
        config.delay = ms(50);
        let mut ring = Ring::with_capacity(10);
        ring.record(ms(100));
        ring.record(ms(100));
        assert_eq!(
            delay(&config, &mut ring),
            ms(50),
            "two samples are not enough"
        );
        ring.record(ms(100));
        assert_eq!(delay(&config, &mut ring), ms(100));
        for _ in 0..10 {
            ring.record(ms(1));
        }
        assert_eq!(delay(&config, &mut ring), ms(20), "the floor");
        for _ in 0..10 {
            ring.record(ms(900));
        }
        assert_eq!(delay(&config, &mut ring), ms(200), "the ceiling");
    }

    #[test]
    fn a_fixed_delay_ignores_the_samples() {
        let mut ring = Ring::with_capacity(10);
        ring.record(ms(5));
        assert_eq!(delay(&HedgeConfig::fixed(ms(70)), &mut ring), ms(70));
    }
}

//! The limit algorithms: pure state machines fed one sample at a time.
//!
//! Each takes `(rtt, inflight, dropped, now)` — the sample's round-trip time, how many calls
//! were in flight when it started, whether it was a drop (a timeout or an overload error, as
//! the classifier decides) — and returns the new limit as a real number. The shell in `mod.rs`
//! turns it into whole permits (rounded down, never below the minimum). Nothing here reads a
//! clock or takes a lock, so the tests below are synchronous and exact.

use std::time::Duration;

use super::{AdaptiveLimiterConfig, LimitAlgorithm};
use crate::clock::Instant;

/// `log10(limit)` rounded down, but at least 1: the step size of Vegas (so a limit below 100
/// moves by 1, below 1000 by 2, and so on).
fn log10_step(limit: f64) -> f64 {
    limit.max(1.0).log10().floor().max(1.0)
}

/// Additive increase, multiplicative decrease: loss-based, like TCP Reno.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Aimd {
    limit: f64,
    min: f64,
    max: f64,
    backoff_ratio: f64,
    rtt_timeout: Duration,
    increase: f64,
}

impl Aimd {
    pub(crate) fn new(config: &AdaptiveLimiterConfig, limit: f64) -> Self {
        Self {
            limit,
            min: config.min_limit as f64,
            max: config.max_limit as f64,
            backoff_ratio: config.backoff_ratio,
            rtt_timeout: config.rtt_timeout,
            increase: config.additive_increase,
        }
    }

    /// A drop, or an RTT above the timeout, multiplies the limit by the backoff ratio; any
    /// other sample adds the additive increase (default 1) if at least half the limit was in
    /// use.
    pub(crate) fn on_sample(
        &mut self,
        rtt: Duration,
        inflight: usize,
        dropped: bool,
        _now: Instant,
    ) -> f64 {
        if dropped || rtt > self.rtt_timeout {
            self.limit *= self.backoff_ratio;
        } else if inflight as f64 * 2.0 >= self.limit {
            self.limit += self.increase;
        }
        self.limit = self.limit.clamp(self.min, self.max);
        self.limit
    }
}

/// TCP Vegas: estimates the queue at the dependency from how far the RTT is above the RTT
/// without load, and keeps it between `alpha` and `beta`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Vegas {
    limit: f64,
    min: f64,
    max: f64,
    smoothing: f64,
    alpha: f64,
    beta: f64,
    probe_multiplier: u32,
    rtt_noload: Option<Duration>,
    since_probe: u64,
}

impl Vegas {
    pub(crate) fn new(config: &AdaptiveLimiterConfig, limit: f64) -> Self {
        Self {
            limit,
            min: config.min_limit as f64,
            max: config.max_limit as f64,
            smoothing: config.smoothing_or_default(),
            alpha: config.vegas_alpha,
            beta: config.vegas_beta,
            probe_multiplier: config.probe_multiplier,
            rtt_noload: None,
            since_probe: 0,
        }
    }

    /// The RTT without load the queue estimate is measured against (the smallest seen since
    /// the last probe).
    #[cfg(test)]
    pub(crate) fn rtt_noload(&self) -> Option<Duration> {
        self.rtt_noload
    }

    /// One sample. Every `probe_multiplier × limit` samples the no-load RTT is re-measured
    /// (taken from the sample as is), so a dependency that became slower for good is
    /// eventually accepted as its new normal.
    pub(crate) fn on_sample(
        &mut self,
        rtt: Duration,
        inflight: usize,
        dropped: bool,
        _now: Instant,
    ) -> f64 {
        if rtt.is_zero() && !dropped {
            return self.limit;
        }
        self.since_probe += 1;
        if self.probe_multiplier > 0
            && self.since_probe as f64 >= f64::from(self.probe_multiplier) * self.limit
        {
            self.since_probe = 0;
            self.rtt_noload = Some(rtt);
            return self.limit;
        }
        let noload = match self.rtt_noload {
            Some(noload) if rtt >= noload => noload,
            _ => {
                self.rtt_noload = Some(rtt);
                return self.limit;
            }
        };
        let step = log10_step(self.limit);
        let target = if dropped {
            self.limit - step
        } else if (inflight as f64) * 2.0 < self.limit {
            // Application-limited: the samples say nothing about a larger limit.
            return self.limit;
        } else {
            let queue = (self.limit * (1.0 - noload.as_secs_f64() / rtt.as_secs_f64())).ceil();
            if queue <= step {
                self.limit + self.beta * step
            } else if queue < self.alpha * step {
                self.limit + step
            } else if queue > self.beta * step {
                self.limit - step
            } else {
                return self.limit;
            }
        };
        let target = target.clamp(self.min, self.max);
        self.limit = (1.0 - self.smoothing) * self.limit + self.smoothing * target;
        self.limit
    }
}

/// An exponential moving average that starts as a plain mean over its first samples.
#[derive(Clone, Debug, PartialEq)]
struct ExpAverage {
    value: f64,
    count: u32,
    warmup: u32,
    factor: f64,
}

impl ExpAverage {
    fn new(window: u32, warmup: u32) -> Self {
        Self {
            value: 0.0,
            count: 0,
            warmup,
            factor: 2.0 / (f64::from(window) + 1.0),
        }
    }

    fn add(&mut self, sample: f64) -> f64 {
        if self.count < self.warmup {
            self.count += 1;
            self.value += (sample - self.value) / f64::from(self.count);
        } else {
            self.value = self.value * (1.0 - self.factor) + sample * self.factor;
        }
        self.value
    }
}

/// Gradient2: compares a long-term average RTT with the latest RTT. While the latest is not
/// above `tolerance ×` the long-term average the limit grows by up to `queue_size`; above it,
/// the limit is scaled down by the ratio (at most halved per sample). Smoothed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Gradient2 {
    limit: f64,
    min: f64,
    max: f64,
    smoothing: f64,
    queue_size: f64,
    tolerance: f64,
    long_rtt: ExpAverage,
}

impl Gradient2 {
    /// Samples averaged plainly before the long-term average becomes exponential.
    const WARMUP: u32 = 10;

    pub(crate) fn new(config: &AdaptiveLimiterConfig, limit: f64) -> Self {
        Self {
            limit,
            min: config.min_limit as f64,
            max: config.max_limit as f64,
            smoothing: config.smoothing_or_default(),
            queue_size: config.queue_size,
            tolerance: config.rtt_tolerance,
            long_rtt: ExpAverage::new(config.long_window, Self::WARMUP),
        }
    }

    /// The long-term average RTT, in seconds.
    #[cfg(test)]
    pub(crate) fn long_rtt(&self) -> f64 {
        self.long_rtt.value
    }

    /// One sample. A drop counts through its RTT (a timeout's RTT is the timeout) against the
    /// long-term average, but is not added to that average: a timeout measures the caller's
    /// patience, not the dependency's latency, and an average inflated by a hang's timeouts
    /// would keep the limit above the knee long after the dependency recovers.
    pub(crate) fn on_sample(
        &mut self,
        rtt: Duration,
        inflight: usize,
        dropped: bool,
        _now: Instant,
    ) -> f64 {
        if rtt.is_zero() {
            return self.limit;
        }
        let short = rtt.as_secs_f64();
        let long = if dropped && self.long_rtt.count > 0 {
            self.long_rtt.value
        } else {
            self.long_rtt.add(short)
        };
        // After a long overload the average lags far above the present: let it catch up.
        if long / short > 2.0 {
            self.long_rtt.value *= 0.95;
        }
        if (inflight as f64) < self.limit / 2.0 {
            return self.limit;
        }
        let gradient = (self.tolerance * long / short).clamp(0.5, 1.0);
        let target = self.limit * gradient + self.queue_size;
        let smoothed = self.limit * (1.0 - self.smoothing) + target * self.smoothing;
        self.limit = smoothed.clamp(self.min, self.max);
        self.limit
    }
}

/// Several samples aggregated into one before they reach the algorithm (Netflix's windowed
/// limit): a window closes once it holds `size` samples and spans at least `min_time`, and
/// yields their mean RTT, the most calls in flight seen, and whether any was a drop. A drop
/// closes the window at once: a timeout is news that should not wait for more calls. A
/// single sample's RTT is noisy — in a queue, one call waits and the next does not — and the
/// mean over a window is what the delay-based algorithms are meant to see.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Window {
    size: u32,
    min_time: Duration,
    start: Instant,
    count: u32,
    rtt_nanos: u128,
    max_inflight: usize,
    dropped: bool,
}

impl Window {
    pub(crate) fn new(config: &AdaptiveLimiterConfig) -> Self {
        Self {
            size: config.window_size.max(1),
            min_time: config.min_window,
            start: Instant::ZERO,
            count: 0,
            rtt_nanos: 0,
            max_inflight: 0,
            dropped: false,
        }
    }

    /// Adds one sample; returns the window's aggregate `(mean rtt, max inflight, dropped)`
    /// when it closes.
    pub(crate) fn add(
        &mut self,
        rtt: Duration,
        inflight: usize,
        dropped: bool,
        now: Instant,
    ) -> Option<(Duration, usize, bool)> {
        if self.count == 0 {
            self.start = now;
        }
        self.count += 1;
        self.rtt_nanos += rtt.as_nanos();
        self.max_inflight = self.max_inflight.max(inflight);
        self.dropped |= dropped;
        let full =
            self.count >= self.size && now.saturating_duration_since(self.start) >= self.min_time;
        if !full && !dropped {
            return None;
        }
        let mean = self.rtt_nanos / u128::from(self.count);
        let aggregate = (
            Duration::from_nanos(u64::try_from(mean).unwrap_or(u64::MAX)),
            self.max_inflight,
            self.dropped,
        );
        *self = Self {
            start: now,
            count: 0,
            rtt_nanos: 0,
            max_inflight: 0,
            dropped: false,
            ..*self
        };
        Some(aggregate)
    }
}

/// The configured algorithm and its state.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Engine {
    Aimd(Aimd),
    Vegas(Vegas),
    Gradient2(Gradient2),
}

impl Engine {
    /// A fresh algorithm for `config`, starting at `limit`.
    pub(crate) fn new(config: &AdaptiveLimiterConfig, limit: f64) -> Self {
        match config.algorithm {
            LimitAlgorithm::Aimd => Self::Aimd(Aimd::new(config, limit)),
            LimitAlgorithm::Vegas => Self::Vegas(Vegas::new(config, limit)),
            LimitAlgorithm::Gradient2 => Self::Gradient2(Gradient2::new(config, limit)),
        }
    }

    /// Feeds one sample; returns the new limit.
    pub(crate) fn on_sample(
        &mut self,
        rtt: Duration,
        inflight: usize,
        dropped: bool,
        now: Instant,
    ) -> f64 {
        match self {
            Self::Aimd(aimd) => aimd.on_sample(rtt, inflight, dropped, now),
            Self::Vegas(vegas) => vegas.on_sample(rtt, inflight, dropped, now),
            Self::Gradient2(gradient) => gradient.on_sample(rtt, inflight, dropped, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Instant = Instant::ZERO;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn config(algorithm: LimitAlgorithm) -> AdaptiveLimiterConfig {
        AdaptiveLimiterConfig {
            min_limit: 1,
            max_limit: 100,
            ..AdaptiveLimiterConfig::new(algorithm)
        }
    }

    #[test]
    fn aimd_adds_one_when_half_the_limit_is_in_use() {
        let mut aimd = Aimd::new(&config(LimitAlgorithm::Aimd), 10.0);
        assert_eq!(aimd.on_sample(ms(10), 5, false, NOW), 11.0);
        assert_eq!(aimd.on_sample(ms(10), 6, false, NOW), 12.0);
    }

    #[test]
    fn aimd_does_not_grow_while_the_limit_is_mostly_unused() {
        let mut aimd = Aimd::new(&config(LimitAlgorithm::Aimd), 10.0);
        assert_eq!(aimd.on_sample(ms(10), 4, false, NOW), 10.0);
    }

    #[test]
    fn aimd_multiplies_by_the_backoff_ratio_on_a_drop_or_a_slow_sample() {
        let mut aimd = Aimd::new(&config(LimitAlgorithm::Aimd), 10.0);
        assert_eq!(aimd.on_sample(ms(10), 10, true, NOW), 9.0);
        // The default RTT timeout is 5 s.
        assert!((aimd.on_sample(Duration::from_secs(6), 10, false, NOW) - 8.1).abs() < 1e-9);
    }

    #[test]
    fn aimd_adds_the_configured_increase_per_successful_sample() {
        let mut config = config(LimitAlgorithm::Aimd);
        config.additive_increase = 4.0;
        let mut aimd = Aimd::new(&config, 16.0);
        assert_eq!(aimd.on_sample(ms(10), 16, false, NOW), 20.0);
        assert_eq!(aimd.on_sample(ms(10), 16, true, NOW), 18.0);
    }

    #[test]
    fn aimd_stays_within_min_and_max() {
        let mut aimd = Aimd::new(&config(LimitAlgorithm::Aimd), 1.0);
        assert_eq!(aimd.on_sample(ms(10), 1, true, NOW), 1.0);
        let mut aimd = Aimd::new(&config(LimitAlgorithm::Aimd), 100.0);
        assert_eq!(aimd.on_sample(ms(10), 100, false, NOW), 100.0);
    }

    #[test]
    fn log10_step_is_at_least_one_and_rounds_down() {
        assert_eq!(log10_step(0.5), 1.0);
        assert_eq!(log10_step(8.0), 1.0);
        assert_eq!(log10_step(99.0), 1.0);
        assert_eq!(log10_step(100.0), 2.0);
        assert_eq!(log10_step(5000.0), 3.0);
    }

    fn vegas(limit: f64) -> Vegas {
        // Without smoothing, no probing: each rule shows as is.
        let config = AdaptiveLimiterConfig {
            smoothing: Some(1.0),
            probe_multiplier: 0,
            ..config(LimitAlgorithm::Vegas)
        };
        let mut vegas = Vegas::new(&config, limit);
        assert_eq!(vegas.on_sample(ms(100), 20, false, NOW), limit);
        assert_eq!(vegas.rtt_noload(), Some(ms(100)));
        vegas
    }

    #[test]
    fn vegas_takes_its_first_sample_as_the_rtt_without_load() {
        let mut vegas = vegas(20.0);
        // A faster sample lowers it and changes nothing else.
        assert_eq!(vegas.on_sample(ms(80), 20, false, NOW), 20.0);
        assert_eq!(vegas.rtt_noload(), Some(ms(80)));
    }

    #[test]
    fn vegas_grows_by_beta_when_there_is_no_queue() {
        // queue = ceil(20 × (1 − 100/100)) = 0 ≤ 1: +6.
        assert_eq!(vegas(20.0).on_sample(ms(100), 20, false, NOW), 26.0);
    }

    #[test]
    fn vegas_grows_by_one_below_alpha() {
        // queue = ceil(20 × (1 − 100/110)) = ceil(1.82) = 2 < 3: +1.
        assert_eq!(vegas(20.0).on_sample(ms(110), 20, false, NOW), 21.0);
    }

    #[test]
    fn vegas_holds_between_alpha_and_beta() {
        // queue = ceil(20 × (1 − 100/125)) = 4, in [3, 6]: no change.
        assert_eq!(vegas(20.0).on_sample(ms(125), 20, false, NOW), 20.0);
    }

    #[test]
    fn vegas_shrinks_by_one_above_beta_and_on_a_drop() {
        // queue = ceil(20 × (1 − 100/200)) = 10 > 6: −1.
        assert_eq!(vegas(20.0).on_sample(ms(200), 20, false, NOW), 19.0);
        assert_eq!(vegas(20.0).on_sample(ms(100), 20, true, NOW), 19.0);
    }

    #[test]
    fn vegas_does_not_move_while_application_limited() {
        assert_eq!(vegas(20.0).on_sample(ms(300), 9, false, NOW), 20.0);
    }

    #[test]
    fn vegas_smooths_its_steps() {
        let config = AdaptiveLimiterConfig {
            smoothing: Some(0.5),
            probe_multiplier: 0,
            ..config(LimitAlgorithm::Vegas)
        };
        let mut vegas = Vegas::new(&config, 20.0);
        vegas.on_sample(ms(100), 20, false, NOW);
        assert_eq!(vegas.on_sample(ms(100), 20, false, NOW), 23.0);
    }

    #[test]
    fn vegas_re_measures_the_rtt_without_load_every_probe_interval() {
        let config = AdaptiveLimiterConfig {
            smoothing: Some(1.0),
            probe_multiplier: 1,
            ..config(LimitAlgorithm::Vegas)
        };
        let mut vegas = Vegas::new(&config, 2.0);
        vegas.on_sample(ms(100), 2, false, NOW); // first: the no-load RTT
        // Second sample reaches 1 × limit = 2 samples since the probe: re-measured as is.
        assert_eq!(vegas.on_sample(ms(400), 2, false, NOW), 2.0);
        assert_eq!(vegas.rtt_noload(), Some(ms(400)));
    }

    fn gradient(limit: f64) -> Gradient2 {
        let config = AdaptiveLimiterConfig {
            smoothing: Some(1.0),
            queue_size: 4.0,
            rtt_tolerance: 1.0,
            ..config(LimitAlgorithm::Gradient2)
        };
        Gradient2::new(&config, limit)
    }

    #[test]
    fn gradient2_adds_the_queue_size_while_the_rtt_is_steady() {
        let mut gradient = gradient(20.0);
        assert_eq!(gradient.on_sample(ms(100), 20, false, NOW), 24.0);
        assert_eq!(gradient.on_sample(ms(100), 24, false, NOW), 28.0);
    }

    #[test]
    fn gradient2_scales_down_by_the_ratio_of_long_to_short_rtt() {
        let mut gradient = gradient(20.0);
        gradient.on_sample(ms(100), 20, false, NOW); // long = 100 ms, limit 24
        // long = mean(100, 125) = 112.5 ms; gradient = 112.5/125 = 0.9; 24 × 0.9 + 4 = 25.6.
        let limit = gradient.on_sample(ms(125), 24, false, NOW);
        assert!((limit - 25.6).abs() < 1e-9, "{limit}");
    }

    #[test]
    fn gradient2_at_most_halves_the_limit_per_sample() {
        let mut gradient = gradient(20.0);
        for _ in 0..10 {
            gradient.on_sample(ms(100), 100, false, NOW); // 24, 28, … 60
        }
        // long ≈ 0.1 + 99.9 × 2/601 s ≈ 0.43 s against 100 s: clamped at 0.5, 60 × 0.5 + 4.
        assert_eq!(
            gradient.on_sample(Duration::from_secs(100), 100, false, NOW),
            34.0
        );
    }

    #[test]
    fn gradient2_decays_a_long_average_far_above_the_present() {
        let mut gradient = gradient(20.0);
        gradient.on_sample(ms(1000), 20, false, NOW);
        // long = mean(1000, 100) = 550 ms > 2 × 100 ms: decayed by 5 %.
        gradient.on_sample(ms(100), 24, false, NOW);
        assert!((gradient.long_rtt() - 0.55 * 0.95).abs() < 1e-9);
    }

    #[test]
    fn gradient2_scales_down_on_a_drop_but_keeps_its_timeout_out_of_the_long_average() {
        let mut gradient = gradient(20.0);
        for _ in 0..10 {
            gradient.on_sample(ms(100), 100, false, NOW);
        }
        let before = gradient.long_rtt();
        // A 1 s timeout against a 100 ms average: halved (60 × 0.5 + 4), average untouched.
        assert_eq!(gradient.on_sample(ms(1000), 100, true, NOW), 34.0);
        assert!((gradient.long_rtt() - before).abs() < 1e-12);
        // The same RTT answered is a measurement, and moves the average.
        gradient.on_sample(ms(1000), 100, false, NOW);
        assert!(gradient.long_rtt() > before);
    }

    #[test]
    fn gradient2_does_not_move_while_application_limited() {
        let mut gradient = gradient(20.0);
        assert_eq!(gradient.on_sample(ms(100), 9, false, NOW), 20.0);
    }

    #[test]
    fn gradient2_smooths_towards_the_new_limit() {
        let config = AdaptiveLimiterConfig {
            smoothing: Some(0.2),
            queue_size: 4.0,
            ..config(LimitAlgorithm::Gradient2)
        };
        let mut gradient = Gradient2::new(&config, 20.0);
        // target 24, smoothed: 20 × 0.8 + 24 × 0.2 = 20.8.
        let limit = gradient.on_sample(ms(100), 20, false, NOW);
        assert!((limit - 20.8).abs() < 1e-9, "{limit}");
    }

    #[test]
    fn a_window_yields_the_mean_rtt_the_most_inflight_and_any_drop() {
        let mut config = config(LimitAlgorithm::Aimd);
        config.window_size = 3;
        let mut window = Window::new(&config);
        assert_eq!(window.add(ms(10), 4, false, NOW), None);
        assert_eq!(window.add(ms(20), 7, false, NOW), None);
        assert_eq!(window.add(ms(60), 5, false, NOW), Some((ms(30), 7, false)));
        // The next window starts afresh, and a drop closes it at once.
        assert_eq!(window.add(ms(10), 1, false, NOW), None);
        assert_eq!(window.add(ms(30), 2, true, NOW), Some((ms(20), 2, true)));
    }

    #[test]
    fn a_window_stays_open_for_its_minimum_time() {
        let mut config = config(LimitAlgorithm::Aimd);
        config.window_size = 1;
        config.min_window = ms(100);
        let mut window = Window::new(&config);
        assert_eq!(window.add(ms(10), 1, false, NOW), None);
        let later = Instant::from_nanos(100_000_000);
        assert_eq!(
            window.add(ms(30), 2, false, later),
            Some((ms(20), 2, false))
        );
    }

    #[test]
    fn exp_average_is_a_plain_mean_during_warmup_then_exponential() {
        let mut average = ExpAverage::new(3, 2);
        assert_eq!(average.add(1.0), 1.0);
        assert_eq!(average.add(3.0), 2.0);
        // factor 2 / (3 + 1) = 0.5.
        assert_eq!(average.add(4.0), 3.0);
    }
    #[test]
    fn aimd_reads_an_rtt_exactly_at_its_timeout_as_an_answer_not_a_slow_sample() {
        let mut aimd = Aimd::new(&config(LimitAlgorithm::Aimd), 10.0);
        // The default RTT timeout is 5 s: only an RTT above it backs off.
        assert_eq!(aimd.on_sample(Duration::from_secs(5), 10, false, NOW), 11.0);
    }

    #[test]
    fn gradient2_decays_its_long_average_only_when_it_is_more_than_twice_the_present() {
        let mut gradient = gradient(20.0);
        // A plain mean during warm-up: 0.375, then 0.3125, then exactly 0.25 = 2 × 0.125.
        gradient.on_sample(ms(375), 20, false, NOW);
        gradient.on_sample(ms(250), 20, false, NOW);
        gradient.on_sample(ms(125), 20, false, NOW);
        assert_eq!(gradient.long_rtt(), 0.25, "exactly twice: no decay");
    }

    #[test]
    fn gradient2_moves_when_exactly_half_its_limit_is_in_use() {
        let mut gradient = gradient(20.0);
        assert_eq!(gradient.on_sample(ms(100), 10, false, NOW), 24.0);
    }

    #[test]
    fn gradient2_takes_a_first_sample_into_its_average_even_when_it_is_a_drop() {
        let mut gradient = gradient(20.0);
        // With nothing learned yet, the drop's RTT is the only measure there is.
        assert_eq!(gradient.on_sample(ms(1000), 20, true, NOW), 24.0);
        assert_eq!(gradient.long_rtt(), 1.0);
    }

    #[test]
    fn a_window_closed_by_a_drop_starts_the_next_one_clean() {
        let mut config = config(LimitAlgorithm::Aimd);
        config.window_size = 2;
        config.min_window = ms(100);
        let mut window = Window::new(&config);
        let at = |millis: u64| Instant::from_nanos(millis * 1_000_000);
        assert_eq!(window.add(ms(10), 1, false, at(0)), None);
        // A drop at 50 ms closes the window at once; the next one is timed from its first
        // sample (200 ms) and has no drop in it.
        assert_eq!(window.add(ms(30), 1, true, at(50)), Some((ms(20), 1, true)));
        assert_eq!(window.add(ms(10), 1, false, at(200)), None);
        assert_eq!(
            window.add(ms(10), 1, false, at(250)),
            None,
            "50 ms < 100 ms"
        );
        assert_eq!(
            window.add(ms(10), 1, false, at(300)),
            Some((ms(10), 1, false)),
            "the drop stayed in its own window"
        );
    }
}

//! How long a retry waits before each attempt: the pure maths, with no clock and no runtime.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::duration_to_nanos;
use crate::config::ConfigError;

/// Jitter applied to backoff delays. See [`Backoff`] for the formulas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomness.
    #[default]
    None,
    /// Uniform in `[0, delay]`.
    Full,
    /// Half the delay plus uniform in `[0, delay / 2]`.
    Equal,
    /// Uniform in `[first delay, 3 × previous wait]`, capped.
    Decorrelated,
}

impl Jitter {
    /// The lowercase name used in configuration documents: `none`, `full`, `equal`,
    /// `decorrelated`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Full => "full",
            Self::Equal => "equal",
            Self::Decorrelated => "decorrelated",
        }
    }
}

/// The base progression of a [`Backoff`], before the cap and jitter.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Progression {
    /// No wait.
    Zero,
    /// The same wait every time.
    Constant(Duration),
    /// `initial + step × (n − 1)`.
    Linear {
        /// The first wait.
        initial: Duration,
        /// Added for each further retry.
        step: Duration,
    },
    /// `initial × multiplier^(n − 1)`.
    Exponential {
        /// The first wait.
        initial: Duration,
        /// The growth factor.
        multiplier: f64,
    },
}

/// The wait before each retry.
///
/// A [`Backoff`] is a base progression (none, constant, linear or exponential), an optional cap,
/// and a jitter mode from AWS's "Exponential Backoff and Jitter" study:
///
/// | jitter | wait before retry `n` (`b` = capped base delay for `n`) |
/// |---|---|
/// | none | `b` |
/// | full | uniform in `[0, b]` |
/// | equal | `b/2` + uniform in `[0, b/2]` |
/// | decorrelated | uniform in `[first, 3 × previous wait]`, capped (`first` = the first base delay) |
///
/// Full jitter spreads a fleet of synchronised clients the most and is the default
/// recommendation; decorrelated jitter ignores the base progression after the first wait.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use seawall::Backoff;
///
/// // 100 ms, 200 ms, 400 ms, … capped at 2 s, each drawn uniformly below that (full jitter).
/// let backoff = Backoff::exponential(Duration::from_millis(100))
///     .max(Duration::from_secs(2))
///     .full_jitter();
/// assert_eq!(backoff.base_delay(3), Duration::from_millis(400));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    progression: Progression,
    max: Option<Duration>,
    jitter: Jitter,
}

impl Backoff {
    /// Retry at once.
    pub const fn none() -> Self {
        Self {
            progression: Progression::Zero,
            max: None,
            jitter: Jitter::None,
        }
    }

    /// The same wait before every retry.
    pub const fn constant(delay: Duration) -> Self {
        Self {
            progression: Progression::Constant(delay),
            max: None,
            jitter: Jitter::None,
        }
    }

    /// `initial`, `initial + step`, `initial + 2 × step`, …
    pub const fn linear(initial: Duration, step: Duration) -> Self {
        Self {
            progression: Progression::Linear { initial, step },
            max: None,
            jitter: Jitter::None,
        }
    }

    /// `initial`, `initial × 2`, `initial × 4`, … (change the factor with
    /// [`multiplier`](Backoff::multiplier)).
    pub const fn exponential(initial: Duration) -> Self {
        Self {
            progression: Progression::Exponential {
                initial,
                multiplier: 2.0,
            },
            max: None,
            jitter: Jitter::None,
        }
    }

    /// The growth factor of an exponential backoff (ignored by the other kinds). Must be finite
    /// and ≥ 1; checked when the retry is built.
    pub const fn multiplier(mut self, multiplier: f64) -> Self {
        if let Progression::Exponential { initial, .. } = self.progression {
            self.progression = Progression::Exponential {
                initial,
                multiplier,
            };
        }
        self
    }

    /// Caps every wait at `max` (applied before jitter, so jittered waits stay ≤ `max`).
    pub const fn max(mut self, max: Duration) -> Self {
        self.max = Some(max);
        self
    }

    /// Sets the jitter mode.
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// [`Jitter::Full`].
    pub const fn full_jitter(self) -> Self {
        self.jitter(Jitter::Full)
    }

    /// [`Jitter::Equal`].
    pub const fn equal_jitter(self) -> Self {
        self.jitter(Jitter::Equal)
    }

    /// [`Jitter::Decorrelated`].
    pub const fn decorrelated_jitter(self) -> Self {
        self.jitter(Jitter::Decorrelated)
    }

    /// The base progression.
    pub const fn progression(&self) -> Progression {
        self.progression
    }

    /// The jitter mode.
    pub const fn jitter_mode(&self) -> Jitter {
        self.jitter
    }

    /// The cap, if any.
    pub const fn cap(&self) -> Option<Duration> {
        self.max
    }

    /// Checks the values a builder cannot check at compile time.
    ///
    /// # Errors
    ///
    /// A multiplier that is not finite or below 1, or a decorrelated jitter with a zero first
    /// delay (it would never grow).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Progression::Exponential { multiplier, .. } = self.progression
            && (!multiplier.is_finite() || multiplier < 1.0)
        {
            return Err(ConfigError::new(
                "multiplier",
                format!("must be a finite number >= 1, got {multiplier}"),
            ));
        }
        if self.jitter == Jitter::Decorrelated && self.base_delay(1).is_zero() {
            return Err(ConfigError::new(
                "jitter",
                "decorrelated jitter needs a first delay > 0",
            ));
        }
        Ok(())
    }

    /// The capped delay before retry `retry` (1 = the wait after the first failed attempt),
    /// before jitter.
    pub fn base_delay(&self, retry: u32) -> Duration {
        let steps = retry.saturating_sub(1);
        let raw = match self.progression {
            Progression::Zero => Duration::ZERO,
            Progression::Constant(delay) => delay,
            Progression::Linear { initial, step } => {
                initial.saturating_add(step.saturating_mul(steps))
            }
            Progression::Exponential {
                initial,
                multiplier,
            } => {
                let factor = multiplier.powi(i32::try_from(steps).unwrap_or(i32::MAX));
                let nanos = initial.as_nanos() as f64 * factor;
                // `as` saturates for floats: infinity and huge values become u64::MAX.
                Duration::from_nanos(nanos as u64)
            }
        };
        match self.max {
            Some(max) => raw.min(max),
            None => raw,
        }
    }

    /// The wait before retry `retry`, with jitter drawn from `random`. `previous` is the wait
    /// before the previous retry (used by decorrelated jitter; `None` before the first).
    pub fn delay(
        &self,
        retry: u32,
        previous: Option<Duration>,
        random: &dyn RandomSource,
    ) -> Duration {
        let base = self.base_delay(retry);
        match self.jitter {
            Jitter::None => base,
            Jitter::Full => uniform(random, 0, duration_to_nanos(base)),
            Jitter::Equal => {
                let half = duration_to_nanos(base) / 2;
                Duration::from_nanos(half) + uniform(random, 0, half)
            }
            Jitter::Decorrelated => {
                let first = duration_to_nanos(self.base_delay(1));
                let previous = previous.map_or(first, duration_to_nanos);
                let high = previous.saturating_mul(3).max(first);
                let drawn = uniform(random, first, high);
                match self.max {
                    Some(max) => drawn.min(max),
                    None => drawn,
                }
            }
        }
    }

    /// The largest wait this backoff can produce before retry `retry` (for bounds checks).
    pub fn upper_bound(&self, retry: u32, previous: Option<Duration>) -> Duration {
        match self.jitter {
            Jitter::None | Jitter::Full | Jitter::Equal => self.base_delay(retry),
            Jitter::Decorrelated => {
                let first = self.base_delay(1);
                let high = previous.unwrap_or(first).saturating_mul(3).max(first);
                self.max.map_or(high, |max| high.min(max))
            }
        }
    }

    /// The smallest wait this backoff can produce before retry `retry` (for bounds checks).
    pub fn lower_bound(&self, retry: u32) -> Duration {
        match self.jitter {
            Jitter::None => self.base_delay(retry),
            Jitter::Full => Duration::ZERO,
            Jitter::Equal => Duration::from_nanos(duration_to_nanos(self.base_delay(retry)) / 2),
            Jitter::Decorrelated => {
                let first = self.base_delay(1);
                self.max.map_or(first, |max| first.min(max))
            }
        }
    }
}

impl Default for Backoff {
    /// Exponential from 500 ms (Resilience4j's default wait), ×2, capped at 30 s, full jitter.
    fn default() -> Self {
        Self::exponential(Duration::from_millis(500))
            .max(Duration::from_secs(30))
            .full_jitter()
    }
}

/// A uniform draw in `[low, high]` nanoseconds (Lemire's multiply-shift; the bias is below
/// 2⁻⁶⁴ × range and irrelevant for waits).
fn uniform(random: &dyn RandomSource, low: u64, high: u64) -> Duration {
    if high <= low {
        return Duration::from_nanos(low);
    }
    let span = u128::from(high - low) + 1;
    let offset = (u128::from(random.next_u64()) * span) >> 64;
    Duration::from_nanos(low + offset as u64)
}

/// A source of random numbers for jitter, shared by all calls of a retry.
///
/// The default is a SplitMix64 sequence seeded from the process's hash seed; seed it
/// ([`SplitMix64::seeded`]) for reproducible schedules in tests.
pub trait RandomSource: Send + Sync + fmt::Debug {
    /// The next random number.
    fn next_u64(&self) -> u64;
}

/// A lock-free SplitMix64 generator: one atomic add per draw.
#[derive(Debug)]
pub struct SplitMix64 {
    state: AtomicU64,
}

impl SplitMix64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    /// A generator with a fixed seed: the same seed gives the same sequence.
    pub const fn seeded(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    /// A generator seeded from the process's random hash seed.
    pub fn from_entropy() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x5EA_3A11);
        Self::seeded(hasher.finish())
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&self) -> u64 {
        // Relaxed: each draw only needs a distinct state, not ordering with other memory.
        let mut z = self
            .state
            .fetch_add(Self::GAMMA, Ordering::Relaxed)
            .wrapping_add(Self::GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn constant_linear_and_exponential_progressions() {
        let constant = Backoff::constant(ms(300));
        assert_eq!(
            (1..=3).map(|n| constant.base_delay(n)).collect::<Vec<_>>(),
            [ms(300); 3]
        );
        let linear = Backoff::linear(ms(100), ms(50));
        assert_eq!(
            (1..=4).map(|n| linear.base_delay(n)).collect::<Vec<_>>(),
            [ms(100), ms(150), ms(200), ms(250)]
        );
        let exponential = Backoff::exponential(ms(100)).multiplier(3.0).max(ms(1000));
        assert_eq!(
            (1..=5)
                .map(|n| exponential.base_delay(n))
                .collect::<Vec<_>>(),
            [ms(100), ms(300), ms(900), ms(1000), ms(1000)]
        );
    }

    #[test]
    fn huge_exponents_saturate_instead_of_overflowing() {
        let backoff = Backoff::exponential(ms(1)).multiplier(10.0);
        assert_eq!(backoff.base_delay(u32::MAX), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn a_seeded_generator_repeats_its_sequence() {
        let a = SplitMix64::seeded(42);
        let b = SplitMix64::seeded(42);
        let first: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let second: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(first, second);
        assert_ne!(first[0], first[1]);
    }

    #[test]
    fn seeded_full_jitter_schedule_is_exact_and_within_bounds() {
        let backoff = Backoff::exponential(ms(100)).full_jitter();
        let random = SplitMix64::seeded(7);
        let schedule: Vec<Duration> = (1..=4).map(|n| backoff.delay(n, None, &random)).collect();
        let replay = SplitMix64::seeded(7);
        let again: Vec<Duration> = (1..=4).map(|n| backoff.delay(n, None, &replay)).collect();
        assert_eq!(schedule, again);
        for (n, delay) in (1..).zip(&schedule) {
            assert!(*delay <= backoff.base_delay(n), "retry {n}: {delay:?}");
        }
    }

    #[test]
    fn invalid_multipliers_are_rejected_with_the_key() {
        let err = Backoff::exponential(ms(1))
            .multiplier(0.5)
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "multiplier: must be a finite number >= 1, got 0.5"
        );
        assert!(
            Backoff::exponential(ms(1))
                .multiplier(f64::NAN)
                .validate()
                .is_err()
        );
        assert!(
            Backoff::constant(Duration::ZERO)
                .decorrelated_jitter()
                .validate()
                .is_err()
        );
    }

    fn any_jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated),
        ]
    }

    fn any_backoff() -> impl Strategy<Value = Backoff> {
        let progression = prop_oneof![
            (1u64..10_000).prop_map(|m| Backoff::constant(ms(m))),
            (1u64..10_000, 0u64..10_000).prop_map(|(i, s)| Backoff::linear(ms(i), ms(s))),
            (1u64..10_000, 1.0f64..5.0)
                .prop_map(|(i, m)| Backoff::exponential(ms(i)).multiplier(m)),
        ];
        (
            progression,
            proptest::option::of(1u64..60_000),
            any_jitter(),
        )
            .prop_map(|(backoff, max, jitter)| {
                let backoff = backoff.jitter(jitter);
                match max {
                    Some(max) => backoff.max(ms(max)),
                    None => backoff,
                }
            })
    }

    proptest! {
        #[test]
        fn every_delay_stays_within_its_bounds(backoff in any_backoff(), seed: u64, retries in 1u32..40) {
            let random = SplitMix64::seeded(seed);
            let mut previous = None;
            for retry in 1..=retries {
                let delay = backoff.delay(retry, previous, &random);
                prop_assert!(delay >= backoff.lower_bound(retry), "retry {retry}: {delay:?} below {:?}", backoff.lower_bound(retry));
                prop_assert!(delay <= backoff.upper_bound(retry, previous), "retry {retry}: {delay:?} above {:?}", backoff.upper_bound(retry, previous));
                if let Some(max) = backoff.cap() {
                    prop_assert!(delay <= max);
                }
                previous = Some(delay);
            }
        }
    }
}

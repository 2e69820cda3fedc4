//! A tiny seedable PRNG (xoshiro256** seeded through SplitMix64).
//!
//! Written here rather than taken from `rand` so that a seed gives the same sequence on every
//! platform and every dependency upgrade: reproducible fault schedules are a contract of the
//! simulator.

/// A seeded xoshiro256** generator. Not cryptographic; it only drives simulated behaviour.
#[derive(Clone, Debug)]
pub struct SimRng {
    s: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SimRng {
    /// Creates a generator whose whole sequence is fixed by `seed`.
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Self { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        // 53 random bits give every representable multiple of 2^-53 in [0, 1).
        #[allow(clippy::cast_precision_loss)]
        let v = (self.next_u64() >> 11) as f64;
        v / (1u64 << 53) as f64
    }

    /// `true` with probability `p` (values outside `[0, 1]` are clamped).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        self.next_f64() < p
    }

    /// A uniform integer in `[low, high]` (inclusive); returns `low` when `high <= low`.
    pub fn range_inclusive(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        let span = high - low;
        if span == u64::MAX {
            return self.next_u64();
        }
        let n = span + 1;
        // Rejection sampling keeps the distribution exactly uniform.
        let zone = u64::MAX - (u64::MAX % n) - 1;
        loop {
            let v = self.next_u64();
            if v <= zone {
                return low + v % n;
            }
        }
    }

    /// A standard normal sample (Box–Muller), used by the long-tail latency.
    pub fn standard_normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]: keeps ln finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A seed from the wall clock and the address of a stack value, used when none is configured.
pub(crate) fn entropy_seed() -> u64 {
    let marker = 0u8;
    let addr = std::ptr::from_ref(&marker) as usize as u64;
    let mut s = crate::clock::unix_millis() ^ addr.rotate_left(32);
    splitmix64(&mut s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let mut a = SimRng::seed_from_u64(7);
        let mut b = SimRng::seed_from_u64(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(
            SimRng::seed_from_u64(7).next_u64(),
            SimRng::seed_from_u64(8).next_u64()
        );
    }

    #[test]
    fn inclusive_ranges_hit_both_ends_and_nothing_outside() {
        let mut rng = SimRng::seed_from_u64(1);
        let mut seen = [false; 5];
        for _ in 0..1_000 {
            let v = rng.range_inclusive(10, 14);
            assert!((10..=14).contains(&v));
            seen[usize::try_from(v - 10).unwrap()] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(rng.range_inclusive(3, 3), 3);
    }

    #[test]
    fn floats_stay_in_the_unit_interval() {
        let mut rng = SimRng::seed_from_u64(2);
        for _ in 0..10_000 {
            let v = rng.next_f64();
            assert!((0.0..1.0).contains(&v));
        }
        assert!(!rng.chance(0.0));
        assert!(rng.chance(1.0));
    }
}

//! Transaction keys: `yyyyMMdd:TR:xxxxxx` (local date, literal `TR`, random lowercase hex).
//!
//! The generator is a trait so tests can force collisions: the ledger never overwrites, it asks
//! the generator again.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;

use crate::fault::lock;
use crate::rng::SimRng;

/// Proposes transaction keys. The ledger checks uniqueness and calls again on a collision.
pub trait KeyGenerator: Send + Sync + fmt::Debug + 'static {
    /// A candidate key for a transaction created on `date` (`yyyyMMdd`, local to the
    /// configured offset).
    fn generate(&self, date: &str) -> String;
}

/// The canonical generator: `{date}:TR:` + `suffix_len` random lowercase hex characters.
#[derive(Debug)]
pub struct RandomKeys {
    rng: Mutex<SimRng>,
    suffix_len: usize,
}

impl RandomKeys {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64, suffix_len: usize) -> Self {
        Self {
            rng: Mutex::new(SimRng::seed_from_u64(seed)),
            suffix_len: suffix_len.clamp(1, 32),
        }
    }
}

impl KeyGenerator for RandomKeys {
    fn generate(&self, date: &str) -> String {
        let mut rng = lock(&self.rng);
        let mut suffix = String::with_capacity(self.suffix_len);
        while suffix.len() < self.suffix_len {
            suffix.push_str(&format!("{:016x}", rng.next_u64()));
        }
        suffix.truncate(self.suffix_len);
        format!("{date}:TR:{suffix}")
    }
}

/// Hands out the given keys in order, then falls back to random keys. For collision tests.
#[derive(Debug)]
pub struct ScriptedKeys {
    script: Mutex<VecDeque<String>>,
    fallback: RandomKeys,
}

impl ScriptedKeys {
    /// Keys to return first, in order.
    pub fn new<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            script: Mutex::new(keys.into_iter().map(Into::into).collect()),
            fallback: RandomKeys::new(0x5C21_9E7D, 6),
        }
    }
}

impl KeyGenerator for ScriptedKeys {
    fn generate(&self, date: &str) -> String {
        let next = lock(&self.script).pop_front();
        next.unwrap_or_else(|| self.fallback.generate(date))
    }
}

/// `yyyyMMdd` of a Unix time in milliseconds shifted by `utc_offset_minutes`.
pub fn local_date(unix_ms: u64, utc_offset_minutes: i32) -> String {
    let secs =
        i64::try_from(unix_ms / 1000).unwrap_or(i64::MAX) + i64::from(utc_offset_minutes) * 60;
    let days = secs.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_is_local_to_seoul() {
        // 2025-08-15T15:00:00Z is already 2025-08-16 in Seoul (+09:00).
        let ms = 1_755_270_000_000;
        assert_eq!(local_date(ms, 540), "20250816");
        assert_eq!(local_date(ms, 0), "20250815");
        assert_eq!(local_date(0, 0), "19700101");
        assert_eq!(local_date(951_782_400_000, 0), "20000229");
    }

    #[test]
    fn random_keys_have_the_canonical_shape() {
        let keys = RandomKeys::new(1, 6);
        for _ in 0..100 {
            let k = keys.generate("20250816");
            let (date, suffix) = k.split_once(":TR:").unwrap();
            assert_eq!(date, "20250816");
            assert_eq!(suffix.len(), 6);
            assert!(
                suffix
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
    }

    #[test]
    fn scripted_keys_come_first() {
        let keys = ScriptedKeys::new(["a", "b"]);
        assert_eq!(keys.generate("d"), "a");
        assert_eq!(keys.generate("d"), "b");
        assert!(keys.generate("d").starts_with("d:TR:"));
    }
}

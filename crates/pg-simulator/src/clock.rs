//! The one place that reads time or waits.
//!
//! `clippy.toml` bans `Instant::now` and the sleep functions everywhere else, so every delay the
//! simulator injects (latency, processing, callback hold) is visible here and nowhere else.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) use tokio::time::Instant;

/// The monotonic "now" used for lags, holds and retention.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now()
}

/// Waits for `duration`; a zero duration returns without touching the timer.
pub(crate) async fn sleep(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Wall-clock seconds since the Unix epoch, as used in callback signatures.
pub(crate) fn unix_seconds() -> i64 {
    i64::try_from(unix_millis() / 1000).unwrap_or(i64::MAX)
}

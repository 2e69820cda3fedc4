//! The one configuration every contender gets, per decorator (house style 35: identical
//! parameters). Where a contender cannot express a setting, [`peers`](crate::peers) says what
//! it uses instead.

use std::time::Duration;

/// Circuit breaker: calls in the count-based sliding window.
pub const WINDOW_CALLS: usize = 100;
/// Circuit breaker: calls needed before the failure rate is evaluated.
pub const MINIMUM_CALLS: usize = 100;
/// Circuit breaker: failure rate that opens it.
pub const FAILURE_RATE: f64 = 0.5;
/// Circuit breaker: how long it stays open — long enough never to half-open during a run.
pub const OPEN_WAIT: Duration = Duration::from_secs(3_600);
/// Circuit breaker: calls slower than this are slow calls (no benchmarked call is).
pub const SLOW_CALL: Duration = Duration::from_secs(1);
/// Circuit breaker: length of the time-based sliding window.
pub const TIME_WINDOW: Duration = Duration::from_secs(60);
/// Circuit breaker: calls made to trip it in the open-breaker scenario (all failing).
pub const TRIP_CALLS: usize = 2 * WINDOW_CALLS;

/// Bulkhead: concurrent calls allowed (Resilience4j's default).
pub const BULKHEAD_PERMITS: usize = 25;

/// Timeout: the limit (never reached: the inner call is ready at once).
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// Retry: attempts, counting the first.
pub const MAX_ATTEMPTS: usize = 3;
/// Retry: first wait of the exponential backoff (never waited: the first attempt succeeds).
pub const BACKOFF: Duration = Duration::from_millis(10);

/// Hedging: the delay before the one hedged attempt (never reached: the inner call is ready at
/// once, so no hedge fires).
pub const HEDGE_DELAY: Duration = Duration::from_millis(100);

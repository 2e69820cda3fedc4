//! The other libraries, configured as in [`config`](crate::config): tower's built-ins,
//! tower-resilience 0.13, failsafe 1.3 and recloser 1.4.
//!
//! Every constructor wraps the same inner operation ([`Echo`] or [`Inner::future`]) and returns
//! a ready-to-call [`Contender`]. Where a peer cannot express a setting, its constructor's doc
//! says what it uses instead.

use std::future::{Ready, ready};
use std::sync::Arc;

use tower::ServiceBuilder;
use tower_layer::Layer;
use tower_resilience::adaptive::{AdaptiveError, Aimd};
use tower_resilience::bulkhead::{BulkheadLayer, BulkheadServiceError};
use tower_resilience::circuitbreaker::{
    CircuitBreakerError, CircuitBreakerLayer, SlidingWindowType,
};
use tower_resilience::fallback::{FallbackError, FallbackLayer};
use tower_resilience::hedge::{HedgeError, HedgeLayer};
use tower_resilience::retry::RetryLayer;
use tower_resilience::timelimiter::{TimeLimiterError, TimeLimiterLayer};

use crate::config::{
    BACKOFF, BULKHEAD_PERMITS, FAILURE_RATE, HEDGE_DELAY, MAX_ATTEMPTS, MINIMUM_CALLS, OPEN_WAIT,
    SLOW_CALL, TIME_WINDOW, TIMEOUT, WINDOW_CALLS,
};
use crate::contender::{
    Contender, Failsafe, RecloserAsync, RecloserAsyncOpaque, RecloserSync, Tower, boxed_error,
};
use crate::harness::{Echo, Failure, Inner, OpaqueEcho, Outcome};

/// Erases a (possibly nested) tower-resilience error into an [`Outcome`]: the inner
/// [`Failure`] passed through, or a layer's own error.
pub trait Erase {
    /// The outcome this error stands for.
    fn erase(self) -> Outcome;
}

impl Erase for Failure {
    fn erase(self) -> Outcome {
        Outcome::Failed
    }
}

impl<E: Erase> Erase for CircuitBreakerError<E> {
    fn erase(self) -> Outcome {
        match self {
            Self::Inner(inner) => inner.erase(),
            Self::OpenCircuit => Outcome::Rejected,
        }
    }
}

impl<E: Erase> Erase for BulkheadServiceError<E> {
    fn erase(self) -> Outcome {
        match self {
            Self::Inner(inner) => inner.erase(),
            Self::Bulkhead(_) => Outcome::Rejected,
        }
    }
}

impl<E: Erase> Erase for AdaptiveError<E> {
    fn erase(self) -> Outcome {
        match self {
            Self::Service(inner) => inner.erase(),
            Self::LimitReached => Outcome::Rejected,
        }
    }
}

impl<E: Erase> Erase for TimeLimiterError<E> {
    fn erase(self) -> Outcome {
        match self {
            Self::Inner(inner) => inner.erase(),
            Self::Timeout => Outcome::Rejected,
        }
    }
}

impl<E: Erase> Erase for FallbackError<E> {
    fn erase(self) -> Outcome {
        match self {
            Self::Inner(inner) => inner.erase(),
            Self::FallbackFailed(_) => Outcome::Rejected,
        }
    }
}

impl<E: Erase> Erase for HedgeError<E> {
    fn erase(self) -> Outcome {
        self.into_inner().erase()
    }
}

// ===== tower built-ins =====

/// A tower retry policy: retries a failure up to `n` more times, never a success; no wait
/// between attempts (the benchmarked calls never retry, so the backoff is never computed).
#[derive(Clone, Copy, Debug)]
pub struct Attempts(pub usize);

impl<Res, E> tower::retry::Policy<Inner, Res, E> for Attempts {
    type Future = Ready<()>;

    fn retry(&mut self, _request: &mut Inner, result: &mut Result<Res, E>) -> Option<Ready<()>> {
        match result {
            Err(_) if self.0 > 0 => {
                self.0 -= 1;
                Some(ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, request: &Inner) -> Option<Inner> {
        Some(*request)
    }
}

/// tower's `Timeout`.
pub fn tower_timeout() -> impl Contender + Clone + Send + 'static {
    Tower::new(tower::timeout::Timeout::new(Echo, TIMEOUT), boxed_error)
}

/// tower's `ConcurrencyLimit` (it waits for a permit where the others reject; with a permit
/// free the path is the same: take one, run, give it back).
pub fn tower_concurrency_limit() -> impl Contender + Clone + Send + 'static {
    Tower::new(
        tower::limit::ConcurrencyLimit::new(Echo, BULKHEAD_PERMITS),
        Failure::erase,
    )
}

/// tower's `Retry` with [`Attempts`].
pub fn tower_retry() -> impl Contender + Clone + Send + 'static {
    Tower::new(
        tower::retry::Retry::new(Attempts(MAX_ATTEMPTS - 1), Echo),
        Failure::erase,
    )
}

/// tower's nearest stack: `Timeout` → `Retry` → `ConcurrencyLimit` (tower has no breaker and
/// no fallback).
pub fn tower_stack() -> impl Contender + Clone + Send + 'static {
    let service = ServiceBuilder::new()
        .timeout(TIMEOUT)
        .retry(Attempts(MAX_ATTEMPTS - 1))
        .concurrency_limit(BULKHEAD_PERMITS)
        .service(Echo);
    Tower::new(service, boxed_error)
}

// ===== tower-resilience =====

/// tower-resilience's hedge: one hedged attempt after [`HEDGE_DELAY`] (its
/// `max_hedged_attempts` counts the primary too, so 2).
pub fn tr_hedge() -> impl Contender + Clone + Send + 'static {
    let layer = HedgeLayer::builder()
        .delay(HEDGE_DELAY)
        .max_hedged_attempts(2)
        .build();
    Tower::new(layer.layer(Echo), HedgeError::<Failure>::erase)
}

/// Which sliding window a tower-resilience breaker uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Count-based, [`WINDOW_CALLS`] calls.
    Count,
    /// Count-based with a slow-call threshold of [`SLOW_CALL`].
    CountWithSlowCalls,
    /// Time-based, [`TIME_WINDOW`] long.
    Time,
}

fn tr_breaker_layer(window: Window) -> CircuitBreakerLayer {
    let builder = CircuitBreakerLayer::builder()
        .failure_rate_threshold(FAILURE_RATE)
        .minimum_number_of_calls(MINIMUM_CALLS)
        .wait_duration_in_open(OPEN_WAIT);
    let builder = match window {
        Window::Count => builder
            .sliding_window_type(SlidingWindowType::CountBased)
            .sliding_window_size(WINDOW_CALLS),
        Window::CountWithSlowCalls => builder
            .sliding_window_type(SlidingWindowType::CountBased)
            .sliding_window_size(WINDOW_CALLS)
            .slow_call_duration_threshold(SLOW_CALL),
        Window::Time => builder
            .sliding_window_type(SlidingWindowType::TimeBased)
            .sliding_window_duration(TIME_WINDOW),
    };
    builder
        .build()
        .expect("a valid tower-resilience breaker configuration")
}

/// tower-resilience's circuit breaker (rejection mode, the default).
pub fn tr_breaker(window: Window) -> impl Contender + Clone + Send + 'static {
    Tower::new(tr_breaker_layer(window).layer(Echo), Erase::erase)
}

/// [`tr_breaker`] around the inner call hidden from the optimizer ([`OpaqueEcho`]).
pub fn tr_breaker_opaque(window: Window) -> impl Contender + Clone + Send + 'static {
    Tower::new(tr_breaker_layer(window).layer(OpaqueEcho), Erase::erase)
}

fn tr_bulkhead_layer(reject_when_full: bool) -> tower_resilience::bulkhead::BulkheadLayer {
    let builder = BulkheadLayer::builder().max_concurrent_calls(BULKHEAD_PERMITS);
    let builder = if reject_when_full {
        builder.reject_when_full()
    } else {
        builder
    };
    builder
        .build()
        .expect("a valid tower-resilience bulkhead configuration")
}

/// tower-resilience's bulkhead: with `reject_when_full` it rejects at once when full (seawall's
/// configuration); without, it waits for a permit for ever (its default).
pub fn tr_bulkhead(reject_when_full: bool) -> impl Contender + Clone + Send + 'static {
    Tower::new(
        tr_bulkhead_layer(reject_when_full).layer(Echo),
        Erase::erase,
    )
}

/// tower-resilience's adaptive limiter with AIMD, set as seawall's row: limit 20 in [1, 200],
/// ×0.9 on a failure, a 5 s latency threshold.
pub fn tr_adaptive() -> impl Contender + Clone + Send + 'static {
    let aimd = Aimd::builder()
        .initial_limit(20)
        .min_limit(1)
        .max_limit(200)
        .decrease_factor(0.9)
        .latency_threshold(std::time::Duration::from_secs(5))
        .build()
        .expect("a valid tower-resilience AIMD configuration");
    Tower::new(
        tower_resilience::adaptive::AdaptiveLimiterLayer::new(aimd).layer(Echo),
        Erase::erase,
    )
}

fn tr_time_limiter_layer() -> TimeLimiterLayer {
    TimeLimiterLayer::builder()
        .timeout_duration(TIMEOUT)
        .build()
}

/// tower-resilience's time limiter (cancels the call on timeout, its default).
pub fn tr_time_limiter() -> impl Contender + Clone + Send + 'static {
    Tower::new(tr_time_limiter_layer().layer(Echo), Erase::erase)
}

/// tower-resilience's retry: [`MAX_ATTEMPTS`] attempts, exponential backoff from [`BACKOFF`].
pub fn tr_retry() -> impl Contender + Clone + Send + 'static {
    Tower::new(tr_retry_layer().layer(Echo), Erase::erase)
}

/// [`tr_retry`] around the inner call hidden from the optimizer ([`OpaqueEcho`]).
pub fn tr_retry_opaque() -> impl Contender + Clone + Send + 'static {
    Tower::new(tr_retry_layer().layer(OpaqueEcho), Erase::erase)
}

fn tr_retry_layer() -> RetryLayer<Inner, u64, Failure> {
    RetryLayer::<Inner, u64, Failure>::builder()
        .max_attempts(MAX_ATTEMPTS)
        .exponential_backoff(BACKOFF)
        .build()
}

/// tower-resilience's chaos layer injecting nothing (latency and error rates 0): it has no
/// on/off switch, so this is its cheapest path. Each call boxes its future and clones the inner
/// service.
pub fn tr_chaos_idle() -> impl Contender + Clone + Send + 'static {
    let layer = tower_resilience::chaos::ChaosLayer::builder()
        .name("bench")
        .latency_rate(0.0)
        .seed(1)
        .build();
    Tower::new(layer.layer(Echo), Erase::erase)
}

/// tower-resilience's full stack over the inner service `$inner` (a macro: the layers' service
/// bounds are long to spell out).
macro_rules! tr_stack_over {
    ($inner:expr) => {{
        type Below = CircuitBreakerError<BulkheadServiceError<Failure>>;
        ServiceBuilder::new()
            .layer(FallbackLayer::<Inner, u64, TimeLimiterError<Below>>::value(
                0,
            ))
            .layer(tr_time_limiter_layer())
            .layer(
                RetryLayer::<Inner, u64, Below>::builder()
                    .max_attempts(MAX_ATTEMPTS)
                    .exponential_backoff(BACKOFF)
                    .build(),
            )
            .layer(tr_breaker_layer(Window::Count))
            .layer(tr_bulkhead_layer(true))
            .service($inner)
    }};
}

/// tower-resilience's full stack, outermost first: fallback (a fixed value) → time limiter →
/// retry → circuit breaker (count window) → bulkhead (reject when full).
pub fn tr_stack() -> impl Contender + Clone + Send + 'static {
    Tower::new(tr_stack_over!(Echo), Erase::erase)
}

/// [`tr_stack`] around the inner call hidden from the optimizer ([`OpaqueEcho`]).
pub fn tr_stack_opaque() -> impl Contender + Clone + Send + 'static {
    Tower::new(tr_stack_over!(OpaqueEcho), Erase::erase)
}

/// tower-resilience's stack without the breaker, to compare like with like while seawall's
/// breaker is not on this branch: fallback → time limiter → retry → bulkhead.
pub fn tr_stack_without_breaker() -> impl Contender + Clone + Send + 'static {
    type Below = BulkheadServiceError<Failure>;
    let service = ServiceBuilder::new()
        .layer(FallbackLayer::<Inner, u64, TimeLimiterError<Below>>::value(
            0,
        ))
        .layer(tr_time_limiter_layer())
        .layer(
            RetryLayer::<Inner, u64, Below>::builder()
                .max_attempts(MAX_ATTEMPTS)
                .exponential_backoff(BACKOFF)
                .build(),
        )
        .layer(tr_bulkhead_layer(true))
        .service(Echo);
    Tower::new(service, Erase::erase)
}

// ===== failsafe =====

/// failsafe's breaker with its consecutive-failures policy ([`MINIMUM_CALLS`] in a row):
/// failsafe has no count window, and this is its cheapest closed path.
pub fn failsafe_consecutive() -> impl Contender + Clone + Send + 'static {
    let policy = failsafe::failure_policy::consecutive_failures(
        u32::try_from(MINIMUM_CALLS).expect("fits"),
        failsafe::backoff::constant(OPEN_WAIT),
    );
    Failsafe(failsafe::Config::new().failure_policy(policy).build())
}

/// failsafe's time-window policy: an exponentially weighted success rate over
/// [`TIME_WINDOW`], at least [`MINIMUM_CALLS`] calls, opening below `1 - FAILURE_RATE`.
pub fn failsafe_time_window() -> impl Contender + Clone + Send + 'static {
    let policy = failsafe::failure_policy::success_rate_over_time_window(
        1.0 - FAILURE_RATE,
        u32::try_from(MINIMUM_CALLS).expect("fits"),
        TIME_WINDOW,
        failsafe::backoff::constant(OPEN_WAIT),
    );
    Failsafe(failsafe::Config::new().failure_policy(policy).build())
}

// ===== recloser =====

fn recloser() -> recloser::Recloser {
    #[allow(clippy::cast_possible_truncation)] // 0.5
    let rate = FAILURE_RATE as f32;
    recloser::Recloser::custom()
        .error_rate(rate)
        .closed_len(WINDOW_CALLS)
        .half_open_len(10)
        .open_wait(OPEN_WAIT)
        .build()
}

/// recloser's async breaker (count window of [`WINDOW_CALLS`]; it evaluates once the ring is
/// full, so its minimum number of calls is the window size).
pub fn recloser_async() -> impl Contender + Clone + Send + 'static {
    RecloserAsync(recloser::AsyncRecloser::from(recloser()))
}

/// [`recloser_async`] around the inner call hidden from the optimizer.
pub fn recloser_async_opaque() -> impl Contender + Clone + Send + 'static {
    RecloserAsyncOpaque(recloser::AsyncRecloser::from(recloser()))
}

/// recloser's synchronous breaker, same configuration (no future at all: a floor for what a
/// breaker's bookkeeping costs).
pub fn recloser_sync() -> impl Contender + Clone + Send + 'static {
    RecloserSync(Arc::new(recloser()))
}

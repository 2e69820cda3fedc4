//! seawall's contenders, configured as in [`config`](crate::config): each decorator through its
//! native API ([`Native`]) and through its tower layer ([`Tower`]).

use seawall::adaptive::{AdaptiveLimiterLayer, LimitAlgorithm};
use seawall::bulkhead::BulkheadLayer;
use seawall::circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, SlidingWindow};
use seawall::fallback::FallbackLayer;
use seawall::hedge::{HedgeConfig, HedgeLayer};
use seawall::registry::Registries;
use seawall::retry::RetryLayer;
use seawall::timeout::TimeoutLayer;
use seawall::{
    AdaptiveLimiter, Backoff, BoxError, Bulkhead, Clock, Fallback, Hedge, Policy, Retry, Timeout,
};
use tower::ServiceBuilder;
use tower_layer::Layer;

use seawall::policy::Stage;

use crate::harness::Failure;

use crate::config::{
    BACKOFF, BULKHEAD_PERMITS, FAILURE_RATE, HEDGE_DELAY, MAX_ATTEMPTS, MINIMUM_CALLS, OPEN_WAIT,
    SLOW_CALL, TIME_WINDOW, TIMEOUT, WINDOW_CALLS,
};
use crate::contender::{Contender, Native, NativeOpaque, Tower, boxed_error};
use crate::harness::{Echo, OpaqueEcho};
use crate::peers::Window;

/// seawall's breaker with the common configuration, on `clock`. Slow-call tracking is on only
/// for [`Window::CountWithSlowCalls`] (off, the count-window breaker reads no clock).
fn breaker_decorator(window: Window, clock: Clock) -> CircuitBreaker {
    let builder = CircuitBreaker::builder()
        .name("bench")
        .failure_rate_threshold(FAILURE_RATE * 100.0)
        .minimum_number_of_calls(u32::try_from(MINIMUM_CALLS).expect("fits"))
        .wait_in_open(OPEN_WAIT)
        .clock(clock);
    let count = SlidingWindow::count(u32::try_from(WINDOW_CALLS).expect("fits"));
    let builder = match window {
        Window::Count => builder.sliding_window(count).disable_slow_call_tracking(),
        Window::CountWithSlowCalls => builder
            .sliding_window(count)
            .slow_call_duration_threshold(SLOW_CALL),
        Window::Time => builder
            .sliding_window(SlidingWindow::time(TIME_WINDOW))
            .disable_slow_call_tracking(),
    };
    builder
        .build()
        .expect("a valid seawall breaker configuration")
}

fn timeout_decorator() -> Timeout {
    Timeout::new(TIMEOUT)
}

fn bulkhead_decorator() -> Bulkhead {
    Bulkhead::new(BULKHEAD_PERMITS)
}

fn retry_decorator() -> Retry {
    Retry::builder()
        .max_attempts(u32::try_from(MAX_ATTEMPTS).expect("fits"))
        .backoff(Backoff::exponential(BACKOFF))
        .build()
        .expect("a valid seawall retry configuration")
}

fn hedge_decorator() -> Hedge {
    Hedge::builder()
        .config(HedgeConfig::fixed(HEDGE_DELAY))
        .build()
        .expect("a valid seawall hedge configuration")
}

/// seawall's `Hedge` (one hedged attempt after [`HEDGE_DELAY`]), native API.
pub fn hedge() -> impl Contender + Clone + Send + 'static {
    Native(hedge_decorator())
}

/// seawall's `HedgeLayer` around the inner service.
pub fn hedge_tower() -> impl Contender + Clone + Send + 'static {
    Tower::new(HedgeLayer::new(hedge_decorator()).layer(Echo), boxed_error)
}

/// seawall's `Timeout`, native API.
pub fn timeout() -> impl Contender + Clone + Send + 'static {
    Native(timeout_decorator())
}

/// seawall's `TimeoutLayer` around the inner service.
pub fn timeout_tower() -> impl Contender + Clone + Send + 'static {
    Tower::new(
        TimeoutLayer::new(timeout_decorator()).layer(Echo),
        boxed_error,
    )
}

/// seawall's fault injector, switched off, with error and latency rates of 1 configured: what
/// a game-day injector left in production costs.
fn fault_decorator() -> seawall::FaultInjector {
    seawall::FaultInjector::builder()
        .config(
            seawall::fault::FaultConfig::new()
                .enabled(false)
                .error(1.0)
                .latency(1.0, TIMEOUT),
        )
        .seed(1)
        .build()
        .expect("a valid seawall fault configuration")
}

/// seawall's `FaultInjector`, switched off, native API.
pub fn fault_disabled() -> impl Contender + Clone + Send + 'static {
    Native(fault_decorator())
}

/// seawall's `FaultLayer`, switched off, around the inner service.
pub fn fault_disabled_tower() -> impl Contender + Clone + Send + 'static {
    Tower::new(
        seawall::fault::FaultLayer::new(fault_decorator()).layer(Echo),
        boxed_error,
    )
}

/// seawall's adaptive limiter: AIMD with Netflix's defaults (limit 20), rejecting at once.
fn adaptive_decorator() -> AdaptiveLimiter {
    AdaptiveLimiter::new(LimitAlgorithm::Aimd)
}

/// seawall's `AdaptiveLimiter` (AIMD), native API.
pub fn adaptive() -> impl Contender + Clone + Send + 'static {
    Native(adaptive_decorator())
}

/// seawall's `AdaptiveLimiter` (AIMD) on the coarse clock (RTTs read with one atomic load,
/// to the millisecond), native API.
pub fn adaptive_coarse() -> impl Contender + Clone + Send + 'static {
    Native(
        AdaptiveLimiter::builder()
            .clock(Clock::coarse())
            .build()
            .expect("a valid seawall adaptive limiter configuration"),
    )
}

/// seawall's `AdaptiveLimiterLayer` (AIMD) around the inner service.
pub fn adaptive_tower() -> impl Contender + Clone + Send + 'static {
    Tower::new(
        AdaptiveLimiterLayer::new(adaptive_decorator()).layer(Echo),
        boxed_error,
    )
}

/// seawall's `Bulkhead` (rejects at once when full), native API.
pub fn bulkhead() -> impl Contender + Clone + Send + 'static {
    Native(bulkhead_decorator())
}

/// seawall's `BulkheadLayer` (reject mode) around the inner service.
pub fn bulkhead_tower() -> impl Contender + Clone + Send + 'static {
    Tower::new(
        BulkheadLayer::new(bulkhead_decorator()).layer(Echo),
        boxed_error,
    )
}

/// seawall's `Retry`, native API.
pub fn retry() -> impl Contender + Clone + Send + 'static {
    Native(retry_decorator())
}

/// seawall's `Retry`, native API, around the inner call hidden from the optimizer.
pub fn retry_opaque() -> impl Contender + Clone + Send + 'static {
    NativeOpaque(retry_decorator())
}

/// seawall's `RetryLayer` around the inner service hidden from the optimizer.
pub fn retry_tower_opaque() -> impl Contender + Clone + Send + 'static {
    Tower::new(
        RetryLayer::new(retry_decorator()).layer(OpaqueEcho),
        boxed_error,
    )
}

/// seawall's `RetryLayer` around the inner service.
pub fn retry_tower() -> impl Contender + Clone + Send + 'static {
    Tower::new(RetryLayer::new(retry_decorator()).layer(Echo), boxed_error)
}

/// seawall's `CircuitBreaker`, native API, on tokio's clock.
pub fn breaker(window: Window) -> impl Contender + Clone + Send + 'static {
    Native(breaker_decorator(window, Clock::tokio()))
}

/// seawall's `CircuitBreaker` with the opt-in striped count window
/// (`SlidingWindow::striped_count`, the same size as [`Window::Count`]'s), native API.
pub fn breaker_striped() -> impl Contender + Clone + Send + 'static {
    let window = SlidingWindow::striped_count(u32::try_from(WINDOW_CALLS).expect("fits"));
    let breaker = CircuitBreaker::builder()
        .name("bench")
        .failure_rate_threshold(FAILURE_RATE * 100.0)
        .minimum_number_of_calls(u32::try_from(MINIMUM_CALLS).expect("fits"))
        .wait_in_open(OPEN_WAIT)
        .clock(Clock::tokio())
        .sliding_window(window)
        .disable_slow_call_tracking()
        .build()
        .expect("a valid seawall breaker configuration");
    Native(breaker)
}

/// seawall's `CircuitBreaker`, native API, on the coarse clock (`Clock::coarse()`: a clock
/// read is one atomic load).
pub fn breaker_coarse(window: Window) -> impl Contender + Clone + Send + 'static {
    Native(breaker_decorator(window, Clock::coarse()))
}

/// seawall's `CircuitBreaker`, native API, on tokio's clock, around the inner call hidden from
/// the optimizer.
pub fn breaker_opaque(window: Window) -> impl Contender + Clone + Send + 'static {
    NativeOpaque(breaker_decorator(window, Clock::tokio()))
}

/// seawall's `CircuitBreakerLayer` (reject mode) around the inner service.
pub fn breaker_tower(window: Window) -> impl Contender + Clone + Send + 'static {
    Tower::new(
        CircuitBreakerLayer::new(breaker_decorator(window, Clock::tokio())).layer(Echo),
        boxed_error,
    )
}

/// seawall's breaker from a registry whose instances are bound to `metrics` output
/// (`RegistryMetrics`): the breaker keeps call totals (one more atomic add per call). No
/// recorder is installed, so the handles themselves are no-ops, as in a process that exports
/// on scrape.
pub fn breaker_with_metrics() -> impl Contender + Clone + Send + 'static {
    let registries = Registries::new();
    let _metrics = seawall::metrics::RegistryMetrics::new(&registries);
    let registry = registries.circuit_breakers();
    registry
        .add_config(
            "default",
            breaker_decorator(Window::Count, Clock::tokio()).config(),
        )
        .expect("a valid configuration");
    Native(registry.get_or_create("bench"))
}

/// seawall's full stack, native API, outermost first: fallback (a fixed value) → timeout →
/// retry → circuit breaker → bulkhead.
pub fn stack() -> impl Contender + Clone + Send + 'static {
    Native(stack_policy())
}

/// seawall's full stack as tower layers over `$inner` (a macro: the layers' bounds are long to
/// spell out).
macro_rules! stack_tower_over {
    ($inner:expr) => {
        ServiceBuilder::new()
            .layer(FallbackLayer::new(|_: BoxError| Ok::<u64, BoxError>(0)))
            .layer(TimeoutLayer::new(timeout_decorator()))
            .layer(RetryLayer::new(retry_decorator()))
            .layer(CircuitBreakerLayer::new(breaker_decorator(
                Window::Count,
                Clock::tokio(),
            )))
            .layer(BulkheadLayer::new(bulkhead_decorator()))
            .service($inner)
    };
}

fn stack_policy() -> Policy<impl Stage<u64, Failure> + Clone + Send + Sync + 'static> {
    Policy::builder()
        .fallback(Fallback::value(0_u64))
        .timeout(timeout_decorator())
        .retry(retry_decorator())
        .circuit_breaker(breaker_decorator(Window::Count, Clock::tokio()))
        .bulkhead(bulkhead_decorator())
        .build()
}

/// [`stack`] around the inner call hidden from the optimizer.
pub fn stack_opaque() -> impl Contender + Clone + Send + 'static {
    NativeOpaque(stack_policy())
}

/// [`stack_tower`] around the inner service hidden from the optimizer.
pub fn stack_tower_opaque() -> impl Contender + Clone + Send + 'static {
    Tower::new(stack_tower_over!(OpaqueEcho), boxed_error)
}

/// seawall's full stack as tower layers in the same order.
pub fn stack_tower() -> impl Contender + Clone + Send + 'static {
    let service = ServiceBuilder::new()
        .layer(FallbackLayer::new(|_: BoxError| Ok::<u64, BoxError>(0)))
        .layer(TimeoutLayer::new(timeout_decorator()))
        .layer(RetryLayer::new(retry_decorator()))
        .layer(CircuitBreakerLayer::new(breaker_decorator(
            Window::Count,
            Clock::tokio(),
        )))
        .layer(BulkheadLayer::new(bulkhead_decorator()))
        .service(Echo);
    Tower::new(service, boxed_error)
}

//! The inner operation, the one-poll call harness and the runtimes.
//!
//! One measured call is: build the contender's call future around the inner operation, poll it
//! **once** with a no-op waker, and return what it produced. The inner operation is a
//! [`std::future::Ready`], so a call that the contender lets through completes on that first
//! poll; anything else is a bug in the bench and panics. This measures the decorator's own work
//! per call, with no executor, scheduling or I/O in the way.

use std::fmt;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};

use tokio::runtime::Runtime;
use tower_service::Service;

use crate::contender::Contender;

/// What the inner operation does when it runs: succeed with a value, or fail.
///
/// One machine word (a value, or [`Inner::FAIL`]), so that `black_box(INPUT)` stays in a
/// register. A two-word enum here was written to the stack as two 8-byte stores and read back
/// as one 16-byte load by contenders that copy it into their call future — a store-forwarding
/// stall of several nanoseconds charged to the contender, not to the harness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inner(u64);

/// The input of every measured call: a successful inner operation.
pub const INPUT: Inner = Inner::succeed(42);

impl Inner {
    /// An inner operation that fails with [`Failure`].
    pub const FAIL: Self = Self(u64::MAX);

    /// An inner operation that succeeds with `value` (any value but `u64::MAX`).
    pub const fn succeed(value: u64) -> Self {
        assert!(value != u64::MAX, "u64::MAX stands for a failure");
        Self(value)
    }

    /// The inner operation's result.
    #[inline]
    pub const fn result(self) -> Result<u64, Failure> {
        if self.0 == Self::FAIL.0 {
            Err(Failure)
        } else {
            Ok(self.0)
        }
    }

    /// The inner operation's future: ready at once.
    #[inline]
    pub fn future(self) -> Ready<Result<u64, Failure>> {
        ready(self.result())
    }
}

/// The inner operation hidden from the optimizer: a future whose `poll` is never inlined and
/// whose result passes through [`black_box`], as a call to another crate or through a
/// `dyn` boundary would be. Rows built on it (`…/opaque` groups) measure a decorator that the
/// compiler cannot fold into the caller: the cost a service really pays.
#[derive(Clone, Copy, Debug)]
pub struct Opaque(Inner);

impl Opaque {
    /// The opaque future of `inner`.
    #[inline]
    pub const fn new(inner: Inner) -> Self {
        Self(inner)
    }
}

impl Future for Opaque {
    type Output = Result<u64, Failure>;

    #[inline(never)]
    fn poll(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(black_box(self.0).result())
    }
}

/// The inner operation's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure;

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the inner operation failed")
    }
}

impl std::error::Error for Failure {}

/// What a call through a contender produced, with the contender's error type erased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The inner operation's value (or a fallback's).
    Value(u64),
    /// The inner operation's [`Failure`], passed through.
    Failed,
    /// The contender refused or cut short the call itself (open breaker, full bulkhead,
    /// timeout).
    Rejected,
}

impl Outcome {
    /// The outcome of the inner operation alone.
    #[inline]
    pub fn of(result: Result<u64, Failure>) -> Self {
        match result {
            Ok(value) => Self::Value(value),
            Err(Failure) => Self::Failed,
        }
    }
}

/// Polls `future` once with a no-op waker and returns its output.
///
/// # Panics
///
/// If the future is not ready after that poll: every benchmarked call must complete at once.
#[inline]
pub fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a benchmarked call did not complete on its first poll"),
    }
}

/// Polls a tower service's readiness once with a no-op waker.
///
/// # Panics
///
/// If the service is not ready or reports an error: every benchmarked service must be ready at
/// once (an open breaker or a full bulkhead reports ready and fails the call, tower-style).
#[inline]
pub fn ready_once<S: Service<R>, R>(service: &mut S) {
    match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(_)) => panic!("a benchmarked service reported a readiness error"),
        Poll::Pending => panic!("a benchmarked service was not ready at once"),
    }
}

/// The inner operation as a tower service: always ready, answers with [`Inner::future`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl Service<Inner> for Echo {
    type Response = u64;
    type Error = Failure;
    type Future = Ready<Result<u64, Failure>>;

    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, request: Inner) -> Self::Future {
        request.future()
    }
}

/// [`Echo`] with its future hidden from the optimizer ([`Opaque`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct OpaqueEcho;

impl Service<Inner> for OpaqueEcho {
    type Response = u64;
    type Error = Failure;
    type Future = Opaque;

    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        Poll::Ready(Ok(()))
    }

    #[inline]
    fn call(&mut self, request: Inner) -> Self::Future {
        Opaque::new(request)
    }
}

/// The runtime single-thread rows run in: current-thread, time driver on. It is entered (not
/// blocked on) while contenders are built and measured, so tokio timers, mutexes and
/// semaphores work as they would in a service.
///
/// # Panics
///
/// If tokio cannot build a runtime.
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread tokio runtime")
}

/// The runtime multi-thread rows run in: `workers` worker threads, time driver on.
///
/// # Panics
///
/// If tokio cannot build a runtime.
pub fn multi_thread_runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .expect("a multi-thread tokio runtime")
}

/// Makes `calls` awaited calls of [`INPUT`] through `contender`.
pub async fn awaited_calls<C: Contender>(contender: &mut C, calls: u64) {
    for _ in 0..calls {
        black_box(contender.call_awaited(black_box(INPUT)).await);
    }
}

/// Runs `threads` threads at once, each on its own clone of `contender` (clones share the
/// decorator's state), inside `runtime`'s context: each makes `warm_up` calls, waits for the
/// others, then makes `calls` awaited calls inside `around` (a timer, an allocation counter…).
/// Returns what `around` returned, in thread order.
///
/// The threads are scoped OS threads that enter the multi-thread runtime with
/// [`Handle::block_on`](tokio::runtime::Handle::block_on): a call that must wait (a contended
/// lock) is woken by the runtime as in a service, and nothing has to be `Send` but the
/// contender.
///
/// # Panics
///
/// If a thread panics.
pub fn on_threads<C, R>(
    runtime: &Runtime,
    contender: &C,
    threads: usize,
    warm_up: u64,
    calls: u64,
    around: impl Fn(&mut dyn FnMut()) -> R + Sync,
) -> Vec<R>
where
    C: Contender + Clone + Send,
    R: Send,
{
    let handle = runtime.handle();
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let joins: Vec<_> = (0..threads)
            .map(|_| {
                let mut contender = contender.clone();
                let (around, start) = (&around, &start);
                scope.spawn(move || {
                    handle.block_on(awaited_calls(&mut contender, warm_up));
                    start.wait();
                    around(&mut || handle.block_on(awaited_calls(&mut contender, calls)))
                })
            })
            .collect();
        joins
            .into_iter()
            .map(|join| join.join().expect("a benchmark thread panicked"))
            .collect()
    })
}

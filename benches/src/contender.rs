//! The adapter trait every contender is reached through, and one adapter per API shape.
//!
//! A scenario is written once against [`Contender`]; adding a contender means adding (at most)
//! one adapter here and one constructor in [`peers`](crate::peers) or [`ours`](crate::ours).
//! Every adapter does the same three things: build the contender's call future around
//! [`Inner::future`], poll it once ([`poll_once`]), and erase the error into an [`Outcome`]
//! (which only costs anything on the error path).

use std::future::{Future, poll_fn, ready};
use std::sync::Arc;
use std::task::Poll;

use seawall::policy::{FromFn, PolicyFuture, Stage};
use tower_service::Service;

use crate::harness::{Failure, Inner, Opaque, Outcome, poll_once, ready_once};

/// One contender, configured for one scenario.
pub trait Contender {
    /// Makes one call around a ready inner operation doing `inner`, polled once: the
    /// single-thread measurement.
    fn call(&mut self, inner: Inner) -> Outcome;

    /// The same call as a future to await with a real waker: for threads sharing one
    /// contender, where a call may have to wait for a lock another thread holds.
    fn call_awaited(&mut self, inner: Inner) -> impl Future<Output = Outcome>;
}

/// The bare inner call through the same harness: the floor every group is read against.
#[derive(Clone, Copy, Debug, Default)]
pub struct Baseline;

impl Contender for Baseline {
    #[inline]
    fn call(&mut self, inner: Inner) -> Outcome {
        Outcome::of(poll_once(inner.future()))
    }

    async fn call_awaited(&mut self, inner: Inner) -> Outcome {
        Outcome::of(inner.future().await)
    }
}

/// The bare inner call hidden from the optimizer ([`Opaque`]): the floor of the `…/opaque` groups.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpaqueBaseline;

impl Contender for OpaqueBaseline {
    #[inline]
    fn call(&mut self, inner: Inner) -> Outcome {
        Outcome::of(poll_once(Opaque::new(inner)))
    }

    async fn call_awaited(&mut self, inner: Inner) -> Outcome {
        Outcome::of(Opaque::new(inner).await)
    }
}

/// The bare inner call plus one uncontended `fetch_add` on a shared counter: the unit the
/// closed breaker is measured in, so the figure carries across machines.
#[derive(Clone, Debug, Default)]
pub struct FetchAdd(pub Arc<std::sync::atomic::AtomicU64>);

impl Contender for FetchAdd {
    #[inline]
    fn call(&mut self, inner: Inner) -> Outcome {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Outcome::of(poll_once(inner.future()))
    }

    async fn call_awaited(&mut self, inner: Inner) -> Outcome {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Outcome::of(inner.future().await)
    }
}

/// The inner call through tower's protocol with no layer (`poll_ready`, then `call` on the echo
/// service): what every `seawall-tower` row pays before its layer does anything.
pub fn tower_baseline() -> impl Contender + Clone + Send + 'static {
    Tower::new(crate::harness::Echo, |Failure| Outcome::Failed)
}

/// A seawall decorator or policy, called through its native API (`.call(|| op)`): any
/// [`Stage`] — a [`Policy`](seawall::Policy), or a single decorator such as
/// [`Timeout`](seawall::Timeout) — and, once it lands, the circuit breaker.
#[derive(Clone, Debug)]
pub struct Native<S>(pub S);

impl<S: Stage<u64, Failure>> Contender for Native<S> {
    #[inline]
    fn call(&mut self, inner: Inner) -> Outcome {
        // Exactly what `.call(|| inner.future())` builds, reached generically.
        let call = PolicyFuture::new(&self.0, FromFn::new(move || inner.future()));
        native_outcome(poll_once(call))
    }

    async fn call_awaited(&mut self, inner: Inner) -> Outcome {
        native_outcome(PolicyFuture::new(&self.0, FromFn::new(move || inner.future())).await)
    }
}

/// A seawall decorator or policy through its native API around the [`Opaque`] inner call.
#[derive(Clone, Debug)]
pub struct NativeOpaque<S>(pub S);

impl<S: Stage<u64, Failure>> Contender for NativeOpaque<S> {
    #[inline]
    fn call(&mut self, inner: Inner) -> Outcome {
        let call = PolicyFuture::new(&self.0, FromFn::new(move || Opaque::new(inner)));
        native_outcome(poll_once(call))
    }

    async fn call_awaited(&mut self, inner: Inner) -> Outcome {
        native_outcome(PolicyFuture::new(&self.0, FromFn::new(move || Opaque::new(inner))).await)
    }
}

// Always inlined, as `Outcome::of` is for the baselines: out of line (dropping an `Error` is
// not small) it made the `Result` be written out whole for the call, padding included.
#[inline(always)]
fn native_outcome(result: Result<u64, seawall::Error<Failure>>) -> Outcome {
    match result {
        Ok(value) => Outcome::Value(value),
        Err(error) if error.is_inner() => Outcome::Failed,
        Err(_) => Outcome::Rejected,
    }
}

/// Any tower [`Service`] over [`Inner`]: `poll_ready` once, `call`, poll the response once.
/// `map` tells the service's error type apart (inner failure or the middleware's own).
#[derive(Clone)]
pub struct Tower<S, M> {
    service: S,
    map: M,
}

impl<S, M> Tower<S, M> {
    /// Wraps `service`, erasing its errors with `map`.
    pub fn new(service: S, map: M) -> Self {
        Self { service, map }
    }
}

impl<S: std::fmt::Debug, M> std::fmt::Debug for Tower<S, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tower")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl<S, M> Contender for Tower<S, M>
where
    S: Service<Inner, Response = u64>,
    M: Fn(S::Error) -> Outcome,
{
    #[inline]
    fn call(&mut self, inner: Inner) -> Outcome {
        ready_once(&mut self.service);
        match poll_once(self.service.call(inner)) {
            Ok(value) => Outcome::Value(value),
            Err(error) => (self.map)(error),
        }
    }

    async fn call_awaited(&mut self, inner: Inner) -> Outcome {
        poll_fn(|cx| match self.service.poll_ready(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(()),
            Poll::Ready(Err(_)) => panic!("a benchmarked service reported a readiness error"),
            Poll::Pending => Poll::Pending,
        })
        .await;
        match self.service.call(inner).await {
            Ok(value) => Outcome::Value(value),
            Err(error) => (self.map)(error),
        }
    }
}

/// Tells a boxed tower error apart: the inner [`Failure`], or a middleware's own error.
#[allow(
    clippy::needless_pass_by_value,
    reason = "the call's result is consumed here, as a caller would"
)]
pub fn boxed_error(error: tower::BoxError) -> Outcome {
    if error.is::<Failure>() {
        Outcome::Failed
    } else {
        Outcome::Rejected
    }
}

/// A failsafe breaker (`failsafe::futures::CircuitBreaker`): `breaker.call(future)`.
#[derive(Clone, Debug)]
pub struct Failsafe<B>(pub B);

impl<B: failsafe::futures::CircuitBreaker> Contender for Failsafe<B> {
    #[inline]
    fn call(&mut self, inner: Inner) -> Outcome {
        failsafe_outcome(poll_once(self.0.call(inner.future())))
    }

    async fn call_awaited(&mut self, inner: Inner) -> Outcome {
        failsafe_outcome(self.0.call(inner.future()).await)
    }
}

#[inline]
#[allow(
    clippy::needless_pass_by_value,
    reason = "the call's result is consumed here, as a caller would"
)]
fn failsafe_outcome(result: Result<u64, failsafe::Error<Failure>>) -> Outcome {
    match result {
        Ok(value) => Outcome::Value(value),
        Err(failsafe::Error::Inner(Failure)) => Outcome::Failed,
        Err(failsafe::Error::Rejected) => Outcome::Rejected,
    }
}

/// recloser's async breaker: `recloser.call(future)`.
#[derive(Clone, Debug)]
pub struct RecloserAsync(pub recloser::AsyncRecloser);

impl Contender for RecloserAsync {
    #[inline]
    fn call(&mut self, inner: Inner) -> Outcome {
        recloser_outcome(poll_once(self.0.call(inner.future())))
    }

    async fn call_awaited(&mut self, inner: Inner) -> Outcome {
        recloser_outcome(self.0.call(inner.future()).await)
    }
}

/// recloser's async breaker around the inner call hidden from the optimizer ([`Opaque`]).
#[derive(Clone, Debug)]
pub struct RecloserAsyncOpaque(pub recloser::AsyncRecloser);

impl Contender for RecloserAsyncOpaque {
    #[inline]
    fn call(&mut self, inner: Inner) -> Outcome {
        recloser_outcome(poll_once(self.0.call(Opaque::new(inner))))
    }

    async fn call_awaited(&mut self, inner: Inner) -> Outcome {
        recloser_outcome(self.0.call(Opaque::new(inner)).await)
    }
}

/// recloser's synchronous breaker: `recloser.call(|| result)`, no future at all.
#[derive(Clone, Debug)]
pub struct RecloserSync(pub Arc<recloser::Recloser>);

impl Contender for RecloserSync {
    #[inline]
    fn call(&mut self, inner: Inner) -> Outcome {
        recloser_outcome(self.0.call(|| inner.result()))
    }

    fn call_awaited(&mut self, inner: Inner) -> impl Future<Output = Outcome> {
        ready(self.call(inner))
    }
}

#[inline]
#[allow(
    clippy::needless_pass_by_value,
    reason = "the call's result is consumed here, as a caller would"
)]
fn recloser_outcome(result: Result<u64, recloser::Error<Failure>>) -> Outcome {
    match result {
        Ok(value) => Outcome::Value(value),
        Err(recloser::Error::Inner(Failure)) => Outcome::Failed,
        Err(recloser::Error::Rejected) => Outcome::Rejected,
    }
}

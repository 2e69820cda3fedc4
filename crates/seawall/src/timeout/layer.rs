//! The timeout as a tower layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::future::Timer;
use super::{Elapsed, Shared, Timeout};
use crate::BoxError;
use crate::clock::Clock;

/// Applies a [`Timeout`] to every request of a tower service. Errors are [`BoxError`]s; a
/// timeout is the [`Elapsed`] marker (`err.is::<Elapsed>()`).
#[derive(Clone, Debug)]
pub struct TimeoutLayer {
    timeout: Timeout,
}

impl TimeoutLayer {
    /// A layer sharing `timeout`'s duration and listeners.
    pub fn new(timeout: Timeout) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;

    fn layer(&self, inner: S) -> TimeoutService<S> {
        TimeoutService {
            inner,
            timeout: self.timeout.clone(),
        }
    }
}

/// A tower service whose requests are bounded by a [`Timeout`].
#[derive(Clone, Debug)]
pub struct TimeoutService<S> {
    inner: S,
    timeout: Timeout,
}

impl<S> TimeoutService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, timeout: Timeout) -> Self {
        Self { inner, timeout }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Request> Service<Request> for TimeoutService<S>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = TimeoutResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let shared = self.timeout.shared();
        // Only a call someone watches (metrics, listeners, a tracing subscriber) holds a handle
        // on the timeout; the others carry what arming the timer needs, and cost no reference
        // count.
        let handle = if shared.is_observed() {
            Handle::Watched(shared.clone())
        } else {
            Handle::Unwatched {
                duration: shared.duration(),
                // tokio's clock needs no handle: a fresh one sleeps the same.
                clock: (!shared.clock().is_tokio()).then(|| shared.clock().clone()),
            }
        };
        TimeoutResponseFuture {
            inner: self.inner.call(request),
            timer: Timer::Unarmed,
            handle,
        }
    }
}

pin_project! {
    /// The response future of a [`TimeoutService`].
    #[must_use = "futures do nothing unless polled"]
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the inner call.
    pub struct TimeoutResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        timer: Timer,
        handle: Handle,
    }
}

/// What a response future knows of its timeout.
enum Handle {
    /// Someone watches the calls: report to the timeout itself.
    Watched(Arc<Shared>),
    /// Nobody does: only the timer's duration and clock (`None`: tokio's).
    Unwatched {
        duration: Duration,
        clock: Option<Clock>,
    },
}

impl<F, T, E> Future for TimeoutResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.inner.poll(cx) {
            if let Handle::Watched(shared) = this.handle {
                shared.totals.finished(output.is_ok());
            }
            return Poll::Ready(output.map_err(Into::into));
        }
        let after = match this.handle {
            Handle::Watched(shared) => {
                std::task::ready!(
                    this.timer
                        .poll_elapsed(cx, shared.clock(), || shared.duration())
                )
            }
            Handle::Unwatched { duration, clock } => {
                let clock = clock.get_or_insert_with(Clock::tokio);
                std::task::ready!(this.timer.poll_elapsed(cx, clock, || *duration))
            }
        };
        if let Handle::Watched(shared) = this.handle {
            shared.timed_out(after);
        }
        Poll::Ready(Err(Box::new(Elapsed::new(after))))
    }
}

impl<F> fmt::Debug for TimeoutResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TimeoutResponseFuture { .. }")
    }
}

//! The rate limiter as a tower layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{RateLimiter, Reservation, Shared};
use crate::BoxError;
use crate::clock::Sleep;
use crate::error::RateLimited;

/// Limits the rate of a tower service's requests with a [`RateLimiter`].
///
/// The slot is reserved in `poll_ready`, before the inner service is polled: a request that
/// may wait (within the limiter's timeout) keeps the service pending until its slot; one that
/// may not is reported ready and failed in `call` with [`RateLimited`] (downcastable), without
/// calling the inner service. Unlike tower's `RateLimit`, clones share one rate.
#[derive(Clone, Debug)]
pub struct RateLimiterLayer {
    limiter: RateLimiter,
}

impl RateLimiterLayer {
    /// A layer sharing `limiter`'s rate.
    pub fn new(limiter: RateLimiter) -> Self {
        Self { limiter }
    }
}

impl<S> Layer<S> for RateLimiterLayer {
    type Service = RateLimiterService<S>;

    fn layer(&self, inner: S) -> RateLimiterService<S> {
        RateLimiterService {
            inner,
            limiter: self.limiter.clone(),
            state: State::Idle,
        }
    }
}

/// A tower service limited by a [`RateLimiter`].
pub struct RateLimiterService<S> {
    inner: S,
    limiter: RateLimiter,
    state: State,
}

enum State {
    Idle,
    Waiting {
        sleep: Pin<Box<Sleep>>,
        slot: OwnedSlot,
    },
    Admitted,
    Rejected(RateLimited),
}

/// A reserved slot that goes back to the limiter if the service is dropped before using it.
struct OwnedSlot {
    shared: Arc<Shared>,
    slot: u64,
    used: bool,
}

impl Drop for OwnedSlot {
    fn drop(&mut self) {
        self.shared.waiting(-1);
        if !self.used {
            self.shared.release(self.slot);
        }
    }
}

impl<S: Clone> Clone for RateLimiterService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            state: State::Idle,
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for RateLimiterService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiterService")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<S, Request> Service<Request> for RateLimiterService<S>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = RateLimiterResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        loop {
            match &mut self.state {
                State::Idle => {
                    let shared = self.limiter.shared();
                    self.state = match shared.reserve(shared.clock().now()) {
                        Reservation::Now => State::Admitted,
                        Reservation::Wait { delay, slot } => {
                            shared.waiting(1);
                            State::Waiting {
                                sleep: Box::pin(shared.clock().sleep(delay)),
                                slot: OwnedSlot {
                                    shared: shared.clone(),
                                    slot,
                                    used: false,
                                },
                            }
                        }
                        Reservation::Rejected(limited) => State::Rejected(limited),
                    };
                }
                State::Waiting { sleep, slot } => {
                    ready!(sleep.as_mut().poll(cx));
                    slot.used = true;
                    self.state = State::Admitted;
                }
                State::Admitted => return self.inner.poll_ready(cx).map_err(Into::into),
                State::Rejected(_) => return Poll::Ready(Ok(())),
            }
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Admitted => RateLimiterResponseFuture {
                state: ResponseState::Running {
                    future: self.inner.call(request),
                },
            },
            State::Rejected(limited) => RateLimiterResponseFuture {
                state: ResponseState::Rejected {
                    error: Some(limited),
                },
            },
            State::Idle | State::Waiting { .. } => {
                panic!("RateLimiterService::call without poll_ready returning Ready(Ok)")
            }
        }
    }
}

pin_project! {
    /// The response future of a [`RateLimiterService`].
    #[must_use = "futures do nothing unless polled"]
    pub struct RateLimiterResponseFuture<F> {
        #[pin]
        state: ResponseState<F>,
    }
}

pin_project! {
    #[project = ResponseProj]
    enum ResponseState<F> {
        Running { #[pin] future: F },
        Rejected { error: Option<RateLimited> },
    }
}

impl<F, T, E> Future for RateLimiterResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            ResponseProj::Running { future } => future.poll(cx).map_err(Into::into),
            ResponseProj::Rejected { error } => Poll::Ready(Err(Box::new(
                error.take().expect("polled after completion"),
            ))),
        }
    }
}

impl<F> fmt::Debug for RateLimiterResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RateLimiterResponseFuture { .. }")
    }
}

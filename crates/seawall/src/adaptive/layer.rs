//! The adaptive limiter as a tower layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{AdaptiveLimiter, LimitExceeded, Shared, Ticket};
use crate::circuit_breaker::{CircuitClassifier, DefaultClassifier};
use crate::clock::Sleep;
use crate::{BoxError, Error};

/// Waiting in line for a permit; owns its `Arc<Shared>` so the service can hold it.
type WaitOwned = Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>>;

/// Limits concurrent requests of a tower service with an [`AdaptiveLimiter`].
///
/// The permit is taken in `poll_ready`. When no permit is free, `poll_ready` waits up to the
/// limiter's `max_wait`, then reports ready and fails the next `call` with
/// [`LimitExceeded`] without calling the inner service. The response's result is classified
/// (errors read back with [`Error::from_box_error`], so an inner timeout layer's
/// [`Elapsed`](crate::error::Elapsed) is a timeout) and fed to the algorithm.
#[derive(Clone, Debug)]
pub struct AdaptiveLimiterLayer<C = DefaultClassifier> {
    limiter: AdaptiveLimiter<C>,
}

impl<C> AdaptiveLimiterLayer<C> {
    /// A layer sharing `limiter`'s limit and permits.
    pub fn new(limiter: AdaptiveLimiter<C>) -> Self {
        Self { limiter }
    }
}

impl<S, C: Clone> Layer<S> for AdaptiveLimiterLayer<C> {
    type Service = AdaptiveLimiterService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        AdaptiveLimiterService::new(inner, self.limiter.clone())
    }
}

/// A tower service limited by an [`AdaptiveLimiter`].
///
/// # Clone
///
/// A clone shares the limiter but not a permit this service already holds: it starts unready.
pub struct AdaptiveLimiterService<S, C = DefaultClassifier> {
    inner: S,
    limiter: AdaptiveLimiter<C>,
    state: State,
}

enum State {
    Idle,
    Waiting {
        wait: WaitOwned,
        deadline: Pin<Box<Sleep>>,
    },
    Permitted(OwnedPermit),
    Rejected,
}

impl<S, C> AdaptiveLimiterService<S, C> {
    /// Wraps `inner`.
    pub fn new(inner: S, limiter: AdaptiveLimiter<C>) -> Self {
        Self {
            inner,
            limiter,
            state: State::Idle,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service (releasing any permit held).
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, C: Clone> Clone for AdaptiveLimiterService<S, C> {
    fn clone(&self) -> Self {
        Self::new(self.inner.clone(), self.limiter.clone())
    }
}

impl<S: fmt::Debug, C> fmt::Debug for AdaptiveLimiterService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimiterService")
            .field("inner", &self.inner)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<S, C, Request> Service<Request> for AdaptiveLimiterService<S, C>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    C: CircuitClassifier<S::Response, BoxError> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = AdaptiveLimiterResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        loop {
            let shared = self.limiter.shared();
            match &mut self.state {
                State::Idle => {
                    if shared.permits().try_take() {
                        self.state = State::Permitted(OwnedPermit::new(shared.clone()));
                        continue;
                    }
                    let max_wait = shared.max_wait();
                    if max_wait.is_zero() {
                        self.state = State::Rejected;
                        return Poll::Ready(Ok(()));
                    }
                    let deadline = Box::pin(shared.clock().sleep(max_wait));
                    let owned = shared.clone();
                    self.state = State::Waiting {
                        wait: Box::pin(async move { owned.permits().wait().await }),
                        deadline,
                    };
                }
                State::Waiting { wait, deadline } => {
                    if wait.as_mut().poll(cx).is_ready() {
                        self.state = State::Permitted(OwnedPermit::new(shared.clone()));
                        continue;
                    }
                    ready!(deadline.as_mut().poll(cx));
                    self.state = State::Rejected;
                    return Poll::Ready(Ok(()));
                }
                // Only with a permit in hand is the inner service polled.
                State::Permitted(_) => return self.inner.poll_ready(cx).map_err(Into::into),
                State::Rejected => return Poll::Ready(Ok(())),
            }
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Permitted(permit) => AdaptiveLimiterResponseFuture {
                state: ResponseState::Running {
                    future: self.inner.call(request),
                    permit: Some(permit),
                    classifier: self.limiter.classifier().clone(),
                },
            },
            State::Rejected => {
                self.limiter.shared().rejected();
                AdaptiveLimiterResponseFuture {
                    state: ResponseState::Rejected,
                }
            }
            State::Idle | State::Waiting { .. } => {
                panic!("AdaptiveLimiterService::call without poll_ready returning Ready(Ok)")
            }
        }
    }
}

pin_project! {
    /// The response future of an [`AdaptiveLimiterService`]: holds the permit until done.
    ///
    /// # Cancel safety
    ///
    /// Dropping it before the inner call finishes gives the permit back and records nothing.
    #[must_use = "futures do nothing unless polled"]
    pub struct AdaptiveLimiterResponseFuture<F, C> {
        #[pin]
        state: ResponseState<F, C>,
    }
}

pin_project! {
    #[project = ResponseProj]
    enum ResponseState<F, C> {
        Running { #[pin] future: F, permit: Option<OwnedPermit>, classifier: C },
        Rejected,
    }
}

impl<F, C, T, E> Future for AdaptiveLimiterResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: CircuitClassifier<T, BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            ResponseProj::Running {
                future,
                permit,
                classifier,
            } => {
                let output =
                    ready!(future.poll(cx)).map_err(|error| Error::from_box_error(error.into()));
                if let Some(permit) = permit.take() {
                    permit.finish(classifier.classify(&output));
                }
                Poll::Ready(output.map_err(Error::into_box_error))
            }
            // A zero-sized marker: boxing it allocates nothing.
            ResponseProj::Rejected => Poll::Ready(Err(Box::new(LimitExceeded::new()))),
        }
    }
}

impl<F, C> fmt::Debug for AdaptiveLimiterResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdaptiveLimiterResponseFuture { .. }")
    }
}

/// A permit that owns its limiter's state, for `'static` futures.
#[clippy::has_significant_drop]
struct OwnedPermit {
    shared: Arc<Shared>,
    ticket: Option<Ticket>,
}

impl OwnedPermit {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            ticket: Some(shared.admit()),
            shared,
        }
    }

    fn finish(mut self, outcome: crate::circuit_breaker::Outcome) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.complete(ticket, Some(outcome));
        }
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.shared.complete(ticket, None);
        }
    }
}

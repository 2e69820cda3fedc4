//! The circuit breaker as a tower layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::engine::{Rejection, Slot};
use super::{CircuitBreaker, CircuitClassifier, CircuitOpen, DefaultClassifier, OwnedCallPermit};
use crate::clock::Sleep;
use crate::{BoxError, Error};

/// How a [`CircuitBreakerService`] behaves while the breaker does not permit calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CircuitBreakerMode {
    /// Report ready (without polling the inner service) and fail the next `call` with
    /// [`CircuitOpen`] at once, without calling the inner service. Callers that treat a
    /// `poll_ready` error as fatal (`Buffer`, `Balance`) keep working. The rejection allocates
    /// nothing (the marker is zero-sized).
    #[default]
    Reject,
    /// Stay `Pending` in `poll_ready` until a call would be permitted (the open wait's end; a
    /// short re-check for a full half-open or a forced-open breaker): backpressure for stacks
    /// that route around unready services.
    Backpressure,
}

/// How often a backpressured service re-checks a breaker with no known reopening time
/// (half-open with every probe slot taken, or forced open).
const RECHECK: Duration = Duration::from_millis(100);

/// Protects a tower service with a [`CircuitBreaker`].
///
/// The breaker's state is checked before the inner service's readiness, so an open breaker
/// never polls a struggling inner service. The classifier sees the inner service's errors as
/// [`Error<BoxError>`](crate::Error) with seawall's markers read back into their kinds.
#[derive(Clone, Debug)]
pub struct CircuitBreakerLayer<C = DefaultClassifier> {
    breaker: CircuitBreaker<C>,
    mode: CircuitBreakerMode,
}

impl<C> CircuitBreakerLayer<C> {
    /// A layer sharing `breaker`'s state, rejecting in `call` while it does not permit calls.
    pub fn new(breaker: CircuitBreaker<C>) -> Self {
        Self {
            breaker,
            mode: CircuitBreakerMode::Reject,
        }
    }

    /// Sets the behaviour while calls are not permitted.
    #[must_use]
    pub fn mode(mut self, mode: CircuitBreakerMode) -> Self {
        self.mode = mode;
        self
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> CircuitBreakerService<S, C> {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
            mode: self.mode,
            admission: Admission::Idle,
            recheck: None,
        }
    }
}

/// A tower service protected by a [`CircuitBreaker`].
///
/// # Clone
///
/// A clone shares the breaker but not a probe slot this service already holds.
pub struct CircuitBreakerService<S, C = DefaultClassifier> {
    inner: S,
    breaker: CircuitBreaker<C>,
    mode: CircuitBreakerMode,
    admission: Admission,
    recheck: Option<Pin<Box<Sleep>>>,
}

enum Admission {
    Idle,
    Permitted(Slot),
    Rejected,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S, C> Drop for CircuitBreakerService<S, C> {
    fn drop(&mut self) {
        if let Admission::Permitted(slot) = &self.admission {
            self.breaker.shared().release(slot);
        }
    }
}

impl<S: Clone, C: Clone> Clone for CircuitBreakerService<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            breaker: self.breaker.clone(),
            mode: self.mode,
            admission: Admission::Idle,
            recheck: None,
        }
    }
}

impl<S: fmt::Debug, C: fmt::Debug> fmt::Debug for CircuitBreakerService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<S, C, Request> Service<Request> for CircuitBreakerService<S, C>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    C: CircuitClassifier<S::Response, BoxError> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = CircuitBreakerResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        loop {
            match &mut self.admission {
                // Only with a permit in hand is the inner service polled.
                Admission::Permitted(slot) => {
                    let ready = self.inner.poll_ready(cx);
                    if ready.is_pending() {
                        // The call is timed from here: a lazily timed one reads the precise
                        // clock now (see `Shared::polled_pending`).
                        self.breaker.shared().polled_pending(slot);
                    }
                    return ready.map_err(Into::into);
                }
                Admission::Rejected => return Poll::Ready(Ok(())),
                Admission::Idle => {}
            }
            if let Some(recheck) = &mut self.recheck {
                ready!(recheck.as_mut().poll(cx));
                self.recheck = None;
            }
            match self.breaker.shared().acquire_lazy() {
                Ok(slot) => self.admission = Admission::Permitted(slot),
                Err(_) if self.mode == CircuitBreakerMode::Reject => {
                    self.admission = Admission::Rejected;
                }
                Err(Rejection { retry_after, .. }) => {
                    // Wait until just after the open wait ends (the breaker opens up
                    // strictly after it), or re-check shortly when no end is known.
                    let wait = retry_after.map_or(RECHECK, |rest| rest + Duration::from_millis(1));
                    self.recheck = Some(Box::pin(self.breaker.shared().clock.sleep(wait)));
                }
            }
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match std::mem::replace(&mut self.admission, Admission::Idle) {
            Admission::Permitted(slot) => CircuitBreakerResponseFuture {
                state: ResponseState::Running {
                    future: self.inner.call(request),
                    permit: Some(OwnedCallPermit::new(self.breaker.clone(), slot)),
                },
            },
            Admission::Rejected => CircuitBreakerResponseFuture {
                state: ResponseState::Rejected,
            },
            Admission::Idle => {
                panic!("CircuitBreakerService::call without poll_ready returning Ready(Ok)")
            }
        }
    }
}

pin_project! {
    /// The response future of a [`CircuitBreakerService`].
    #[must_use = "futures do nothing unless polled"]
    ///
    /// # Cancel safety
    ///
    /// Dropping it before the inner call finishes gives back a half-open probe slot and
    /// records nothing.
    pub struct CircuitBreakerResponseFuture<F, C> {
        #[pin]
        state: ResponseState<F, C>,
    }
}

pin_project! {
    #[project = ResponseProj]
    enum ResponseState<F, C> {
        Running { #[pin] future: F, permit: Option<OwnedCallPermit<C>> },
        Rejected,
    }
}

impl<F, C, T, E> Future for CircuitBreakerResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: CircuitClassifier<T, BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            ResponseProj::Running { future, permit } => {
                let Poll::Ready(output) = future.poll(cx) else {
                    if let Some(permit) = permit {
                        permit.polled_pending();
                    }
                    return Poll::Pending;
                };
                let output = output.map_err(|error| Error::from_box_error(error.into()));
                if let Some(permit) = permit.take() {
                    permit.record(&output);
                }
                Poll::Ready(output.map_err(Error::into_box_error))
            }
            // A zero-sized marker: boxing it allocates nothing.
            ResponseProj::Rejected => Poll::Ready(Err(Box::new(CircuitOpen::new()))),
        }
    }
}

impl<F, C> fmt::Debug for CircuitBreakerResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CircuitBreakerResponseFuture { .. }")
    }
}

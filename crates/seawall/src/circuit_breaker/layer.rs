//! The circuit breaker as a tower layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{CircuitBreaker, CircuitClassifier, CircuitOpen, DefaultClassifier, Permit, Shared};
use crate::clock::Sleep;
use crate::{BoxError, Error};

/// How a [`CircuitBreakerService`] behaves while the breaker does not permit calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CircuitBreakerMode {
    /// Report ready (without polling the inner service) and fail the next `call` with
    /// [`CircuitOpen`] at once, without calling the inner service. Callers that treat a
    /// `poll_ready` error as fatal (`Buffer`, `Balance`) keep working.
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
    Permitted(Permit),
    Rejected(CircuitOpen),
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

    fn shared(&self) -> &Arc<Shared> {
        self.breaker.shared()
    }
}

impl<S, C> Drop for CircuitBreakerService<S, C> {
    fn drop(&mut self) {
        if let Admission::Permitted(permit) = &self.admission {
            self.breaker.shared().release(permit);
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
            match &self.admission {
                // Only with a permit in hand is the inner service polled.
                Admission::Permitted(_) => return self.inner.poll_ready(cx).map_err(Into::into),
                Admission::Rejected(_) => return Poll::Ready(Ok(())),
                Admission::Idle => {}
            }
            if let Some(recheck) = &mut self.recheck {
                ready!(recheck.as_mut().poll(cx));
                self.recheck = None;
            }
            match self.shared().acquire() {
                Ok(permit) => self.admission = Admission::Permitted(permit),
                Err(open) if self.mode == CircuitBreakerMode::Reject => {
                    self.admission = Admission::Rejected(open);
                }
                Err(open) => {
                    // Wait until just after the open wait ends (the breaker opens up
                    // strictly after it), or re-check shortly when no end is known.
                    let wait = open
                        .retry_after()
                        .map_or(RECHECK, |rest| rest + Duration::from_millis(1));
                    self.recheck = Some(Box::pin(self.shared().clock.sleep(wait)));
                }
            }
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match std::mem::replace(&mut self.admission, Admission::Idle) {
            Admission::Permitted(permit) => CircuitBreakerResponseFuture {
                state: ResponseState::Running {
                    future: self.inner.call(request),
                    guard: OwnedGuard {
                        shared: self.shared().clone(),
                        permit: Some(permit),
                    },
                    classifier: self.breaker.classifier().clone(),
                },
            },
            Admission::Rejected(open) => CircuitBreakerResponseFuture {
                state: ResponseState::Rejected { error: Some(open) },
            },
            Admission::Idle => {
                panic!("CircuitBreakerService::call without poll_ready returning Ready(Ok)")
            }
        }
    }
}

/// A permit owned by a response future; released if the future is dropped unfinished.
struct OwnedGuard {
    shared: Arc<Shared>,
    permit: Option<Permit>,
}

impl Drop for OwnedGuard {
    fn drop(&mut self) {
        if let Some(permit) = &self.permit {
            self.shared.release(permit);
        }
    }
}

pin_project! {
    /// The response future of a [`CircuitBreakerService`].
    #[must_use = "futures do nothing unless polled"]
    pub struct CircuitBreakerResponseFuture<F, C> {
        #[pin]
        state: ResponseState<F, C>,
    }
}

pin_project! {
    #[project = ResponseProj]
    enum ResponseState<F, C> {
        Running { #[pin] future: F, guard: OwnedGuard, classifier: C },
        Rejected { error: Option<CircuitOpen> },
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
            ResponseProj::Running {
                future,
                guard,
                classifier,
            } => {
                let output =
                    ready!(future.poll(cx)).map_err(|error| Error::from_box_error(error.into()));
                if let Some(permit) = guard.permit.take() {
                    guard.shared.record(permit, classifier.classify(&output));
                }
                Poll::Ready(output.map_err(Error::into_box_error))
            }
            ResponseProj::Rejected { error } => Poll::Ready(Err(Box::new(
                error.take().expect("polled after completion"),
            ))),
        }
    }
}

impl<F, C> fmt::Debug for CircuitBreakerResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CircuitBreakerResponseFuture { .. }")
    }
}

//! The retry as a tower layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{DefaultClassifier, Next, Retry, RetryClassifier};
use crate::clock::{Instant, Sleep};
use crate::{BoxError, Error};

/// Retries requests of a tower service with a [`Retry`].
///
/// Requests must be `Clone` (each attempt sends a copy) and so must the service (each retry
/// waits for the service to be ready again). The classifier sees the service's errors as
/// [`Error<BoxError>`]: seawall's markers from inner layers keep their kinds, so an inner
/// breaker's rejection is not retried by default. When the retry gives up, the last error is
/// returned as it was (the attempt count is in the retry's events).
#[derive(Clone, Debug)]
pub struct RetryLayer<C = DefaultClassifier> {
    retry: Retry<C>,
}

impl<C> RetryLayer<C> {
    /// A layer sharing `retry`'s configuration, budget, listeners and metrics.
    pub fn new(retry: Retry<C>) -> Self {
        Self { retry }
    }
}

impl<S, C: Clone> Layer<S> for RetryLayer<C> {
    type Service = RetryService<S, C>;

    fn layer(&self, inner: S) -> RetryService<S, C> {
        RetryService {
            inner,
            retry: self.retry.clone(),
        }
    }
}

/// A tower service whose failed requests are retried.
#[derive(Clone, Debug)]
pub struct RetryService<S, C = DefaultClassifier> {
    inner: S,
    retry: Retry<C>,
}

impl<S, C> RetryService<S, C> {
    /// Wraps `inner`.
    pub fn new(inner: S, retry: Retry<C>) -> Self {
        Self { inner, retry }
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

impl<S, C, Request> Service<Request> for RetryService<S, C>
where
    S: Service<Request> + Clone,
    S::Error: Into<BoxError>,
    C: RetryClassifier<S::Response, BoxError> + Clone,
    Request: Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = RetryResponseFuture<S, C, Request>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Keep a copy only if another attempt is possible at all.
        let kept = (self.retry.max_attempts() > 1).then(|| request.clone());
        let future = self.inner.call(request);
        let started = self
            .retry
            .max_elapsed()
            .map(|_| self.retry.shared().clock().now());
        RetryResponseFuture {
            service: self.inner.clone(),
            retry: self.retry.clone(),
            request: kept,
            state: State::Calling { future },
            attempt: 1,
            started,
            previous_delay: None,
        }
    }
}

pin_project! {
    /// The response future of a [`RetryService`].
    #[must_use = "futures do nothing unless polled"]
    pub struct RetryResponseFuture<S, C, Request>
    where
        S: Service<Request>,
    {
        service: S,
        retry: Retry<C>,
        request: Option<Request>,
        #[pin]
        state: State<S::Future>,
        attempt: u32,
        started: Option<Instant>,
        previous_delay: Option<Duration>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F },
        // Boxed for the same reason as in the native retry: a small happy-path future.
        Waiting { sleep: Pin<Box<Sleep>> },
        Checking,
    }
}

impl<S, C, Request> Future for RetryResponseFuture<S, C, Request>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    C: RetryClassifier<S::Response, BoxError>,
    Request: Clone,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let shared = &**this.retry.shared();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let output = ready!(future.poll(cx));
                    let attempt = *this.attempt;
                    if attempt == 1
                        && let Ok(response) = &output
                        && !this.retry.classifier().should_retry_result(response)
                    {
                        shared.succeeded_at_once();
                        return Poll::Ready(output.map_err(Into::into));
                    }
                    let output = output.map_err(|error| Error::from_box_error(error.into()));
                    let started = *this.started;
                    let next = shared.judge(
                        this.retry.classifier(),
                        attempt,
                        output,
                        this.previous_delay,
                        || started.map_or(Duration::ZERO, |at| shared.clock().now() - at),
                    );
                    match next {
                        Next::Return(outcome) => {
                            return Poll::Ready(outcome.map_err(Error::into_box_error));
                        }
                        Next::RetryAfter(delay) if delay.is_zero() => {
                            this.state.set(State::Checking);
                        }
                        Next::RetryAfter(delay) => {
                            let sleep = Box::pin(shared.clock().sleep(delay));
                            this.state.set(State::Waiting { sleep });
                        }
                    }
                }
                StateProj::Waiting { sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state.set(State::Checking);
                }
                StateProj::Checking => {
                    ready!(this.service.poll_ready(cx)).map_err(Into::into)?;
                    let request = this
                        .request
                        .clone()
                        .expect("a retry is only scheduled when the request was kept");
                    *this.attempt += 1;
                    let future = this.service.call(request);
                    this.state.set(State::Calling { future });
                }
            }
        }
    }
}

impl<S, C, Request> fmt::Debug for RetryResponseFuture<S, C, Request>
where
    S: Service<Request>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryResponseFuture")
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

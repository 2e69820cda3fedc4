//! The fault injector as a tower layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{FaultInjector, InjectError, InjectOutcome, InjectedError, NoOutcome, act};
use crate::clock::Sleep;
use crate::{BoxError, Error};

/// Injects faults into the requests of a tower service. An injected error is the
/// [`InjectedFault`](super::InjectedFault) marker in a [`BoxError`]
/// (`err.is::<InjectedFault>()`; zero-sized, so boxing it allocates nothing), or the error
/// made by [`FaultInjector::with_error`] converted into one.
///
/// The faults of a request are drawn when it is called. An injected error or outcome does not
/// call the inner service. An injected delay is waited before the inner service's future is
/// first polled: a service that starts its work in `call` itself (rather than in its
/// future) has started it already.
#[derive(Clone, Debug)]
pub struct FaultLayer<Fe = InjectedError, Fo = NoOutcome> {
    injector: FaultInjector<Fe, Fo>,
}

impl<Fe, Fo> FaultLayer<Fe, Fo> {
    /// A layer sharing `injector`'s switch, rates, generator and counts.
    pub fn new(injector: FaultInjector<Fe, Fo>) -> Self {
        Self { injector }
    }
}

impl<S, Fe: Clone, Fo: Clone> Layer<S> for FaultLayer<Fe, Fo> {
    type Service = FaultService<S, Fe, Fo>;

    fn layer(&self, inner: S) -> Self::Service {
        FaultService {
            inner,
            injector: self.injector.clone(),
        }
    }
}

/// A tower service whose requests go through a [`FaultInjector`].
#[derive(Clone, Debug)]
pub struct FaultService<S, Fe = InjectedError, Fo = NoOutcome> {
    inner: S,
    injector: FaultInjector<Fe, Fo>,
}

impl<S, Fe, Fo> FaultService<S, Fe, Fo> {
    /// Wraps `inner`.
    pub fn new(inner: S, injector: FaultInjector<Fe, Fo>) -> Self {
        Self { inner, injector }
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

impl<S, Fe, Fo, Request> Service<Request> for FaultService<S, Fe, Fo>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    Fe: InjectError<S::Error>,
    Fo: InjectOutcome<S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = FaultResponseFuture<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Request) -> Self::Future {
        // A disabled injector: one load, then the inner call as it is.
        if !self.injector.shared().is_enabled() {
            return FaultResponseFuture {
                delay: None,
                respond: Respond::Call {
                    future: self.inner.call(request),
                },
            };
        }
        self.call_injecting(request)
    }
}

impl<S, Fe, Fo> FaultService<S, Fe, Fo> {
    /// The path of an enabled injector: draw the faults, and call the inner service only if
    /// it is to run. Kept out of line so the disabled path stays small.
    #[cold]
    #[inline(never)]
    fn call_injecting<Request>(
        &mut self,
        request: Request,
    ) -> FaultResponseFuture<S::Future, S::Response>
    where
        S: Service<Request>,
        S::Error: Into<BoxError>,
        Fe: InjectError<S::Error>,
        Fo: InjectOutcome<S::Response, S::Error>,
    {
        let shared = self.injector.shared();
        let plan = shared.plan();
        let (error, outcome) = self.injector.parts();
        let respond = match act(shared, error, outcome, plan.action) {
            Some(injected) => Respond::Injected {
                output: Some(injected.map_err(Error::into_box_error)),
            },
            None => Respond::Call {
                future: self.inner.call(request),
            },
        };
        let delay = plan
            .delay
            .map(|delay| Box::pin(shared.clock().sleep(delay)));
        FaultResponseFuture { delay, respond }
    }
}

pin_project! {
    /// The response future of a [`FaultService`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the injected delay and the inner call.
    #[must_use = "futures do nothing unless polled"]
    pub struct FaultResponseFuture<F, T> {
        // Boxed so that the future stays small (moved and dropped on every call); only an
        // injected delay pays for the allocation.
        delay: Option<Pin<Box<Sleep>>>,
        #[pin]
        respond: Respond<F, T>,
    }
}

pin_project! {
    #[project = RespondProj]
    enum Respond<F, T> {
        Call { #[pin] future: F },
        Injected { output: Option<Result<T, BoxError>> },
    }
}

impl<F, T, E> Future for FaultResponseFuture<F, T>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(sleep) = this.delay {
            ready!(sleep.as_mut().poll(cx));
            *this.delay = None;
        }
        match this.respond.project() {
            RespondProj::Call { future } => future.poll(cx).map_err(Into::into),
            RespondProj::Injected { output } => match output.take() {
                Some(output) => Poll::Ready(output),
                None => panic!("a seawall fault future was polled after completion"),
            },
        }
    }
}

impl<F, T> fmt::Debug for FaultResponseFuture<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FaultResponseFuture { .. }")
    }
}

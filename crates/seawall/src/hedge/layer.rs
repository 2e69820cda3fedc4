//! The hedge as a tower layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::future::{Attempts, Race};
use super::{DefaultClassifier, Hedge, HedgeClassifier};
use crate::policy::Attempt;
use crate::{BoxError, Error};

/// Hedges requests of a tower service with a [`Hedge`].
///
/// Requests must be `Clone` (each hedged attempt sends a copy) and so must the service (each
/// hedged attempt calls a clone, once it is ready). The classifier sees the service's errors
/// as [`Error<BoxError>`]: seawall's markers from inner layers keep their kinds. When no
/// attempt's outcome is acceptable, the last one is returned as it was.
#[derive(Clone, Debug)]
pub struct HedgeLayer<C = DefaultClassifier> {
    hedge: Hedge<C>,
}

impl<C> HedgeLayer<C> {
    /// A layer sharing `hedge`'s configuration, budget, latencies, listeners and counts.
    pub fn new(hedge: Hedge<C>) -> Self {
        Self { hedge }
    }
}

impl<S, C: Clone> Layer<S> for HedgeLayer<C> {
    type Service = HedgeService<S, C>;

    fn layer(&self, inner: S) -> HedgeService<S, C> {
        HedgeService {
            inner,
            hedge: self.hedge.clone(),
        }
    }
}

/// A tower service whose slow requests are hedged.
#[derive(Clone, Debug)]
pub struct HedgeService<S, C = DefaultClassifier> {
    inner: S,
    hedge: Hedge<C>,
}

impl<S, C> HedgeService<S, C> {
    /// Wraps `inner`.
    pub fn new(inner: S, hedge: Hedge<C>) -> Self {
        Self { inner, hedge }
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

impl<S, C, Request> Service<Request> for HedgeService<S, C>
where
    S: Service<Request> + Clone,
    S::Error: Into<BoxError>,
    C: HedgeClassifier<S::Response, BoxError> + Clone,
    Request: Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = HedgeResponseFuture<S, C, Request>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.hedge.shared().call_started();
        let future = self.inner.call(request.clone());
        HedgeResponseFuture {
            service: self.inner.clone(),
            hedge: self.hedge.clone(),
            request,
            race: Race::new(ServiceCall::Called { future }),
        }
    }
}

pin_project! {
    /// The response future of a [`HedgeService`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops every request in flight; no further attempt starts.
    #[must_use = "futures do nothing unless polled"]
    pub struct HedgeResponseFuture<S, C, Request>
    where
        S: Service<Request>,
    {
        service: S,
        hedge: Hedge<C>,
        request: Request,
        #[pin]
        race: Race<ServiceCall<S, Request>, S::Response, BoxError>,
    }
}

pin_project! {
    /// One attempt through a service clone: wait until it is ready, then call it.
    #[project = ServiceCallProj]
    pub(crate) enum ServiceCall<S, Request>
    where
        S: Service<Request>,
    {
        Waiting { service: S, request: Option<Request> },
        Called { #[pin] future: S::Future },
    }
}

impl<S, Request> Future for ServiceCall<S, Request>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                ServiceCallProj::Waiting { service, request } => {
                    ready!(service.poll_ready(cx)).map_err(Into::into)?;
                    let request = request
                        .take()
                        .expect("a hedged request is sent once, as soon as the service is ready");
                    let future = service.call(request);
                    self.set(Self::Called { future });
                }
                ServiceCallProj::Called { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
            }
        }
    }
}

/// The tower attempts: clones of the service, each sent a copy of the request.
struct ServiceAttempts<'a, S, Request> {
    service: &'a S,
    request: &'a Request,
}

impl<S, Request> Attempts<ServiceCall<S, Request>, S::Response, BoxError>
    for ServiceAttempts<'_, S, Request>
where
    S: Service<Request> + Clone,
    S::Error: Into<BoxError>,
    Request: Clone,
{
    fn poll(
        &mut self,
        future: Pin<&mut ServiceCall<S, Request>>,
        cx: &mut Context<'_>,
        _attempt: Attempt,
    ) -> Poll<Result<S::Response, Error<BoxError>>> {
        future.poll(cx).map_err(Error::from_box_error)
    }

    fn start(&mut self, _attempt: Attempt) -> ServiceCall<S, Request> {
        ServiceCall::Waiting {
            service: self.service.clone(),
            request: Some(self.request.clone()),
        }
    }
}

impl<S, C, Request> Future for HedgeResponseFuture<S, C, Request>
where
    S: Service<Request> + Clone,
    S::Error: Into<BoxError>,
    C: HedgeClassifier<S::Response, BoxError>,
    Request: Clone,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let hedge: &Hedge<C> = this.hedge;
        let mut attempts = ServiceAttempts {
            service: &*this.service,
            request: &*this.request,
        };
        this.race
            .poll_race(cx, hedge.shared(), hedge.classifier(), &mut attempts)
            .map_err(Error::into_box_error)
    }
}

impl<S, C, Request> fmt::Debug for HedgeResponseFuture<S, C, Request>
where
    S: Service<Request>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeResponseFuture")
            .field("race", &self.race)
            .finish_non_exhaustive()
    }
}

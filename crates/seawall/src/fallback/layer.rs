//! The fallback as a tower layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;

/// Replaces a tower service's errors with a response computed by a handler.
///
/// The handler gets the boxed error and returns a response or another error; seawall's markers
/// can be told apart with `error.is::<seawall::error::CircuitOpen>()` and friends.
#[derive(Clone)]
pub struct FallbackLayer<H> {
    handler: H,
}

impl<H> FallbackLayer<H> {
    /// A layer calling `handler` on every error.
    pub fn new(handler: H) -> Self {
        Self { handler }
    }
}

impl<H> fmt::Debug for FallbackLayer<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FallbackLayer { .. }")
    }
}

impl<S, H: Clone> Layer<S> for FallbackLayer<H> {
    type Service = FallbackService<S, H>;

    fn layer(&self, inner: S) -> FallbackService<S, H> {
        FallbackService {
            inner,
            handler: self.handler.clone(),
        }
    }
}

/// A tower service whose errors go through a fallback handler.
#[derive(Clone)]
pub struct FallbackService<S, H> {
    inner: S,
    handler: H,
}

impl<S, H> FallbackService<S, H> {
    /// Wraps `inner`.
    pub fn new(inner: S, handler: H) -> Self {
        Self { inner, handler }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug, H> fmt::Debug for FallbackService<S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, H, Request> Service<Request> for FallbackService<S, H>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
    H: Fn(BoxError) -> Result<S::Response, BoxError> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = FallbackResponseFuture<S::Future, H>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // A readiness error means the service is broken, not that one call failed: pass it on.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        FallbackResponseFuture {
            future: self.inner.call(request),
            handler: self.handler.clone(),
        }
    }
}

pin_project! {
    /// The response future of a [`FallbackService`].
    #[must_use = "futures do nothing unless polled"]
    pub struct FallbackResponseFuture<F, H> {
        #[pin]
        future: F,
        handler: H,
    }
}

impl<F, H, T, E> Future for FallbackResponseFuture<F, H>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    H: Fn(BoxError) -> Result<T, BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.future.poll(cx));
        Poll::Ready(output.or_else(|error| (this.handler)(error.into())))
    }
}

impl<F, H> fmt::Debug for FallbackResponseFuture<F, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FallbackResponseFuture { .. }")
    }
}

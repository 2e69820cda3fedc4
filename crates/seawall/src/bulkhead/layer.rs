//! The bulkhead as a tower layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{Bulkhead, BulkheadFull, Shared};
use crate::BoxError;
use crate::clock::Sleep;

/// Waiting in line for a permit; owns its `Arc<Shared>` so the service can hold it.
type WaitOwned = Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>>;

/// How a [`BulkheadService`] behaves when no permit is free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BulkheadMode {
    /// Wait up to the bulkhead's `max_wait` in `poll_ready`, then report ready and fail the
    /// next `call` with [`BulkheadFull`] (without calling the inner service). Callers that
    /// treat a `poll_ready` error as fatal (`Buffer`, `Balance`) keep working.
    #[default]
    Reject,
    /// Stay `Pending` in `poll_ready` until a permit is free: backpressure for stacks that
    /// route around busy services (`Balance`). The maximum wait is ignored; bound it with an
    /// outer timeout.
    Backpressure,
}

/// Limits concurrent requests of a tower service with a [`Bulkhead`].
///
/// The permit is taken in `poll_ready` (before the inner service is polled) and released when
/// the response future completes or is dropped, or when the service is dropped without being
/// called.
#[derive(Clone, Debug)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
    mode: BulkheadMode,
}

impl BulkheadLayer {
    /// A layer sharing `bulkhead`'s permits, rejecting when full.
    pub fn new(bulkhead: Bulkhead) -> Self {
        Self {
            bulkhead,
            mode: BulkheadMode::Reject,
        }
    }

    /// Sets the behaviour when full.
    #[must_use]
    pub fn mode(mut self, mode: BulkheadMode) -> Self {
        self.mode = mode;
        self
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> BulkheadService<S> {
        BulkheadService::new(inner, self.bulkhead.clone(), self.mode)
    }
}

/// A tower service limited by a [`Bulkhead`].
///
/// # Clone
///
/// A clone shares the bulkhead's permits but not a permit this service already holds: it
/// starts unready.
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
    mode: BulkheadMode,
    state: State,
}

enum State {
    Idle,
    Waiting {
        wait: WaitOwned,
        deadline: Option<Pin<Box<Sleep>>>,
    },
    Permitted(OwnedBulkheadPermit),
    Rejected,
}

impl<S> BulkheadService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, bulkhead: Bulkhead, mode: BulkheadMode) -> Self {
        Self {
            inner,
            bulkhead,
            mode,
            state: State::Idle,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service (releasing any permit held).
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn shared(&self) -> &Arc<Shared> {
        self.bulkhead.shared()
    }
}

impl<S: Clone> Clone for BulkheadService<S> {
    fn clone(&self) -> Self {
        Self::new(self.inner.clone(), self.bulkhead.clone(), self.mode)
    }
}

impl<S: fmt::Debug> fmt::Debug for BulkheadService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle => "idle",
            State::Waiting { .. } => "waiting",
            State::Permitted(_) => "permitted",
            State::Rejected => "rejected",
        };
        f.debug_struct("BulkheadService")
            .field("inner", &self.inner)
            .field("bulkhead", &self.bulkhead)
            .field("mode", &self.mode)
            .field("state", &state)
            .finish()
    }
}

impl<S, Request> Service<Request> for BulkheadService<S>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BulkheadResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        loop {
            match &mut self.state {
                State::Idle => {
                    if let Some(permit) = OwnedBulkheadPermit::try_acquire(self.shared()) {
                        self.state = State::Permitted(permit);
                        continue;
                    }
                    let max_wait = self.shared().max_wait();
                    let deadline = match self.mode {
                        BulkheadMode::Reject if max_wait.is_zero() => {
                            self.state = State::Rejected;
                            return Poll::Ready(Ok(()));
                        }
                        BulkheadMode::Reject => {
                            Some(Box::pin(self.shared().clock().sleep(max_wait)))
                        }
                        BulkheadMode::Backpressure => None,
                    };
                    let shared = self.shared().clone();
                    self.state = State::Waiting {
                        wait: Box::pin(async move { shared.permits().wait().await }),
                        deadline,
                    };
                }
                State::Waiting { wait, deadline } => match wait.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        // The wait took the permit; from here the guard owns it.
                        let shared = self.shared().clone();
                        self.state = State::Permitted(OwnedBulkheadPermit { shared });
                    }
                    Poll::Pending => {
                        let expired = deadline
                            .as_mut()
                            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                        if expired {
                            self.state = State::Rejected;
                            return Poll::Ready(Ok(()));
                        }
                        return Poll::Pending;
                    }
                },
                // Only with a permit in hand is the inner service polled.
                State::Permitted(_) => return self.inner.poll_ready(cx).map_err(Into::into),
                State::Rejected => return Poll::Ready(Ok(())),
            }
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Permitted(permit) => BulkheadResponseFuture {
                state: ResponseState::Running {
                    future: self.inner.call(request),
                    permit,
                },
            },
            State::Rejected => BulkheadResponseFuture {
                state: ResponseState::Rejected {
                    error: self.shared().rejected(),
                },
            },
            State::Idle | State::Waiting { .. } => {
                panic!("BulkheadService::call without poll_ready returning Ready(Ok)")
            }
        }
    }
}

pin_project! {
    /// The response future of a [`BulkheadService`]: holds the permit until done or dropped.
    #[must_use = "futures do nothing unless polled"]
    pub struct BulkheadResponseFuture<F> {
        #[pin]
        state: ResponseState<F>,
    }
}

pin_project! {
    #[project = ResponseProj]
    enum ResponseState<F> {
        Running { #[pin] future: F, permit: OwnedBulkheadPermit },
        Rejected { error: BulkheadFull },
    }
}

impl<F, T, E> Future for BulkheadResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            ResponseProj::Running { future, .. } => future.poll(cx).map_err(Into::into),
            // A zero-sized marker: boxing it allocates nothing.
            ResponseProj::Rejected { error } => Poll::Ready(Err(Box::new(*error))),
        }
    }
}

impl<F> fmt::Debug for BulkheadResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BulkheadResponseFuture { .. }")
    }
}

/// An owned bulkhead permit, for futures that must be `'static` (the tower layer).
#[must_use = "the permit is released as soon as it is dropped"]
#[clippy::has_significant_drop]
struct OwnedBulkheadPermit {
    shared: Arc<Shared>,
}

impl OwnedBulkheadPermit {
    fn try_acquire(shared: &Arc<Shared>) -> Option<Self> {
        shared.permits().try_take().then(|| Self {
            shared: shared.clone(),
        })
    }
}

impl Drop for OwnedBulkheadPermit {
    fn drop(&mut self) {
        self.shared.permits().give_back();
    }
}

impl fmt::Debug for OwnedBulkheadPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedBulkheadPermit")
            .field("bulkhead", &self.shared.name)
            .finish()
    }
}

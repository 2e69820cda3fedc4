//! The circuit breaker's future.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::{CallPermit, CircuitBreaker, CircuitClassifier};
use crate::Error;
use crate::policy::{CallContext, Operation, StageFuture};

pin_project! {
    /// A call through a [`CircuitBreaker`]: a [`CallPermit`] taken on the first poll, and
    /// the inner call's result recorded on it.
    ///
    /// # Cancel safety
    ///
    /// Dropping it before the call finishes drops the permit unfinished: its half-open probe
    /// slot is given back and nothing is recorded.
    #[must_use = "futures do nothing unless polled"]
    pub struct CircuitBreakerFuture<'p, C, F> {
        breaker: &'p CircuitBreaker<C>,
        #[pin]
        inner: F,
        permit: Option<CallPermit<'p, C>>,
        admitted: bool,
    }
}

impl<'p, C, F> CircuitBreakerFuture<'p, C, F> {
    pub(crate) fn new(breaker: &'p CircuitBreaker<C>, inner: F) -> Self {
        Self {
            breaker,
            inner,
            permit: None,
            admitted: false,
        }
    }
}

impl<'p, O, C, F> StageFuture<O> for CircuitBreakerFuture<'p, C, F>
where
    O: Operation,
    C: CircuitClassifier<O::Output, O::Error>,
    F: StageFuture<O>,
{
    fn poll_stage(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        call: &mut CallContext<'_, O>,
    ) -> Poll<Result<O::Output, Error<O::Error>>> {
        let this = self.project();
        let breaker: &'p CircuitBreaker<C> = this.breaker;
        if !*this.admitted {
            *this.admitted = true;
            match breaker.acquire_lazy() {
                Ok(permit) => *this.permit = Some(permit),
                Err(rejection) => return Poll::Ready(Err(breaker.rejected(rejection))),
            }
        }
        let Poll::Ready(output) = this.inner.poll_stage(cx, call) else {
            // A lazily timed call reads the precise clock only now (see the slow-call
            // section of the module docs).
            if let Some(permit) = this.permit {
                permit.polled_pending();
            }
            return Poll::Pending;
        };
        if let Some(permit) = this.permit.take() {
            permit.record(&output);
        }
        Poll::Ready(output)
    }
}

impl<C, F> fmt::Debug for CircuitBreakerFuture<'_, C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerFuture")
            .field("admitted", &self.admitted)
            .finish_non_exhaustive()
    }
}

//! The circuit breaker's future.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{CircuitBreaker, CircuitClassifier, Permit, Shared};
use crate::Error;
use crate::policy::{CallContext, Operation, StageFuture};

/// A permit that gives its half-open slot back if the call is abandoned.
pub(crate) struct PermitGuard<'p> {
    shared: &'p Shared,
    permit: Option<Permit>,
}

impl<'p> PermitGuard<'p> {
    pub(crate) fn new(shared: &'p Shared, permit: Permit) -> Self {
        Self {
            shared,
            permit: Some(permit),
        }
    }

    pub(crate) fn take(&mut self) -> Permit {
        self.permit.take().expect("a permit is recorded once")
    }
}

impl Drop for PermitGuard<'_> {
    fn drop(&mut self) {
        if let Some(permit) = &self.permit {
            self.shared.release(permit);
        }
    }
}

pin_project! {
    /// A call through a [`CircuitBreaker`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it before the call finishes gives back its half-open probe slot and records
    /// nothing.
    #[must_use = "futures do nothing unless polled"]
    pub struct CircuitBreakerFuture<'p, C, F> {
        breaker: &'p CircuitBreaker<C>,
        #[pin]
        inner: F,
        guard: Option<PermitGuard<'p>>,
        admitted: bool,
    }
}

impl<'p, C, F> CircuitBreakerFuture<'p, C, F> {
    pub(crate) fn new(breaker: &'p CircuitBreaker<C>, inner: F) -> Self {
        Self {
            breaker,
            inner,
            guard: None,
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
        let shared: &'p Shared = this.breaker.shared();
        if !*this.admitted {
            *this.admitted = true;
            match shared.acquire() {
                Ok(permit) => *this.guard = Some(PermitGuard::new(shared, permit)),
                Err(open) => return Poll::Ready(Err(open.into())),
            }
        }
        let output = ready!(this.inner.poll_stage(cx, call));
        if let Some(mut guard) = this.guard.take() {
            let outcome = this.breaker.classifier().classify(&output);
            shared.record(guard.take(), outcome);
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

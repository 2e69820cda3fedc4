//! The adaptive limiter's future.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{AdaptiveLimiter, LimitPermit, Shared};
use crate::Error;
use crate::bulkhead::permits::Wait;
use crate::circuit_breaker::CircuitClassifier;
use crate::clock::Sleep;
use crate::policy::{CallContext, Operation, StageFuture};

pin_project! {
    /// A call limited by an [`AdaptiveLimiter`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it while waiting leaves the line (giving back anything already granted);
    /// dropping it while running returns the permit and records no sample. The operation never
    /// starts without a permit.
    #[must_use = "futures do nothing unless polled"]
    pub struct AdaptiveLimiterFuture<'p, C, F> {
        limiter: &'p AdaptiveLimiter<C>,
        #[pin]
        inner: F,
        #[pin]
        state: State<'p>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<'p> {
        Acquire,
        Waiting { #[pin] wait: Wait<'p>, #[pin] deadline: Sleep },
        Running { permit: Option<LimitPermit<'p>> },
        Done,
    }
}

impl<'p, C, F> AdaptiveLimiterFuture<'p, C, F> {
    pub(crate) fn new(limiter: &'p AdaptiveLimiter<C>, inner: F) -> Self {
        Self {
            limiter,
            inner,
            state: State::Acquire,
        }
    }
}

impl<'p, O, C, F> StageFuture<O> for AdaptiveLimiterFuture<'p, C, F>
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
        let mut this = self.project();
        let limiter: &'p AdaptiveLimiter<C> = this.limiter;
        let shared: &'p Shared = limiter.shared();
        loop {
            match this.state.as_mut().project() {
                StateProj::Acquire => {
                    if shared.permits().try_take() {
                        let permit = LimitPermit::new(shared);
                        this.state.set(State::Running {
                            permit: Some(permit),
                        });
                        continue;
                    }
                    let max_wait = shared.max_wait();
                    if max_wait.is_zero() {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(shared.rejected_call()));
                    }
                    let wait = shared.permits().wait();
                    let deadline = shared.clock().sleep(max_wait);
                    this.state.set(State::Waiting { wait, deadline });
                }
                StateProj::Waiting { wait, deadline } => {
                    if wait.poll(cx).is_ready() {
                        let permit = LimitPermit::new(shared);
                        this.state.set(State::Running {
                            permit: Some(permit),
                        });
                        continue;
                    }
                    ready!(deadline.poll(cx));
                    this.state.set(State::Done);
                    return Poll::Ready(Err(shared.rejected_call()));
                }
                StateProj::Running { permit } => {
                    let output = ready!(this.inner.as_mut().poll_stage(cx, call));
                    if let Some(permit) = permit.take() {
                        permit.record_outcome(limiter.classifier().classify(&output));
                    }
                    this.state.set(State::Done);
                    return Poll::Ready(output);
                }
                StateProj::Done => {
                    panic!("a seawall adaptive limiter future was polled after completion")
                }
            }
        }
    }
}

impl<C, F> fmt::Debug for AdaptiveLimiterFuture<'_, C, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Acquire => "acquire",
            State::Waiting { .. } => "waiting",
            State::Running { .. } => "running",
            State::Done => "done",
        };
        f.debug_struct("AdaptiveLimiterFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

//! The bulkhead's future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::permits::Wait;
use super::{BulkheadPermit, Shared};
use crate::Error;
use crate::clock::Sleep;
use crate::policy::{CallContext, Operation, StageFuture};
use pin_project_lite::pin_project;

pin_project! {
    /// A call limited by a [`Bulkhead`](super::Bulkhead).
    ///
    /// # Cancel safety
    ///
    /// Dropping it while waiting leaves the queue (giving back anything already granted);
    /// dropping it while running returns the permit. The operation never starts without a
    /// permit.
    #[must_use = "futures do nothing unless polled"]
    pub struct BulkheadFuture<'p, F> {
        shared: &'p Shared,
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
        Running { permit: BulkheadPermit<'p> },
        Done,
    }
}

impl<'p, F> BulkheadFuture<'p, F> {
    pub(crate) fn new(shared: &'p Shared, inner: F) -> Self {
        Self {
            shared,
            inner,
            state: State::Acquire,
        }
    }
}

impl<O, F> StageFuture<O> for BulkheadFuture<'_, F>
where
    O: Operation,
    F: StageFuture<O>,
{
    fn poll_stage(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        call: &mut CallContext<'_, O>,
    ) -> Poll<Result<O::Output, Error<O::Error>>> {
        let mut this = self.project();
        let shared: &Shared = this.shared;
        loop {
            match this.state.as_mut().project() {
                StateProj::Acquire => {
                    if shared.permits().try_take() {
                        let permit = BulkheadPermit::new(shared);
                        this.state.set(State::Running { permit });
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
                        let permit = BulkheadPermit::new(shared);
                        this.state.set(State::Running { permit });
                        continue;
                    }
                    ready!(deadline.poll(cx));
                    this.state.set(State::Done);
                    return Poll::Ready(Err(shared.rejected_call()));
                }
                StateProj::Running { .. } => {
                    let output = ready!(this.inner.as_mut().poll_stage(cx, call));
                    // Give the permit back as soon as the call is done.
                    this.state.set(State::Done);
                    return Poll::Ready(output);
                }
                StateProj::Done => panic!("a seawall bulkhead future was polled after completion"),
            }
        }
    }
}

impl<F> fmt::Debug for BulkheadFuture<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Acquire => "acquire",
            State::Waiting { .. } => "waiting",
            State::Running { .. } => "running",
            State::Done => "done",
        };
        f.debug_struct("BulkheadFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

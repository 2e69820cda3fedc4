//! The futures of a [`Policy`](crate::Policy) call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::{Attempt, CallContext, Operation, Stage, StageFuture};
use crate::Error;

pin_project! {
    /// The future of a call through a policy or a single decorator: it owns the operation
    /// `O` and runs it through the stage future `F`, which borrows the policy.
    ///
    /// # Cancel safety
    ///
    /// Dropping it cancels the call and releases whatever the call held (bulkhead permits,
    /// half-open probe slots); nothing is recorded for a cancelled call.
    #[must_use = "futures do nothing unless polled"]
    pub struct PolicyFuture<O, F> {
        operation: O,
        #[pin]
        stage: F,
    }
}

// The future types are generic over concrete inner futures, never over projections such as
// `<S as Stage<T, E>>::Future<'p, O>` in their fields: a projection there makes the compiler
// re-prove the stage's trait impls (with the operation's closure types) under higher-ranked
// lifetimes whenever it checks `Send` for an async block holding the future, and that proof
// fails for outputs that borrow ("one type is more general than the other").

impl<O, F> PolicyFuture<O, F> {
    /// Starts running `operation` through `stage`.
    pub fn new<'p, S>(stage: &'p S, operation: O) -> Self
    where
        O: Operation,
        S: Stage<O::Output, O::Error, Future<'p, O> = F> + 'p,
    {
        Self {
            operation,
            stage: stage.start::<O>(),
        }
    }
}

impl<O, F> Future for PolicyFuture<O, F>
where
    O: Operation,
    F: StageFuture<O>,
{
    type Output = Result<O::Output, Error<O::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut call = CallContext::new(this.operation, Attempt::FIRST);
        this.stage.poll_stage(cx, &mut call)
    }
}

impl<O, F> fmt::Debug for PolicyFuture<O, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PolicyFuture { .. }")
    }
}

pin_project! {
    /// The innermost stage's future: starts the operation on its first poll and runs it.
    #[must_use = "futures do nothing unless polled"]
    pub struct Leaf<F> {
        #[pin]
        state: LeafState<F>,
    }
}

pin_project! {
    #[project = LeafProj]
    enum LeafState<F> {
        Idle,
        Running { #[pin] future: F },
        Done,
    }
}

impl<F> Leaf<F> {
    pub(crate) const fn new() -> Self {
        Self {
            state: LeafState::Idle,
        }
    }
}

impl<O: Operation> StageFuture<O> for Leaf<O::Future> {
    fn poll_stage(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        call: &mut CallContext<'_, O>,
    ) -> Poll<Result<O::Output, Error<O::Error>>> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                LeafProj::Idle => {
                    let future = call.start();
                    state.set(LeafState::Running { future });
                }
                LeafProj::Running { future } => {
                    let output = std::task::ready!(future.poll(cx));
                    // Drop the operation's future as soon as it is done.
                    state.set(LeafState::Done);
                    return Poll::Ready(output.map_err(Error::from_inner));
                }
                LeafProj::Done => panic!("a seawall stage future was polled after completion"),
            }
        }
    }
}

impl<F> fmt::Debug for Leaf<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.state {
            LeafState::Idle => "Leaf::Idle",
            LeafState::Running { .. } => "Leaf::Running",
            LeafState::Done => "Leaf::Done",
        })
    }
}

//! The fault injector's future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::plan::Action;
use super::{FaultInjector, InjectError, InjectOutcome, act};
use crate::Error;
use crate::clock::Sleep;
use crate::policy::{CallContext, Operation, StageFuture};

pin_project! {
    /// A call through a [`FaultInjector`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the injected delay or the inner call; a fault already drawn for it
    /// stays counted.
    #[must_use = "futures do nothing unless polled"]
    pub struct FaultFuture<'p, Fe, Fo, F> {
        injector: &'p FaultInjector<Fe, Fo>,
        #[pin]
        inner: F,
        #[pin]
        state: State,
    }
}

pin_project! {
    #[project = StateProj]
    enum State {
        // Not polled yet: nothing drawn.
        Start,
        // An injected delay, then `then`. The timer is boxed so that the future stays small
        // (it is moved and dropped on every call, injecting or not); only an injected delay
        // pays for the allocation.
        Delaying { sleep: Pin<Box<Sleep>>, then: Action },
        // The inner call runs.
        Running,
        // An injected error or outcome was returned.
        Done,
    }
}

impl<'p, Fe, Fo, F> FaultFuture<'p, Fe, Fo, F> {
    pub(crate) fn new(injector: &'p FaultInjector<Fe, Fo>, inner: F) -> Self {
        Self {
            injector,
            inner,
            state: State::Start,
        }
    }
}

impl<O, Fe, Fo, F> StageFuture<O> for FaultFuture<'_, Fe, Fo, F>
where
    O: Operation,
    Fe: InjectError<O::Error>,
    Fo: InjectOutcome<O::Output, O::Error>,
    F: StageFuture<O>,
{
    #[inline]
    fn poll_stage(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        call: &mut CallContext<'_, O>,
    ) -> Poll<Result<O::Output, Error<O::Error>>> {
        let this = self.as_mut().project();
        match this.state.project() {
            StateProj::Running => return this.inner.poll_stage(cx, call),
            // A disabled injector: this one load, then the call as if we were not here.
            StateProj::Start if !this.injector.shared().is_enabled() => {
                let mut this = self.project();
                this.state.set(State::Running);
                return this.inner.poll_stage(cx, call);
            }
            _ => {}
        }
        self.poll_injecting(cx, call)
    }
}

impl<Fe, Fo, F> FaultFuture<'_, Fe, Fo, F> {
    /// The path of an enabled injector: draw the faults, wait out an injected delay, then
    /// fail, replace or run. (Forcing it out of line made the disabled path slower: 51
    /// instructions per call instead of 43, measured with the benches' `probe` under callgrind.)
    fn poll_injecting<O>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        call: &mut CallContext<'_, O>,
    ) -> Poll<Result<O::Output, Error<O::Error>>>
    where
        O: Operation,
        Fe: InjectError<O::Error>,
        Fo: InjectOutcome<O::Output, O::Error>,
        F: StageFuture<O>,
    {
        let mut this = self.project();
        let shared = this.injector.shared();
        let action = loop {
            match this.state.as_mut().project() {
                StateProj::Running => return this.inner.poll_stage(cx, call),
                StateProj::Start => {
                    let plan = shared.plan();
                    let Some(delay) = plan.delay else {
                        break plan.action;
                    };
                    let sleep = Box::pin(shared.clock().sleep(delay));
                    this.state.set(State::Delaying {
                        sleep,
                        then: plan.action,
                    });
                }
                StateProj::Delaying { sleep, then } => {
                    let then = *then;
                    ready!(sleep.as_mut().poll(cx));
                    break then;
                }
                StateProj::Done => panic!("a seawall fault future was polled after completion"),
            }
        };
        let (error, outcome) = this.injector.parts();
        match act(shared, error, outcome, action) {
            Some(injected) => {
                this.state.set(State::Done);
                Poll::Ready(injected)
            }
            None => {
                this.state.set(State::Running);
                this.inner.poll_stage(cx, call)
            }
        }
    }
}

impl<Fe, Fo, F> fmt::Debug for FaultFuture<'_, Fe, Fo, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Start => "Start",
            State::Delaying { .. } => "Delaying",
            State::Running => "Running",
            State::Done => "Done",
        };
        f.debug_struct("FaultFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

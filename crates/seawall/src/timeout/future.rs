//! The timeout's future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use super::Shared;
use crate::Error;
use crate::clock::{Clock, Sleep};
use crate::policy::{CallContext, Operation, StageFuture};

pin_project! {
    /// A call bounded by a [`Timeout`](super::Timeout).
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the inner call.
    #[must_use = "futures do nothing unless polled"]
    pub struct TimeoutFuture<'p, F> {
        shared: &'p Shared,
        #[pin]
        inner: Inner<F>,
        #[pin]
        timer: Timer,
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner<F> {
        Running { #[pin] future: F },
        Cancelled,
    }
}

pin_project! {
    /// The timeout's timer, armed only once the call has been pending.
    #[project = TimerProj]
    pub(crate) enum Timer {
        Unarmed,
        Armed { #[pin] sleep: Sleep, after: Duration },
    }
}

impl Timer {
    /// Arms the timer (for `duration()` on `clock`) if needed and polls it; ready with the
    /// timeout once it has elapsed.
    pub(crate) fn poll_elapsed(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        clock: &Clock,
        duration: impl FnOnce() -> Duration,
    ) -> Poll<Duration> {
        if let TimerProj::Unarmed = self.as_mut().project() {
            let after = duration();
            let sleep = clock.sleep(after);
            self.set(Self::Armed { sleep, after });
        }
        match self.project() {
            TimerProj::Armed { sleep, after } => sleep.poll(cx).map(|()| *after),
            // Armed just above.
            TimerProj::Unarmed => Poll::Pending,
        }
    }
}

impl<'p, F> TimeoutFuture<'p, F> {
    pub(crate) fn new(shared: &'p Shared, future: F) -> Self {
        Self {
            shared,
            inner: Inner::Running { future },
            timer: Timer::Unarmed,
        }
    }
}

impl<O, F> StageFuture<O> for TimeoutFuture<'_, F>
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
        // The inner call first: a call that is ready at once never touches the clock.
        if let InnerProj::Running { future } = this.inner.as_mut().project()
            && let Poll::Ready(output) = future.poll_stage(cx, call)
        {
            this.shared.totals.finished(output.is_ok());
            return Poll::Ready(output);
        }
        let shared: &Shared = this.shared;
        let after = std::task::ready!(
            this.timer
                .poll_elapsed(cx, shared.clock(), || shared.duration())
        );
        // Cancel the work now, not when our owner gets round to dropping us.
        this.inner.set(Inner::Cancelled);
        this.shared.timed_out(after);
        Poll::Ready(Err(shared.elapsed(after)))
    }
}

impl<F> fmt::Debug for TimeoutFuture<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutFuture")
            .field("armed", &matches!(self.timer, Timer::Armed { .. }))
            .finish_non_exhaustive()
    }
}

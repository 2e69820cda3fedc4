//! The rate limiter's future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{Reservation, Shared};
use crate::Error;
use crate::clock::Sleep;
use crate::policy::{CallContext, Operation, StageFuture};

/// Counts a call as waiting for its slot until dropped; gives the slot back if the call is
/// abandoned before it.
pub(crate) struct Waiting<'p> {
    shared: &'p Shared,
    slot: u64,
    admitted: bool,
}

impl<'p> Waiting<'p> {
    pub(crate) fn new(shared: &'p Shared, slot: u64) -> Self {
        shared.waiting(1);
        Self {
            shared,
            slot,
            admitted: false,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.shared.waiting(-1);
        if !self.admitted {
            self.shared.release(self.slot);
        }
    }
}

pin_project! {
    /// A call limited by a [`RateLimiter`](super::RateLimiter).
    ///
    /// # Cancel safety
    ///
    /// Dropping it while it waits for its slot gives the slot back (if no later call reserved
    /// after it); the operation never starts before its slot.
    #[must_use = "futures do nothing unless polled"]
    pub struct RateLimiterFuture<'p, F> {
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
        Reserve,
        Waiting { #[pin] sleep: Sleep, waiting: Waiting<'p> },
        Running,
    }
}

impl<'p, F> RateLimiterFuture<'p, F> {
    pub(crate) fn new(shared: &'p Shared, inner: F) -> Self {
        Self {
            shared,
            inner,
            state: State::Reserve,
        }
    }
}

impl<O, F> StageFuture<O> for RateLimiterFuture<'_, F>
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
                StateProj::Reserve => match shared.reserve(shared.clock().now()) {
                    Reservation::Now => this.state.set(State::Running),
                    Reservation::Wait { delay, slot } => {
                        let sleep = shared.clock().sleep(delay);
                        let waiting = Waiting::new(shared, slot);
                        this.state.set(State::Waiting { sleep, waiting });
                    }
                    Reservation::Rejected(limited) => return Poll::Ready(Err(limited.into())),
                },
                StateProj::Waiting { sleep, waiting } => {
                    ready!(sleep.poll(cx));
                    waiting.admitted = true;
                    this.state.set(State::Running);
                }
                StateProj::Running => return this.inner.poll_stage(cx, call),
            }
        }
    }
}

impl<F> fmt::Debug for RateLimiterFuture<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RateLimiterFuture { .. }")
    }
}

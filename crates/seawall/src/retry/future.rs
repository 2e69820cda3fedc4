//! The retry's future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;

use super::{Next, Retry, RetryClassifier};
use crate::Error;
use crate::clock::{Instant, Sleep};
use crate::policy::{Attempt, CallContext, Operation, Stage, StageFuture};

pin_project! {
    /// A call with retries: attempt → (wait → attempt)* → outcome.
    ///
    /// # Cancel safety
    ///
    /// Dropping it cancels the attempt or the wait in progress; no further attempt starts.
    #[must_use = "futures do nothing unless polled"]
    pub struct RetryFuture<'p, C, S, F> {
        retry: &'p Retry<C>,
        inner: &'p S,
        #[pin]
        state: State<F>,
        attempt: u32,
        started: Option<Instant>,
        previous_delay: Option<Duration>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Attempting { #[pin] future: F },
        // Boxed: a backoff wait is rare and long next to an allocation, and keeping tokio's
        // 112-byte timer out of the future makes every happy-path call move less memory.
        Waiting { sleep: Pin<Box<Sleep>> },
        Done,
    }
}

impl<'p, C, S, F> RetryFuture<'p, C, S, F> {
    pub(crate) fn new<O>(retry: &'p Retry<C>, inner: &'p S) -> Self
    where
        O: Operation,
        S: Stage<O::Output, O::Error, Future<'p, O> = F>,
    {
        Self {
            retry,
            inner,
            state: State::Attempting {
                future: inner.start::<O>(),
            },
            attempt: 1,
            started: None,
            previous_delay: None,
        }
    }
}

impl<'p, C, S, F, O> StageFuture<O> for RetryFuture<'p, C, S, F>
where
    O: Operation,
    C: RetryClassifier<O::Output, O::Error>,
    S: Stage<O::Output, O::Error, Future<'p, O> = F>,
    F: StageFuture<O>,
{
    fn poll_stage(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        call: &mut CallContext<'_, O>,
    ) -> Poll<Result<O::Output, Error<O::Error>>> {
        let mut this = self.project();
        let shared = &**this.retry.shared();
        loop {
            match this.state.as_mut().project() {
                StateProj::Attempting { future } => {
                    if this.started.is_none() && shared.max_elapsed().is_some() {
                        *this.started = Some(shared.clock().now());
                    }
                    let attempt = *this.attempt;
                    let mut attempt_call = call.with_attempt(Attempt::new(attempt));
                    let output = match ready!(future.poll_stage(cx, &mut attempt_call)) {
                        // The happy path, decided here. The value is taken out and returned in
                        // a fresh `Ok`: returning `output` itself copies the whole `Result`,
                        // sized by `Error<E>`, once more (callgrind: 112 → 96 instructions per call
                        // in `retry/first_success_opaque`).
                        Ok(value)
                            if attempt == 1
                                && !this.retry.classifier().should_retry_result(&value) =>
                        {
                            shared.succeeded_at_once();
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(value));
                        }
                        output => output,
                    };
                    let started = *this.started;
                    let next = shared.judge(
                        this.retry.classifier(),
                        attempt,
                        output,
                        this.previous_delay,
                        || started.map_or(Duration::ZERO, |at| shared.clock().now() - at),
                    );
                    match next {
                        Next::Return(outcome) => {
                            this.state.set(State::Done);
                            return Poll::Ready(outcome);
                        }
                        Next::RetryAfter(delay) if delay.is_zero() => {
                            *this.attempt += 1;
                            this.state.set(State::Attempting {
                                future: this.inner.start::<O>(),
                            });
                        }
                        Next::RetryAfter(delay) => {
                            let sleep = Box::pin(shared.clock().sleep(delay));
                            this.state.set(State::Waiting { sleep });
                        }
                    }
                }
                StateProj::Waiting { sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    *this.attempt += 1;
                    this.state.set(State::Attempting {
                        future: this.inner.start::<O>(),
                    });
                }
                StateProj::Done => panic!("a seawall retry future was polled after completion"),
            }
        }
    }
}

impl<C, S, F> fmt::Debug for RetryFuture<'_, C, S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Attempting { .. } => "attempting",
            State::Waiting { .. } => "waiting",
            State::Done => "done",
        };
        f.debug_struct("RetryFuture")
            .field("attempt", &self.attempt)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

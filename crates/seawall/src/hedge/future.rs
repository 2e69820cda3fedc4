//! The hedge's future: a race between the primary attempt and the hedged attempts.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use super::{Hedge, HedgeClassifier, Shared};
use crate::Error;
use crate::clock::{Instant, Sleep};
use crate::policy::{Attempt, CallContext, Operation, Stage, StageFuture};

pin_project! {
    /// A hedged call: the primary attempt, and hedged attempts beside it after each delay.
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops every attempt still running; no further attempt starts. When an
    /// attempt wins, the others are dropped before its outcome is returned.
    ///
    /// # Panics
    ///
    /// Polling it again after it returned its outcome panics.
    #[must_use = "futures do nothing unless polled"]
    pub struct HedgeFuture<'p, C, S, F, T, E> {
        hedge: &'p Hedge<C>,
        inner: &'p S,
        #[pin]
        race: Race<F, T, E>,
    }
}

impl<'p, C, S, F, T, E> HedgeFuture<'p, C, S, F, T, E> {
    pub(crate) fn new<O>(hedge: &'p Hedge<C>, inner: &'p S) -> Self
    where
        O: Operation<Output = T, Error = E>,
        S: Stage<T, E, Future<'p, O> = F>,
    {
        hedge.shared().call_started();
        Self {
            hedge,
            inner,
            race: Race::new(inner.start::<O>()),
        }
    }
}

/// The native attempts: inner stage futures, each polled with its own attempt number.
struct StageAttempts<'a, 'c, 'p, O, S> {
    call: &'a mut CallContext<'c, O>,
    inner: &'p S,
}

impl<'p, O, S> Attempts<S::Future<'p, O>, O::Output, O::Error> for StageAttempts<'_, '_, 'p, O, S>
where
    O: Operation,
    S: Stage<O::Output, O::Error>,
{
    fn poll(
        &mut self,
        future: Pin<&mut S::Future<'p, O>>,
        cx: &mut Context<'_>,
        attempt: Attempt,
    ) -> Poll<Result<O::Output, Error<O::Error>>> {
        future.poll_stage(cx, &mut self.call.with_attempt(attempt))
    }

    fn start(&mut self, _attempt: Attempt) -> S::Future<'p, O> {
        self.inner.start::<O>()
    }
}

impl<'p, C, S, F, O> StageFuture<O> for HedgeFuture<'p, C, S, F, O::Output, O::Error>
where
    O: Operation,
    C: HedgeClassifier<O::Output, O::Error>,
    S: Stage<O::Output, O::Error, Future<'p, O> = F>,
    F: StageFuture<O>,
{
    fn poll_stage(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        call: &mut CallContext<'_, O>,
    ) -> Poll<Result<O::Output, Error<O::Error>>> {
        let this = self.project();
        let hedge: &Hedge<C> = this.hedge;
        let mut attempts = StageAttempts {
            call,
            inner: *this.inner,
        };
        this.race
            .poll_race(cx, hedge.shared(), hedge.classifier(), &mut attempts)
    }
}

impl<C, S, F, T, E> fmt::Debug for HedgeFuture<'_, C, S, F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeFuture")
            .field("race", &self.race)
            .finish_non_exhaustive()
    }
}

/// How a race starts and polls its attempts: stage futures natively, service futures in the
/// tower layer.
pub(crate) trait Attempts<F, T, E> {
    /// Polls one attempt.
    fn poll(
        &mut self,
        future: Pin<&mut F>,
        cx: &mut Context<'_>,
        attempt: Attempt,
    ) -> Poll<Result<T, Error<E>>>;

    /// Starts attempt `attempt` (2 and up: the hedges).
    fn start(&mut self, attempt: Attempt) -> F;
}

pin_project! {
    /// The state of a hedged call, shared by the native future and the tower service's.
    pub(crate) struct Race<F, T, E> {
        #[pin]
        primary: Primary<F>,
        // Empty, so unallocated, until the first hedge starts.
        hedges: Vec<Hedged<F>>,
        #[pin]
        timer: Timer,
        // The delay, computed once when the primary is first pending.
        delay: Option<Duration>,
        // When the primary became pending (for the latency sample).
        started: Option<Instant>,
        launched: u32,
        // The budget refused: no more hedges for this call.
        stopped: bool,
        // An attempt failed since the last hedge started.
        failed: bool,
        // The outcome was returned.
        finished: bool,
        last: Option<Result<T, Error<E>>>,
    }
}

pin_project! {
    #[project = PrimaryProj]
    enum Primary<F> {
        Running { #[pin] future: F },
        Done,
    }
}

pin_project! {
    #[project = TimerProj]
    enum Timer {
        Unarmed,
        Armed { #[pin] sleep: Sleep },
    }
}

struct Hedged<F> {
    future: Pin<Box<F>>,
    attempt: u32,
    started: Instant,
}

/// What polling the running attempts gave.
enum Polled<T, E> {
    /// An acceptable outcome: the call is over.
    Won(Result<T, Error<E>>),
    /// Whether any attempt is still running.
    Running(bool),
}

impl<F, T, E> Race<F, T, E> {
    pub(crate) fn new(primary: F) -> Self {
        Self {
            primary: Primary::Running { future: primary },
            hedges: Vec::new(),
            timer: Timer::Unarmed,
            delay: None,
            started: None,
            launched: 0,
            stopped: false,
            failed: false,
            finished: false,
            last: None,
        }
    }

    /// Drives the race: polls every running attempt, returns the first acceptable outcome
    /// (dropping the others), and starts hedges when they are due.
    pub(crate) fn poll_race<C, A>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        shared: &Shared,
        classifier: &C,
        attempts: &mut A,
    ) -> Poll<Result<T, Error<E>>>
    where
        C: HedgeClassifier<T, E>,
        A: Attempts<F, T, E>,
    {
        assert!(
            !self.finished,
            "a seawall hedge future was polled after completion"
        );
        loop {
            let running = match self
                .as_mut()
                .poll_attempts(cx, shared, classifier, attempts)
            {
                Polled::Won(outcome) => {
                    *self.as_mut().project().finished = true;
                    return Poll::Ready(outcome);
                }
                Polled::Running(running) => running,
            };
            let this = self.as_mut().project();
            let config = shared.config();
            if *this.stopped || *this.launched >= config.max_hedged_attempts {
                if running {
                    return Poll::Pending;
                }
                *this.finished = true;
                // Every attempt finished, none acceptably: each left its outcome here.
                return Poll::Ready(this.last.take().unwrap_or_else(|| {
                    panic!("a seawall hedge future was polled after completion")
                }));
            }
            let hedge_now = *this.failed && config.hedge_on_failure;
            drop(config);
            let after = if hedge_now {
                Duration::ZERO
            } else {
                match self.as_mut().poll_timer(cx, shared) {
                    Poll::Ready(after) => after,
                    Poll::Pending => return Poll::Pending,
                }
            };
            self.as_mut().start_hedge(shared, attempts, after);
        }
    }

    /// Polls the primary and every hedge.
    fn poll_attempts<C, A>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        shared: &Shared,
        classifier: &C,
        attempts: &mut A,
    ) -> Polled<T, E>
    where
        C: HedgeClassifier<T, E>,
        A: Attempts<F, T, E>,
    {
        let mut this = self.project();
        if let PrimaryProj::Running { future } = this.primary.as_mut().project()
            && let Poll::Ready(outcome) = attempts.poll(future, cx, Attempt::FIRST)
        {
            this.primary.set(Primary::Done);
            if classifier.accepts(&outcome) {
                if let Some(started) = *this.started {
                    shared.accepted(started);
                }
                // The losers are cancelled before the winner is returned.
                this.hedges.clear();
                return Polled::Won(outcome);
            }
            *this.last = Some(outcome);
            *this.failed = true;
        }
        let mut i = 0;
        while let Some(hedged) = this.hedges.get_mut(i) {
            let attempt = Attempt::new(hedged.attempt);
            let Poll::Ready(outcome) = attempts.poll(hedged.future.as_mut(), cx, attempt) else {
                i += 1;
                continue;
            };
            let finished = this.hedges.swap_remove(i);
            drop(finished.future);
            if classifier.accepts(&outcome) {
                shared.accepted(finished.started);
                this.hedges.clear();
                this.primary.set(Primary::Done);
                shared.hedge_won(finished.attempt);
                return Polled::Won(outcome);
            }
            *this.last = Some(outcome);
            *this.failed = true;
        }
        let primary_running = matches!(*this.primary, Primary::Running { .. });
        Polled::Running(primary_running || !this.hedges.is_empty())
    }

    /// Arms the timer if it is not armed (the delay is computed once per call) and polls it;
    /// ready with the delay waited once it has elapsed (at once in parallel mode).
    fn poll_timer(self: Pin<&mut Self>, cx: &mut Context<'_>, shared: &Shared) -> Poll<Duration> {
        let mut this = self.project();
        let delay = match *this.delay {
            Some(delay) => delay,
            None => {
                *this.started = Some(shared.clock().now());
                *this.delay.insert(shared.next_delay())
            }
        };
        if let TimerProj::Unarmed = this.timer.as_mut().project() {
            if delay.is_zero() {
                return Poll::Ready(delay);
            }
            let sleep = shared.clock().sleep(delay);
            this.timer.set(Timer::Armed { sleep });
        }
        match this.timer.project() {
            TimerProj::Armed { sleep } => sleep.poll(cx).map(|()| delay),
            // Armed just above.
            TimerProj::Unarmed => Poll::Pending,
        }
    }

    /// Starts the next hedged attempt if the budget allows it; otherwise stops hedging.
    fn start_hedge<A: Attempts<F, T, E>>(
        self: Pin<&mut Self>,
        shared: &Shared,
        attempts: &mut A,
        after: Duration,
    ) {
        let mut this = self.project();
        // The next delay counts from this hedge's start.
        this.timer.set(Timer::Unarmed);
        *this.failed = false;
        let now = shared.clock().now();
        if !shared.may_hedge(now) {
            *this.stopped = true;
            return;
        }
        *this.launched += 1;
        let number = *this.launched + 1;
        let future = Box::pin(attempts.start(Attempt::new(number)));
        this.hedges.push(Hedged {
            future,
            attempt: number,
            started: now,
        });
        shared.hedge_started(number, after);
    }
}

impl<F, T, E> fmt::Debug for Race<F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Race")
            .field(
                "primary_running",
                &matches!(self.primary, Primary::Running { .. }),
            )
            .field("hedges_running", &self.hedges.len())
            .field("launched", &self.launched)
            .finish_non_exhaustive()
    }
}

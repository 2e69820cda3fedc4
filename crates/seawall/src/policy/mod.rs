//! Composing decorators into a [`Policy`] and running operations through it.
//!
//! A policy is a stack of decorators in declared order, **outermost first**:
//!
//! ```text
//! Policy::builder().timeout(total).retry(retry).bulkhead(bulkhead).timeout(per_attempt)
//!
//!   timeout(total) ─▶ retry ─▶ bulkhead ─▶ timeout(per attempt) ─▶ your operation
//! ```
//!
//! The operation is a closure that starts one attempt, `FnMut() -> impl Future<Output =
//! Result<T, E>>`; a retry calls it again for every attempt. The policy's future owns the
//! closure and hands it down to the innermost stage when (and only when) every decorator above
//! has admitted the call, so a full bulkhead or an open breaker never even creates the
//! operation's future.
//!
//! Futures are named types (no boxing) that borrow the policy, so a warm policy makes no heap
//! allocation per call. To spawn a call, clone the policy into the task: clones share all state
//! (bulkhead permits, retry budget, breaker state).

mod boxed;
pub mod future;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::Error;

pub use self::boxed::{BoxCall, BoxPolicy, BoxedOperation};
pub use self::future::{Leaf, PolicyFuture};

/// The future of a call through `S` (a policy or a single decorator) running the operation
/// `O`: what `call`, `call_with_attempt` and `run` return. It borrows `S`, allocates nothing,
/// and resolves to `Result<O::Output, Error<O::Error>>`. To store a policy whose type cannot be
/// written out, use [`BoxPolicy`].
pub type Call<'p, S, O> =
    PolicyFuture<O, <S as Stage<<O as Operation>::Output, <O as Operation>::Error>>::Future<'p, O>>;

/// The number of an attempt, starting at 1. A retry passes each attempt's number to the
/// operation (see [`Policy::call_with_attempt`]) so it can be logged or used to derive keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attempt(u32);

impl Attempt {
    /// The first attempt.
    pub const FIRST: Self = Self(1);

    /// An attempt number (1-based; 0 is read as 1).
    pub const fn new(number: u32) -> Self {
        if number == 0 {
            Self::FIRST
        } else {
            Self(number)
        }
    }

    /// The attempt's number, starting at 1.
    pub const fn number(self) -> u32 {
        self.0
    }

    /// Whether this is the first attempt (not a retry).
    pub const fn is_first(self) -> bool {
        self.0 == 1
    }
}

/// Something a policy can run: it starts one attempt each time it is called.
///
/// Implemented for you by [`Policy::call`] (for `FnMut() -> Fut`) and
/// [`Policy::call_with_attempt`] (for `FnMut(Attempt) -> Fut`); implement it yourself for an
/// operation held in a struct.
pub trait Operation {
    /// The value of a successful attempt.
    type Output;
    /// The error of a failed attempt.
    type Error;
    /// The future of one attempt.
    type Future: Future<Output = Result<Self::Output, Self::Error>>;

    /// Starts attempt number `attempt`.
    fn start(&mut self, attempt: Attempt) -> Self::Future;
}

/// An [`Operation`] made from a closure that ignores the attempt number.
#[derive(Clone, Debug)]
pub struct FromFn<F>(F);

impl<F> FromFn<F> {
    /// Wraps a closure.
    pub const fn new(f: F) -> Self {
        Self(f)
    }
}

impl<T, E, F, Fut> Operation for FromFn<F>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = T;
    type Error = E;
    type Future = Fut;

    fn start(&mut self, _attempt: Attempt) -> Fut {
        (self.0)()
    }
}

/// An [`Operation`] made from a closure that takes the attempt number.
#[derive(Clone, Debug)]
pub struct WithAttempt<F>(F);

impl<F> WithAttempt<F> {
    /// Wraps a closure.
    pub const fn new(f: F) -> Self {
        Self(f)
    }
}

impl<T, E, F, Fut> Operation for WithAttempt<F>
where
    F: FnMut(Attempt) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = T;
    type Error = E;
    type Future = Fut;

    fn start(&mut self, attempt: Attempt) -> Fut {
        (self.0)(attempt)
    }
}

/// What a stage's future gets on every poll: the operation, and the number of the attempt in
/// progress.
#[derive(Debug)]
pub struct CallContext<'a, O> {
    op: &'a mut O,
    attempt: Attempt,
}

impl<'a, O> CallContext<'a, O> {
    pub(crate) fn new(op: &'a mut O, attempt: Attempt) -> Self {
        Self { op, attempt }
    }

    /// The attempt in progress.
    pub fn attempt(&self) -> Attempt {
        self.attempt
    }

    /// The same operation with a different attempt number (a retry's view for its inner stage).
    pub(crate) fn with_attempt(&mut self, attempt: Attempt) -> CallContext<'_, O> {
        CallContext {
            op: self.op,
            attempt,
        }
    }

    pub(crate) fn start(&mut self) -> O::Future
    where
        O: Operation,
    {
        self.op.start(self.attempt)
    }
}

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// A runnable stack of decorators (a whole policy, or a part of one).
///
/// This trait is sealed: seawall's decorators and [`Layered`] stacks of them implement it.
pub trait Stage<T, E>: Sealed {
    /// The future that runs one call through this stage.
    type Future<'p, O>: StageFuture<O>
    where
        Self: 'p,
        O: Operation<Output = T, Error = E>;

    /// Starts a call. Nothing happens until the future is polled.
    fn start<'p, O: Operation<Output = T, Error = E>>(&'p self) -> Self::Future<'p, O>;
}

/// The future of a [`Stage`]: like [`Future`], but given the operation on every poll, so that
/// the stage that finally runs it can start it, and a retry can start it again.
pub trait StageFuture<O: Operation> {
    /// Polls the stage.
    fn poll_stage(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        call: &mut CallContext<'_, O>,
    ) -> Poll<Result<O::Output, Error<O::Error>>>;
}

/// A decorator: wraps an inner [`Stage`].
///
/// This trait is sealed: implemented by seawall's decorators.
pub trait Decorate<T, E>: Sealed {
    /// The decorated future.
    type Future<'p, S, O>: StageFuture<O>
    where
        Self: 'p,
        S: Stage<T, E> + 'p,
        O: Operation<Output = T, Error = E>;

    /// Wraps one call of `inner`.
    fn decorate<'p, S, O>(&'p self, inner: &'p S) -> Self::Future<'p, S, O>
    where
        S: Stage<T, E>,
        O: Operation<Output = T, Error = E>;
}

/// The innermost stage: runs the operation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl Sealed for Identity {}

impl<T, E> Stage<T, E> for Identity {
    type Future<'p, O>
        = Leaf<O::Future>
    where
        O: Operation<Output = T, Error = E>;

    fn start<O: Operation<Output = T, Error = E>>(&self) -> Leaf<O::Future> {
        Leaf::new()
    }
}

/// A decorator `D` around an inner stack `S`.
#[derive(Clone, Debug)]
pub struct Layered<D, S> {
    decorator: D,
    inner: S,
}

impl<D, S> Layered<D, S> {
    /// The outer decorator.
    pub fn decorator(&self) -> &D {
        &self.decorator
    }

    /// The stack inside it.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<D, S> Sealed for Layered<D, S> {}

impl<T, E, D, S> Stage<T, E> for Layered<D, S>
where
    D: Decorate<T, E>,
    S: Stage<T, E>,
{
    type Future<'p, O>
        = D::Future<'p, S, O>
    where
        Self: 'p,
        O: Operation<Output = T, Error = E>;

    fn start<'p, O: Operation<Output = T, Error = E>>(&'p self) -> Self::Future<'p, O> {
        self.decorator.decorate(&self.inner)
    }
}

/// Adds a decorator at the innermost position of a stack (sealed; used by [`PolicyBuilder`]).
pub trait Push<D>: Sealed {
    /// The stack with `D` innermost.
    type Output;

    /// Adds `decorator` innermost.
    fn push(self, decorator: D) -> Self::Output;
}

impl<D> Push<D> for Identity {
    type Output = Layered<D, Self>;

    fn push(self, decorator: D) -> Self::Output {
        Layered {
            decorator,
            inner: Self,
        }
    }
}

impl<D, X, S: Push<D>> Push<D> for Layered<X, S> {
    type Output = Layered<X, S::Output>;

    fn push(self, decorator: D) -> Self::Output {
        Layered {
            decorator: self.decorator,
            inner: self.inner.push(decorator),
        }
    }
}

/// Decorators composed in declared order, outermost first. Build one with
/// [`Policy::builder`].
///
/// # Examples
///
/// Retry a flaky call three times with jittered backoff, each attempt bounded to 2 s, at most
/// 10 calls in flight:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use seawall::{Backoff, Bulkhead, Policy, Retry, Timeout};
///
/// let policy = Policy::builder()
///     .retry(
///         Retry::builder()
///             .max_attempts(3)
///             .backoff(Backoff::exponential(Duration::from_millis(100)).full_jitter())
///             .build()?,
///     )
///     .bulkhead(Bulkhead::new(10))
///     .timeout(Timeout::new(Duration::from_secs(2)))
///     .build();
///
/// let answer = policy.call(|| async { Ok::<_, std::io::Error>(42) }).await?;
/// assert_eq!(answer, 42);
/// # Ok(())
/// # }
/// ```
///
/// # Clone
///
/// Cloning a policy clones its decorators, and decorators share their state between clones: a
/// clone uses the same bulkhead permits, retry budget and breaker.
#[derive(Clone, Debug)]
pub struct Policy<S> {
    stack: S,
}

impl Policy<Identity> {
    /// Starts building a policy.
    pub fn builder() -> PolicyBuilder<Identity> {
        PolicyBuilder { stack: Identity }
    }
}

impl<S> Policy<S> {
    /// A policy from an already composed stack.
    pub const fn new(stack: S) -> Self {
        Self { stack }
    }

    /// The decorator stack.
    pub fn stack(&self) -> &S {
        &self.stack
    }

    /// This policy behind a type that names only what it produces, to keep in a struct or
    /// hand out from a registry. See [`BoxPolicy`] for the cost.
    pub fn boxed<T, E>(self) -> BoxPolicy<T, E>
    where
        S: Stage<T, E> + Send + Sync + 'static,
        T: Send + 'static,
        E: Send + 'static,
        for<'a> S::Future<'a, BoxedOperation<'a, T, E>>: Send,
    {
        BoxPolicy::new(self)
    }
}

impl<S> Sealed for Policy<S> {}

impl<T, E, S: Stage<T, E>> Stage<T, E> for Policy<S> {
    type Future<'p, O>
        = S::Future<'p, O>
    where
        Self: 'p,
        O: Operation<Output = T, Error = E>;

    fn start<'p, O: Operation<Output = T, Error = E>>(&'p self) -> Self::Future<'p, O> {
        self.stack.start()
    }
}

/// Implements `call`, `call_with_attempt` and `run` for a [`Stage`] type.
macro_rules! impl_call_methods {
    ($(#[$meta:meta])* impl[$($generics:tt)*] $ty:ty) => {
        $(#[$meta])*
        impl<$($generics)*> $ty {
            /// Runs `operation` through this decorator: the closure is called once per attempt
            /// to start it.
            ///
            /// # Errors
            ///
            /// The operation's error as [`Error::Inner`](crate::ErrorKind::Inner), or the
            /// reason a decorator stopped the call (timeout, full bulkhead, open circuit, …).
            ///
            /// # Cancel safety
            ///
            /// Dropping the future cancels the call: the operation's future is dropped and any
            /// bulkhead permit or half-open probe slot held for it is released.
            pub fn call<T, E, F, Fut>(
                &self,
                operation: F,
            ) -> $crate::policy::Call<'_, Self, $crate::policy::FromFn<F>>
            where
                Self: $crate::policy::Stage<T, E>,
                F: FnMut() -> Fut,
                Fut: ::std::future::Future<Output = Result<T, E>>,
            {
                $crate::policy::PolicyFuture::new(self, $crate::policy::FromFn::new(operation))
            }

            /// Like [`call`](Self::call), giving the operation the number of each attempt
            /// (1 for the first), e.g. to log it or to send it to a server.
            ///
            /// # Errors
            ///
            /// As for [`call`](Self::call).
            ///
            /// # Cancel safety
            ///
            /// As for [`call`](Self::call).
            pub fn call_with_attempt<T, E, F, Fut>(
                &self,
                operation: F,
            ) -> $crate::policy::Call<'_, Self, $crate::policy::WithAttempt<F>>
            where
                Self: $crate::policy::Stage<T, E>,
                F: FnMut($crate::policy::Attempt) -> Fut,
                Fut: ::std::future::Future<Output = Result<T, E>>,
            {
                $crate::policy::PolicyFuture::new(
                    self,
                    $crate::policy::WithAttempt::new(operation),
                )
            }

            /// Runs any [`Operation`](crate::policy::Operation) through this decorator.
            ///
            /// # Errors
            ///
            /// As for [`call`](Self::call).
            ///
            /// # Cancel safety
            ///
            /// As for [`call`](Self::call).
            pub fn run<O>(&self, operation: O) -> $crate::policy::Call<'_, Self, O>
            where
                Self: $crate::policy::Stage<O::Output, O::Error>,
                O: $crate::policy::Operation,
            {
                $crate::policy::PolicyFuture::new(self, operation)
            }
        }
    };
}
pub(crate) use impl_call_methods;

impl_call_methods!(impl[S] Policy<S>);

/// Makes a decorator a one-layer [`Stage`] of its own, so it can run calls without a policy.
macro_rules! impl_single_stage {
    (impl[$($generics:tt)*] $ty:ty $(where $($bounds:tt)*)?) => {
        impl<T, E, $($generics)*> $crate::policy::Stage<T, E> for $ty
        where
            Self: $crate::policy::Decorate<T, E>,
            $($($bounds)*)?
        {
            type Future<'p, O>
                = <Self as $crate::policy::Decorate<T, E>>::Future<'p, $crate::policy::Identity, O>
            where
                Self: 'p,
                O: $crate::policy::Operation<Output = T, Error = E>;

            fn start<'p, O: $crate::policy::Operation<Output = T, Error = E>>(&'p self) -> Self::Future<'p, O> {
                <Self as $crate::policy::Decorate<T, E>>::decorate(self, &$crate::policy::Identity)
            }
        }

        $crate::policy::impl_call_methods!(impl[$($generics)*] $ty);
    };
}
pub(crate) use impl_single_stage;

/// Makes a type a decorator: seals it, implements [`Decorate`] with the given future, and
/// makes it a one-layer stage of its own (`call`, `call_with_attempt`, `run`). In the
/// future expression, `this` is the decorator and `inner` the inner stage.
macro_rules! impl_decorator {
    (
        impl[$($generics:tt)*] $ty:ty $(where [$($bounds:tt)*])?
        => $future:ty = |$this:ident, $inner:ident| $make:expr
    ) => {
        impl<$($generics)*> $crate::policy::Sealed for $ty {}

        impl<T, E, $($generics)*> $crate::policy::Decorate<T, E> for $ty
        $(where $($bounds)*)?
        {
            type Future<'p, S, O>
                = $future
            where
                Self: 'p,
                S: $crate::policy::Stage<T, E> + 'p,
                O: $crate::policy::Operation<Output = T, Error = E>;

            fn decorate<'p, S, O>(&'p self, $inner: &'p S) -> Self::Future<'p, S, O>
            where
                S: $crate::policy::Stage<T, E>,
                O: $crate::policy::Operation<Output = T, Error = E>,
            {
                let $this = self;
                $make
            }
        }

        $crate::policy::impl_single_stage!(impl[$($generics)*] $ty $(where $($bounds)*)?);
    };
}
pub(crate) use impl_decorator;

/// Builds a [`Policy`] from decorators in declared order, outermost first.
#[derive(Clone, Debug)]
pub struct PolicyBuilder<S> {
    stack: S,
}

impl<S> PolicyBuilder<S> {
    /// Adds any decorator inside those already added.
    pub fn layer<D>(self, decorator: D) -> PolicyBuilder<S::Output>
    where
        S: Push<D>,
    {
        PolicyBuilder {
            stack: self.stack.push(decorator),
        }
    }

    /// Adds a timeout inside those already added: outside a retry it bounds the whole retry
    /// loop; inside one it bounds each attempt.
    pub fn timeout(self, timeout: crate::Timeout) -> PolicyBuilder<S::Output>
    where
        S: Push<crate::Timeout>,
    {
        self.layer(timeout)
    }

    /// Adds a retry inside those already added.
    pub fn retry<C>(self, retry: crate::Retry<C>) -> PolicyBuilder<S::Output>
    where
        S: Push<crate::Retry<C>>,
    {
        self.layer(retry)
    }

    /// Adds a circuit breaker inside those already added.
    pub fn circuit_breaker<C>(self, breaker: crate::CircuitBreaker<C>) -> PolicyBuilder<S::Output>
    where
        S: Push<crate::CircuitBreaker<C>>,
    {
        self.layer(breaker)
    }

    /// Adds a rate limiter inside those already added.
    pub fn rate_limiter(self, limiter: crate::RateLimiter) -> PolicyBuilder<S::Output>
    where
        S: Push<crate::RateLimiter>,
    {
        self.layer(limiter)
    }

    /// Adds a bulkhead inside those already added.
    pub fn bulkhead(self, bulkhead: crate::Bulkhead) -> PolicyBuilder<S::Output>
    where
        S: Push<crate::Bulkhead>,
    {
        self.layer(bulkhead)
    }

    /// Adds a hedge inside those already added: the stages below it run once per attempt
    /// (put a per-attempt timeout or a bulkhead inside it, a total timeout outside).
    pub fn hedge<C>(self, hedge: crate::Hedge<C>) -> PolicyBuilder<S::Output>
    where
        S: Push<crate::Hedge<C>>,
    {
        self.layer(hedge)
    }

    /// Adds an adaptive concurrency limiter inside those already added (where a bulkhead
    /// would go: inside the retry, outside the per-attempt timeout, so a timeout is a drop).
    pub fn adaptive_limiter<C>(self, limiter: crate::AdaptiveLimiter<C>) -> PolicyBuilder<S::Output>
    where
        S: Push<crate::AdaptiveLimiter<C>>,
    {
        self.layer(limiter)
    }

    /// Adds a fallback inside those already added (usually first, so it sees every error).
    pub fn fallback<H, W>(self, fallback: crate::Fallback<H, W>) -> PolicyBuilder<S::Output>
    where
        S: Push<crate::Fallback<H, W>>,
    {
        self.layer(fallback)
    }

    /// Adds a fault injector inside those already added (feature `fault`; usually last, next
    /// to the operation, so the other decorators handle the injected faults).
    #[cfg(feature = "fault")]
    pub fn fault<Fe, Fo>(self, injector: crate::FaultInjector<Fe, Fo>) -> PolicyBuilder<S::Output>
    where
        S: Push<crate::FaultInjector<Fe, Fo>>,
    {
        self.layer(injector)
    }

    /// Finishes the policy.
    pub fn build(self) -> Policy<S> {
        Policy { stack: self.stack }
    }
}

//! Fallback: turn a failure into an answer.
//!
//! A [`Fallback`] replaces an error with a value or with another result computed from the
//! error — every error, or only those matching a predicate (on the kind: timed out, bulkhead
//! full, circuit open, retries exhausted; or on the operation's own error). A
//! [`ResultFallback`] replaces *successful* results that match a predicate.
//!
//! Place a fallback outermost so it sees the final outcome of everything inside it. Placed
//! inside a retry, it would hide the failures the retry needs to see (a common Resilience4j
//! mistake).
//!
//! In a payment flow a fallback must not pretend that a charge succeeded: use it to fail
//! *clearly* ("payments are temporarily unavailable, try again") or to serve cached data on a
//! read path.

pub mod future;
#[cfg(feature = "tower")]
mod layer;

use std::fmt;
use std::future::{Future, Ready, ready};
use std::sync::Arc;

use crate::Error;
use crate::error::ErrorKind;
use crate::event::{Event, Listeners};
use crate::policy::impl_decorator;

pub use self::future::FallbackFuture;
#[cfg(feature = "tower")]
pub use self::layer::{FallbackLayer, FallbackResponseFuture, FallbackService};

/// Computes the replacement outcome for an error: at once (a closure returning a result), or
/// asynchronously ([`Fallback::from_async_fn`]: read a cache, call a second service).
pub trait FallbackHandler<T, E> {
    /// The future of the replacement (`std::future::Ready` for a synchronous handler).
    type Future: Future<Output = Result<T, Error<E>>>;

    /// The replacement for `error`.
    fn handle(&self, error: Error<E>) -> Self::Future;
}

impl<T, E, F> FallbackHandler<T, E> for F
where
    F: Fn(Error<E>) -> Result<T, Error<E>>,
{
    type Future = Ready<Result<T, Error<E>>>;

    fn handle(&self, error: Error<E>) -> Self::Future {
        ready(self(error))
    }
}

/// A handler that answers every handled error with a clone of a fixed value.
#[derive(Clone, Debug)]
pub struct Value<T>(T);

impl<T: Clone, E> FallbackHandler<T, E> for Value<T> {
    type Future = Ready<Result<T, Error<E>>>;

    fn handle(&self, _error: Error<E>) -> Self::Future {
        ready(Ok(self.0.clone()))
    }
}

/// A handler whose replacement is computed by an async function (see
/// [`Fallback::from_async_fn`]).
#[derive(Clone, Copy)]
pub struct AsyncFn<F>(F);

impl<T, E, F, Fut> FallbackHandler<T, E> for AsyncFn<F>
where
    F: Fn(Error<E>) -> Fut,
    Fut: Future<Output = Result<T, Error<E>>>,
{
    type Future = Fut;

    fn handle(&self, error: Error<E>) -> Fut {
        (self.0)(error)
    }
}

impl<F> fmt::Debug for AsyncFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AsyncFn(..)")
    }
}

/// Which errors a [`Fallback`] handles.
pub trait FallbackWhen<E> {
    /// Whether to replace `error`.
    fn matches(&self, error: &Error<E>) -> bool;
}

/// Handles every error.
#[derive(Clone, Copy, Debug, Default)]
pub struct Always;

impl<E> FallbackWhen<E> for Always {
    fn matches(&self, _error: &Error<E>) -> bool {
        true
    }
}

/// Handles errors for which a predicate is true.
#[derive(Clone, Copy)]
pub struct When<F>(F);

impl<E, F: Fn(&Error<E>) -> bool> FallbackWhen<E> for When<F> {
    fn matches(&self, error: &Error<E>) -> bool {
        (self.0)(error)
    }
}

impl<F> fmt::Debug for When<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("When(..)")
    }
}

/// Handles errors of the listed kinds.
#[derive(Clone, Debug)]
pub struct Kinds(Vec<ErrorKind>);

impl<E> FallbackWhen<E> for Kinds {
    fn matches(&self, error: &Error<E>) -> bool {
        self.0.contains(&error.kind())
    }
}

/// Handles the operation's own errors for which a predicate is true.
#[derive(Clone, Copy)]
pub struct WhenInner<F>(F);

impl<E, F: Fn(&E) -> bool> FallbackWhen<E> for WhenInner<F> {
    fn matches(&self, error: &Error<E>) -> bool {
        error.inner().is_some_and(&self.0)
    }
}

impl<F> fmt::Debug for WhenInner<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WhenInner(..)")
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    name: Arc<str>,
    listeners: Listeners<FallbackEvent>,
}

impl Shared {
    fn new(name: Arc<str>) -> Arc<Self> {
        Arc::new(Self {
            name,
            listeners: Listeners::new(),
        })
    }

    fn used(&self, cause: Option<ErrorKind>) {
        self.listeners.emit(|| FallbackEvent::Used {
            name: self.name.clone(),
            cause,
        });
    }
}

/// Replaces errors with a value or another result.
///
/// # Examples
///
/// Fail clearly when the payment gateway's breaker is open or the call timed out, and keep
/// every other error as it is:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use seawall::{Error, ErrorKind, Fallback};
///
/// #[derive(Debug, PartialEq)]
/// enum Charge { Accepted, TryLater }
///
/// let fallback = Fallback::new(|_: Error<std::io::Error>| Ok(Charge::TryLater))
///     .when_kind([ErrorKind::CircuitOpen, ErrorKind::Timeout]);
///
/// let answer = fallback
///     .call(|| async { Err(std::io::Error::other("connection reset")) })
///     .await;
/// assert!(answer.unwrap_err().is_inner()); // not handled: still an error
///
/// let ok = fallback.call(|| async { Ok(Charge::Accepted) }).await.unwrap();
/// assert_eq!(ok, Charge::Accepted);
/// # }
/// ```
///
/// # Clone
///
/// Clones share their listeners.
#[derive(Clone)]
pub struct Fallback<H, W = Always> {
    handler: H,
    when: W,
    shared: Arc<Shared>,
}

// ===== impl Fallback =====

impl<H> Fallback<H> {
    /// A fallback that hands every error to `handler`.
    pub fn new(handler: H) -> Self {
        Self {
            handler,
            when: Always,
            shared: Shared::new(Arc::from("fallback")),
        }
    }
}

impl<T: Clone> Fallback<Value<T>> {
    /// A fallback that answers every error with a clone of `value`.
    pub fn value(value: T) -> Self {
        Self::new(Value(value))
    }
}

impl<F> Fallback<AsyncFn<F>> {
    /// A fallback whose replacement is computed by an async function of the error: read a
    /// cache, ask a second service (another dependency, with its own protection), or fail
    /// with a clearer error.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use seawall::{Error, ErrorKind, Fallback};
    /// use tokio::sync::RwLock;
    ///
    /// let cache = Arc::new(RwLock::new(vec!["cached item"]));
    /// let fallback = Fallback::from_async_fn({
    ///     let cache = cache.clone();
    ///     move |_: Error<std::io::Error>| {
    ///         let cache = cache.clone();
    ///         async move { Ok(cache.read().await.clone()) }
    ///     }
    /// })
    /// .when_kind([ErrorKind::Inner, ErrorKind::Timeout]);
    ///
    /// let items = fallback
    ///     .call(|| async { Err(std::io::Error::other("catalog is down")) })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(items, ["cached item"]);
    /// # }
    /// ```
    pub fn from_async_fn<T, E, Fut>(handler: F) -> Self
    where
        F: Fn(Error<E>) -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        Self::new(AsyncFn(handler))
    }
}

impl<H, W> Fallback<H, W> {
    /// Handles only errors for which `predicate` is true.
    pub fn when<E, F>(self, predicate: F) -> Fallback<H, When<F>>
    where
        F: Fn(&Error<E>) -> bool,
    {
        self.with_when(When(predicate))
    }

    /// Handles only errors of the given kinds.
    pub fn when_kind(self, kinds: impl IntoIterator<Item = ErrorKind>) -> Fallback<H, Kinds> {
        self.with_when(Kinds(kinds.into_iter().collect()))
    }

    /// Handles only the operation's own errors for which `predicate` is true.
    pub fn when_inner<E, F>(self, predicate: F) -> Fallback<H, WhenInner<F>>
    where
        F: Fn(&E) -> bool,
    {
        self.with_when(WhenInner(predicate))
    }

    /// The instance name (default `"fallback"`), used in events.
    #[must_use]
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.shared = Shared::new(name.into());
        self
    }

    /// Registers a listener for this fallback's events (shared by clones).
    pub fn on_event(&self, listener: impl Fn(&FallbackEvent) + Send + Sync + 'static) {
        self.shared.listeners.add(listener);
    }

    fn with_when<V>(self, when: V) -> Fallback<H, V> {
        Fallback {
            handler: self.handler,
            when,
            shared: self.shared,
        }
    }
}

impl<H, W: fmt::Debug> fmt::Debug for Fallback<H, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("name", &self.shared.name)
            .field("when", &self.when)
            .finish_non_exhaustive()
    }
}

mod sealed {
    pub trait Sealed {}
}

/// What a fallback does with a finished call's outcome: keep it, or replace it (sealed:
/// implemented by [`Fallback`] and [`ResultFallback`]).
pub trait Recover<T, E>: sealed::Sealed {
    /// The future of a replacement.
    type Future: Future<Output = Result<T, Error<E>>>;

    /// The outcome as it is, or the future of its replacement.
    fn recover(&self, outcome: Result<T, Error<E>>) -> Recovery<T, E, Self::Future>;
}

/// What [`Recover::recover`] decided.
#[derive(Debug)]
pub enum Recovery<T, E, F> {
    /// Return this outcome.
    Keep(Result<T, Error<E>>),
    /// Return the output of this future instead.
    Replace(F),
}

impl<H, W> sealed::Sealed for Fallback<H, W> {}

impl<T, E, H, W> Recover<T, E> for Fallback<H, W>
where
    H: FallbackHandler<T, E>,
    W: FallbackWhen<E>,
{
    type Future = H::Future;

    fn recover(&self, outcome: Result<T, Error<E>>) -> Recovery<T, E, H::Future> {
        match outcome {
            Err(error) if self.when.matches(&error) => {
                self.shared.used(Some(error.kind()));
                Recovery::Replace(self.handler.handle(error))
            }
            other => Recovery::Keep(other),
        }
    }
}

impl_decorator!(impl[H, W] Fallback<H, W> where [H: FallbackHandler<T, E>, W: FallbackWhen<E>]
    => FallbackFuture<'p, Self, S::Future<'p, O>, H::Future>
    = |this, inner| FallbackFuture::new(this, inner.start()));

/// Replaces successful results that match a predicate, e.g. an empty page from a degraded
/// upstream with a cached one.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use seawall::ResultFallback;
///
/// let fallback = ResultFallback::new(|v: &Vec<u32>| v.is_empty(), |_| Ok(vec![1, 2, 3]));
/// let items = fallback.call(|| async { Ok::<_, std::io::Error>(Vec::new()) }).await.unwrap();
/// assert_eq!(items, [1, 2, 3]);
/// # }
/// ```
#[derive(Clone)]
pub struct ResultFallback<P, M> {
    predicate: P,
    replace: M,
    shared: Arc<Shared>,
}

impl<P, M> ResultFallback<P, M> {
    /// Replaces results for which `predicate` is true with `replace(result)`.
    pub fn new(predicate: P, replace: M) -> Self {
        Self {
            predicate,
            replace,
            shared: Shared::new(Arc::from("fallback")),
        }
    }

    /// The instance name (default `"fallback"`), used in events.
    #[must_use]
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.shared = Shared::new(name.into());
        self
    }

    /// Registers a listener for this fallback's events (shared by clones).
    pub fn on_event(&self, listener: impl Fn(&FallbackEvent) + Send + Sync + 'static) {
        self.shared.listeners.add(listener);
    }
}

impl<P, M> fmt::Debug for ResultFallback<P, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultFallback")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl<P, M> sealed::Sealed for ResultFallback<P, M> {}

impl<T, E, P, M> Recover<T, E> for ResultFallback<P, M>
where
    P: Fn(&T) -> bool,
    M: Fn(T) -> Result<T, Error<E>>,
{
    type Future = Ready<Result<T, Error<E>>>;

    fn recover(&self, outcome: Result<T, Error<E>>) -> Recovery<T, E, Self::Future> {
        match outcome {
            Ok(value) if (self.predicate)(&value) => {
                self.shared.used(None);
                Recovery::Keep((self.replace)(value))
            }
            other => Recovery::Keep(other),
        }
    }
}

impl_decorator!(impl[P, M] ResultFallback<P, M> where [P: Fn(&T) -> bool, M: Fn(T) -> Result<T, Error<E>>]
    => FallbackFuture<'p, Self, S::Future<'p, O>, Ready<Result<T, Error<E>>>>
    = |this, inner| FallbackFuture::new(this, inner.start()));

/// What a fallback reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FallbackEvent {
    /// The fallback replaced an outcome.
    Used {
        /// The fallback's name.
        name: Arc<str>,
        /// The kind of error replaced (`None`: a result was replaced).
        cause: Option<ErrorKind>,
    },
}

impl Event for FallbackEvent {
    #[cfg(feature = "tracing")]
    fn trace(&self) {
        match self {
            Self::Used { name, cause } => {
                tracing::debug!(target: "seawall::fallback", name = %name, cause = ?cause, "fallback used");
            }
        }
    }
}

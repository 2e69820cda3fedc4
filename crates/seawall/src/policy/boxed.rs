//! A policy behind a type that names only what it produces.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{Attempt, Operation, Policy, PolicyFuture, Stage};
use crate::Error;

/// The future of a call through a [`BoxPolicy`].
pub type BoxCall<'a, T, E> = Pin<Box<dyn Future<Output = Result<T, Error<E>>> + Send + 'a>>;

type BoxAttempt<'a, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'a>>;

/// An operation with its closure and attempt futures boxed: what a [`BoxPolicy`] runs.
pub struct BoxedOperation<'a, T, E> {
    start: Box<dyn FnMut(Attempt) -> BoxAttempt<'a, T, E> + Send + 'a>,
}

impl<'a, T, E> Operation for BoxedOperation<'a, T, E> {
    type Output = T;
    type Error = E;
    type Future = BoxAttempt<'a, T, E>;

    fn start(&mut self, attempt: Attempt) -> Self::Future {
        (self.start)(attempt)
    }
}

impl<T, E> fmt::Debug for BoxedOperation<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxedOperation { .. }")
    }
}

/// A policy with its stack erased.
trait Erased<T, E>: Send + Sync {
    fn call_boxed<'a>(&'a self, operation: BoxedOperation<'a, T, E>) -> BoxCall<'a, T, E>;
}

impl<S, T, E> Erased<T, E> for Policy<S>
where
    S: Stage<T, E> + Send + Sync,
    T: Send + 'static,
    E: Send + 'static,
    for<'a> S::Future<'a, BoxedOperation<'a, T, E>>: Send,
{
    fn call_boxed<'a>(&'a self, operation: BoxedOperation<'a, T, E>) -> BoxCall<'a, T, E> {
        Box::pin(PolicyFuture::new(self, operation))
    }
}

/// A [`Policy`] whose type names only its output and error: a struct can hold one and a
/// registry can hand one out, whatever decorators and closures it is made of.
///
/// The price of erasing the type is paid per call: the operation's closure, each attempt's
/// future and the call's future are boxed (three allocations for a call that succeeds at
/// once). On a hot path, keep the concrete [`Policy`] type instead.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use seawall::policy::BoxPolicy;
/// use seawall::{Bulkhead, Policy, Retry, Timeout};
///
/// struct CatalogClient {
///     policy: BoxPolicy<String, std::io::Error>,
/// }
///
/// let retry = Retry::builder()
///     .max_attempts(3)
///     .no_backoff()
///     .build()
///     .unwrap()
///     .retry_if(|e: &std::io::Error| e.kind() == std::io::ErrorKind::ConnectionReset);
/// let client = CatalogClient {
///     policy: Policy::builder()
///         .retry(retry)
///         .bulkhead(Bulkhead::new(8))
///         .timeout(Timeout::new(Duration::from_secs(1)))
///         .build()
///         .boxed(),
/// };
/// let item = client.policy.call(|| async { Ok("item".to_owned()) }).await.unwrap();
/// assert_eq!(item, "item");
/// # }
/// ```
///
/// # Clone
///
/// Clones share the policy (and so its decorators' state).
pub struct BoxPolicy<T, E> {
    inner: Arc<dyn Erased<T, E>>,
}

impl<T, E> Clone for BoxPolicy<T, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T, E> fmt::Debug for BoxPolicy<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxPolicy { .. }")
    }
}

impl<T: Send + 'static, E: Send + 'static> BoxPolicy<T, E> {
    /// Erases `policy`'s type.
    pub fn new<S>(policy: Policy<S>) -> Self
    where
        S: Stage<T, E> + Send + Sync + 'static,
        for<'a> S::Future<'a, BoxedOperation<'a, T, E>>: Send,
    {
        Self {
            inner: Arc::new(policy),
        }
    }

    /// Runs `operation` through the policy: the closure is called once per attempt to start
    /// it.
    ///
    /// # Errors
    ///
    /// As for [`Policy::call`].
    ///
    /// # Cancel safety
    ///
    /// As for [`Policy::call`]: dropping the future cancels the call and releases what it
    /// held.
    pub fn call<'a, F, Fut>(&'a self, mut operation: F) -> BoxCall<'a, T, E>
    where
        F: FnMut() -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, E>> + Send + 'a,
    {
        self.call_with_attempt(move |_| operation())
    }

    /// Like [`call`](Self::call), giving the operation the number of each attempt.
    ///
    /// # Errors
    ///
    /// As for [`Policy::call`].
    ///
    /// # Cancel safety
    ///
    /// As for [`call`](Self::call).
    pub fn call_with_attempt<'a, F, Fut>(&'a self, mut operation: F) -> BoxCall<'a, T, E>
    where
        F: FnMut(Attempt) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, E>> + Send + 'a,
    {
        let start = move |attempt| -> BoxAttempt<'a, T, E> { Box::pin(operation(attempt)) };
        self.inner.call_boxed(BoxedOperation {
            start: Box::new(start),
        })
    }
}

impl<S, T, E> From<Policy<S>> for BoxPolicy<T, E>
where
    S: Stage<T, E> + Send + Sync + 'static,
    T: Send + 'static,
    E: Send + 'static,
    for<'a> S::Future<'a, BoxedOperation<'a, T, E>>: Send,
{
    fn from(policy: Policy<S>) -> Self {
        Self::new(policy)
    }
}

//! What a retry retries: the classifier, and the combinators that build one.

use std::fmt;
use std::time::Duration;

use super::Retry;
use crate::Error;
use crate::error::ErrorKind;

/// Decides which failures and results a [`Retry`] retries, and how long an error asks to wait.
///
/// Built up with [`Retry::retry_if`], [`Retry::retry_error_if`], [`Retry::retry_on_result`]
/// and [`Retry::retry_after_hint`]; implement it for a named type when the policy's type must
/// be written out.
pub trait RetryClassifier<T, E> {
    /// Whether to retry after this error.
    fn should_retry(&self, error: &Error<E>) -> bool;

    /// Whether to retry after this successful result (default: never).
    fn should_retry_result(&self, value: &T) -> bool {
        let _ = value;
        false
    }

    /// How long this error asks to wait before the next attempt, overriding the backoff
    /// (default: the error's own hint, [`Error::retry_after`]).
    fn retry_after(&self, error: &Error<E>) -> Option<Duration> {
        error.retry_after()
    }

    /// How long a result that is retried asks to wait before the next attempt, overriding the
    /// backoff (default: no hint). For a response that says "try later" itself, such as an
    /// HTTP 503 with `Retry-After`.
    fn retry_after_result(&self, value: &T) -> Option<Duration> {
        let _ = value;
        None
    }
}

/// Retries every error except a circuit breaker's rejection (and a nested retry's exhausted
/// result); never retries a result.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultClassifier;

impl<T, E> RetryClassifier<T, E> for DefaultClassifier {
    fn should_retry(&self, error: &Error<E>) -> bool {
        !matches!(
            error.kind(),
            ErrorKind::CircuitOpen | ErrorKind::RetriesExhausted
        )
    }
}

/// Retries the operation's own errors that match a predicate; seawall's errors as before.
#[derive(Clone, Copy)]
pub struct RetryIf<C, F> {
    base: C,
    predicate: F,
}

impl<T, E, C, F> RetryClassifier<T, E> for RetryIf<C, F>
where
    C: RetryClassifier<T, E>,
    F: Fn(&E) -> bool,
{
    fn should_retry(&self, error: &Error<E>) -> bool {
        match error.inner() {
            Some(inner) => (self.predicate)(inner),
            None => self.base.should_retry(error),
        }
    }

    fn should_retry_result(&self, value: &T) -> bool {
        self.base.should_retry_result(value)
    }

    fn retry_after(&self, error: &Error<E>) -> Option<Duration> {
        self.base.retry_after(error)
    }

    fn retry_after_result(&self, value: &T) -> Option<Duration> {
        self.base.retry_after_result(value)
    }
}

/// Decides on every error, seawall's included, with one predicate.
#[derive(Clone, Copy)]
pub struct RetryErrorIf<C, F> {
    base: C,
    predicate: F,
}

impl<T, E, C, F> RetryClassifier<T, E> for RetryErrorIf<C, F>
where
    C: RetryClassifier<T, E>,
    F: Fn(&Error<E>) -> bool,
{
    fn should_retry(&self, error: &Error<E>) -> bool {
        (self.predicate)(error)
    }

    fn should_retry_result(&self, value: &T) -> bool {
        self.base.should_retry_result(value)
    }

    fn retry_after(&self, error: &Error<E>) -> Option<Duration> {
        self.base.retry_after(error)
    }

    fn retry_after_result(&self, value: &T) -> Option<Duration> {
        self.base.retry_after_result(value)
    }
}

/// Retries successful results that match a predicate.
#[derive(Clone, Copy)]
pub struct RetryOnResult<C, F> {
    base: C,
    predicate: F,
}

impl<T, E, C, F> RetryClassifier<T, E> for RetryOnResult<C, F>
where
    C: RetryClassifier<T, E>,
    F: Fn(&T) -> bool,
{
    fn should_retry(&self, error: &Error<E>) -> bool {
        self.base.should_retry(error)
    }

    fn should_retry_result(&self, value: &T) -> bool {
        (self.predicate)(value)
    }

    fn retry_after(&self, error: &Error<E>) -> Option<Duration> {
        self.base.retry_after(error)
    }

    fn retry_after_result(&self, value: &T) -> Option<Duration> {
        self.base.retry_after_result(value)
    }
}

/// Reads a wait hint (such as HTTP `Retry-After`) from the operation's own errors.
#[derive(Clone, Copy)]
pub struct RetryAfterHint<C, F> {
    base: C,
    hint: F,
}

impl<T, E, C, F> RetryClassifier<T, E> for RetryAfterHint<C, F>
where
    C: RetryClassifier<T, E>,
    F: Fn(&E) -> Option<Duration>,
{
    fn should_retry(&self, error: &Error<E>) -> bool {
        self.base.should_retry(error)
    }

    fn should_retry_result(&self, value: &T) -> bool {
        self.base.should_retry_result(value)
    }

    fn retry_after(&self, error: &Error<E>) -> Option<Duration> {
        error
            .inner()
            .and_then(&self.hint)
            .or_else(|| self.base.retry_after(error))
    }

    fn retry_after_result(&self, value: &T) -> Option<Duration> {
        self.base.retry_after_result(value)
    }
}

macro_rules! opaque_debug {
    ($($name:ident),*) => {$(
        impl<C: fmt::Debug, F> fmt::Debug for $name<C, F> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("base", &self.base).finish_non_exhaustive()
            }
        }
    )*};
}
opaque_debug!(RetryIf, RetryErrorIf, RetryOnResult, RetryAfterHint);

/// Choosing what is retried.
impl<C> Retry<C> {
    /// Retries the operation's own errors only when `predicate` says so. seawall's own errors
    /// (a timeout, a full bulkhead, a rate limiter's rejection) keep the previous rule — with
    /// the default classifier, everything but an open circuit is retried — so a per-attempt
    /// timeout is retried whatever `predicate` says; decide on every error with
    /// [`retry_error_if`](Self::retry_error_if).
    pub fn retry_if<E, F>(self, predicate: F) -> Retry<RetryIf<C, F>>
    where
        F: Fn(&E) -> bool,
    {
        self.map_classifier(|base| RetryIf { base, predicate })
    }

    /// Decides on every error, seawall's included, with `predicate`.
    pub fn retry_error_if<E, F>(self, predicate: F) -> Retry<RetryErrorIf<C, F>>
    where
        F: Fn(&Error<E>) -> bool,
    {
        self.map_classifier(|base| RetryErrorIf { base, predicate })
    }

    /// Also retries successful results for which `predicate` is true (e.g. a `PENDING`
    /// status while polling).
    pub fn retry_on_result<T, F>(self, predicate: F) -> Retry<RetryOnResult<C, F>>
    where
        F: Fn(&T) -> bool,
    {
        self.map_classifier(|base| RetryOnResult { base, predicate })
    }

    /// Reads how long the operation's own error asks to wait (e.g. an HTTP `Retry-After`);
    /// the hint replaces the backoff for that wait.
    pub fn retry_after_hint<E, F>(self, hint: F) -> Retry<RetryAfterHint<C, F>>
    where
        F: Fn(&E) -> Option<Duration>,
    {
        self.map_classifier(|base| RetryAfterHint { base, hint })
    }

    /// Replaces the classifier.
    pub fn with_classifier<D>(self, classifier: D) -> Retry<D> {
        Retry {
            shared: self.shared,
            classifier,
        }
    }

    fn map_classifier<D>(self, f: impl FnOnce(C) -> D) -> Retry<D> {
        Retry {
            shared: self.shared,
            classifier: f(self.classifier),
        }
    }
}

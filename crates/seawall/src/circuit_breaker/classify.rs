//! How a call's result counts for a breaker: success, failure, or not at all.

use std::fmt;

use super::{CircuitBreaker, Outcome};
use crate::Error;
use crate::error::ErrorKind;

/// Decides how a call's result counts for a [`CircuitBreaker`](super::CircuitBreaker).
pub trait CircuitClassifier<T, E> {
    /// How `result` counts.
    fn classify(&self, result: &Result<T, Error<E>>) -> Outcome;
}

/// `Ok` → success; the operation's errors, timeouts and exhausted retries → failure; a full
/// bulkhead, an open nested breaker, a rate limiter's or an adaptive limiter's rejection →
/// ignored.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultClassifier;

impl<T, E> CircuitClassifier<T, E> for DefaultClassifier {
    fn classify(&self, result: &Result<T, Error<E>>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(error) => match error.kind() {
                ErrorKind::BulkheadFull
                | ErrorKind::CircuitOpen
                | ErrorKind::RateLimited
                | ErrorKind::LimitExceeded => Outcome::Ignored,
                _ => Outcome::Failure,
            },
        }
    }
}

/// Classifies with a function over the whole result.
#[derive(Clone, Copy)]
pub struct ClassifyWith<F>(F);

impl<F> ClassifyWith<F> {
    pub(crate) const fn new(classify: F) -> Self {
        Self(classify)
    }
}

impl<T, E, F> CircuitClassifier<T, E> for ClassifyWith<F>
where
    F: Fn(&Result<T, Error<E>>) -> Outcome,
{
    fn classify(&self, result: &Result<T, Error<E>>) -> Outcome {
        (self.0)(result)
    }
}

/// Ignores the operation's own errors that match a predicate (e.g. 4xx business errors).
#[derive(Clone, Copy)]
pub struct IgnoreIf<C, F> {
    base: C,
    predicate: F,
}

impl<C, F> IgnoreIf<C, F> {
    pub(crate) const fn new(base: C, predicate: F) -> Self {
        Self { base, predicate }
    }
}

impl<T, E, C, F> CircuitClassifier<T, E> for IgnoreIf<C, F>
where
    C: CircuitClassifier<T, E>,
    F: Fn(&E) -> bool,
{
    fn classify(&self, result: &Result<T, Error<E>>) -> Outcome {
        match result {
            Err(error) if error.inner().is_some_and(&self.predicate) => Outcome::Ignored,
            _ => self.base.classify(result),
        }
    }
}

/// Counts successful results that match a predicate as failures.
#[derive(Clone, Copy)]
pub struct FailureIfResult<C, F> {
    base: C,
    predicate: F,
}

impl<C, F> FailureIfResult<C, F> {
    pub(crate) const fn new(base: C, predicate: F) -> Self {
        Self { base, predicate }
    }
}

impl<T, E, C, F> CircuitClassifier<T, E> for FailureIfResult<C, F>
where
    C: CircuitClassifier<T, E>,
    F: Fn(&T) -> bool,
{
    fn classify(&self, result: &Result<T, Error<E>>) -> Outcome {
        match result {
            Ok(value) if (self.predicate)(value) => Outcome::Failure,
            _ => self.base.classify(result),
        }
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
opaque_debug!(IgnoreIf, FailureIfResult);

impl<F> fmt::Debug for ClassifyWith<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClassifyWith(..)")
    }
}

/// Choosing how results count.
impl<C> CircuitBreaker<C> {
    /// Classifies results with `classify` over the whole result.
    pub fn classify<T, E, F>(self, classify: F) -> CircuitBreaker<ClassifyWith<F>>
    where
        F: Fn(&Result<T, Error<E>>) -> Outcome,
    {
        self.with_classifier(ClassifyWith::new(classify))
    }

    /// Ignores the operation's own errors that match `predicate` (e.g. declined payments,
    /// validation errors): they neither count nor hold a half-open slot.
    pub fn ignore_if<E, F>(self, predicate: F) -> CircuitBreaker<IgnoreIf<C, F>>
    where
        F: Fn(&E) -> bool,
    {
        self.map_classifier(|base| IgnoreIf::new(base, predicate))
    }

    /// Counts successful results that match `predicate` as failures.
    pub fn failure_if_result<T, F>(self, predicate: F) -> CircuitBreaker<FailureIfResult<C, F>>
    where
        F: Fn(&T) -> bool,
    {
        self.map_classifier(|base| FailureIfResult::new(base, predicate))
    }

    /// Replaces the classifier.
    pub fn with_classifier<D>(self, classifier: D) -> CircuitBreaker<D> {
        self.map_classifier(|_| classifier)
    }
}

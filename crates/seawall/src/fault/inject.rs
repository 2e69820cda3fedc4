//! What an injected error or outcome is made of.

use std::fmt;

use super::InjectedFault;
use crate::Error;

/// Makes the error of a call failed on purpose.
pub trait InjectError<E> {
    /// The error to return.
    fn inject_error(&self) -> Error<E>;
}

/// Makes the outcome that replaces a call's (or none, to run the operation).
pub trait InjectOutcome<T, E> {
    /// The outcome to return instead of running the operation; `None` runs it.
    fn inject_outcome(&self) -> Option<Result<T, E>>;
}

/// The default injected error: [`ErrorKind::Injected`](crate::ErrorKind::Injected), with the
/// [`InjectedFault`] marker.
#[derive(Clone, Copy, Debug, Default)]
pub struct InjectedError;

impl<E> InjectError<E> for InjectedError {
    fn inject_error(&self) -> Error<E> {
        Error::from(InjectedFault::new())
    }
}

/// An injected error of the operation's own type, made by a closure (see
/// [`FaultInjector::with_error`](super::FaultInjector::with_error)).
#[derive(Clone, Copy)]
pub struct ErrorFn<F>(F);

impl<F> ErrorFn<F> {
    pub(crate) const fn new(make: F) -> Self {
        Self(make)
    }
}

impl<E, F: Fn() -> E> InjectError<E> for ErrorFn<F> {
    fn inject_error(&self) -> Error<E> {
        Error::from_inner((self.0)())
    }
}

impl<F> fmt::Debug for ErrorFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ErrorFn(..)")
    }
}

/// No injected outcome: the outcome rate has no effect.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoOutcome;

impl<T, E> InjectOutcome<T, E> for NoOutcome {
    fn inject_outcome(&self) -> Option<Result<T, E>> {
        None
    }
}

/// An injected outcome made by a closure (see
/// [`FaultInjector::with_outcome`](super::FaultInjector::with_outcome)).
#[derive(Clone, Copy)]
pub struct OutcomeFn<F>(F);

impl<F> OutcomeFn<F> {
    pub(crate) const fn new(make: F) -> Self {
        Self(make)
    }
}

impl<T, E, F: Fn() -> Result<T, E>> InjectOutcome<T, E> for OutcomeFn<F> {
    fn inject_outcome(&self) -> Option<Result<T, E>> {
        Some((self.0)())
    }
}

impl<F> fmt::Debug for OutcomeFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutcomeFn(..)")
    }
}

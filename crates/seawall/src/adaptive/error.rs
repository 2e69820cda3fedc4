//! The adaptive limiter's marker error.

use std::fmt;

/// An adaptive limiter was at its limit (within its maximum wait); the operation was not started.
///
/// A zero-sized marker, as tower's are: a tower layer shedding a call boxes it into a
/// `BoxError` without allocating (`err.is::<LimitExceeded>()`). Through the native API the
/// [`Error`](crate::Error) around it also names the limiter
/// ([`Error::rejected_by`](crate::Error::rejected_by)).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimitExceeded {
    _private: (),
}

impl LimitExceeded {
    pub(crate) const fn new() -> Self {
        Self { _private: () }
    }
}

impl fmt::Debug for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LimitExceeded")
    }
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("adaptive concurrency limit reached, call not permitted")
    }
}

impl std::error::Error for LimitExceeded {}

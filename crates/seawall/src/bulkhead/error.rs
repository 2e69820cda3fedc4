//! The bulkhead's marker error.

use std::fmt;

/// A bulkhead had no free permit within its maximum wait; the operation was not started.
///
/// A zero-sized marker, as tower's are: a tower layer shedding a call boxes it into a
/// `BoxError` without allocating (`err.is::<BulkheadFull>()`). Through the native API the
/// [`Error`](crate::Error) around it also names the bulkhead
/// ([`Error::rejected_by`](crate::Error::rejected_by)).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BulkheadFull {
    _private: (),
}

impl BulkheadFull {
    pub(crate) const fn new() -> Self {
        Self { _private: () }
    }
}

impl fmt::Debug for BulkheadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BulkheadFull")
    }
}

impl fmt::Display for BulkheadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("bulkhead is full and does not permit further calls")
    }
}

impl std::error::Error for BulkheadFull {}

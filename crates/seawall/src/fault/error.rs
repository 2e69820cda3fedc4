//! The fault injector's marker error.

use std::fmt;

/// A fault injector failed the call on purpose; the operation did not run.
///
/// Zero-sized: a tower layer returns it boxed without allocating, and
/// `err.is::<InjectedFault>()` tells an injected failure from a real one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InjectedFault {
    _private: (),
}

impl InjectedFault {
    /// The marker.
    pub(crate) const fn new() -> Self {
        Self { _private: () }
    }
}

impl fmt::Debug for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InjectedFault")
    }
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fault injected on purpose")
    }
}

impl std::error::Error for InjectedFault {}

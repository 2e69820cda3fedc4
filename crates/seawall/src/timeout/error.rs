//! The timeout's marker error.

use std::fmt;
use std::time::Duration;

/// A timeout elapsed before the operation finished; the operation's future was dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    after: Duration,
}

impl Elapsed {
    /// A marker for a timeout of `after`.
    pub(crate) const fn new(after: Duration) -> Self {
        Self { after }
    }

    /// The timeout that elapsed.
    pub const fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Debug for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Elapsed")
            .field("after", &self.after)
            .finish()
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "operation timed out after {:?}", self.after)
    }
}

impl std::error::Error for Elapsed {}

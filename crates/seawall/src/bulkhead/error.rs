//! The bulkhead's marker error.

use std::fmt;
use std::sync::Arc;

/// A bulkhead had no free permit within its maximum wait; the operation was not started.
#[derive(Clone, PartialEq, Eq)]
pub struct BulkheadFull {
    name: Arc<str>,
}

impl BulkheadFull {
    /// A marker for the bulkhead `name`.
    pub fn new(name: Arc<str>) -> Self {
        Self { name }
    }

    /// The bulkhead's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for BulkheadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadFull")
            .field("name", &self.name)
            .finish()
    }
}

impl fmt::Display for BulkheadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bulkhead '{}' is full", self.name)
    }
}

impl std::error::Error for BulkheadFull {}

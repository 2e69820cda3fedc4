#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings, rust_2018_idioms), allow(dead_code, unused_variables))))]

mod classify;
mod defaults;
mod error;
mod middleware;

pub use crate::classify::{
    is_failure_status, is_retryable, is_retryable_status, is_server_error, is_throttled,
    retry_after, retry_after_hint,
};
pub use crate::error::{PolicyError, StatusFailure};
pub use crate::middleware::{HttpPolicy, Repeatable, SeawallMiddleware};

//! HTTP status classification for running reqwest requests through a seawall policy.

mod classify;
mod error;

pub use crate::classify::{
    is_failure_status, is_retryable, is_retryable_status, is_server_error, is_throttled,
    retry_after, retry_after_hint,
};
pub use crate::error::StatusFailure;

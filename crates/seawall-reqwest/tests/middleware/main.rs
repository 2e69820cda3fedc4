//! The middleware in a real client against an in-process server on 127.0.0.1.

mod once;
mod rejections;
mod retry;
mod support;

//! The fallback's future.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::Recover;
use crate::Error;
use crate::policy::{CallContext, Operation, StageFuture};

pin_project! {
    /// A call whose outcome a fallback may replace.
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the inner call; the fallback does not run.
    #[must_use = "futures do nothing unless polled"]
    pub struct FallbackFuture<'p, D, F> {
        fallback: &'p D,
        #[pin]
        inner: F,
    }
}

impl<'p, D, F> FallbackFuture<'p, D, F> {
    pub(crate) fn new(fallback: &'p D, inner: F) -> Self {
        Self { fallback, inner }
    }
}

impl<O, D, F> StageFuture<O> for FallbackFuture<'_, D, F>
where
    O: Operation,
    D: Recover<O::Output, O::Error>,
    F: StageFuture<O>,
{
    fn poll_stage(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        call: &mut CallContext<'_, O>,
    ) -> Poll<Result<O::Output, Error<O::Error>>> {
        let this = self.project();
        let outcome = ready!(this.inner.poll_stage(cx, call));
        Poll::Ready(this.fallback.recover(outcome))
    }
}

impl<D, F> fmt::Debug for FallbackFuture<'_, D, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FallbackFuture { .. }")
    }
}

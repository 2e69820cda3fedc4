//! The fallback's future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{Recover, Recovery};
use crate::Error;
use crate::policy::{CallContext, Operation, StageFuture};

pin_project! {
    /// A call whose outcome a fallback may replace.
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the inner call, or the replacement in progress.
    #[must_use = "futures do nothing unless polled"]
    pub struct FallbackFuture<'p, D, F, R> {
        fallback: &'p D,
        #[pin]
        inner: F,
        #[pin]
        replacement: Option<R>,
    }
}

impl<'p, D, F, R> FallbackFuture<'p, D, F, R> {
    pub(crate) fn new(fallback: &'p D, inner: F) -> Self {
        Self {
            fallback,
            inner,
            replacement: None,
        }
    }
}

impl<O, D, F, R> StageFuture<O> for FallbackFuture<'_, D, F, R>
where
    O: Operation,
    D: Recover<O::Output, O::Error, Future = R>,
    F: StageFuture<O>,
    R: Future<Output = Result<O::Output, Error<O::Error>>>,
{
    fn poll_stage(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        call: &mut CallContext<'_, O>,
    ) -> Poll<Result<O::Output, Error<O::Error>>> {
        let mut this = self.project();
        loop {
            if let Some(replacement) = this.replacement.as_mut().as_pin_mut() {
                return replacement.poll(cx);
            }
            let outcome = ready!(this.inner.as_mut().poll_stage(cx, call));
            match this.fallback.recover(outcome) {
                Recovery::Keep(outcome) => return Poll::Ready(outcome),
                Recovery::Replace(future) => this.replacement.set(Some(future)),
            }
        }
    }
}

impl<D, F, R> fmt::Debug for FallbackFuture<'_, D, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FallbackFuture { .. }")
    }
}

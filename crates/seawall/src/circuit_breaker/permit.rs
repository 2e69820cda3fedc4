//! The permission API: ask a breaker for a permit, run the call however it runs, then say how
//! it went. For work that is not one future: a streamed body, a callback-style client, a
//! message consumer.

use std::fmt;
use std::time::Duration;

use super::engine::{Rejection, Slot};
use super::{CircuitBreaker, CircuitClassifier, DefaultClassifier, Outcome};
use crate::Error;

/// The breaker's answer to "may I make a call?": the right to make one, and the duty to
/// report how it went. Returned by [`CircuitBreaker::try_acquire`].
///
/// Finish it with [`success`](Self::success), [`failure`](Self::failure),
/// [`ignore`](Self::ignore), [`record`](Self::record) (through the breaker's classifier) or
/// [`record_result`](Self::record_result). The permit measures its own duration, so a slow
/// call counts as slow.
///
/// # Cancel safety
///
/// Dropping a permit without finishing it is a cancellation: a half-open probe slot is given
/// back and nothing is recorded, exactly as when a call's future is dropped.
///
/// # Examples
///
/// A streamed response: the breaker learns the outcome only once the whole body has arrived.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use seawall::CircuitBreaker;
///
/// # struct Chunks(Vec<Result<&'static str, std::io::Error>>);
/// # impl Chunks { async fn next(&mut self) -> Option<Result<&'static str, std::io::Error>> {
/// #     if self.0.is_empty() { None } else { Some(self.0.remove(0)) } } }
/// # async fn open_stream() -> Result<Chunks, std::io::Error> { Ok(Chunks(vec![Ok("a"), Ok("b")])) }
/// let breaker = CircuitBreaker::builder().name("feed").build().unwrap();
///
/// let Ok(permit) = breaker.try_acquire() else {
///     return; // open: do not even connect
/// };
/// let mut body = String::new();
/// let outcome: Result<(), std::io::Error> = async {
///     let mut stream = open_stream().await?;
///     while let Some(chunk) = stream.next().await {
///         body.push_str(chunk?);
///     }
///     Ok(())
/// }
/// .await;
/// permit.record_result(outcome).unwrap(); // a broken stream counts as a failure
/// assert_eq!(body, "ab");
/// assert_eq!(breaker.metrics().successful_calls, 1);
/// # }
/// ```
#[must_use = "dropping a permit abandons the call: nothing is recorded"]
pub struct CallPermit<'a, C = DefaultClassifier> {
    breaker: &'a CircuitBreaker<C>,
    slot: Option<Slot>,
}

/// A [`CallPermit`] that owns a handle on its breaker, so it can be moved into a task or
/// stored beside the work it guards. Returned by [`CircuitBreaker::try_acquire_owned`].
///
/// # Cancel safety
///
/// As for [`CallPermit`]: dropping it unfinished records nothing.
#[must_use = "dropping a permit abandons the call: nothing is recorded"]
pub struct OwnedCallPermit<C = DefaultClassifier> {
    breaker: CircuitBreaker<C>,
    slot: Option<Slot>,
}

impl<C> CircuitBreaker<C> {
    /// Asks permission, keeping the details of a rejection for the caller's error.
    pub(crate) fn acquire(&self) -> Result<CallPermit<'_, C>, Rejection> {
        self.shared
            .acquire()
            .map(|slot| CallPermit::new(self, slot))
    }

    /// As [`acquire`](Self::acquire), for a call run as a future that reports its pending
    /// polls with [`CallPermit::polled_pending`]: timed lazily on tokio's clock.
    #[inline]
    pub(crate) fn acquire_lazy(&self) -> Result<CallPermit<'_, C>, Rejection> {
        self.shared
            .acquire_lazy()
            .map(|slot| CallPermit::new(self, slot))
    }

    /// The error of a call this breaker rejected.
    pub(crate) fn rejected<E>(&self, rejection: Rejection) -> Error<E> {
        self.shared
            .origins
            .rejected(rejection.state, rejection.retry_after)
    }
}

impl<'a, C> CallPermit<'a, C> {
    pub(crate) fn new(breaker: &'a CircuitBreaker<C>, slot: Slot) -> Self {
        Self {
            breaker,
            slot: Some(slot),
        }
    }

    fn breaker(&self) -> &CircuitBreaker<C> {
        self.breaker
    }
}

impl<C> OwnedCallPermit<C> {
    pub(crate) fn new(breaker: CircuitBreaker<C>, slot: Slot) -> Self {
        Self {
            breaker,
            slot: Some(slot),
        }
    }

    fn breaker(&self) -> &CircuitBreaker<C> {
        &self.breaker
    }
}

/// The methods both permits share.
macro_rules! permit_methods {
    ($($permit:ident $(<$lt:lifetime>)?),*) => {$(
        impl<$($lt,)? C> $permit<$($lt,)? C> {
            /// The call succeeded.
            pub fn success(self) {
                self.finish(Outcome::Success);
            }

            /// The call failed: it counts towards the failure rate.
            pub fn failure(self) {
                self.finish(Outcome::Failure);
            }

            /// The call's outcome says nothing about the dependency (a validation error, a
            /// cancelled request): it is not counted, and a half-open probe slot is given back.
            pub fn ignore(self) {
                self.finish(Outcome::Ignored);
            }

            /// Records an outcome decided by the caller.
            pub fn record_outcome(self, outcome: Outcome) {
                self.finish(outcome);
            }

            /// Records `result` as the breaker's classifier judges it, as a call through
            /// [`CircuitBreaker::call`] would be.
            pub fn record<T, E>(self, result: &Result<T, Error<E>>)
            where
                C: CircuitClassifier<T, E>,
            {
                let outcome = self.breaker().classifier().classify(result);
                self.finish(outcome);
            }

            /// Records the operation's own `result` through the breaker's classifier (its
            /// error seen as [`Error::from_inner`]) and hands it back.
            pub fn record_result<T, E>(self, result: Result<T, E>) -> Result<T, E>
            where
                C: CircuitClassifier<T, E>,
            {
                let result = result.map_err(Error::from_inner);
                self.record(&result);
                result.map_err(|error| error.into_inner().expect("an inner error stays inner"))
            }

            /// How long the call has run, if the breaker measures calls (slow-call tracking
            /// is on).
            pub fn elapsed(&self) -> Option<Duration> {
                self.breaker().shared().elapsed(self.slot.as_ref()?)
            }

            /// The call's future was polled and is pending (see `Shared::polled_pending`).
            // The owned permit's is called only by the tower layer.
            #[cfg_attr(not(feature = "tower"), allow(dead_code))]
            #[inline]
            pub(crate) fn polled_pending(&mut self) {
                if let Some(slot) = &mut self.slot {
                    self.breaker.shared().polled_pending(slot);
                }
            }

            fn finish(mut self, outcome: Outcome) {
                if let Some(slot) = self.slot.take() {
                    self.breaker().shared().record(slot, outcome);
                }
            }
        }

        impl<$($lt,)? C> Drop for $permit<$($lt,)? C> {
            fn drop(&mut self) {
                if let Some(slot) = &self.slot {
                    self.breaker().shared().release(slot);
                }
            }
        }

        impl<$($lt,)? C> fmt::Debug for $permit<$($lt,)? C> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($permit))
                    .field("breaker", &self.breaker().name())
                    .finish_non_exhaustive()
            }
        }
    )*};
}

permit_methods!(CallPermit<'a>, OwnedCallPermit);

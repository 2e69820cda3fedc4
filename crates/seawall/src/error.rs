//! The one error type of a composed call, and the marker errors it can carry.
//!
//! A policy of any depth returns [`Error<E>`], where `E` is the operation's own error. Stacking
//! decorators never nests it: a timeout inside a retry inside a bulkhead still yields one
//! `Error<E>`, whose [`kind`](Error::kind) says what happened last and whose
//! [`attempts`](Error::attempts) says how many attempts a retry made. The design is written up
//! in `docs/error-model.md`.
//!
//! The marker types ([`Elapsed`], [`BulkheadFull`], [`CircuitOpen`], [`RateLimited`],
//! [`RetriesExhausted`]) are also what the tower layers return inside their `BoxError`, so
//! `err.downcast_ref::<Elapsed>()` works there. Only seawall creates them. The rejections of
//! an open breaker and a full bulkhead are zero-sized, so shedding load through a tower layer
//! allocates nothing; through the native API the [`Error`] around them also says which
//! instance rejected the call ([`Error::rejected_by`]) and when to come back
//! ([`Error::retry_after`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use crate::adaptive::error::LimitExceeded;
pub use crate::bulkhead::error::BulkheadFull;
pub use crate::circuit_breaker::error::{CircuitOpen, IllegalTransition};
#[cfg(feature = "fault")]
pub use crate::fault::error::InjectedFault;
pub use crate::timeout::error::Elapsed;

mod repr;

pub use self::repr::RateLimited;
#[cfg(feature = "fault")]
pub(crate) use self::repr::prepare_unnamed;
pub(crate) use self::repr::{BreakerOrigins, Marker, Origin, TimeoutOrigin};
use self::repr::{Light, RetryTrace, Unnamed};

/// The error of a call made through a seawall decorator or [`Policy`](crate::Policy).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use seawall::{Policy, Retry, Timeout};
///
/// let policy = Policy::builder()
///     .retry(Retry::builder().max_attempts(2).no_backoff().build().unwrap())
///     .timeout(Timeout::new(Duration::from_millis(10)))
///     .build();
///
/// let err = policy
///     .call(|| async {
///         std::future::pending::<()>().await;
///         Ok::<(), std::io::Error>(())
///     })
///     .await
///     .unwrap_err();
///
/// assert!(err.is_timeout());              // the last attempt timed out
/// assert!(err.is_retries_exhausted());    // and the retry gave up
/// assert_eq!(err.attempts(), Some(2));
/// # }
/// ```
pub struct Error<E> {
    repr: Repr<E>,
}

/// 16 bytes: a rejection or timeout from a decorator instance is light (its shared origin and
/// a packed word, no allocation); the operation's own error and everything rare is boxed.
/// `Cold` sits in the null niche of `Light`'s origin pointer, so there is no tag word.
enum Repr<E> {
    Light(Light),
    Cold(Box<Cold<E>>),
}

struct Cold<E> {
    cause: Cause<E>,
    retry: Option<RetryTrace>,
}

enum Cause<E> {
    Inner(E),
    /// A light error whose retry trace did not fit in its packed word.
    Light(Light),
    /// A timeout marker made without a timeout instance (`From<Elapsed>`).
    Timeout(Elapsed),
    RetriesExhausted(RetriesExhausted),
}

/// What an error holds, wherever it is stored.
enum View<'a, E> {
    Inner(&'a E),
    Light(&'a Light),
    Timeout(&'a Elapsed),
    RetriesExhausted(&'a RetriesExhausted),
}

/// What an [`Error`] is, for matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operation itself failed; [`Error::inner`] has its error.
    Inner,
    /// A timeout elapsed before the operation finished.
    Timeout,
    /// A bulkhead had no free permit (within its maximum wait).
    BulkheadFull,
    /// A circuit breaker did not permit the call.
    CircuitOpen,
    /// A rate limiter did not permit the call.
    RateLimited,
    /// A retry ran out of attempts while every result was rejected by its `retry_on_result`
    /// predicate (only with `fail_after_max_attempts`). When a retry gives up on an *error*, the
    /// kind is that error's kind and [`Error::is_retries_exhausted`] is true.
    RetriesExhausted,
    /// A fault injector failed the call on purpose (feature `fault`); the operation did not
    /// run.
    #[cfg(feature = "fault")]
    Injected,
    /// An adaptive concurrency limiter was at its limit (within its maximum wait).
    LimitExceeded,
}

/// Why a retry stopped retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GaveUp {
    /// Every allowed attempt was made.
    MaxAttempts,
    /// The next wait would have passed the retry's maximum elapsed time.
    MaxElapsed,
    /// The shared retry budget refused another retry.
    BudgetExhausted,
}

impl GaveUp {
    /// A short lowercase description.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MaxAttempts => "max attempts reached",
            Self::MaxElapsed => "max elapsed time reached",
            Self::BudgetExhausted => "retry budget exhausted",
        }
    }
}

impl<E> Error<E> {
    /// Wraps the operation's own error (for a fallback handler that answers with another
    /// error of the operation's type, or a test of a classifier).
    pub fn from_inner(inner: E) -> Self {
        Self::cold(Cause::Inner(inner))
    }

    fn cold(cause: Cause<E>) -> Self {
        Self {
            repr: Repr::Cold(Box::new(Cold { cause, retry: None })),
        }
    }

    pub(crate) const fn light(light: Light) -> Self {
        Self {
            repr: Repr::Light(light),
        }
    }

    /// The rejection of the instance of `origin` (its name and kind), with a retry-after.
    pub(crate) fn rejected(origin: &Arc<Origin>, retry_after: Option<Duration>) -> Self {
        Self::light(Light::light(origin.clone(), retry_after))
    }

    /// A marker made without an instance, sharing a process-wide origin.
    fn unnamed(marker: Unnamed) -> Self {
        Self::rejected(Origin::unnamed(marker), None)
    }

    fn view(&self) -> View<'_, E> {
        match &self.repr {
            Repr::Light(light) => View::Light(light),
            Repr::Cold(cold) => match &cold.cause {
                Cause::Inner(inner) => View::Inner(inner),
                Cause::Light(light) => View::Light(light),
                Cause::Timeout(elapsed) => View::Timeout(elapsed),
                Cause::RetriesExhausted(exhausted) => View::RetriesExhausted(exhausted),
            },
        }
    }

    fn trace(&self) -> Option<RetryTrace> {
        match &self.repr {
            Repr::Light(light) => light.trace(),
            Repr::Cold(cold) => cold.retry,
        }
    }

    /// What this error is.
    pub fn kind(&self) -> ErrorKind {
        match self.view() {
            View::Inner(_) => ErrorKind::Inner,
            View::Light(light) => light.origin().marker().kind(),
            View::Timeout(_) => ErrorKind::Timeout,
            View::RetriesExhausted(_) => ErrorKind::RetriesExhausted,
        }
    }

    /// A fault injector failed the call on purpose (feature `fault`).
    #[cfg(feature = "fault")]
    pub fn is_injected(&self) -> bool {
        self.kind() == ErrorKind::Injected
    }

    /// The operation itself failed.
    pub fn is_inner(&self) -> bool {
        matches!(self.view(), View::Inner(_))
    }

    /// A timeout elapsed (for a retry that gave up: the last attempt timed out).
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }

    /// A bulkhead was full.
    pub fn is_bulkhead_full(&self) -> bool {
        self.kind() == ErrorKind::BulkheadFull
    }

    /// A circuit breaker rejected the call.
    pub fn is_circuit_open(&self) -> bool {
        self.kind() == ErrorKind::CircuitOpen
    }

    /// A rate limiter rejected the call.
    pub fn is_rate_limited(&self) -> bool {
        self.kind() == ErrorKind::RateLimited
    }

    /// An adaptive concurrency limiter was at its limit.
    pub fn is_limit_exceeded(&self) -> bool {
        self.kind() == ErrorKind::LimitExceeded
    }

    /// A retry gave up: out of attempts, past its maximum elapsed time, or refused by its budget.
    pub fn is_retries_exhausted(&self) -> bool {
        self.gave_up().is_some()
    }

    /// Why a retry gave up, if one did.
    pub fn gave_up(&self) -> Option<GaveUp> {
        self.trace().and_then(|trace| trace.gave_up)
    }

    /// How many attempts a retry made before returning this error, if the error passed through
    /// a retry.
    pub fn attempts(&self) -> Option<u32> {
        self.trace().map(|trace| trace.attempts)
    }

    /// The operation's own error, if this is one.
    pub fn inner(&self) -> Option<&E> {
        match self.view() {
            View::Inner(inner) => Some(inner),
            _ => None,
        }
    }

    /// The operation's own error, or this error back when it is not one (a timeout, a
    /// rejection): nothing is lost either way.
    ///
    /// # Errors
    ///
    /// `self`, unchanged, when the operation's own error is not what it holds.
    pub fn try_into_inner(self) -> Result<E, Self> {
        match self.repr {
            Repr::Cold(cold) if matches!(cold.cause, Cause::Inner(_)) => match cold.cause {
                Cause::Inner(inner) => Ok(inner),
                cause => Err(Self {
                    repr: Repr::Cold(Box::new(Cold {
                        cause,
                        retry: cold.retry,
                    })),
                }),
            },
            repr => Err(Self { repr }),
        }
    }

    /// The operation's own error, if this is one.
    pub fn into_inner(self) -> Option<E> {
        self.try_into_inner().ok()
    }

    /// The timeout marker, if a timeout elapsed.
    pub fn as_timeout(&self) -> Option<&Elapsed> {
        match self.view() {
            View::Light(light) => light.origin().elapsed(),
            View::Timeout(elapsed) => Some(elapsed),
            _ => None,
        }
    }

    /// The name of the instance that rejected the call (a circuit breaker, bulkhead or rate
    /// limiter), when the rejection came through the native API. A rejection read back from a
    /// tower layer's `BoxError` has no name.
    pub fn rejected_by(&self) -> Option<&str> {
        match self.view() {
            View::Light(light) => light.origin().name(),
            _ => None,
        }
    }

    /// The rate-limiter marker, if a rate limiter rejected the call.
    pub fn as_rate_limited(&self) -> Option<&RateLimited> {
        match self.view() {
            View::Light(light) if light.origin().marker() == Marker::RateLimited => Some(light),
            _ => None,
        }
    }

    /// How long the rejecting decorator suggests waiting before trying again: the rest of a
    /// breaker's open wait, or a rate limiter's next free slot.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.view() {
            View::Light(light) => light.retry_after(),
            _ => None,
        }
    }

    /// Applies `f` to the operation's own error, keeping everything else.
    pub fn map_inner<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        let cold = match self.repr {
            Repr::Light(light) => return Error::light(light),
            Repr::Cold(cold) => *cold,
        };
        let cause = match cold.cause {
            Cause::Inner(inner) => Cause::Inner(f(inner)),
            Cause::Light(light) => Cause::Light(light),
            Cause::Timeout(elapsed) => Cause::Timeout(elapsed),
            Cause::RetriesExhausted(exhausted) => Cause::RetriesExhausted(exhausted),
        };
        Error {
            repr: Repr::Cold(Box::new(Cold {
                cause,
                retry: cold.retry,
            })),
        }
    }

    /// Records that a retry made `attempts` attempts and, if `gave_up` is set, why it stopped.
    /// A light error keeps the trace in its packed word (no allocation) when it fits.
    pub(crate) fn with_retry_trace(self, attempts: u32, gave_up: Option<GaveUp>) -> Self {
        let trace = RetryTrace { attempts, gave_up };
        let repr = match self.repr {
            Repr::Light(light) => match light.with_trace(trace) {
                Ok(light) => Repr::Light(light),
                Err(light) => Repr::Cold(Box::new(Cold {
                    cause: Cause::Light(light),
                    retry: Some(trace),
                })),
            },
            Repr::Cold(mut cold) => {
                cold.retry = Some(trace);
                Repr::Cold(cold)
            }
        };
        Self { repr }
    }

    /// Converts into a boxed error whose concrete type is the inner error or a marker, as the
    /// tower layers return.
    pub fn into_box_error(self) -> crate::BoxError
    where
        E: Into<crate::BoxError>,
    {
        let light = match self.repr {
            Repr::Light(light) => light,
            Repr::Cold(cold) => match cold.cause {
                Cause::Inner(inner) => return inner.into(),
                Cause::Light(light) => light,
                Cause::Timeout(elapsed) => return Box::new(elapsed),
                Cause::RetriesExhausted(exhausted) => return Box::new(exhausted),
            },
        };
        match light.origin().marker() {
            Marker::Timeout(elapsed) => Box::new(elapsed),
            Marker::BulkheadFull => Box::new(BulkheadFull::new()),
            Marker::CircuitOpen(_) => Box::new(CircuitOpen::new()),
            Marker::RateLimited => Box::new(light.without_trace()),
            #[cfg(feature = "fault")]
            Marker::Injected => Box::new(InjectedFault::new()),
            Marker::LimitExceeded => Box::new(LimitExceeded::new()),
        }
    }
}

impl Error<crate::BoxError> {
    /// Reads a boxed error from a tower service: seawall's markers inside it become the
    /// matching kinds (so a breaker's rejection from an inner layer is still
    /// [`ErrorKind::CircuitOpen`]); anything else is the inner error.
    pub fn from_box_error(error: crate::BoxError) -> Self {
        let error = match error.downcast::<Elapsed>() {
            Ok(marker) => return (*marker).into(),
            Err(other) => other,
        };
        let error = match error.downcast::<BulkheadFull>() {
            Ok(marker) => return (*marker).into(),
            Err(other) => other,
        };
        let error = match error.downcast::<CircuitOpen>() {
            Ok(marker) => return (*marker).into(),
            Err(other) => other,
        };
        let error = match error.downcast::<LimitExceeded>() {
            Ok(marker) => return (*marker).into(),
            Err(other) => other,
        };
        let error = match error.downcast::<RateLimited>() {
            Ok(marker) => return (*marker).into(),
            Err(other) => other,
        };
        #[cfg(feature = "fault")]
        let error = match error.downcast::<InjectedFault>() {
            Ok(marker) => return (*marker).into(),
            Err(other) => other,
        };
        match error.downcast::<RetriesExhausted>() {
            Ok(marker) => (*marker).into(),
            Err(other) => Self::from_inner(other),
        }
    }
}

impl<E> From<Elapsed> for Error<E> {
    fn from(marker: Elapsed) -> Self {
        Self::cold(Cause::Timeout(marker))
    }
}

impl<E> From<BulkheadFull> for Error<E> {
    fn from(_: BulkheadFull) -> Self {
        Self::unnamed(Unnamed::BulkheadFull)
    }
}

impl<E> From<LimitExceeded> for Error<E> {
    fn from(_: LimitExceeded) -> Self {
        Self::unnamed(Unnamed::LimitExceeded)
    }
}

impl<E> From<CircuitOpen> for Error<E> {
    fn from(_: CircuitOpen) -> Self {
        Self::unnamed(Unnamed::CircuitOpen)
    }
}

impl<E> From<RateLimited> for Error<E> {
    fn from(marker: RateLimited) -> Self {
        Self::light(marker.without_trace())
    }
}

#[cfg(feature = "fault")]
impl<E> From<InjectedFault> for Error<E> {
    fn from(_: InjectedFault) -> Self {
        Self::unnamed(Unnamed::Injected)
    }
}

impl<E> From<RetriesExhausted> for Error<E> {
    fn from(marker: RetriesExhausted) -> Self {
        Self::cold(Cause::RetriesExhausted(marker))
    }
}

impl<E: fmt::Debug> fmt::Debug for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Error");
        out.field("kind", &self.kind());
        match self.view() {
            View::Inner(inner) => out.field("inner", inner),
            View::Timeout(elapsed) => out.field("marker", elapsed),
            View::RetriesExhausted(exhausted) => out.field("marker", exhausted),
            View::Light(light) => match light.origin().marker() {
                Marker::Timeout(elapsed) => out.field("marker", &elapsed),
                Marker::RateLimited => out.field("marker", &light.clone().without_trace()),
                #[cfg(feature = "fault")]
                Marker::Injected => out.field("marker", &InjectedFault::new()),
                Marker::CircuitOpen(state) => out
                    .field("name", &light.origin().name())
                    .field("state", &state)
                    .field("retry_after", &light.retry_after()),
                Marker::BulkheadFull | Marker::LimitExceeded => {
                    out.field("name", &light.origin().name())
                }
            },
        };
        if let Some(trace) = self.trace() {
            out.field("attempts", &trace.attempts);
            if let Some(gave_up) = trace.gave_up {
                out.field("gave_up", &gave_up);
            }
        }
        out.finish()
    }
}

/// Without a retry that gave up, the text is the cause's own (the inner error's text for
/// [`ErrorKind::Inner`]). When a retry gave up, the text says so and the cause is the
/// [`source`](std::error::Error::source), following the rule that an error either prints its
/// cause or returns it as its source, never both.
impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(RetryTrace {
            attempts,
            gave_up: Some(gave_up),
        }) = self.trace()
        {
            let plural = if attempts == 1 { "" } else { "s" };
            return write!(
                f,
                "gave up after {attempts} attempt{plural}: {}",
                gave_up.as_str()
            );
        }
        match self.view() {
            View::Inner(inner) => fmt::Display::fmt(inner, f),
            View::Timeout(elapsed) => fmt::Display::fmt(elapsed, f),
            View::RetriesExhausted(exhausted) => fmt::Display::fmt(exhausted, f),
            View::Light(light) => display_light(light, f),
        }
    }
}

fn display_light(light: &Light, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let origin = light.origin();
    match (origin.marker(), origin.name()) {
        (Marker::Timeout(elapsed), _) => fmt::Display::fmt(&elapsed, f),
        (Marker::RateLimited, _) => fmt::Display::fmt(light, f),
        #[cfg(feature = "fault")]
        (Marker::Injected, _) => fmt::Display::fmt(&InjectedFault::new(), f),
        (Marker::BulkheadFull, Some(name)) => write!(
            f,
            "bulkhead '{name}' is full and does not permit further calls"
        ),
        (Marker::BulkheadFull, None) => fmt::Display::fmt(&BulkheadFull::new(), f),
        (Marker::CircuitOpen(state), Some(name)) => write!(
            f,
            "circuit breaker '{name}' is {state} and does not permit further calls"
        ),
        (Marker::CircuitOpen(_), None) => fmt::Display::fmt(&CircuitOpen::new(), f),
        (Marker::LimitExceeded, Some(name)) => write!(
            f,
            "adaptive limiter '{name}' is at its concurrency limit and does not permit further calls"
        ),
        (Marker::LimitExceeded, None) => fmt::Display::fmt(&LimitExceeded::new(), f),
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let gave_up = self.gave_up().is_some();
        match self.view() {
            View::Inner(inner) if gave_up => Some(inner),
            View::Inner(inner) => inner.source(),
            View::Timeout(elapsed) if gave_up => Some(elapsed),
            View::Light(light) if gave_up => Some(light_source(light)),
            _ => None,
        }
    }
}

/// The marker a retry that gave up on a light error reports as its source.
fn light_source(light: &Light) -> &(dyn std::error::Error + 'static) {
    match light.origin().marker() {
        Marker::Timeout(_) => match light.origin().elapsed() {
            Some(elapsed) => elapsed,
            None => light,
        },
        Marker::RateLimited => light,
        Marker::BulkheadFull => &BULKHEAD_FULL,
        Marker::CircuitOpen(_) => &CIRCUIT_OPEN,
        #[cfg(feature = "fault")]
        Marker::Injected => &INJECTED,
        Marker::LimitExceeded => &LIMIT_EXCEEDED,
    }
}

/// The markers a retry that gave up reports as its source.
static BULKHEAD_FULL: BulkheadFull = BulkheadFull::new();
static CIRCUIT_OPEN: CircuitOpen = CircuitOpen::new();
#[cfg(feature = "fault")]
static INJECTED: InjectedFault = InjectedFault::new();
static LIMIT_EXCEEDED: LimitExceeded = LimitExceeded::new();

/// A retry used every attempt and the last result was still rejected by its `retry_on_result`
/// predicate (returned only with `fail_after_max_attempts`).
#[derive(Clone, PartialEq, Eq)]
pub struct RetriesExhausted {
    name: Arc<str>,
    attempts: u32,
}

impl RetriesExhausted {
    pub(crate) fn new(name: Arc<str>, attempts: u32) -> Self {
        Self { name, attempts }
    }

    /// The retry's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many attempts were made.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl fmt::Debug for RetriesExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetriesExhausted")
            .field("name", &self.name)
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl fmt::Display for RetriesExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "retry '{}' exhausted all {} attempts with a rejected result",
            self.name, self.attempts
        )
    }
}

impl std::error::Error for RetriesExhausted {}

#[cfg(test)]
mod tests;

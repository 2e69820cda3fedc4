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

use crate::circuit_breaker::State;

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
    cause: Cause<E>,
    retry: Option<RetryTrace>,
}

enum Cause<E> {
    Inner(E),
    Timeout(Elapsed),
    BulkheadFull {
        name: Option<Arc<str>>,
    },
    CircuitOpen {
        name: Option<Arc<str>>,
        state: State,
        retry_after: Option<Duration>,
    },
    RateLimited(RateLimited),
    RetriesExhausted(RetriesExhausted),
    #[cfg(feature = "fault")]
    Injected,
    LimitExceeded {
        name: Option<Arc<str>>,
    },
}

#[derive(Clone, Copy, Debug)]
struct RetryTrace {
    attempts: u32,
    gave_up: Option<GaveUp>,
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
    pub const fn from_inner(inner: E) -> Self {
        Self::with_cause(Cause::Inner(inner))
    }

    const fn with_cause(cause: Cause<E>) -> Self {
        Self { cause, retry: None }
    }

    /// The rejection of the breaker `name` in `state`.
    pub(crate) fn circuit_open(
        name: Arc<str>,
        state: State,
        retry_after: Option<Duration>,
    ) -> Self {
        Self::with_cause(Cause::CircuitOpen {
            name: Some(name),
            state,
            retry_after,
        })
    }

    /// The rejection of the full bulkhead `name`.
    pub(crate) fn bulkhead_full(name: Arc<str>) -> Self {
        Self::with_cause(Cause::BulkheadFull { name: Some(name) })
    }

    /// The rejection of the adaptive limiter `name` at its limit.
    pub(crate) fn limit_exceeded(name: Arc<str>) -> Self {
        Self::with_cause(Cause::LimitExceeded { name: Some(name) })
    }

    /// What this error is.
    pub fn kind(&self) -> ErrorKind {
        match &self.cause {
            Cause::Inner(_) => ErrorKind::Inner,
            Cause::Timeout(_) => ErrorKind::Timeout,
            Cause::BulkheadFull { .. } => ErrorKind::BulkheadFull,
            Cause::CircuitOpen { .. } => ErrorKind::CircuitOpen,
            Cause::RateLimited(_) => ErrorKind::RateLimited,
            Cause::RetriesExhausted(_) => ErrorKind::RetriesExhausted,
            #[cfg(feature = "fault")]
            Cause::Injected => ErrorKind::Injected,
            Cause::LimitExceeded { .. } => ErrorKind::LimitExceeded,
        }
    }

    /// A fault injector failed the call on purpose (feature `fault`).
    #[cfg(feature = "fault")]
    pub fn is_injected(&self) -> bool {
        matches!(self.cause, Cause::Injected)
    }

    /// The operation itself failed.
    pub fn is_inner(&self) -> bool {
        matches!(self.cause, Cause::Inner(_))
    }

    /// A timeout elapsed (for a retry that gave up: the last attempt timed out).
    pub fn is_timeout(&self) -> bool {
        matches!(self.cause, Cause::Timeout(_))
    }

    /// A bulkhead was full.
    pub fn is_bulkhead_full(&self) -> bool {
        matches!(self.cause, Cause::BulkheadFull { .. })
    }

    /// A circuit breaker rejected the call.
    pub fn is_circuit_open(&self) -> bool {
        matches!(self.cause, Cause::CircuitOpen { .. })
    }

    /// A rate limiter rejected the call.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self.cause, Cause::RateLimited(_))
    }

    /// An adaptive concurrency limiter was at its limit.
    pub fn is_limit_exceeded(&self) -> bool {
        matches!(self.cause, Cause::LimitExceeded { .. })
    }

    /// A retry gave up: out of attempts, past its maximum elapsed time, or refused by its budget.
    pub fn is_retries_exhausted(&self) -> bool {
        self.gave_up().is_some()
    }

    /// Why a retry gave up, if one did.
    pub fn gave_up(&self) -> Option<GaveUp> {
        self.retry.and_then(|trace| trace.gave_up)
    }

    /// How many attempts a retry made before returning this error, if the error passed through
    /// a retry.
    pub fn attempts(&self) -> Option<u32> {
        self.retry.map(|trace| trace.attempts)
    }

    /// The operation's own error, if this is one.
    pub fn inner(&self) -> Option<&E> {
        match &self.cause {
            Cause::Inner(inner) => Some(inner),
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
        match self.cause {
            Cause::Inner(inner) => Ok(inner),
            cause => Err(Self {
                cause,
                retry: self.retry,
            }),
        }
    }

    /// The operation's own error, if this is one.
    pub fn into_inner(self) -> Option<E> {
        match self.cause {
            Cause::Inner(inner) => Some(inner),
            _ => None,
        }
    }

    /// The timeout marker, if a timeout elapsed.
    pub fn as_timeout(&self) -> Option<&Elapsed> {
        match &self.cause {
            Cause::Timeout(elapsed) => Some(elapsed),
            _ => None,
        }
    }

    /// The name of the instance that rejected the call (a circuit breaker, bulkhead or rate
    /// limiter), when the rejection came through the native API. A rejection read back from a
    /// tower layer's `BoxError` has no name.
    pub fn rejected_by(&self) -> Option<&str> {
        match &self.cause {
            Cause::BulkheadFull { name }
            | Cause::CircuitOpen { name, .. }
            | Cause::LimitExceeded { name } => name.as_deref(),
            Cause::RateLimited(limited) => Some(limited.name()),
            _ => None,
        }
    }

    /// The rate-limiter marker, if a rate limiter rejected the call.
    pub fn as_rate_limited(&self) -> Option<&RateLimited> {
        match &self.cause {
            Cause::RateLimited(limited) => Some(limited),
            _ => None,
        }
    }

    /// How long the rejecting decorator suggests waiting before trying again: the rest of a
    /// breaker's open wait, or a rate limiter's next free slot.
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.cause {
            Cause::CircuitOpen { retry_after, .. } => *retry_after,
            Cause::RateLimited(limited) => limited.retry_after(),
            _ => None,
        }
    }

    /// Applies `f` to the operation's own error, keeping everything else.
    pub fn map_inner<F>(self, f: impl FnOnce(E) -> F) -> Error<F> {
        let cause = match self.cause {
            Cause::Inner(inner) => Cause::Inner(f(inner)),
            Cause::Timeout(elapsed) => Cause::Timeout(elapsed),
            Cause::BulkheadFull { name } => Cause::BulkheadFull { name },
            Cause::CircuitOpen {
                name,
                state,
                retry_after,
            } => Cause::CircuitOpen {
                name,
                state,
                retry_after,
            },
            Cause::RateLimited(limited) => Cause::RateLimited(limited),
            Cause::RetriesExhausted(exhausted) => Cause::RetriesExhausted(exhausted),
            #[cfg(feature = "fault")]
            Cause::Injected => Cause::Injected,
            Cause::LimitExceeded { name } => Cause::LimitExceeded { name },
        };
        Error {
            cause,
            retry: self.retry,
        }
    }

    /// Records that a retry made `attempts` attempts and, if `gave_up` is set, why it stopped.
    pub(crate) fn with_retry_trace(mut self, attempts: u32, gave_up: Option<GaveUp>) -> Self {
        self.retry = Some(RetryTrace { attempts, gave_up });
        self
    }

    /// Converts into a boxed error whose concrete type is the inner error or a marker, as the
    /// tower layers return.
    pub fn into_box_error(self) -> crate::BoxError
    where
        E: Into<crate::BoxError>,
    {
        match self.cause {
            Cause::Inner(inner) => inner.into(),
            Cause::Timeout(elapsed) => Box::new(elapsed),
            Cause::BulkheadFull { .. } => Box::new(BulkheadFull::new()),
            Cause::CircuitOpen { .. } => Box::new(CircuitOpen::new()),
            Cause::RateLimited(limited) => Box::new(limited),
            Cause::RetriesExhausted(exhausted) => Box::new(exhausted),
            #[cfg(feature = "fault")]
            Cause::Injected => Box::new(InjectedFault::new()),
            Cause::LimitExceeded { .. } => Box::new(LimitExceeded::new()),
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
        Self::with_cause(Cause::Timeout(marker))
    }
}

impl<E> From<BulkheadFull> for Error<E> {
    fn from(_: BulkheadFull) -> Self {
        Self::with_cause(Cause::BulkheadFull { name: None })
    }
}

impl<E> From<LimitExceeded> for Error<E> {
    fn from(_: LimitExceeded) -> Self {
        Self::with_cause(Cause::LimitExceeded { name: None })
    }
}

impl<E> From<CircuitOpen> for Error<E> {
    fn from(_: CircuitOpen) -> Self {
        Self::with_cause(Cause::CircuitOpen {
            name: None,
            state: State::Open,
            retry_after: None,
        })
    }
}

impl<E> From<RateLimited> for Error<E> {
    fn from(marker: RateLimited) -> Self {
        Self::with_cause(Cause::RateLimited(marker))
    }
}

#[cfg(feature = "fault")]
impl<E> From<InjectedFault> for Error<E> {
    fn from(_: InjectedFault) -> Self {
        Self::with_cause(Cause::Injected)
    }
}

impl<E> From<RetriesExhausted> for Error<E> {
    fn from(marker: RetriesExhausted) -> Self {
        Self::with_cause(Cause::RetriesExhausted(marker))
    }
}

impl<E: fmt::Debug> fmt::Debug for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Error");
        out.field("kind", &self.kind());
        match &self.cause {
            Cause::Inner(inner) => out.field("inner", inner),
            Cause::Timeout(elapsed) => out.field("marker", elapsed),
            Cause::BulkheadFull { name } => out.field("name", name),
            Cause::CircuitOpen {
                name,
                state,
                retry_after,
            } => out
                .field("name", name)
                .field("state", state)
                .field("retry_after", retry_after),
            Cause::RateLimited(limited) => out.field("marker", limited),
            Cause::RetriesExhausted(exhausted) => out.field("marker", exhausted),
            #[cfg(feature = "fault")]
            Cause::Injected => out.field("marker", &InjectedFault::new()),
            Cause::LimitExceeded { name } => out.field("name", name),
        };
        if let Some(trace) = self.retry {
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
        }) = self.retry
        {
            let plural = if attempts == 1 { "" } else { "s" };
            return write!(
                f,
                "gave up after {attempts} attempt{plural}: {}",
                gave_up.as_str()
            );
        }
        match &self.cause {
            Cause::Inner(inner) => fmt::Display::fmt(inner, f),
            Cause::Timeout(elapsed) => fmt::Display::fmt(elapsed, f),
            Cause::BulkheadFull { name: Some(name) } => {
                write!(
                    f,
                    "bulkhead '{name}' is full and does not permit further calls"
                )
            }
            Cause::BulkheadFull { name: None } => fmt::Display::fmt(&BulkheadFull::new(), f),
            Cause::CircuitOpen {
                name: Some(name),
                state,
                ..
            } => write!(
                f,
                "circuit breaker '{name}' is {state} and does not permit further calls"
            ),
            Cause::CircuitOpen { name: None, .. } => fmt::Display::fmt(&CircuitOpen::new(), f),
            Cause::RateLimited(limited) => fmt::Display::fmt(limited, f),
            Cause::RetriesExhausted(exhausted) => fmt::Display::fmt(exhausted, f),
            #[cfg(feature = "fault")]
            Cause::Injected => fmt::Display::fmt(&InjectedFault::new(), f),
            Cause::LimitExceeded { name: Some(name) } => write!(
                f,
                "adaptive limiter '{name}' is at its concurrency limit and does not permit further calls"
            ),
            Cause::LimitExceeded { name: None } => fmt::Display::fmt(&LimitExceeded::new(), f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let gave_up = self.gave_up().is_some();
        match &self.cause {
            Cause::Inner(inner) if gave_up => Some(inner),
            Cause::Inner(inner) => inner.source(),
            Cause::Timeout(elapsed) if gave_up => Some(elapsed),
            Cause::BulkheadFull { .. } if gave_up => Some(&BULKHEAD_FULL),
            Cause::CircuitOpen { .. } if gave_up => Some(&CIRCUIT_OPEN),
            Cause::RateLimited(limited) if gave_up => Some(limited),
            #[cfg(feature = "fault")]
            Cause::Injected if gave_up => Some(&INJECTED),
            Cause::LimitExceeded { .. } if gave_up => Some(&LIMIT_EXCEEDED),
            _ => None,
        }
    }
}

/// The markers a retry that gave up reports as its source.
static BULKHEAD_FULL: BulkheadFull = BulkheadFull::new();
static CIRCUIT_OPEN: CircuitOpen = CircuitOpen::new();
#[cfg(feature = "fault")]
static INJECTED: InjectedFault = InjectedFault::new();
static LIMIT_EXCEEDED: LimitExceeded = LimitExceeded::new();

/// A rate limiter did not permit the call.
#[derive(Clone, PartialEq, Eq)]
pub struct RateLimited {
    name: Arc<str>,
    retry_after: Option<Duration>,
}

impl RateLimited {
    pub(crate) fn new(name: Arc<str>, retry_after: Option<Duration>) -> Self {
        Self { name, retry_after }
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When a permit is expected, if known.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Debug for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimited")
            .field("name", &self.name)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limiter '{}' does not permit further calls",
            self.name
        )
    }
}

impl std::error::Error for RateLimited {}

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
mod tests {
    use super::*;
    use crate::circuit_breaker::State;
    use std::error::Error as _;

    #[derive(Debug, PartialEq)]
    struct Boom;

    impl fmt::Display for Boom {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("boom")
        }
    }

    impl std::error::Error for Boom {}

    #[test]
    fn inner_errors_display_transparently() {
        let err = Error::from_inner(Boom);
        assert_eq!(err.to_string(), "boom");
        assert!(err.source().is_none());
        assert_eq!(err.kind(), ErrorKind::Inner);
        assert_eq!(err.inner(), Some(&Boom));
        assert_eq!(err.attempts(), None);
    }

    #[test]
    fn a_retry_that_gave_up_reports_itself_and_keeps_the_cause_as_source() {
        let err = Error::from_inner(Boom).with_retry_trace(3, Some(GaveUp::MaxAttempts));
        assert_eq!(
            err.to_string(),
            "gave up after 3 attempts: max attempts reached"
        );
        assert_eq!(err.source().unwrap().to_string(), "boom");
        assert!(err.is_retries_exhausted());
        assert!(err.is_inner());
        assert_eq!(err.attempts(), Some(3));
    }

    #[test]
    fn marker_errors_keep_their_predicates_and_hints() {
        let open: Error<Boom> =
            Error::circuit_open("pg".into(), State::Open, Some(Duration::from_secs(4)));
        assert!(open.is_circuit_open());
        assert_eq!(open.retry_after(), Some(Duration::from_secs(4)));
        assert_eq!(
            open.to_string(),
            "circuit breaker 'pg' is OPEN and does not permit further calls"
        );
        assert_eq!(open.rejected_by(), Some("pg"));
        assert!(open.inner().is_none());

        let full: Error<Boom> = Error::bulkhead_full("db".into());
        assert!(full.is_bulkhead_full());
        assert_eq!(full.rejected_by(), Some("db"));
        assert_eq!(
            full.to_string(),
            "bulkhead 'db' is full and does not permit further calls"
        );

        let limited: Error<Boom> = RateLimited::new("api".into(), None).into();
        assert!(limited.is_rate_limited());
        assert_eq!(limited.kind(), ErrorKind::RateLimited);
    }

    #[test]
    fn try_into_inner_gives_back_what_it_does_not_take() {
        let err: Error<Boom> = Error::from(Elapsed::new(Duration::from_secs(1)))
            .with_retry_trace(2, Some(GaveUp::MaxAttempts));
        let back = err.try_into_inner().unwrap_err();
        assert!(back.is_timeout());
        assert_eq!(back.attempts(), Some(2));
        assert_eq!(Error::from_inner(Boom).try_into_inner().unwrap(), Boom);
    }

    #[test]
    fn map_inner_keeps_markers_and_trace() {
        let err: Error<Boom> = Error::from(Elapsed::new(Duration::from_secs(1)))
            .with_retry_trace(2, Some(GaveUp::MaxElapsed));
        let mapped: Error<String> = err.map_inner(|b| b.to_string());
        assert!(mapped.is_timeout());
        assert_eq!(mapped.gave_up(), Some(GaveUp::MaxElapsed));
        let inner: Error<String> = Error::from_inner(Boom).map_inner(|b| b.to_string());
        assert_eq!(inner.into_inner().as_deref(), Some("boom"));
    }

    #[test]
    fn box_errors_round_trip_through_the_flat_error() {
        let open: crate::BoxError = Box::new(CircuitOpen::new());
        let err = Error::from_box_error(open);
        assert!(err.is_circuit_open());
        assert_eq!(err.rejected_by(), None, "a tower marker carries no name");
        assert_eq!(
            err.to_string(),
            "circuit breaker is open and does not permit further calls"
        );
        let io: crate::BoxError = Box::new(std::io::Error::other("reset"));
        let err = Error::from_box_error(io);
        assert!(err.is_inner());
        assert_eq!(err.into_box_error().to_string(), "reset");
    }

    #[test]
    fn box_errors_downcast_to_markers() {
        let err: Error<std::io::Error> = Error::bulkhead_full("db".into());
        let boxed = err.into_box_error();
        assert!(boxed.is::<BulkheadFull>());
        let err: Error<std::io::Error> = Error::circuit_open("pg".into(), State::Open, None);
        assert!(err.into_box_error().is::<CircuitOpen>());
    }
}

//! Unit tests of the flat error and its two-word layout.

use super::*;
use crate::circuit_breaker::State;
use std::error::Error as _;

#[derive(Debug, PartialEq)]
struct Boom;

fn named(marker: Marker, name: &str) -> Arc<Origin> {
    Origin::new(marker, Some(name.into()))
}

fn circuit_open<E>(name: &str, state: State, retry_after: Option<Duration>) -> Error<E> {
    BreakerOrigins::new(&name.into()).rejected(state, retry_after)
}

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
    let open: Error<Boom> = circuit_open("pg", State::Open, Some(Duration::from_secs(4)));
    assert!(open.is_circuit_open());
    assert_eq!(open.retry_after(), Some(Duration::from_secs(4)));
    assert_eq!(
        open.to_string(),
        "circuit breaker 'pg' is OPEN and does not permit further calls"
    );
    assert_eq!(open.rejected_by(), Some("pg"));
    assert!(open.inner().is_none());

    let full: Error<Boom> = Error::rejected(&named(Marker::BulkheadFull, "db"), None);
    assert!(full.is_bulkhead_full());
    assert_eq!(full.rejected_by(), Some("db"));
    assert_eq!(
        full.to_string(),
        "bulkhead 'db' is full and does not permit further calls"
    );

    let limited: Error<Boom> = RateLimited::new(&named(Marker::RateLimited, "api"), None).into();
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
    let err: Error<std::io::Error> = Error::rejected(&named(Marker::BulkheadFull, "db"), None);
    let boxed = err.into_box_error();
    assert!(boxed.is::<BulkheadFull>());
    let err: Error<std::io::Error> = circuit_open("pg", State::Open, None);
    assert!(err.into_box_error().is::<CircuitOpen>());
}

#[test]
fn a_rejection_through_a_retry_keeps_its_hints_and_the_trace_without_boxing() {
    let open: Error<Boom> = circuit_open("pg", State::HalfOpen, Some(Duration::from_millis(7)))
        .with_retry_trace(2, Some(GaveUp::BudgetExhausted));
    assert!(
        matches!(open.repr, Repr::Light(_)),
        "the trace packs beside the hint"
    );
    assert!(open.is_circuit_open());
    assert_eq!(open.retry_after(), Some(Duration::from_millis(7)));
    assert_eq!(open.attempts(), Some(2));
    assert_eq!(open.gave_up(), Some(GaveUp::BudgetExhausted));
    assert_eq!(open.source().unwrap().to_string(), CIRCUIT_OPEN.to_string());
}

#[test]
fn a_trace_too_large_to_pack_moves_the_rejection_into_the_box_intact() {
    let limiter = named(Marker::RateLimited, "api");
    let limited: Error<Boom> =
        Error::from(RateLimited::new(&limiter, Some(Duration::from_nanos(1234))))
            .with_retry_trace(u32::MAX, None);
    assert!(matches!(limited.repr, Repr::Cold(_)));
    assert_eq!(limited.attempts(), Some(u32::MAX));
    assert_eq!(limited.retry_after(), Some(Duration::from_nanos(1234)));
    let marker = limited.as_rate_limited().unwrap();
    assert_eq!(marker.name(), "api");
    assert_eq!(
        marker,
        &RateLimited::new(&limiter, Some(Duration::from_nanos(1234)))
    );
    assert!(limited.into_box_error().is::<RateLimited>());
}

#[test]
fn a_timeout_origin_reports_the_duration_that_fired() {
    let origin = TimeoutOrigin::new(Duration::from_millis(50));
    let first: Error<Boom> = origin.elapsed(Duration::from_millis(50));
    assert_eq!(
        first.as_timeout().unwrap().after(),
        Duration::from_millis(50)
    );
    let changed: Error<Boom> = origin.elapsed(Duration::from_millis(80));
    assert_eq!(
        changed.as_timeout().unwrap().after(),
        Duration::from_millis(80)
    );
    assert_eq!(
        first.as_timeout().unwrap().after(),
        Duration::from_millis(50)
    );
    assert_eq!(
        first.rejected_by(),
        None,
        "a timeout rejects nothing by name"
    );
    assert!(first.into_box_error().is::<Elapsed>());
}

#[test]
fn map_inner_keeps_a_boxed_inner_error_its_trace() {
    let err = Error::from_inner(Boom).with_retry_trace(4, None);
    let mapped: Error<String> = err.map_inner(|b| b.to_string());
    assert_eq!(mapped.attempts(), Some(4));
    assert_eq!(mapped.try_into_inner().unwrap(), "boom");
}

#[test]
fn an_error_is_two_words() {
    assert_eq!(std::mem::size_of::<Error<std::io::Error>>(), 16);
    assert_eq!(std::mem::size_of::<Error<[u8; 256]>>(), 16);
}

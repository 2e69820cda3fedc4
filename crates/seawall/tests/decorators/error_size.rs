//! The size of `Error<E>`: every layer of a stack moves a `Result<T, Error<E>>`, so its size is
//! part of the cost of a call (see `docs/error-model.md`, "Its size").

use std::mem::size_of;

use seawall::Error;

#[test]
fn an_error_is_no_larger_than_its_recorded_size() {
    // Today's layout: the cause inline (the largest, a breaker's rejection, holds a name, a
    // state and a retry-after) and the retry trace beside it. A change that grows it fails
    // here; one that shrinks it lowers these numbers.
    assert!(
        size_of::<Error<std::io::Error>>() <= 48,
        "Error<io::Error> is {} bytes",
        size_of::<Error<std::io::Error>>()
    );
    assert!(
        size_of::<Result<u64, Error<std::io::Error>>>() <= 48,
        "Result<u64, Error<io::Error>> is {} bytes",
        size_of::<Result<u64, Error<std::io::Error>>>()
    );
}

//! The size of `Error<E>`: every layer of a stack moves a `Result<T, Error<E>>`, so its size is
//! part of the cost of a call (see `docs/error-model.md`, "Its size").

use std::mem::size_of;

use seawall::Error;

#[test]
fn an_error_is_no_larger_than_its_recorded_size() {
    // Two words whatever `E` is: a light rejection (the rejecting instance's shared origin and
    // a packed retry-after and retry trace) or a box with everything else (the operation's
    // own error included). A change that grows it fails here; one that shrinks it lowers these
    // numbers.
    assert!(
        size_of::<Error<std::io::Error>>() <= 16,
        "Error<io::Error> is {} bytes",
        size_of::<Error<std::io::Error>>()
    );
    assert!(
        size_of::<Error<[u8; 1024]>>() <= 16,
        "Error<[u8; 1024]> is {} bytes",
        size_of::<Error<[u8; 1024]>>()
    );
    assert!(
        size_of::<Result<u64, Error<std::io::Error>>>() <= 24,
        "Result<u64, Error<io::Error>> is {} bytes",
        size_of::<Result<u64, Error<std::io::Error>>>()
    );
    assert!(
        size_of::<Result<(), Error<std::io::Error>>>() <= 24,
        "Result<(), Error<io::Error>> is {} bytes",
        size_of::<Result<(), Error<std::io::Error>>>()
    );
}

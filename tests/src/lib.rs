//! Cross-crate system tests for the workspace (several processes, a real broker, a real
//! database). The tests are in `tests/`; this library is empty. Crate-level suites stay in
//! their crates (e.g. `crates/commerce/tests/api/`).

//! Cross-crate system tests for the workspace (several processes, a real broker, a real
//! database). The tests are in `tests/`; this library holds what they share: a throwaway
//! Postgres server ([`postgres`]) and commerce instances run as child processes
//! ([`instance`]). Crate-level suites stay in their crates (e.g. `crates/commerce/tests/api/`).

pub mod instance;
pub mod postgres;

use std::time::Duration;

/// Waits `ms` milliseconds of wall time (through seawall's clock: the workspace bans direct
/// sleeps). The system tests poll real processes, so their time is real.
pub async fn pause(ms: u64) {
    seawall::Clock::default()
        .sleep(Duration::from_millis(ms))
        .await;
}

/// A free loopback TCP port (bound, read and released: another process may take it before
/// the caller binds it, which the callers detect and report).
///
/// # Panics
///
/// No loopback port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

//! Integration tests of pg-client against the in-process simulator, over real sockets.
//!
//! Faults are forced deterministically (magic card numbers, fault rates switched between
//! attempts while the client waits on a manual clock); nothing sleeps and hopes.

mod breaker;
mod callback;
mod card_types;
mod charge;
mod config_properties;
mod hang_burst;
mod hedge;
mod helpers;
mod live;
mod metrics;
mod observer;
mod query;
mod redaction;
mod throttle;

//! End-to-end tests: the service on port 0 with a fresh SQLite file per test, in front of an
//! in-process pg-simulator.

mod admin;
mod callbacks;
mod configuration;
mod crash;
mod dashboard;
mod faults;
mod helpers;
mod hygiene;
mod leases;
mod multi_pg;
mod orders;
mod outage;
mod outbox;
mod outbox_claims;
mod pg_calls;
mod protection;
mod randomized;
mod recovery;
mod retention;
mod startup;
mod subscriptions;
mod tuning;
mod unsent;

//! End-to-end tests: the service on port 0 with a fresh SQLite file per test, in front of an
//! in-process pg-simulator.

mod admin;
mod callbacks;
mod configuration;
mod crash;
mod faults;
mod helpers;
mod hygiene;
mod leases;
mod orders;
mod outage;
mod outbox;
mod protection;
mod randomized;
mod recovery;
mod retention;
mod startup;
mod tuning;
mod unsent;

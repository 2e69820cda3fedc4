//! Integration tests over real HTTP on port 0. One binary; each module covers one area.

mod abuse;
mod callbacks;
mod contract;
mod control;
mod extensions;
mod faults;
mod helpers;
mod ledger_file;

//! # benches
//!
//! Per-call overhead of seawall's decorators, side by side with tower's built-ins,
//! tower-resilience, failsafe and recloser, with allocation counts.
//!
//! The crate is organised so that **each scenario is written once** and every contender gets
//! identical inputs:
//!
//! - [`harness`]: the inner operation every contender wraps (a ready future), the one-poll call
//!   harness and the runtimes;
//! - [`contender`]: the [`Contender`](contender::Contender) adapter trait — one call in, one
//!   [`Outcome`](harness::Outcome) out — and one small adapter per API shape (seawall's native
//!   policies, any tower `Service`, failsafe, recloser);
//! - [`config`]: the one configuration every contender gets;
//! - [`peers`] and [`ours`]: the configured contenders, one constructor per decorator and
//!   configuration, so that "the same configuration" is visible in one place;
//! - [`scenarios`]: the catalogue — every group (`<decorator>/<scenario>`), its rows and the
//!   outcome each row must produce — run through a [`Runner`](scenarios::Runner);
//! - [`criterion_runner`]: the [`Runner`](scenarios::Runner) that times rows with criterion;
//! - [`documents`]: configuration documents of the worst shapes, for the `documents` bench and
//!   check.
//!
//! The bench targets (`benches/*.rs`) time the catalogue, the `allocs` binary counts
//! allocations per call over the same catalogue, `probe` runs one row for callgrind, and
//! `report` drives both and writes `docs/benchmarks.md`. See the crate's `README.md`.

pub mod config;
pub mod contender;
pub mod criterion_runner;
pub mod documents;
pub mod harness;
pub mod ours;
pub mod peers;
pub mod scenarios;

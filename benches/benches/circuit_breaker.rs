//! Circuit breakers: closed (count window), slow-call tracking, time window at 1k and 100k calls, open (rejection), and two threads on one breaker. seawall's breaker rows are added when it lands (see the crate README).
//!
//! The rows are defined once in `benches::scenarios`; run with `cargo bench -p benches --bench circuit_breaker`.

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, without their undocumented items.
    let mut criterion = benches::criterion_runner::config().configure_from_args();
    benches::criterion_runner::bench_groups(&mut criterion, "circuit_breaker/");
    criterion.final_summary();
}

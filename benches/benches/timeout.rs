//! Timeouts around a call that is ready at once: seawall (native and tower layer), tower's `Timeout`, tower-resilience's time limiter.
//!
//! The rows are defined once in `benches::scenarios`; run with `cargo bench -p benches --bench timeout`.

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, without their undocumented items.
    let mut criterion = benches::criterion_runner::config().configure_from_args();
    benches::criterion_runner::bench_groups(&mut criterion, "timeout/");
    criterion.final_summary();
}

//! The full stack fallback → timeout → retry → circuit breaker → bulkhead, and its nearest equivalents.
//!
//! The rows are defined once in `benches::scenarios`; run with `cargo bench -p benches --bench stack`.

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, without their undocumented items.
    let mut criterion = benches::criterion_runner::config().configure_from_args();
    benches::criterion_runner::bench_groups(&mut criterion, "stack/");
    criterion.final_summary();
}

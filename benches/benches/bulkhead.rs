//! Bulkheads with a permit free: seawall (native and tower layer), tower's `ConcurrencyLimit`, tower-resilience.
//!
//! The rows are defined once in `benches::scenarios`; run with `cargo bench -p benches --bench bulkhead`.

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, without their undocumented items.
    let mut criterion = benches::criterion_runner::config().configure_from_args();
    benches::criterion_runner::bench_groups(&mut criterion, "bulkhead/");
    criterion.final_summary();
}

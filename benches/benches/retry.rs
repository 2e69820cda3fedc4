//! Retries whose first attempt succeeds: seawall (native and tower layer), tower's `Retry`, tower-resilience.
//!
//! The rows are defined once in `benches::scenarios`; run with `cargo bench -p benches --bench retry`.

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, without their undocumented items.
    let mut criterion = benches::criterion_runner::config().configure_from_args();
    benches::criterion_runner::bench_groups(&mut criterion, "retry/");
    criterion.final_summary();
}

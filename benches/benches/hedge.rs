//! Hedging around a call that is ready at once (no hedge fires): seawall (native and tower layer), tower-resilience's hedge.
//!
//! The rows are defined once in `benches::scenarios`; run with `cargo bench -p benches --bench hedge`.

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, without their undocumented items.
    let mut criterion = benches::criterion_runner::config().configure_from_args();
    benches::criterion_runner::bench_groups(&mut criterion, "hedge/");
    criterion.final_summary();
}

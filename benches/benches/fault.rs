//! A switched-off fault injector around a call that is ready at once: seawall (native and tower layer) beside the bare call and tower-resilience's chaos layer.
//!
//! The rows are defined once in `benches::scenarios`; run with `cargo bench -p benches --bench fault`.

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, without their undocumented items.
    let mut criterion = benches::criterion_runner::config().configure_from_args();
    benches::criterion_runner::bench_groups(&mut criterion, "fault/");
    criterion.final_summary();
}

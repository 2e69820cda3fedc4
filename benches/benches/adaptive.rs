//! Adaptive concurrency limiters with a permit free: seawall (native and tower layer) and tower-resilience's AIMD.
//!
//! The rows are defined once in `benches::scenarios`; run with `cargo bench -p benches --bench adaptive`.

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, without their undocumented items.
    let mut criterion = benches::criterion_runner::config().configure_from_args();
    benches::criterion_runner::bench_groups(&mut criterion, "adaptive/");
    criterion.final_summary();
}

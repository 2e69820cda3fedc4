//! Configuration documents of the worst shapes, just under seawall's 1 MiB limit, in every
//! format each shape has: `Document::parse`, and `Registries::from_str` for those it accepts.
//! The pass/fail check against the one-second promise is the `documents` binary.
//!
//! Run with `cargo bench -p benches --bench documents`. In criterion's test mode
//! (`cargo test -p benches --benches`) the documents are 64 KiB, so that the debug build's
//! single pass stays quick.

use std::hint::black_box;
use std::time::Duration;

use benches::documents::{FORMATS, TARGET_BYTES, shapes, sized};
use criterion::{BenchmarkId, Criterion, Throughput};
use seawall::registry::document::Document;
use seawall::registry::{BuildContext, Registries};

fn main() {
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let target = if measuring { TARGET_BYTES } else { 64 << 10 };
    // Whole documents take milliseconds to seconds: fewer, longer samples than the per-call
    // benches.
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10)
        .configure_from_args();
    let documents: Vec<_> = shapes()
        .into_iter()
        .flat_map(|shape| {
            FORMATS.into_iter().filter_map(move |(format, name)| {
                sized(shape, format, target).map(|text| (shape.name, name, format, text))
            })
        })
        .collect();

    let mut parse = criterion.benchmark_group("documents/parse");
    for (shape, name, format, text) in &documents {
        parse.throughput(Throughput::Bytes(text.len() as u64));
        parse.bench_function(BenchmarkId::new(*shape, name), |b| {
            b.iter(|| Document::parse(black_box(text), *format));
        });
    }
    parse.finish();

    let mut build = criterion.benchmark_group("documents/build");
    for (shape, name, format, text) in &documents {
        if Document::parse(text, *format).is_err() {
            continue;
        }
        build.throughput(Throughput::Bytes(text.len() as u64));
        build.bench_function(BenchmarkId::new(*shape, name), |b| {
            b.iter(|| Registries::from_str(black_box(text), *format, BuildContext::default()));
        });
    }
    build.finish();
    criterion.final_summary();
}

//! Times the catalogue with criterion: one criterion group per catalogue group, one
//! `BenchmarkId::new(contender, param)` per row.

#![allow(clippy::disallowed_methods)] // `iter_custom` needs wall-clock time: that is the measurement

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use tokio::runtime::Runtime;

use crate::contender::Contender;
use crate::harness::{INPUT, current_thread_runtime, multi_thread_runtime, on_threads};
use crate::scenarios::{self, Row, Runner, THREADS};

/// The criterion configuration of every bench target, sized for a 2-core machine (house style
/// 36): 1 s warm-up, 3 s measurement, 50 samples. Command-line flags still override it.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

/// Benches every catalogue group whose name starts with `prefix` (a decorator: `"bulkhead/"`).
pub fn bench_groups(c: &mut Criterion, prefix: &str) {
    let runtime = current_thread_runtime();
    let mut multi = None;
    for group in scenarios::GROUPS
        .iter()
        .filter(|group| group.name.starts_with(prefix))
    {
        let mut criterion_group = c.benchmark_group(group.name);
        let mut runner = CriterionRunner {
            group: &mut criterion_group,
            runtime: &runtime,
            multi: &mut multi,
        };
        scenarios::run(group.name, &mut runner);
        criterion_group.finish();
    }
}

/// A [`Runner`] that times each row in a criterion group.
pub struct CriterionRunner<'a, 'c> {
    group: &'a mut BenchmarkGroup<'c, WallTime>,
    runtime: &'a Runtime,
    multi: &'a mut Option<Runtime>,
}

impl std::fmt::Debug for CriterionRunner<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CriterionRunner").finish_non_exhaustive()
    }
}

impl Runner for CriterionRunner<'_, '_> {
    fn steady<C: Contender>(&mut self, row: Row, make: impl FnOnce() -> C) {
        // The runtime is built once, outside the measured closure, and entered so that tokio
        // timers, mutexes and semaphores work.
        let _entered = self.runtime.enter();
        let mut contender = make();
        self.group
            .bench_function(BenchmarkId::new(row.contender, row.param), |b| {
                // `iter` black-boxes the returned outcome itself: boxing it twice would add a
                // store-to-load round trip to every call, baseline included.
                b.iter(|| contender.call(black_box(INPUT)));
            });
    }

    fn refilled<C: Contender>(&mut self, row: Row, chunk: u64, mut make: impl FnMut() -> C) {
        let _entered = self.runtime.enter();
        // The contender and the calls it has left before it must be refilled. It lives across
        // `iter_custom` invocations, so a refill happens every `chunk` calls and not on every
        // invocation (criterion plans its samples from wall time, refills included).
        let mut current: Option<(C, u64)> = None;
        self.group
            .bench_function(BenchmarkId::new(row.contender, row.param), |b| {
                b.iter_custom(|iters| {
                    let mut measured = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        if current.as_ref().is_none_or(|(_, budget)| *budget == 0) {
                            current = None; // drop the spent one before building the next
                            current = Some((make(), chunk));
                        }
                        let (contender, budget) = current.as_mut().expect("just refilled");
                        let calls = left.min(*budget);
                        let start = Instant::now();
                        for _ in 0..calls {
                            black_box(contender.call(black_box(INPUT)));
                        }
                        measured += start.elapsed();
                        *budget -= calls;
                        left -= calls;
                    }
                    measured
                });
            });
    }

    fn threaded<C: Contender + Clone + Send + 'static>(
        &mut self,
        row: Row,
        threads: usize,
        make: impl FnOnce() -> C,
    ) {
        let workers = THREADS.iter().map(|&(_, n)| n).max().unwrap_or(1);
        let runtime = self
            .multi
            .get_or_insert_with(|| multi_thread_runtime(workers));
        let contender = {
            let _entered = runtime.enter();
            make()
        };
        let threads_u64 = u64::try_from(threads).expect("fits");
        self.group
            .bench_function(BenchmarkId::new(row.contender, row.param), |b| {
                b.iter_custom(|iters| {
                    let per_thread = iters.div_ceil(threads_u64);
                    let start = Instant::now();
                    on_threads(runtime, &contender, threads, 0, per_thread, |calls| calls());
                    let elapsed = start.elapsed();
                    // Wall time over every thread's calls, scaled to `iters` calls: the time
                    // per call is the inverse of the throughput.
                    #[allow(clippy::cast_precision_loss)] // call counts far below 2^52
                    let scale = iters as f64 / (per_thread * threads_u64) as f64;
                    elapsed.mul_f64(scale)
                });
            });
    }

    fn window_fills(&self) -> &'static [(&'static str, usize)] {
        if cfg!(debug_assertions) {
            // `cargo test --benches` (criterion's test mode, a debug build) runs every row once
            // to check it works; filling tower-resilience's O(n) window with 100k calls would
            // take minutes there. Timing runs use the bench profile and every fill.
            &scenarios::WINDOW_FILLS[..1]
        } else {
            scenarios::WINDOW_FILLS
        }
    }
}

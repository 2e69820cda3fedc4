//! Allocations per call for every row of the catalogue, counted apart from any timing.
//!
//! ```sh
//! cargo run -p benches --profile bench --bin allocs              # a table on stdout
//! cargo run -p benches --profile bench --bin allocs -- --json F  # also write JSON to F
//! ```
//!
//! This is the only target of the crate that links `allocation-counter`, whose counting global
//! allocator would otherwise slow down every allocating contender in the timing runs. The
//! counter is per thread: a row's calls are counted on the thread that makes them.

use std::hint::black_box;

use benches::contender::Contender;
use benches::harness::{INPUT, current_thread_runtime, multi_thread_runtime, on_threads};
use benches::scenarios::{self, Row, Runner, THREADS};
use tokio::runtime::Runtime;

/// Calls counted per steady row.
const CALLS: u64 = 10_000;
/// Calls made before counting: whatever is lazily initialised happens here.
const WARM_UP: u64 = 16;

/// One row's count.
struct Count {
    row: Row,
    calls: u64,
    allocations: u64,
    bytes: u64,
}

struct AllocRunner {
    runtime: Runtime,
    multi: Option<Runtime>,
    counts: Vec<Count>,
}

impl AllocRunner {
    fn record(&mut self, row: Row, calls: u64, info: &allocation_counter::AllocationInfo) {
        self.counts.push(Count {
            row,
            calls,
            allocations: info.count_total,
            bytes: info.bytes_total,
        });
    }
}

fn calls<C: Contender>(contender: &mut C, n: u64) {
    for _ in 0..n {
        black_box(contender.call(black_box(INPUT)));
    }
}

impl Runner for AllocRunner {
    fn steady<C: Contender>(&mut self, row: Row, make: impl FnOnce() -> C) {
        let _entered = self.runtime.enter();
        let mut contender = make();
        calls(&mut contender, WARM_UP);
        let info = allocation_counter::measure(|| calls(&mut contender, CALLS));
        drop(_entered);
        self.record(row, CALLS, &info);
    }

    fn refilled<C: Contender>(&mut self, row: Row, chunk: u64, mut make: impl FnMut() -> C) {
        let _entered = self.runtime.enter();
        // One chunk on a freshly filled contender: exactly what the timing run measures.
        let mut contender = make();
        let n = chunk.min(CALLS);
        let info = allocation_counter::measure(|| calls(&mut contender, n));
        drop(_entered);
        self.record(row, n, &info);
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
        let infos = on_threads(runtime, &contender, threads, WARM_UP, CALLS, |calls| {
            allocation_counter::measure(calls)
        });
        let tasks = u64::try_from(threads).expect("fits");
        self.counts.push(Count {
            row,
            calls: CALLS * tasks,
            allocations: infos.iter().map(|info| info.count_total).sum(),
            bytes: infos.iter().map(|info| info.bytes_total).sum(),
        });
    }
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn per_call(total: u64, calls: u64) -> f64 {
    total as f64 / calls as f64
}

#[allow(clippy::print_stdout)] // a command-line tool
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json_path = match args.as_slice() {
        [] => None,
        [flag, path] if flag == "--json" => Some(path.clone()),
        _ => {
            eprintln!("usage: allocs [--json FILE]");
            std::process::exit(2);
        }
    };

    let mut runner = AllocRunner {
        runtime: current_thread_runtime(),
        multi: None,
        counts: Vec::new(),
    };
    scenarios::run_all(&mut runner);

    println!(
        "{:<30} {:<30} {:<10} {:>12} {:>12}",
        "group", "contender", "param", "allocs/call", "bytes/call"
    );
    for count in &runner.counts {
        println!(
            "{:<30} {:<30} {:<10} {:>12.3} {:>12.1}",
            count.row.group,
            count.row.contender,
            count.row.param,
            per_call(count.allocations, count.calls),
            per_call(count.bytes, count.calls),
        );
    }

    if let Some(path) = json_path {
        let rows: Vec<_> = runner
            .counts
            .iter()
            .map(|count| {
                serde_json::json!({
                    "group": count.row.group,
                    "contender": count.row.contender,
                    "param": count.row.param,
                    "calls": count.calls,
                    "allocations": count.allocations,
                    "bytes": count.bytes,
                })
            })
            .collect();
        let json = serde_json::json!({ "rows": rows });
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&json).expect("valid JSON"),
        )
        .unwrap_or_else(|err| panic!("cannot write {path}: {err}"));
    }
}

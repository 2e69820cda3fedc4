//! Runs one row of the catalogue many times, for callgrind or a profiler.
//!
//! ```sh
//! cargo build -p benches --profile bench --bin probe
//! valgrind --tool=callgrind target/release/probe retry/first_success seawall 3-attempts 100000
//! ```
//!
//! Instructions per call = the difference between two runs with different call counts divided
//! by the difference in calls (construction, warm-up and process start cancel out); the report
//! command does this with `--callgrind`. Multi-thread rows are not supported (callgrind
//! serialises threads anyway).

use std::hint::black_box;

use benches::contender::Contender;
use benches::harness::{INPUT, current_thread_runtime};
use benches::scenarios::{self, Row, Runner};
use tokio::runtime::Runtime;

struct Probe {
    runtime: Runtime,
    contender: &'static str,
    param: &'static str,
    calls: u64,
    done: bool,
}

impl Probe {
    fn wants(&self, row: Row) -> bool {
        !self.done && row.contender == self.contender && row.param == self.param
    }

    fn run<C: Contender>(&mut self, mut contender: C) {
        for _ in 0..self.calls {
            black_box(contender.call(black_box(INPUT)));
        }
        self.done = true;
    }
}

impl Runner for Probe {
    fn steady<C: Contender>(&mut self, row: Row, make: impl FnOnce() -> C) {
        if self.wants(row) {
            let _entered = self.runtime.enter();
            let contender = make();
            self.run(contender);
        }
    }

    fn refilled<C: Contender>(&mut self, row: Row, chunk: u64, mut make: impl FnMut() -> C) {
        if self.wants(row) {
            if self.calls > chunk {
                eprintln!(
                    "warning: {} calls drift the window past its fill ({chunk} per refill)",
                    self.calls
                );
            }
            let _entered = self.runtime.enter();
            let contender = make();
            self.run(contender);
        }
    }

    fn threaded<C: Contender + Clone + Send + 'static>(
        &mut self,
        row: Row,
        _threads: usize,
        _make: impl FnOnce() -> C,
    ) {
        if self.wants(row) {
            eprintln!("probe: multi-thread rows are not supported");
            std::process::exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [group, contender, param, calls] = args.as_slice() else {
        eprintln!("usage: probe GROUP CONTENDER PARAM CALLS");
        std::process::exit(2);
    };
    let Some(group) = scenarios::group(group) else {
        eprintln!("probe: no group {group}");
        std::process::exit(2);
    };
    let Ok(calls) = calls.parse() else {
        eprintln!("probe: CALLS must be a number, got {calls}");
        std::process::exit(2);
    };
    let mut probe = Probe {
        runtime: current_thread_runtime(),
        contender: contender.clone().leak(),
        param: param.clone().leak(),
        calls,
        done: false,
    };
    scenarios::run(group.name, &mut probe);
    if !probe.done {
        eprintln!("probe: no row {contender} / {param} in {}", group.name);
        std::process::exit(2);
    }
}
